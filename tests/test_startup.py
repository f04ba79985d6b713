"""``gateway serve`` start-up failures: each is one line on stderr, its own exit status, no banner
and no traceback. The server runs as a real subprocess (``python -m gateway.cli serve``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from gateway.startup import Exit, mask

KEY_ENV = ("DATABASE_URL", "READ_REPLICA_URL", "JWT_SECRET", "API_KEY", "GATEWAY_DATA_DIR", "GATEWAY_HOST",
           "GATEWAY_PORT", "GATEWAY_WORKERS", "GATEWAY_LOG_LEVEL", "GATEWAY_URL", "GATEWAY_STATE_DIR")
PASSWORD = "s3cret-word"
CHECK_ROLE = "gw_password_check"


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="gateway-startup-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def serve(home: Path, *argv: str, **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update({"GATEWAY_DATA_DIR": str(home / "data"), "GATEWAY_STATE_DIR": str(home / "state"), **environ})
    return subprocess.run([sys.executable, "-m", "gateway.cli", "serve", *argv], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120)


def assert_one_line(done: subprocess.CompletedProcess[str], code: Exit, *expected: str) -> str:
    """The run failed with ``code``, printed nothing on stdout and one line (no traceback) on stderr."""
    assert done.returncode == code, (done.returncode, done.stderr)
    assert done.stdout == ""  # no banner
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gateway: "), done.stderr
    assert "Traceback" not in done.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def with_login(url: str, user: str, password: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{user}:{password}@{host}" if password else f"{user}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{database}" if database else parts.path))


def test_a_port_in_use_is_one_line_naming_the_address(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve(home, "--port", str(port), DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    assert_one_line(done, Exit.PORT, f"127.0.0.1:{port}", "address already in use", "--port")


def test_an_unknown_host_to_listen_on_is_one_line(home: Path) -> None:
    done = serve(home, "--host", "no-such-host.invalid", "--port", "7999")
    assert_one_line(done, Exit.PORT, "no-such-host.invalid", "--host")


@pytest.mark.parametrize("url", ["mysql://user:pw@localhost/db", "not a url at all"])
def test_a_database_url_that_is_not_postgresql_is_one_line(home: Path, url: str) -> None:
    line = assert_one_line(serve(home, "--port", "0", DATABASE_URL=url), Exit.DATABASE_URL,
                           "postgresql://user:password@host:5432/database")
    assert "pw@" not in line


def test_an_unreachable_database_host_is_one_line_with_the_password_masked(home: Path) -> None:
    url = f"postgresql://someone:{PASSWORD}@127.0.0.1:1/db"
    line = assert_one_line(serve(home, "--port", "0", DATABASE_URL=url), Exit.DATABASE_UNREACHABLE,
                           mask(url), "check that PostgreSQL runs there")
    assert PASSWORD not in line and "***" in line


@pytest.fixture
async def password_login(pg_url: str) -> Iterator[str]:  # type: ignore[misc]
    """A role that must log in with a password: an hba line for it goes first in the test server's
    pg_hba.conf (every other login stays as it was)."""
    conn = await asyncpg.connect(pg_url)
    try:
        hba = Path(await conn.fetchval("SHOW hba_file"))
        if not os.access(hba, os.W_OK):
            pytest.skip(f"cannot edit {hba} (TEST_DATABASE_URL points at a server this test does not own)")
        original = hba.read_text()
        await conn.execute(f"DROP ROLE IF EXISTS {CHECK_ROLE}; CREATE ROLE {CHECK_ROLE} LOGIN PASSWORD '{PASSWORD}'")
        hba.write_text(f"local all {CHECK_ROLE} scram-sha-256\nhost all {CHECK_ROLE} all scram-sha-256\n" + original)
        await conn.execute("SELECT pg_reload_conf()")
        yield pg_url
    finally:
        with contextlib.suppress(NameError):
            hba.write_text(original)
            await conn.execute("SELECT pg_reload_conf()")
            await conn.execute(f"DROP ROLE IF EXISTS {CHECK_ROLE}")
        await conn.close()


def test_a_wrong_password_is_one_line_with_the_password_masked(home: Path, password_login: str) -> None:
    url = with_login(password_login, CHECK_ROLE, "wrong-" + PASSWORD)
    line = assert_one_line(serve(home, "--port", "0", DATABASE_URL=url), Exit.DATABASE_LOGIN,
                           "password authentication failed", "check the user name and password")
    assert PASSWORD not in line


def test_a_missing_database_is_one_line(home: Path, pg_url: str) -> None:
    url = with_login(pg_url, "postgres", database="gw_no_such_database")
    assert_one_line(serve(home, "--port", "0", DATABASE_URL=url), Exit.DATABASE_MISSING,
                    "gw_no_such_database", "create the database")


@pytest.mark.parametrize("api_key", ["nope", "ik_short", "ik_" + "x" * 31, "IK_" + "a1" * 20, "ik_" + "é" * 40])
def test_an_api_key_without_the_prefix_and_32_random_characters_is_refused(home: Path, api_key: str) -> None:
    done = serve(home, "--port", "0", API_KEY=api_key, DATABASE_URL="postgresql://u@127.0.0.1:1/db")
    assert_one_line(done, Exit.CONFIG, "API_KEY must be ik_", "openssl rand")


def test_log_level_debug_adds_the_traceback(home: Path) -> None:
    done = serve(home, "--port", "0", "--log-level", "debug", DATABASE_URL="postgresql://u:pw@127.0.0.1:1/db")
    assert done.returncode == Exit.DATABASE_UNREACHABLE
    assert "Traceback" in done.stderr and done.stderr.splitlines()[-1].startswith("gateway: ")


def test_version_prints_the_installed_version() -> None:
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("gateway 0.")


@pytest.fixture
async def unprivileged_login(pg_url: str) -> Iterator[str]:  # type: ignore[misc]
    """A login role in a database of its own where it may create nothing: the app's bootstrap fails."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("DROP DATABASE IF EXISTS gw_plain_db")
        await conn.execute("DROP ROLE IF EXISTS gw_plain; CREATE ROLE gw_plain LOGIN")
        await conn.execute("CREATE DATABASE gw_plain_db")
        yield with_login(pg_url, "gw_plain", database="gw_plain_db")
    finally:
        await conn.execute("DROP DATABASE IF EXISTS gw_plain_db WITH (FORCE)")
        await conn.execute("DROP ROLE IF EXISTS gw_plain")
        await conn.close()


def test_a_failure_inside_the_application_start_ends_in_one_line_without_a_traceback(
        home: Path, unprivileged_login: str) -> None:
    done = serve(home, "--port", "0", DATABASE_URL=unprivileged_login)
    assert done.returncode == Exit.SERVER, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("gateway: the server stopped before it answered: ") and "permission denied" in last


def test_a_data_dir_that_cannot_be_created_is_one_line(home: Path) -> None:
    done = serve(home, "--port", "0", GATEWAY_DATA_DIR="/proc/no-such-dir")
    assert_one_line(done, Exit.CONFIG, "/proc/no-such-dir", "GATEWAY_DATA_DIR")


def test_an_embedded_postgres_that_cannot_start_is_one_line(home: Path) -> None:
    data = home / "data"
    data.mkdir()
    (data / "pgdata").write_text("a file where the cluster's directory belongs")
    done = serve(home, "--port", "0", JWT_SECRET="j" * 40, API_KEY="ik_" + "0123456789abcdef" * 4)
    assert_one_line(done, Exit.EMBEDDED, "embedded PostgreSQL", str(data), "set DATABASE_URL")
