"""The executor's setup round trip: every value reaches PostgreSQL exactly as given, whatever it holds."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from gateway import errors
from gateway.execute import RequestContext, _literal, setup_sql, translate
from gateway.identity import Identity

NASTY = [
    "plain",
    "it's",
    "back\\slash",
    "\\'; SELECT pg_sleep(10); --",
    "'); DROP TABLE x; --",
    "E'\\\\'",
    "$$dollar$$",
    "line\nbreak\ttab",
    "unicode ✓ 雪 🎉",
    "\\x27",
]


@pytest.mark.parametrize("conforming", ["on", "off"])
@pytest.mark.parametrize("value", NASTY)
async def test_a_literal_reads_back_unchanged_under_either_string_setting(
        pg: asyncpg.Connection, value: str, conforming: str) -> None:
    await pg.execute(f"SET standard_conforming_strings = {conforming}")
    try:
        assert await pg.fetchval(f"SELECT {_literal(value)}") == value
    finally:
        await pg.execute("RESET standard_conforming_strings")


def test_a_nul_character_is_refused_with_a_400() -> None:
    with pytest.raises(errors.GatewayError) as caught:
        _literal("a\x00b")
    assert caught.value.status == 400


@pytest.mark.parametrize("email", NASTY)
async def test_the_setup_sets_the_claims_method_and_path_exactly(pg: asyncpg.Connection, email: str) -> None:
    identity = Identity("authenticated", {"sub": "00000000-0000-0000-0000-000000000001", "email": email})
    ctx = RequestContext("GET", f"/api/database/records/{email}", read_only=True, search_path='"s p", public')
    await pg.execute(setup_sql(identity, ctx, 1234))
    try:
        claims = orjson.loads(await pg.fetchval("SELECT current_setting('request.jwt.claims')"))
        assert claims["email"] == email
        assert await pg.fetchval("SELECT current_setting('request.path')") == f"/api/database/records/{email}"
        assert await pg.fetchval("SELECT current_user") == "authenticated"
        assert await pg.fetchval("SHOW statement_timeout") == "1234ms"
        assert await pg.fetchval("SHOW transaction_read_only") == "on"
        assert await pg.fetchval("SHOW search_path") == '"s p", public'
    finally:
        await pg.execute("ROLLBACK")
    # transaction-local: nothing survives the transaction
    assert await pg.fetchval("SELECT current_user") != "authenticated"
    assert await pg.fetchval("SELECT current_setting('request.jwt.claims', true)") in (None, "")


def test_an_unknown_role_never_reaches_sql() -> None:
    with pytest.raises(errors.GatewayError) as caught:
        setup_sql(Identity("postgres", {}), RequestContext(), 1000)  # type: ignore[arg-type]
    assert caught.value.status == 401


@pytest.mark.parametrize("role", ["anon", "authenticated", "project_admin"])
def test_every_transaction_switches_to_the_callers_role_before_anything_else(role: str) -> None:
    sql = setup_sql(Identity(role, {"role": role}), RequestContext(), 1000)  # type: ignore[arg-type]
    assert sql.index(f"set_config(E'role', E'{role}', true)") < sql.index("request.jwt.claims")


@pytest.mark.parametrize(("exc", "status"), [
    (TimeoutError(), 503),
    (ConnectionResetError(), 503),
    (ValueError("boom"), 500),
])
def test_driver_and_pool_failures_are_translated_in_one_place(exc: BaseException, status: int) -> None:
    assert translate(exc, None).status == status


RUN = "SELECT * FROM system.gateway_run($1, $2, $3, $4, $5)"
ECHO = "SELECT NULL::bigint, 1::bigint, current_user::text || ' ' || current_setting('request.path'), NULL::bigint"


async def test_gateway_run_sets_the_role_and_settings_before_the_statement(pg: asyncpg.Connection) -> None:
    row = await pg.fetchrow(RUN, "authenticated", ["request.path", "/x"], True, ECHO, [])
    assert row["body"] == "authenticated /x"
    assert await pg.fetchval("SELECT current_user") != "authenticated"  # nothing outlives the statement


@pytest.mark.parametrize(("role", "settings", "sqlstate"), [
    ("postgres", [], "22023"),
    ("authenticated", ["role", "postgres"], "42501"),
    ("authenticated", ["session_authorization", "postgres"], "42501"),
])
async def test_gateway_run_refuses_roles_and_settings_that_are_not_the_gateways(
        pg: asyncpg.Connection, role: str, settings: list[str], sqlstate: str) -> None:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await pg.fetchrow(RUN, role, settings, False, ECHO, [])
    assert caught.value.sqlstate == sqlstate


@pytest.mark.parametrize("role", ["anon", "authenticated", "project_admin"])
async def test_callers_roles_cannot_execute_gateway_run(pg: asyncpg.Connection, role: str) -> None:
    assert await pg.fetchval(
        "SELECT has_function_privilege($1, 'system.gateway_run(text, text[], boolean, text, text[])', 'EXECUTE')",
        role) is False


async def test_a_read_only_run_refuses_to_write(pg: asyncpg.Connection) -> None:
    await pg.execute("CREATE TABLE IF NOT EXISTS public.exec_ro_probe (id int); "
                     "GRANT ALL ON public.exec_ro_probe TO project_admin")
    write = ("WITH w AS (INSERT INTO public.exec_ro_probe VALUES (1) RETURNING 1) "
             "SELECT NULL::bigint, count(*), NULL::text, NULL::bigint FROM w")
    try:
        with pytest.raises(asyncpg.PostgresError) as caught:
            await pg.fetchrow(RUN, "project_admin", [], True, write, [])
        assert caught.value.sqlstate == "25006"
        row = await pg.fetchrow(RUN, "project_admin", [], False, write, [])
        assert row["page_rows"] == 1
    finally:
        await pg.execute("DROP TABLE public.exec_ro_probe")
