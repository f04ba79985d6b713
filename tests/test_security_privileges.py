"""Attacks on the privilege model, each asserting that PostgreSQL itself refuses (not only the guard).

Requests arrive through the non-superuser, NOINHERIT login role; admin work runs as project_admin.
Every attack below is sent the way an attacker holding the admin API key (or a user token) would
send it, over HTTP, and most are wrapped in ``DO`` + dynamic ``EXECUTE`` so that the SQL guard
cannot see them: what stops them is PostgreSQL's privilege check. Objects are named ``sec_*``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support import AUTHENTICATOR_PASSWORD, Running, assert_error, run_sql, running_app, settings_for

from gateway import login
from gateway.app import create_app

SECRET_EMAIL = f"sec-secret-{uuid.uuid4().hex}@example.com"


def do(sql: str) -> str:
    """``sql`` run through a DO block's dynamic EXECUTE, out of the SQL guard's sight."""
    return "DO $attack$ BEGIN EXECUTE " + "'" + sql.replace("'", "''") + "'" + "; END $attack$"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    await run_sql(pg_url, f"INSERT INTO auth.users (email) VALUES ('{SECRET_EMAIL}'); "
                          "DROP TABLE IF EXISTS public.sec_target; "
                          "SET ROLE project_admin; CREATE TABLE public.sec_target (id int PRIMARY KEY, note text); "
                          "INSERT INTO public.sec_target VALUES (1, 'a'); RESET ROLE")
    async with running_app(pg_url) as running:
        yield running
    await run_sql(pg_url, f"DELETE FROM auth.users WHERE email = '{SECRET_EMAIL}'; "
                          "DROP TABLE IF EXISTS public.sec_target, public.sec_psql_made, public.sec_users_only; "
                          "DROP FUNCTION IF EXISTS public.sec_definer()")


async def sql(gw: Running, query: str, relaxed: bool = True) -> httpx.Response:
    path = "/api/database/advance/rawsql" + ("/unrestricted" if relaxed else "")
    return await gw.client.post(path, json={"query": query}, headers=gw.admin)


async def migrate(gw: Running, text: str) -> httpx.Response:
    version = str(10**30 + uuid.uuid4().int % 10**20)
    return await gw.client.post("/api/database/migrations", headers=gw.admin,
                                json={"version": version, "name": "sec_attack", "sql": text})


async def import_file(gw: Running, text: str) -> httpx.Response:
    return await gw.client.post("/api/database/advance/import", headers=gw.admin,
                                files={"file": ("attack.sql", text.encode(), "application/sql")},
                                data={"truncate": "false"})


async def superuser(pg_url: str, sql_text: str) -> Any:
    conn = await asyncpg.connect(pg_url)
    try:
        return await conn.fetchval(sql_text)
    finally:
        await conn.close()


def refused_by_postgres(r: httpx.Response) -> dict[str, Any]:
    """A 403 (or an import's 400) carrying PostgreSQL's own privilege error, 42501."""
    assert r.status_code in (400, 403), r.text
    body: dict[str, Any] = r.json()
    assert body["code"] == "42501", body
    return body


# --- the login role ------------------------------------------------------------------------------

async def test_the_serving_pool_logs_in_as_a_role_that_is_no_superuser_and_inherits_nothing(gw: Running) -> None:
    async with gw.gateway.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT session_user AS login, r.rolsuper, r.rolinherit, r.rolcreaterole, "
                                  "r.rolbypassrls FROM pg_roles r WHERE r.rolname = session_user")
    assert dict(row) == {"login": "gateway_authenticator", "rolsuper": False, "rolinherit": False,
                         "rolcreaterole": False, "rolbypassrls": False}


async def test_reset_role_inside_admin_sql_lands_on_the_powerless_login_role(gw: Running) -> None:
    r = await sql(gw, do("RESET ROLE") + "; SELECT current_user AS who, "
                  "has_table_privilege(current_user, 'public.sec_target', 'SELECT') AS reads")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"who": "gateway_authenticator", "reads": False}]


async def test_reset_role_inside_a_migration_cannot_reach_the_superuser(gw: Running) -> None:
    r = await migrate(gw, "DO $m$ BEGIN EXECUTE 'RESET ROLE'; EXECUTE 'CREATE TABLE public.sec_escaped (id int)'; "
                          "END $m$")
    refused_by_postgres(r)
    assert gw.gateway.catalogs.get().table("sec_escaped") is None


# --- shell, files, roles through relaxed SQL, migrations and imports -----------------------------

@pytest.mark.parametrize("attack", [
    pytest.param(do("COPY public.sec_target (note) FROM PROGRAM 'touch {marker}'"), id="copy-from-program"),
    pytest.param(do("COPY (SELECT 1) TO PROGRAM 'touch {marker}'"), id="copy-to-program"),
    pytest.param(do("CREATE TEMP TABLE x (t text); COPY x FROM '/etc/hostname'"), id="copy-from-file"),
    pytest.param("DO $a$ DECLARE t text; BEGIN EXECUTE 'SELECT pg_read_file(''/etc/hostname'')' INTO t; END $a$",
                 id="pg-read-file"),
    pytest.param("DO $a$ DECLARE t text; BEGIN EXECUTE 'SELECT pg_ls_dir(''.'')' INTO t; END $a$", id="pg-ls-dir"),
    pytest.param(do("ALTER ROLE project_admin SUPERUSER"), id="alter-role-superuser"),
    pytest.param(do("ALTER ROLE gateway_authenticator SUPERUSER"), id="alter-login-role"),
    pytest.param(do("CREATE ROLE sec_intruder LOGIN SUPERUSER"), id="create-role"),
    pytest.param(do("GRANT pg_execute_server_program TO project_admin"), id="grant-server-program"),
    pytest.param("DO $a$ BEGIN PERFORM pg_reload_conf(); END $a$", id="reload-server-config"),
    pytest.param("DO $a$ BEGIN PERFORM pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE usename = 'postgres'; END $a$", id="terminate-superuser-sessions"),
    pytest.param(do("SET ROLE postgres"), id="set-role-superuser"),
    pytest.param("DO $a$ BEGIN EXECUTE 'SELECT set_' || 'config(''role'', ''postgres'', false)'; END $a$",
                 id="set-config-role"),
    pytest.param(do("UPDATE auth.users SET email = 'x'"), id="update-auth-users"),
    pytest.param(do("DELETE FROM auth.users"), id="delete-auth-users"),
    pytest.param(do("DELETE FROM system.custom_migrations"), id="delete-migrations"),
    pytest.param(do("TRUNCATE system.custom_migrations"), id="truncate-migrations"),
    pytest.param(do("CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'"),
                 id="replace-auth-helper"),
    pytest.param(do("CREATE EXTENSION IF NOT EXISTS file_fdw"), id="create-extension"),
])
@pytest.mark.parametrize("route", ["relaxed", "migration", "import"])
async def test_privileged_operations_are_refused_by_postgresql_on_every_admin_route(
        gw: Running, pg_url: str, tmp_path: Path, attack: str, route: str) -> None:
    marker = tmp_path / "pwned"
    text = attack.replace("{marker}", str(marker))
    if route == "relaxed":
        r = await sql(gw, text)
    elif route == "migration":
        r = await migrate(gw, text)
    else:
        r = await import_file(gw, text)
    body = r.json()
    assert r.status_code in (400, 403), r.text
    assert body["code"] in ("42501", "0A000", "58P01"), body  # privilege, or nothing to do it with
    assert not marker.exists()
    assert "keys.json" not in r.text and "jwt_secret" not in r.text
    flags = await superuser(pg_url, "SELECT array_agg(rolsuper) FROM pg_roles WHERE rolname IN "
                                    "('project_admin', 'gateway_authenticator', 'anon', 'authenticated')")
    assert flags == [False] * 4
    assert await superuser(pg_url, "SELECT count(*) FROM pg_roles WHERE rolname = 'sec_intruder'") == 0
    assert await superuser(pg_url, f"SELECT count(*) FROM auth.users WHERE email = '{SECRET_EMAIL}'") == 1


async def test_a_security_definer_function_made_through_relaxed_sql_belongs_to_project_admin(gw: Running) -> None:
    r = await sql(gw, "CREATE FUNCTION public.sec_definer() RETURNS name LANGUAGE sql SECURITY DEFINER "
                      "AS 'SELECT current_user'")
    assert r.status_code == 200, r.text
    owner = await sql(gw, "SELECT proowner::regrole::text AS owner, (SELECT rolsuper FROM pg_roles "
                          "WHERE oid = proowner) AS super FROM pg_proc WHERE proname = 'sec_definer'")
    assert owner.json()["rows"] == [{"owner": "project_admin", "super": False}]
    called = await gw.client.post("/api/database/rpc/sec_definer", headers=gw.anon, json={})
    assert called.status_code == 200 and called.json() == "project_admin"  # never a superuser


async def test_relaxed_sql_may_read_and_insert_into_auth_users_as_the_spec_allows(gw: Running) -> None:
    email = f"sec-insert-{uuid.uuid4().hex}@example.com"
    inserted = await sql(gw, f"INSERT INTO auth.users (email) VALUES ('{email}')")
    assert inserted.status_code == 200, inserted.text
    read = await sql(gw, f"SELECT count(*) AS n FROM auth.users WHERE email = '{email}'")
    assert read.json()["rows"] == [{"n": "1"}]
    removed = await sql(gw, do(f"DELETE FROM auth.users WHERE email = '{email}'"))
    refused_by_postgres(removed)


# --- strict mode: every spelling of set_config ---------------------------------------------------

@pytest.mark.parametrize("query", [
    r"""SELECT U&"set\005fconfig"('role', 'postgres', true)""",
    r"""SELECT U&"\0073et_config"('search_path', 'auth', true); SELECT email FROM users""",
    """SELECT "set_config"('role', 'postgres', true)""",
    """SELECT pg_catalog.set_config('role', 'postgres', true)""",
    """SELECT * FROM set_config('role', 'postgres', true)""",
    """SELECT s FROM (SELECT "set_config"('search_path', 'auth', true) AS s) q""",
])
@pytest.mark.parametrize("relaxed", [False, True], ids=["strict", "relaxed"])
async def test_set_config_is_refused_however_it_is_spelled(gw: Running, query: str, relaxed: bool) -> None:
    r = await sql(gw, query, relaxed=relaxed)
    body = assert_error(r, 403, "FORBIDDEN")
    assert SECRET_EMAIL not in r.text
    assert body["message"] == "Changing SQL session configuration is not allowed."


async def test_a_role_switch_that_gets_past_the_guard_is_refused_by_postgresql(gw: Running) -> None:
    r = await sql(gw, "DO $a$ BEGIN EXECUTE 'SET ROLE postgres'; END $a$")
    body = refused_by_postgres(r)
    assert "permission denied to set role" in body["message"]


# --- default privileges: nothing is published by accident --------------------------------------

async def test_a_table_created_with_psql_is_not_exposed_to_anon_or_users(gw: Running, pg_url: str) -> None:
    await run_sql(pg_url, "CREATE TABLE public.sec_psql_made (id int PRIMARY KEY, secret text); "
                          "INSERT INTO public.sec_psql_made VALUES (1, 'hidden')")
    await gw.gateway.reload_catalog()
    anon = await gw.client.get("/api/database/records/sec_psql_made", headers=gw.anon)
    body = assert_error(anon, 401, "FORBIDDEN", "42501")
    assert "GRANT SELECT ON public.sec_psql_made TO anon" in body["nextActions"]
    user = await gw.client.get("/api/database/records/sec_psql_made", headers=gw.user())
    body = assert_error(user, 403, "FORBIDDEN", "42501")
    assert "GRANT SELECT ON public.sec_psql_made TO authenticated" in body["nextActions"]
    write = await gw.client.post("/api/database/records/sec_psql_made", headers=gw.user(), json=[{"id": 2}])
    assert "GRANT INSERT ON public.sec_psql_made TO authenticated" in assert_error(write, 403, "FORBIDDEN")[
        "nextActions"]
    admin = await gw.client.get("/api/database/records/sec_psql_made", headers=gw.admin)
    assert admin.status_code == 200 and admin.json() == [{"id": 1, "secret": "hidden"}]


async def test_a_table_granted_only_to_users_is_not_readable_by_anon(gw: Running, pg_url: str) -> None:
    await run_sql(pg_url, "CREATE TABLE public.sec_users_only (id int PRIMARY KEY); "
                          "INSERT INTO public.sec_users_only VALUES (1); "
                          "GRANT SELECT ON public.sec_users_only TO authenticated")
    await gw.gateway.reload_catalog()
    assert (await gw.client.get("/api/database/records/sec_users_only", headers=gw.user())).json() == [{"id": 1}]
    assert_error(await gw.client.get("/api/database/records/sec_users_only", headers=gw.anon), 401, "FORBIDDEN")


async def test_a_table_made_by_a_migration_gets_the_api_defaults(gw: Running) -> None:
    r = await migrate(gw, "CREATE TABLE public.sec_migrated (id int PRIMARY KEY)")
    assert r.status_code == 201, r.text
    try:
        assert (await gw.client.get("/api/database/records/sec_migrated", headers=gw.anon)).status_code == 200
        posted = await gw.client.post("/api/database/records/sec_migrated", headers=gw.user(), json=[{"id": 1}])
        assert posted.status_code == 201, posted.text
        denied = await gw.client.post("/api/database/records/sec_migrated", headers=gw.anon, json=[{"id": 2}])
        assert_error(denied, 401, "FORBIDDEN")
    finally:
        await sql(gw, "DROP TABLE public.sec_migrated")


# --- start-up refuses a login role that could escalate ------------------------------------------

async def test_the_bootstrap_takes_superuser_back_from_project_admin(pg_url: str) -> None:
    await run_sql(pg_url, "ALTER ROLE project_admin SUPERUSER CREATEROLE; GRANT pg_read_server_files TO project_admin")
    async with running_app(pg_url) as running:
        r = await sql(running, "SELECT rolsuper, rolcreaterole, pg_has_role('project_admin', 'pg_read_server_files', "
                               "'MEMBER') AS reads_files FROM pg_roles WHERE rolname = 'project_admin'")
        assert r.json()["rows"] == [{"rolsuper": False, "rolcreaterole": False, "reads_files": False}]


async def test_the_gateway_refuses_to_serve_through_a_superuser_login(pg_url: str) -> None:
    settings = settings_for(pg_url, authenticator_url=pg_url)  # the superuser itself as the login role
    app = create_app(settings)
    with pytest.raises(login.LoginError, match="cannot serve requests safely: it is a superuser"):
        async with app.router.lifespan_context(app):
            pass


async def test_the_gateway_refuses_a_login_role_that_can_become_a_superuser(pg_url: str) -> None:
    name = f"sec_login_{uuid.uuid4().hex[:8]}"
    # through a middle role: the bootstrap revokes a direct membership in a superuser (next test)
    await run_sql(pg_url, f"CREATE ROLE {name} LOGIN NOINHERIT; GRANT anon, authenticated, project_admin TO {name}; "
                          f"CREATE ROLE {name}_power SUPERUSER; CREATE ROLE {name}_mid; "
                          f"GRANT {name}_power TO {name}_mid; GRANT {name}_mid TO {name}")
    try:
        settings = settings_for(pg_url, authenticator_url=login.with_login(pg_url, name, "unused"))
        app = create_app(settings)
        with pytest.raises(login.LoginError, match=f"it can become {name}_power, which is a superuser"):
            async with app.router.lifespan_context(app):
                pass
    finally:
        await run_sql(pg_url, f"DROP OWNED BY {name}; DROP ROLE {name}; DROP ROLE {name}_mid; DROP ROLE {name}_power")


async def test_the_bootstrap_revokes_a_superuser_membership_from_the_login_role(pg_url: str) -> None:
    await run_sql(pg_url, "CREATE ROLE sec_power SUPERUSER; GRANT sec_power TO gateway_authenticator")
    try:
        async with running_app(pg_url) as running:
            r = await sql(running, "SELECT pg_has_role('gateway_authenticator', 'sec_power', 'MEMBER') AS member")
            assert r.json()["rows"] == [{"member": False}]
    finally:
        await run_sql(pg_url, "DROP ROLE sec_power")


async def test_the_same_password_keeps_working_across_restarts(pg_url: str) -> None:
    for _ in range(2):
        async with running_app(pg_url, authenticator_password=AUTHENTICATOR_PASSWORD) as running:
            assert (await running.client.get("/ready")).status_code == 200


async def test_graphql_names_the_missing_grant_too(gw: Running, pg_url: str) -> None:
    # INSERT on the table but no USAGE on its sequence: the role sees the table, the insert is refused
    await run_sql(pg_url, "DROP TABLE IF EXISTS public.sec_counter; "
                          "CREATE TABLE public.sec_counter (id serial PRIMARY KEY, note text); "
                          "GRANT SELECT, INSERT ON public.sec_counter TO authenticated")
    try:
        await gw.gateway.reload_catalog()
        r = await gw.client.post("/graphql", headers=gw.user(), json={
            "query": 'mutation { insert_sec_counter(objects: [{note: "x"}]) { id } }'})
        error = r.json()["errors"][0]
        assert error["extensions"]["statusCode"] == 403
        assert "GRANT USAGE ON SEQUENCE public.sec_counter_id_seq TO authenticated" in error["extensions"][
            "nextActions"]
    finally:
        await run_sql(pg_url, "DROP TABLE public.sec_counter")
