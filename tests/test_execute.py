"""The executor's setup round trip: every value reaches PostgreSQL exactly as given, whatever it holds."""

from __future__ import annotations

import asyncpg
import orjson
import pytest

from gateway import errors
from gateway.execute import (
    PREPARED_PER_CONNECTION,
    Executor,
    RequestContext,
    _literal,
    create_pool,
    setup_sql,
    statement_name,
    translate,
)
from gateway.identity import Identity
from gateway.settings import Settings

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
NAMED_RUN = "SELECT * FROM system.gateway_run($1, $2, $3, $4, $5, $6, $7)"
RUN_SIGNATURE = "system.gateway_run(text, text[], boolean, text, text[], text, text[])"
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
        "SELECT has_function_privilege($1, $2, 'EXECUTE')", role, RUN_SIGNATURE) is False


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


# an owner-only table owned by project_admin: the owner bypasses row security, every other role
# sees only the rows whose owner is its JWT subject
RLS_TABLE = """
CREATE TABLE IF NOT EXISTS public.exec_plan_probe (owner text, v int);
ALTER TABLE public.exec_plan_probe OWNER TO project_admin;
ALTER TABLE public.exec_plan_probe ENABLE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS own ON public.exec_plan_probe;
CREATE POLICY own ON public.exec_plan_probe
  USING (owner = current_setting('request.jwt.claims', true)::json->>'sub');
GRANT SELECT ON public.exec_plan_probe TO authenticated;
REVOKE ALL ON public.exec_plan_probe FROM anon;
TRUNCATE public.exec_plan_probe;
INSERT INTO public.exec_plan_probe VALUES ('alice', 1), ('bob', 2), ('bob', 3);
"""
PROBE_READ = ("SELECT NULL::bigint, count(*), coalesce(string_agg(v::text, ',' ORDER BY v), ''), NULL::bigint "
              "FROM public.exec_plan_probe WHERE v > CAST($1[1] AS int)")


def _claims(sub: str) -> list[str]:
    return ["request.jwt.claims", orjson.dumps({"sub": sub}).decode()]


async def test_a_named_statement_is_prepared_once_then_run_by_name_with_new_values(pg: asyncpg.Connection) -> None:
    name = statement_name(PROBE_READ)
    await pg.execute(RLS_TABLE)
    try:
        first = await pg.fetchrow(NAMED_RUN, "project_admin", [], True, PROBE_READ, ["0"], name, None)
        assert first["body"] == "1,2,3"
        again = await pg.fetchrow(NAMED_RUN, "project_admin", [], True, None, ["1"], name, None)
        assert again["body"] == "2,3"
        assert await pg.fetchval("SELECT count(*) FROM pg_prepared_statements WHERE name = $1", name) == 1
    finally:
        await pg.execute("DEALLOCATE ALL; DROP TABLE public.exec_plan_probe")


async def test_a_plan_prepared_for_one_caller_never_serves_another_callers_rows(pg: asyncpg.Connection) -> None:
    """The attack: warm a statement's plan as a role that bypasses row security (the table's owner),
    then run it by name as other callers. PostgreSQL re-plans for each role and checks privileges
    at execution: each caller sees exactly its own rows, and a role without SELECT is refused."""
    name = statement_name(PROBE_READ)
    await pg.execute(RLS_TABLE)
    try:
        for _ in range(8):  # past the five custom plans, so a generic plan is cached
            owner = await pg.fetchrow(NAMED_RUN, "project_admin", [], True, PROBE_READ, ["0"], name, None)
        assert owner["body"] == "1,2,3"
        alice = await pg.fetchrow(NAMED_RUN, "authenticated", _claims("alice"), True, None, ["0"], name, None)
        bob = await pg.fetchrow(NAMED_RUN, "authenticated", _claims("bob"), True, None, ["0"], name, None)
        assert (alice["body"], bob["body"]) == ("1", "2,3")
        with pytest.raises(asyncpg.PostgresError) as caught:
            await pg.fetchrow(NAMED_RUN, "anon", _claims("alice"), True, None, ["0"], name, None)
        assert caught.value.sqlstate == "42501"
        owner = await pg.fetchrow(NAMED_RUN, "project_admin", [], True, None, ["0"], name, None)
        assert owner["body"] == "1,2,3"
    finally:
        await pg.execute("DEALLOCATE ALL; DROP TABLE public.exec_plan_probe")


@pytest.mark.parametrize("name", ["x; DROP TABLE t", "gw_X", "pg_stmt", "gw_", '"gw_00"'])
async def test_a_statement_name_that_is_not_the_gateways_is_refused(pg: asyncpg.Connection, name: str) -> None:
    with pytest.raises(asyncpg.PostgresError) as caught:
        await pg.fetchrow(NAMED_RUN, "authenticated", [], True, ECHO, [], name, None)
    assert caught.value.sqlstate == "42501"


async def test_the_executor_prepares_again_when_its_statements_are_deallocated_behind_its_back(
        pg_url: str) -> None:
    settings = Settings(pool_min=1, pool_max=1)
    pool = await create_pool(pg_url, settings)
    try:
        executor = Executor(settings, pool)
        identity = Identity(role="authenticated", claims={"sub": "x"})
        ctx = RequestContext(read_only=True)
        assert (await executor.run(identity, ctx, ECHO, []))["body"] == "authenticated /"
        async with pool.acquire() as conn:
            await conn.execute("DEALLOCATE " + statement_name(ECHO))
        assert (await executor.run(identity, ctx, ECHO, []))["body"] == "authenticated /"
    finally:
        await pool.close()


async def test_each_connection_keeps_a_bounded_number_of_prepared_statements(pg_url: str) -> None:
    settings = Settings(pool_min=1, pool_max=1)
    pool = await create_pool(pg_url, settings)
    try:
        executor = Executor(settings, pool)
        identity = Identity(role="authenticated", claims={})
        for i in range(PREPARED_PER_CONNECTION + 5):
            await executor.run(identity, RequestContext(read_only=True), ECHO + f" LIMIT {i + 1}", [])
        async with pool.acquire() as conn:
            kept = await conn.fetchval("SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'gw\\_%'")
        assert kept == PREPARED_PER_CONNECTION
    finally:
        await pool.close()


async def test_every_value_reaches_the_statement_unchanged_through_the_one_round_trip(pg_url: str) -> None:
    settings = Settings(pool_min=1, pool_max=1)
    pool = await create_pool(pg_url, settings)
    try:
        executor = Executor(settings, pool)
        echo = ("SELECT NULL::bigint, 1::bigint, "
                "(SELECT json_agg(v)::text FROM unnest($1::text[]) WITH ORDINALITY AS u(v, n)), NULL::bigint")
        values = [*NASTY, None, "", "NULL", "{a,b}", '"quoted"']
        row = await executor.run(Identity(role="anon", claims={"sub": "it's \\ \"me\""}), RequestContext(), echo,
                                 values)
        assert orjson.loads(row["body"]) == values
    finally:
        await pool.close()
