"""Shared fixtures: one PostgreSQL for the whole test session.

``pg_url`` (session)  a ``postgresql://`` URL for a superuser login with the bootstrap
                      (``gateway.bootstrap.apply``) applied once. ``TEST_DATABASE_URL`` when set;
                      otherwise a throwaway cluster in a temporary directory, started with the
                      ``pgserver`` package (or, if that fails, with the system's own binaries
                      from ``pg_config --bindir`` run as the ``postgres`` user) and stopped when
                      the session ends.
``pg`` (function)     an asyncpg connection to it as that superuser, for test setup SQL.

Every test module shares this one database, and the roles are shared by the whole cluster:
each module creates its objects in a schema of its own (named after the module) or under
table names no other module uses, and removes only what it created.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from gateway import bootstrap
from gateway.embedded import socket_url


def _start_with_pgserver(root: Path) -> tuple[str, Callable[[], None]]:
    """(URL, stop) for a cluster run by the pgserver package (which ships its own binaries)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' notice about an unset XDG_RUNTIME_DIR
        import pgserver
    pgdata = root / "pgdata"
    pgdata.mkdir(parents=True)
    server = pgserver.PostgresServer(pgdata, cleanup_mode="stop")
    return socket_url(server.get_postmaster_info().socket_dir), server.cleanup


def _start_with_system_binaries(root: Path) -> tuple[str, Callable[[], None]]:
    """(URL, stop) for a cluster run by ``pg_config --bindir``'s binaries as the postgres user."""
    bindir = Path(subprocess.run(["pg_config", "--bindir"], check=True, capture_output=True,
                                 text=True).stdout.strip())
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


@pytest.fixture(scope="session")
def _pg_server_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    root = Path(tempfile.mkdtemp(prefix="gateway-tests-"))
    root.chmod(0o755)  # the server may run as another OS user (pgserver as root, or postgres)
    try:
        try:
            url, stop = _start_with_pgserver(root / "pgserver")
        except Exception as exc:
            warnings.warn(f"pgserver could not start PostgreSQL ({exc}); using the system binaries",
                          stacklevel=1)
            url, stop = _start_with_system_binaries(root / "system")
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
        await bootstrap.apply(conn)
    finally:
        await conn.close()
    return _pg_server_url


@pytest_asyncio.fixture
async def pg(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_url)
    try:
        yield conn
    finally:
        await conn.close()
