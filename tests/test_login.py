"""The login role: URLs, the SCRAM verifier (checked by a real password login) and the escalation check."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway import login


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://owner:secret@db.example:5433/app?sslmode=require",
     "postgresql://gateway_authenticator:p%40ss%2Fw@db.example:5433/app?sslmode=require"),
    ("postgresql://postgres@/postgres?host=/tmp/a%20b", "postgresql://gateway_authenticator:p%40ss%2Fw@/postgres?host=/tmp/a+b"),
    ("postgresql:///app?host=/run/pg&user=owner&password=x", "postgresql://gateway_authenticator:p%40ss%2Fw@/app?host=/run/pg"),
])
def test_the_login_url_keeps_the_address_and_replaces_only_the_credentials(url: str, expected: str) -> None:
    assert login.with_login(url, "gateway_authenticator", "p@ss/w") == expected
    assert login.user_of(expected) == "gateway_authenticator"


def test_user_of_reads_the_user_parameter_too() -> None:
    assert login.user_of("postgresql:///app?user=owner") == "owner"
    assert login.user_of("postgresql:///app") is None


def _row(name: str, **flags: Any) -> dict[str, Any]:
    base = {"rolname": name, "is_login": False, "rolsuper": False, "rolinherit": True, "rolcreaterole": False,
            "rolcreatedb": False, "rolreplication": False, "rolbypassrls": False, "direct": False}
    return {**base, **flags}


SAFE = [_row("gateway_authenticator", is_login=True, rolinherit=False), _row("anon", direct=True),
        _row("authenticated", direct=True), _row("project_admin", direct=True, rolbypassrls=True)]


def test_a_noinherit_login_granted_the_three_roles_has_no_problems() -> None:
    assert login.problems(SAFE) == []


@pytest.mark.parametrize(("change", "problem"), [
    ({0: {"rolsuper": True}}, "it is a superuser"),
    ({0: {"rolinherit": True}}, "it is INHERIT (it must be NOINHERIT)"),
    ({0: {"rolcreaterole": True}}, "it is CREATEROLE"),
    ({0: {"rolbypassrls": True}}, "it is BYPASSRLS"),
    ({1: {"direct": False}}, "it is not granted anon"),
    ({2: {"rolsuper": True}}, "it can become authenticated, which is a superuser"),
    ({1: {"rolbypassrls": True}}, "it can become anon, which is BYPASSRLS"),
])
def test_every_way_to_escalate_is_named(change: dict[int, dict[str, Any]], problem: str) -> None:
    rows = [{**row, **change.get(i, {})} for i, row in enumerate(SAFE)]
    assert problem in login.problems(rows)


def test_a_reachable_server_file_role_is_named() -> None:
    assert login.problems([*SAFE, _row("pg_read_server_files")]) == [
        "it can become pg_read_server_files, which reaches the server's files, programs or every row"]


async def test_postgresql_stores_the_verifier_as_given(pg: asyncpg.Connection) -> None:
    name = f"login_probe_{uuid.uuid4().hex[:8]}"
    verifier = login.scram_verifier("correct horse battery staple")
    await pg.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{verifier}'")
    try:
        assert await pg.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1", name) == verifier
    finally:
        await pg.execute(f"DROP ROLE {name}")


@contextlib.contextmanager
def _scram_for(hba: Path, role: str) -> Iterator[None]:
    """pg_hba.conf demanding scram-sha-256 of ``role`` on the socket (first line wins), restored after."""
    original = hba.read_text()
    hba.write_text(f"local all {role} scram-sha-256\n" + original)
    try:
        yield
    finally:
        hba.write_text(original)


async def test_the_password_logs_in_through_scram_with_the_verifier_the_gateway_computed(
        pg: asyncpg.Connection, pg_url: str) -> None:
    hba = Path(await pg.fetchval("SHOW hba_file"))
    if not hba.is_file():
        pytest.skip(f"{hba} is not on this machine (TEST_DATABASE_URL points elsewhere)")
    try:
        hba.open("a").close()
    except OSError as exc:
        pytest.skip(f"cannot edit {hba} to demand a password: {exc}")
    name = f"login_scram_{uuid.uuid4().hex[:8]}"
    password = "s3cret/with@odd:chars"
    await pg.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{login.scram_verifier(password)}'")
    try:
        with _scram_for(hba, name):
            await pg.execute("SELECT pg_reload_conf()")
            conn = await asyncpg.connect(login.with_login(pg_url, name, password))
            try:
                assert await conn.fetchval("SELECT session_user") == name
            finally:
                await conn.close()
            with pytest.raises(asyncpg.InvalidPasswordError):
                await asyncpg.connect(login.with_login(pg_url, name, "wrong"))
    finally:
        await pg.execute("SELECT pg_reload_conf()")
        await pg.execute(f"DROP ROLE {name}")
