"""The admin API over HTTP against the real PostgreSQL: auth, introspection lists, migrations, raw SQL.

Tables here are created in ``public`` (the admin lists' default) under names starting with
``adm_``, and removed at the end; migrations use versions above whatever is recorded already.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.routing import Mount
from support import API_KEY, JWT_SECRET, settings_for
from test_admin_sqlguard import STRICT_BYPASSES

from gateway.admin.routes import ROUTES
from gateway.app import create_app
from gateway.auth import sign_token
from gateway.state import Gateway

ADMIN = {"X-API-Key": API_KEY}
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
SECRET_EMAIL = f"adm-secret-{uuid.uuid4().hex}@example.com"


def has_admin_routes(app: Starlette) -> bool:
    for route in app.routes:
        if getattr(route, "path", "") == "/api/database/migrations":
            return True
        if isinstance(route, Mount) and route.path == "/api/database" and any(
                getattr(r, "path", "") == "/migrations" for r in route.routes):
            return True
    return False


@dataclass
class Api:
    client: httpx.AsyncClient
    gateway: Gateway

    async def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return await self.client.post(f"/api/database{path}", json=body, headers=kw.pop("headers", ADMIN), **kw)

    async def get(self, path: str, **kw: Any) -> httpx.Response:
        return await self.client.get(f"/api/database{path}", headers=kw.pop("headers", ADMIN), **kw)

    async def sql(self, query: str, params: list[Any] | None = None, relaxed: bool = False) -> httpx.Response:
        body: dict[str, Any] = {"query": query}
        if params is not None:
            body["params"] = params
        return await self.post("/advance/rawsql" + ("/unrestricted" if relaxed else ""), body)


@contextlib.asynccontextmanager
async def admin_app(pg_url: str, **overrides: Any) -> AsyncIterator[Api]:
    """The gateway app with the admin routes mounted (by the app itself, or here until it does)."""
    app = create_app(settings_for(pg_url, **overrides))
    if not has_admin_routes(app):
        app.router.routes.append(Mount("/api/database", routes=ROUTES))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield Api(client, app.state.gateway)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(pg_url: str) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("INSERT INTO auth.users (email) VALUES ($1)", SECRET_EMAIL)
        async with admin_app(pg_url) as running:
            yield running
    finally:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                  "AND tablename LIKE 'adm\\_%'")
        for t in tables:
            await conn.execute(f'DROP TABLE IF EXISTS public."{t["tablename"]}" CASCADE')
        await conn.execute("DROP FUNCTION IF EXISTS public.adm_touch() CASCADE")
        await conn.execute("DELETE FROM system.custom_migrations WHERE name LIKE 'adm\\_%'")
        await conn.execute("DELETE FROM auth.users WHERE email = $1", SECRET_EMAIL)
        await conn.close()


def user_headers() -> dict[str, str]:
    token = sign_token(JWT_SECRET, {"sub": str(uuid.uuid4()), "role": "authenticated"}, 600)
    return {"Authorization": f"Bearer {token}"}


ENDPOINTS = [("GET", "/functions"), ("GET", "/indexes"), ("GET", "/policies"), ("GET", "/triggers"),
             ("GET", "/migrations"), ("POST", "/migrations"), ("POST", "/advance/rawsql"),
             ("POST", "/advance/rawsql/unrestricted"), ("POST", "/advance/export"),
             ("POST", "/advance/import"), ("POST", "/advance/bulk-upsert")]


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_admin_endpoint_needs_an_admin_credential(api: Api, method: str, path: str) -> None:
    anonymous = await api.client.request(method, f"/api/database{path}")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "AUTH_INVALID_CREDENTIALS"
    signed_in = await api.client.request(method, f"/api/database{path}", headers=user_headers())
    assert signed_in.status_code == 403


# --------------------------------------------------------------------------- introspection


async def test_lists_show_functions_indexes_policies_and_triggers_with_the_spec_fields(api: Api, pg: Any) -> None:
    await pg.execute("""
        CREATE TABLE adm_posts (id serial PRIMARY KEY, user_id uuid, title text NOT NULL,
                                updated_at timestamptz);
        CREATE INDEX adm_posts_title_lower ON adm_posts (lower(title), user_id);
        CREATE FUNCTION adm_touch() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$;
        CREATE TRIGGER adm_posts_touch BEFORE INSERT OR UPDATE ON adm_posts
          FOR EACH ROW EXECUTE FUNCTION adm_touch();
        ALTER TABLE adm_posts ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "adm own posts" ON adm_posts FOR SELECT TO authenticated USING (auth.uid() = user_id);
        CREATE POLICY adm_insert ON adm_posts FOR INSERT TO authenticated, anon WITH CHECK (true);
    """)
    await api.gateway.reload_catalog()

    functions = (await api.get("/functions")).json()
    touch = next(f for f in functions if f["name"] == "adm_touch")
    assert touch == {"name": "adm_touch", "schema": "public", "language": "plpgsql", "returnType": "trigger",
                     "arguments": "", "definition": " BEGIN NEW.updated_at = now(); RETURN NEW; END "}

    indexes = {i["name"]: i for i in (await api.get("/indexes")).json() if i["tableName"] == "adm_posts"}
    assert indexes["adm_posts_pkey"] == {
        "name": "adm_posts_pkey", "tableName": "adm_posts", "columns": ["id"], "isUnique": True,
        "isPrimary": True, "definition": "CREATE UNIQUE INDEX adm_posts_pkey ON public.adm_posts USING btree (id)"}
    assert indexes["adm_posts_title_lower"]["columns"][1] == "user_id"
    assert indexes["adm_posts_title_lower"]["isPrimary"] is False

    policies = {p["name"]: p for p in (await api.get("/policies")).json() if p["tableName"] == "adm_posts"}
    assert policies["adm own posts"] == {"name": "adm own posts", "tableName": "adm_posts", "command": "SELECT",
                                         "roles": ["authenticated"], "using": "(auth.uid() = user_id)",
                                         "withCheck": None}
    assert sorted(policies["adm_insert"]["roles"]) == ["anon", "authenticated"]
    assert policies["adm_insert"]["using"] is None and policies["adm_insert"]["withCheck"] == "true"

    triggers = [t for t in (await api.get("/triggers")).json() if t["tableName"] == "adm_posts"]
    assert triggers == [{"name": "adm_posts_touch", "tableName": "adm_posts", "timing": "BEFORE",
                         "events": ["INSERT", "UPDATE"], "functionName": "adm_touch", "enabled": True}]


@pytest.mark.parametrize("path", ["/functions", "/indexes", "/policies", "/triggers"])
async def test_lists_filter_by_schema_and_refuse_system_schemas(api: Api, path: str) -> None:
    everything = (await api.get(path)).json()
    public = await api.get(path, params={"schema": "public"})
    assert public.status_code == 200 and public.json() == everything  # only public is exposed here
    assert (await api.get(path, params={"schema": "nowhere"})).json() == []
    for bad in ("pg_catalog", "information_schema", " "):
        refused = await api.get(path, params={"schema": bad})
        assert refused.status_code == 400 and refused.json()["error"] == "INVALID_INPUT"


# --------------------------------------------------------------------------- migrations


async def next_version(api: Api) -> int:
    recorded = (await api.get("/migrations")).json()["migrations"]
    return max((int(m["version"]) for m in recorded), default=0) + 1


async def test_a_migration_runs_is_recorded_and_its_table_is_usable_at_once(api: Api, pg: Any) -> None:
    version = await next_version(api)
    sql = "CREATE TABLE adm_notes (id serial PRIMARY KEY, body text NOT NULL);"
    created = await api.post("/migrations", {"version": str(version), "name": "adm_create_notes", "sql": sql})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["version"] == str(version) and body["name"] == "adm_create_notes"
    assert body["statements"] == [sql]
    assert ISO_MS.fullmatch(body["createdAt"])
    assert body["message"] == "Migration executed successfully"
    assert await pg.fetchval("SELECT tableowner FROM pg_tables WHERE tablename = 'adm_notes'") == "project_admin"

    listed = (await api.get("/migrations")).json()["migrations"]
    assert listed[0] == {k: body[k] for k in ("version", "name", "statements", "createdAt")}

    inserted = await api.client.post("/api/database/records/adm_notes", json=[{"body": "hello"}],
                                     headers={**ADMIN, "Prefer": "return=representation"})
    assert inserted.status_code == 201, inserted.text
    assert inserted.json()[0]["body"] == "hello"


async def test_migration_versions_are_compared_numerically(api: Api) -> None:
    version = await next_version(api)
    first = await api.post("/migrations", {"version": str(version), "name": "adm-v1", "sql": "SELECT 1"})
    assert first.status_code == 201
    same = await api.post("/migrations", {"version": f"000{version}", "name": "adm-v1-again", "sql": "SELECT 1"})
    assert same.status_code == 409 and same.json()["error"] == "DATABASE_MIGRATION_ALREADY_EXISTS"
    older = await api.post("/migrations", {"version": str(version - 1), "name": "adm-older", "sql": "SELECT 1"})
    assert older.status_code == 409
    padded = await api.post("/migrations", {"version": f"00{version + 1}", "name": "adm-padded", "sql": "SELECT 1"})
    assert padded.status_code == 201
    listed = (await api.get("/migrations")).json()["migrations"]
    assert [m["version"] for m in listed[:2]] == [f"00{version + 1}", str(version)]


async def test_a_failing_migration_leaves_nothing_behind_and_is_not_listed(api: Api, pg: Any) -> None:
    version = await next_version(api)
    sql = "CREATE TABLE adm_half (id int);\nINSERT INTO adm_half VALUES ('not a number');"
    failed = await api.post("/migrations", {"version": str(version), "name": "adm_half", "sql": sql})
    assert failed.status_code == 400, failed.text
    body = failed.json()
    assert body["code"] == "22P02" and "invalid input syntax for type integer" in body["message"]
    assert "statement 2" in body["details"]
    assert await pg.fetchval("SELECT to_regclass('public.adm_half')") is None
    listed = (await api.get("/migrations")).json()["migrations"]
    assert all(m["name"] != "adm_half" for m in listed)


@pytest.mark.parametrize(("body", "message"), [
    ({"version": "v1", "name": "adm_x", "sql": "SELECT 1"}, "version"),
    ({"version": "1" * 65, "name": "adm_x", "sql": "SELECT 1"}, "version"),
    ({"version": "1", "name": "", "sql": "SELECT 1"}, "name"),
    ({"version": "1", "name": "adm x!", "sql": "SELECT 1"}, "name"),
    ({"version": "1", "name": "adm_x", "sql": "  "}, "sql"),
    ({"version": "1", "name": "adm_x", "sql": "BEGIN; CREATE TABLE adm_tx (); COMMIT;"}, "Transaction control"),
    ({"version": "1", "name": "adm_x", "sql": "CREAT TABLE adm_typo ()"}, "Syntax error"),
])
async def test_bad_migrations_are_400_with_a_clear_message(api: Api, body: dict[str, str], message: str) -> None:
    response = await api.post("/migrations", body)
    assert response.status_code == 400
    assert message in response.json()["message"]


async def test_a_migration_may_not_change_roles(api: Api) -> None:
    version = await next_version(api)
    response = await api.post("/migrations", {"version": str(version), "name": "adm_role",
                                              "sql": "ALTER ROLE anon WITH SUPERUSER"})
    assert response.status_code == 403 and response.json()["error"] == "FORBIDDEN"


# --------------------------------------------------------------------------- raw SQL


async def test_raw_sql_returns_rows_count_and_command_with_node_pg_values(api: Api) -> None:
    response = await api.sql(
        "SELECT $1::int AS i, 9007199254740993::int8 AS big, 1.50::numeric AS n, "
        "'2025-07-18 05:37:24.338+00'::timestamptz AS at, '\\x00ff'::bytea AS b, "
        "'248373e1-0aea-45ce-8844-5ef259203749'::uuid AS id, '{\"a\": [1, null]}'::jsonb AS j, "
        "ARRAY[1, 2]::int8[] AS bigs, NULL::text AS nothing, $2::text AS t", [41, "it's"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["command"] == "SELECT" and body["rowCount"] == 1
    assert body["rows"] == [{"i": 41, "big": "9007199254740993", "n": "1.50", "at": "2025-07-18T05:37:24.338Z",
                             "b": "\\x00ff", "id": "248373e1-0aea-45ce-8844-5ef259203749",
                             "j": {"a": [1, None]}, "bigs": ["1", "2"], "nothing": None, "t": "it's"}]


async def test_session_state_left_by_raw_sql_never_reaches_the_next_request(api: Api, pg: asyncpg.Connection) -> None:
    """The attack: dynamic SQL, out of the guard's sight, prepares a statement under the name the
    gateway's own point reads use, hoping a later caller's request runs it on that connection.
    The connection that ran caller-written SQL is closed instead of returned to the pool."""
    sql = ("DO $$ BEGIN EXECUTE 'PREPARE gw_0123456789abcdef(text[]) AS SELECT 1'; END $$; "
           "SELECT pg_backend_pid() AS pid")
    response = await api.sql(sql, relaxed=True)
    assert response.status_code == 200, response.text
    pid = response.json()["rows"][0]["pid"]
    for _ in range(100):  # the termination is asynchronous on the server's side
        if not await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            break
        await asyncio.sleep(0.02)
    assert not await pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
    assert (await api.sql("SELECT 1 AS one")).json()["rows"] == [{"one": 1}]  # the pool opens another


async def test_raw_sql_runs_statements_in_order_and_reports_the_last(api: Api) -> None:
    response = await api.sql("CREATE TABLE adm_raw (id int PRIMARY KEY, tags text[]); "
                             "INSERT INTO adm_raw VALUES (1, '{a,b}'), (2, NULL); "
                             "UPDATE adm_raw SET tags = '{c}' WHERE id = 2")
    assert response.status_code == 200, response.text
    assert response.json()["command"] == "UPDATE" and response.json()["rowCount"] == 1
    assert api.gateway.catalogs.get().table("adm_raw") is not None  # DDL reloaded the catalog
    rows = (await api.sql("SELECT * FROM adm_raw WHERE tags && $1 ORDER BY id", [["a", "c"]])).json()["rows"]
    assert rows == [{"id": 1, "tags": ["a", "b"]}, {"id": 2, "tags": ["c"]}]


async def test_raw_sql_parameters_take_text_like_node_pg_does(api: Api) -> None:
    response = await api.sql("SELECT $1::int + 1 AS n, $2::interval AS span, $3::jsonb AS doc, $4::bool AS yes",
                             ["41", "1 hour", {"k": "v"}, True])
    assert response.json()["rows"] == [{"n": 42, "span": "01:00:00", "doc": {"k": "v"}, "yes": True}]


@pytest.mark.parametrize(("body", "status"), [
    ({"query": ""}, 400),
    ({"query": "SELECT 1", "params": "x"}, 400),
    ({"query": "SELECT $1; SELECT 2", "params": [1]}, 400),
    ({"query": "SELECT $1::int"}, 400),
    ({"query": "SELECT 1", "params": [1]}, 400),
    ({"query": "SELEC 1"}, 400),
    ({"query": "SELECT * FROM adm_missing"}, 400),
    ({"query": "VACUUM"}, 400),
])
async def test_raw_sql_mistakes_are_4xx(api: Api, body: dict[str, Any], status: int) -> None:
    response = await api.post("/advance/rawsql", body)
    assert response.status_code == status, response.text


@pytest.mark.parametrize("query", STRICT_BYPASSES)
async def test_strict_raw_sql_refuses_bypasses_and_never_shows_auth_users(api: Api, query: str) -> None:
    response = await api.sql(query)
    assert response.status_code in (400, 403), response.text
    assert SECRET_EMAIL not in response.text


async def test_relaxed_raw_sql_reads_auth_users_but_may_not_change_them(api: Api) -> None:
    read = await api.sql("SELECT email FROM auth.users WHERE email = $1", [SECRET_EMAIL], relaxed=True)
    assert read.status_code == 200 and read.json()["rows"] == [{"email": SECRET_EMAIL}]
    update = await api.sql("UPDATE auth.users SET email = 'x' WHERE email = $1", [SECRET_EMAIL], relaxed=True)
    assert update.status_code == 403 and update.json()["error"] == "FORBIDDEN"
    for refused in ("SET ROLE postgres", "SELECT set_config('role', 'postgres', false)", "BEGIN"):
        assert (await api.sql(refused, relaxed=True)).status_code == 403


async def test_strict_and_relaxed_raw_sql_both_run_as_project_admin_through_the_login_role(api: Api) -> None:
    query = "SELECT current_user AS who, session_user AS login"
    strict = (await api.sql(query)).json()["rows"][0]
    relaxed = (await api.sql(query, relaxed=True)).json()["rows"][0]
    assert strict == relaxed == {"who": "project_admin", "login": "gateway_authenticator"}


async def test_session_settings_made_by_raw_sql_do_not_leak_into_later_requests(pg_url: str) -> None:
    async with admin_app(pg_url, pool_min=1, pool_max=1) as one_connection:
        changed = await one_connection.sql("SET timezone = 'Asia/Tokyo'; CREATE TEMP TABLE adm_tmp (a int); "
                                           "LISTEN adm_channel; SHOW timezone", relaxed=True)
        assert changed.json()["rows"] == [{"TimeZone": "Asia/Tokyo"}]
        after = await one_connection.sql("SELECT current_setting('TimeZone') AS tz, "
                                         "to_regclass('pg_temp.adm_tmp') IS NULL AS gone, "
                                         "(SELECT count(*) FROM pg_listening_channels()) AS listening",
                                         relaxed=True)
        assert after.json()["rows"] == [{"tz": "UTC", "gone": True, "listening": "0"}]


async def test_the_statement_timeout_applies_to_raw_sql(pg_url: str) -> None:
    async with admin_app(pg_url, statement_timeout_ms=200) as short:
        response = await short.sql("SELECT pg_sleep(5)", relaxed=True)
        assert response.status_code == 504
        assert response.json()["code"] == "57014"
