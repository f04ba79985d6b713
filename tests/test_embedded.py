"""The embedded PostgreSQL (gateway.embedded): persistence, clean stops, recovery after crashes.

Each test runs its own cluster in its own temporary directory. That directory is made with
tempfile rather than pytest's data_dir: run as root, postgres runs as another OS user that must
be able to reach it, and pytest keeps its own base directory private (mode 0700).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway import embedded
from gateway.embedded import EmbeddedPostgres


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gateway-embedded-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def started() -> Iterator[list[EmbeddedPostgres]]:
    """Servers a test started; whatever is still running afterwards is stopped."""
    servers: list[EmbeddedPostgres] = []
    yield servers
    for server in servers:
        server.stop()


def _start(data_dir: Path, started: list[EmbeddedPostgres]) -> EmbeddedPostgres:
    server = embedded.start(data_dir)
    started.append(server)
    return server


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _fetchval(url: str, sql: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def test_data_survives_a_restart(data_dir: Path, started: list[EmbeddedPostgres]) -> None:
    first = _start(data_dir, started)
    await _execute(first.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('still here')")
    first.stop()
    assert _gone(first.pid)

    second = _start(data_dir, started)
    assert second.pgdata == data_dir.resolve() / "pgdata"
    assert await _fetchval(second.url, "SELECT v FROM kept") == "still here"


async def test_stop_shuts_the_server_down_cleanly(data_dir: Path, started: list[EmbeddedPostgres]) -> None:
    server = _start(data_dir, started)
    children = psutil.Process(server.pid).children()
    server.stop()
    assert _gone(server.pid)
    assert all(_gone(child.pid) for child in children)
    assert not (server.pgdata / "postmaster.pid").exists()  # removed only by a clean shutdown
    server.stop()  # a second stop is harmless


async def test_the_url_works_for_asyncpg_and_sqlalchemy_in_a_directory_with_odd_characters(
        data_dir: Path, started: list[EmbeddedPostgres]) -> None:
    server = _start(data_dir / "my data & more", started)
    assert await _fetchval(server.url, "SELECT 1") == 1
    engine = create_async_engine(server.url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT current_user"))).scalar() == "postgres"
    finally:
        await engine.dispose()
    # the wheel was handed a plain-named symlink, which goes away with the server.
    alias = Path(server.server.pgdata)
    assert alias.is_symlink() and alias.resolve() == server.pgdata
    server.stop()
    assert not alias.is_symlink()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# name -> what the crashed server's postmaster.pid says
STALE_PID_FILES = {
    "a pid that no longer exists": lambda pgdata: f"{_dead_pid()}\n{pgdata}\n1700000000\n5432\n{pgdata}\n\n"
                                                  "  5432001   0\nready   \n",
    "a pid now used by another program": lambda pgdata: f"{os.getpid()}\n{pgdata}\n1700000000\n5432\n"
                                                        f"{pgdata}\n\n  5432001   0\nready   \n",
    "a file cut short": lambda pgdata: f"{_dead_pid()}\n{pgdata}\n",
    "an empty file": lambda pgdata: "",
}


@pytest.mark.parametrize("kind", list(STALE_PID_FILES))
async def test_a_stale_pid_file_does_not_prevent_a_start(data_dir: Path, started: list[EmbeddedPostgres],
                                                         kind: str) -> None:
    first = _start(data_dir, started)
    await _execute(first.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
    first.stop()
    (first.pgdata / "postmaster.pid").write_text(STALE_PID_FILES[kind](first.pgdata))

    second = _start(data_dir, started)
    assert await _fetchval(second.url, "SELECT v FROM kept") == 7


async def test_a_server_killed_with_sigkill_restarts_with_its_data(
        data_dir: Path, started: list[EmbeddedPostgres]) -> None:
    first = _start(data_dir, started)
    await _execute(first.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    postmaster = psutil.Process(first.pid)
    processes = [postmaster, *postmaster.children()]
    os.kill(first.pid, signal.SIGKILL)
    # The backends exit on their own once the postmaster is gone; shared memory is free after that.
    await asyncio.to_thread(psutil.wait_procs, processes, 60)
    started.remove(first)

    second = _start(data_dir, started)
    assert second.pid != first.pid
    assert await _fetchval(second.url, "SELECT v FROM kept") == 42


async def test_a_gateway_that_died_without_stopping_does_not_keep_the_server_alive(
        data_dir: Path, started: list[EmbeddedPostgres]) -> None:
    # A process that starts the server and is killed before it can stop it.
    code = "import sys; from gateway import embedded; embedded.start(sys.argv[1]); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True)
    orphan = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    assert not _gone(orphan)  # still running, as the wheel leaves it for other users of the directory

    joined = _start(data_dir, started)
    assert joined.pid == orphan
    started.remove(joined)
    joined.stop()
    assert _gone(orphan)


@pytest.mark.parametrize(("socket_dir", "port", "url"), [
    ("/tmp/data", None, "postgresql://postgres@/postgres?host=/tmp/data"),
    ("/tmp/data", 5432, "postgresql://postgres@/postgres?host=/tmp/data"),
    ("/tmp/data", 5433, "postgresql://postgres@/postgres?host=/tmp/data&port=5433"),
    ("/tmp/my data&x#y", None, "postgresql://postgres@/postgres?host=/tmp/my%20data%26x%23y"),
])
def test_socket_urls_percent_encode_the_directory(socket_dir: str, port: int | None, url: str) -> None:
    assert embedded.socket_url(socket_dir, port) == url


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("major", ["16", "15", "19"])
def test_a_data_directory_of_another_major_version_is_refused_untouched_with_what_to_do(
        data_dir: Path, major: str) -> None:
    pgdata = data_dir / "pgdata"
    (pgdata / "base").mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text(f"{major}\n")
    (pgdata / "base" / "1").write_bytes(b"rows of the old cluster")
    before = _tree(pgdata)
    with pytest.raises(embedded.IncompatibleDataDir) as caught:
        embedded.start(data_dir)
    message = str(caught.value)
    assert f"PostgreSQL {major} cluster" in message
    assert f"the embedded server is PostgreSQL {embedded.server_major()}" in message
    assert "DATABASE_URL" in message and "README" in message and "Do not delete" in message
    assert _tree(pgdata) == before  # nothing deleted, nothing written, no server started


async def test_the_embedded_server_is_the_major_its_wheel_names(data_dir: Path,
                                                                started: list[EmbeddedPostgres]) -> None:
    server = _start(data_dir, started)
    num = int(str(await _fetchval(server.url, "SHOW server_version_num")))
    assert num // 10000 == int(embedded.server_major()) >= 18
    assert (server.pgdata / "PG_VERSION").read_text().strip() == embedded.server_major()


def test_gateway_serve_exits_with_one_line_on_a_data_directory_of_another_major(data_dir: Path) -> None:
    (data_dir / "pgdata").mkdir()
    (data_dir / "pgdata" / "PG_VERSION").write_text("16\n")
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"GATEWAY_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "--port", "0"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 6  # the embedded PostgreSQL did not start
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gateway: ") and "PostgreSQL 16 cluster" in lines[0], done.stderr
    assert (data_dir / "pgdata" / "PG_VERSION").read_text() == "16\n"
