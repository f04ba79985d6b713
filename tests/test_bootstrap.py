"""The bootstrap SQL (schema/*.sql through gateway.bootstrap.apply) against a real PostgreSQL.

Objects this module creates are named ``bootstrap_*`` (tables in public, a database and a role).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio

from gateway import bootstrap

ROLES = ("anon", "authenticated", "project_admin")
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
USER_ID = "123e4567-e89b-12d3-a456-426614174000"


def _with_login(url: str, user: str, password: str, database: str) -> str:
    """``url`` with another user, password and database (host, port and query kept)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}", path=f"/{database}"))


def _name(prefix: str) -> str:
    return f"bootstrap_{prefix}_{uuid.uuid4().hex[:8]}"


async def _as_role(conn: asyncpg.Connection, role: str, claims: str | None, sql: str) -> object:
    """``sql``'s value in a transaction running as ``role`` with ``request.jwt.claims`` = claims."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {role}")
        if claims is not None:
            await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", claims)
        return await conn.fetchval(sql)


def test_the_schema_files_are_numbered_and_found_in_the_source_tree() -> None:
    names = [name for name, _ in bootstrap.scripts()]
    assert names == sorted(names)
    assert all(name[:2].isdigit() and name.endswith(".sql") for name in names)
    assert {"00_roles.sql", "10_auth.sql", "20_system.sql", "30_grants.sql", "40_reload.sql"} <= set(names)


ROLES_SQL = "SELECT array_agg(rolname ORDER BY rolname) FROM pg_roles WHERE rolname = ANY($1)"
THREE = ["anon", "authenticated", "project_admin"]


async def test_bootstrap_can_be_applied_twice(pg: asyncpg.Connection) -> None:
    await bootstrap.apply(pg)
    await bootstrap.apply(pg)
    assert await pg.fetchval(ROLES_SQL, THREE) == THREE
    assert await pg.fetchval("SELECT to_regclass('system.custom_migrations') IS NOT NULL")


async def test_concurrent_bootstraps_wait_for_each_other(pg_url: str) -> None:
    conns = [await asyncpg.connect(pg_url) for _ in range(6)]
    try:
        await asyncio.gather(*(bootstrap.apply(c) for c in conns))
        assert await conns[0].fetchval(ROLES_SQL, THREE) == THREE
    finally:
        for c in conns:
            await c.close()


async def test_a_repeated_bootstrap_changes_no_roles_schemas_grants_or_triggers(pg: asyncpg.Connection) -> None:
    table = _name("unchanged")
    await pg.execute(f"CREATE TABLE public.{table} (id serial PRIMARY KEY)")
    snapshot = """
        SELECT array_agg(x ORDER BY x) FROM (
          SELECT 'class ' || oid || ' ' || xmin FROM pg_class
           WHERE relnamespace = 'public'::regnamespace
          UNION ALL SELECT 'nsp ' || oid || ' ' || xmin FROM pg_namespace
          UNION ALL SELECT 'acl ' || oid || ' ' || xmin FROM pg_default_acl
          UNION ALL SELECT 'member ' || roleid || ' ' || member || ' ' || xmin FROM pg_auth_members
          UNION ALL SELECT 'evt ' || oid || ' ' || xmin FROM pg_event_trigger
        ) AS rows(x)"""
    try:
        await bootstrap.apply(pg)
        before = await pg.fetchval(snapshot)
        await bootstrap.apply(pg)
        assert await pg.fetchval(snapshot) == before
    finally:
        await pg.execute(f"DROP TABLE public.{table}")


@pytest.mark.parametrize(("role", "bypass_rls"), [
    ("anon", False),
    ("authenticated", False),
    ("project_admin", True),
])
async def test_the_request_roles_exist_without_login(pg: asyncpg.Connection, role: str,
                                                     bypass_rls: bool) -> None:
    row = await pg.fetchrow("SELECT rolcanlogin, rolbypassrls, rolsuper FROM pg_roles WHERE rolname = $1", role)
    assert row is not None
    assert (row["rolcanlogin"], row["rolbypassrls"], row["rolsuper"]) == (False, bypass_rls, False)


@pytest.mark.parametrize("role", ROLES)
async def test_the_bootstrap_role_is_a_member_of_each_request_role(pg: asyncpg.Connection, role: str) -> None:
    member = await pg.fetchval("""
        SELECT EXISTS (SELECT 1 FROM pg_auth_members
                       WHERE roleid = $1::regrole AND member = current_user::regrole)""", role)
    assert member
    assert await _as_role(pg, role, None, "SELECT current_user") == role


@pytest.mark.parametrize(("claims", "expected"), [
    (f'{{"sub": "{USER_ID}", "role": "authenticated"}}', uuid.UUID(USER_ID)),
    (f'{{"sub": "{USER_ID.replace("-", "").upper()}"}}', uuid.UUID(USER_ID)),
    ('{"sub": "local:admin", "role": "project_admin"}', None),
    ('{"sub": "12345"}', None),
    ('{"sub": ""}', None),
    ('{"sub": null}', None),
    ('{"sub": 42}', None),
    ('{"role": "anon"}', None),
    ("", None),
    (None, None),
], ids=["uuid", "uuid-without-hyphens", "admin-sub", "number-string", "empty-sub", "null-sub",
        "numeric-sub", "no-sub", "empty-setting", "unset"])
async def test_auth_uid_is_the_sub_claim_when_it_is_a_uuid_and_null_otherwise(
        pg: asyncpg.Connection, claims: str | None, expected: uuid.UUID | None) -> None:
    assert await _as_role(pg, "authenticated", claims, "SELECT auth.uid()") == expected


async def test_auth_uid_is_null_for_a_non_uuid_sub(pg: asyncpg.Connection) -> None:
    assert await _as_role(pg, "project_admin", '{"sub": "local:admin"}', "SELECT auth.uid()") is None


@pytest.mark.parametrize(("sql", "claims", "expected"), [
    ("SELECT auth.role()", '{"role": "authenticated", "sub": "x"}', "authenticated"),
    ("SELECT auth.role()", '{"sub": "x"}', None),
    ("SELECT auth.email()", '{"email": "ada@example.com"}', "ada@example.com"),
    ("SELECT auth.email()", '{"role": "anon"}', None),
    ("SELECT auth.jwt() ->> 'custom'", '{"custom": "value"}', "value"),
    ("SELECT auth.jwt() IS NULL", "", True),
    ("SELECT auth.jwt() IS NULL", None, True),
    ("SELECT auth.role() IS NULL AND auth.email() IS NULL", "", True),
])
@pytest.mark.parametrize("role", ROLES)
async def test_the_auth_helpers_read_the_request_claims(pg: asyncpg.Connection, role: str, sql: str,
                                                        claims: str | None, expected: object) -> None:
    assert await _as_role(pg, role, claims, sql) == expected


@pytest.mark.parametrize("function", ["auth.jwt()", "auth.uid()", "auth.role()", "auth.email()"])
async def test_the_auth_helpers_are_stable(pg: asyncpg.Connection, function: str) -> None:
    assert await pg.fetchval("SELECT provolatile FROM pg_proc WHERE oid = $1::regprocedure", function) == b"s"


@pytest.mark.parametrize("statement", [
    "SELECT count(*) FROM auth.users",
    "INSERT INTO auth.users (email) VALUES ('intruder@example.com')",
    "UPDATE auth.users SET email = NULL",
    "DELETE FROM auth.users",
    "SELECT count(*) FROM system.custom_migrations",
    "INSERT INTO system.custom_migrations VALUES ('1', 'x', '{}')",
])
@pytest.mark.parametrize("role", ["anon", "authenticated"])
async def test_callers_roles_cannot_touch_the_private_tables(pg: asyncpg.Connection, role: str,
                                                             statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as_role(pg, role, '{"role": "x"}', statement)


@pytest.mark.parametrize("statement", [
    "UPDATE auth.users SET email = NULL",
    "DELETE FROM auth.users",
    "TRUNCATE auth.users",
    "ALTER TABLE auth.users ADD COLUMN x int",
    "UPDATE system.custom_migrations SET name = 'x'",
    "DELETE FROM system.custom_migrations",
    "TRUNCATE system.custom_migrations",
    "DROP TABLE system.custom_migrations",
    "CREATE TABLE system.intruder (id int)",
    "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT NULL::uuid'",
])
async def test_project_admin_cannot_change_or_remove_anything_in_auth_or_system(pg: asyncpg.Connection,
                                                                                statement: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as_role(pg, "project_admin", '{"role": "project_admin"}', statement)


@pytest.mark.parametrize("statement", [
    "SELECT count(*) FROM auth.users",
    "INSERT INTO auth.users (email) VALUES ('read-insert@example.com') RETURNING 1",
    "SELECT count(*) FROM system.custom_migrations",
    "INSERT INTO system.custom_migrations VALUES ('9' || repeat('0', 60), 'x', '{}') RETURNING 1",
])
async def test_project_admin_may_read_and_insert_into_auth_users_and_the_migrations(pg: asyncpg.Connection,
                                                                                   statement: str) -> None:
    tx = pg.transaction()
    await tx.start()
    try:
        await pg.execute("SET LOCAL ROLE project_admin")
        assert await pg.fetchval(statement) is not None
    finally:
        await tx.rollback()


async def test_anon_cannot_read_auth_users(pg: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
        await _as_role(pg, "anon", '{"role": "anon"}', "SELECT email FROM auth.users")


async def test_a_grant_to_public_on_auth_users_is_revoked_by_the_next_bootstrap(pg: asyncpg.Connection) -> None:
    await pg.execute("GRANT SELECT ON auth.users TO PUBLIC; GRANT UPDATE (email) ON auth.users TO anon")
    await bootstrap.apply(pg)
    for role in ("anon", "authenticated"):
        assert not await pg.fetchval(
            "SELECT has_any_column_privilege($1, 'auth.users', 'SELECT, INSERT, UPDATE, REFERENCES')", role)
    assert await _table_privileges(pg, "project_admin", "auth.users") == {"SELECT", "INSERT"}


async def test_auth_users_has_the_expected_columns(pg: asyncpg.Connection) -> None:
    row = await pg.fetchrow(
        "INSERT INTO auth.users (email) VALUES ($1) RETURNING id, email, created_at, raw_user_meta_data",
        f"{_name('user')}@example.com")
    try:
        assert isinstance(row["id"], uuid.UUID)
        assert row["created_at"] is not None
        assert row["raw_user_meta_data"] == "{}"
    finally:
        await pg.execute("DELETE FROM auth.users WHERE id = $1", row["id"])


@pytest.mark.parametrize(("version", "accepted"), [
    ("1", True), ("0002", True), ("2" * 64, True),
    ("", False), ("1a", False), ("-1", False), ("1.5", False), ("2" * 65, False),
])
async def test_migration_versions_must_be_1_to_64_digits(pg: asyncpg.Connection, version: str,
                                                         accepted: bool) -> None:
    insert = "INSERT INTO system.custom_migrations (version, name, statements) VALUES ($1, 'test', '{}')"
    tx = pg.transaction()
    await tx.start()
    try:
        await pg.execute(insert, version)
        outcome = True
    except asyncpg.CheckViolationError:
        outcome = False
    finally:
        await tx.rollback()
    assert outcome is accepted


# --- privileges on public objects ----------------------------------------------------------------

# role -> privileges on a table created later, by creator: what project_admin creates (through the
# API) is published with the API's defaults; what the bootstrap role creates (psql) is not.
EXPECTED_TABLE_PRIVILEGES = {
    "project_admin": {
        "anon": {"SELECT"},
        "authenticated": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "project_admin": set(TABLE_PRIVILEGES),
    },
    "bootstrap role": {"anon": set(), "authenticated": set(), "project_admin": set(TABLE_PRIVILEGES)},
}


async def _table_privileges(conn: asyncpg.Connection, role: str, table: str) -> set[str]:
    return {p for p in TABLE_PRIVILEGES
            if await conn.fetchval("SELECT has_table_privilege($1, $2, $3)", role, table, p)}


@pytest_asyncio.fixture
async def later_table(pg: asyncpg.Connection, request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A table (with a sequence) and a function created after the bootstrap, by the given creator."""
    name = _name("later")
    creator = request.param
    async with pg.transaction():
        if creator != "bootstrap role":
            await pg.execute(f"SET LOCAL ROLE {creator}")
        await pg.execute(f"CREATE TABLE public.{name} (id serial PRIMARY KEY, note text)")
        await pg.execute(f"CREATE FUNCTION public.{name}_fn() RETURNS int LANGUAGE sql AS 'SELECT 1'")
    try:
        yield name
    finally:
        await pg.execute(f"DROP TABLE public.{name}; DROP FUNCTION public.{name}_fn()")


@pytest.mark.parametrize("later_table", ["bootstrap role", "project_admin"], indirect=True)
@pytest.mark.parametrize("role", ROLES)
async def test_a_table_created_later_gets_grants_only_when_project_admin_created_it(
        pg: asyncpg.Connection, later_table: str, role: str, request: pytest.FixtureRequest) -> None:
    creator = request.node.callspec.params["later_table"]
    assert await _table_privileges(pg, role, f"public.{later_table}") == EXPECTED_TABLE_PRIVILEGES[creator][role]
    assert await pg.fetchval("SELECT has_function_privilege($1, $2, 'EXECUTE')", role,
                             f"public.{later_table}_fn()")


@pytest.mark.parametrize("later_table", ["project_admin"], indirect=True)
@pytest.mark.parametrize(("role", "may_use"), [("anon", False), ("authenticated", True),
                                               ("project_admin", True)])
async def test_a_sequence_created_later_is_usable_by_writers(pg: asyncpg.Connection, later_table: str,
                                                             role: str, may_use: bool) -> None:
    sequence = f"public.{later_table}_id_seq"
    assert await pg.fetchval("SELECT has_sequence_privilege($1, $2, 'USAGE')", role, sequence) is may_use


@pytest.mark.parametrize("later_table", ["project_admin"], indirect=True)
async def test_an_authenticated_insert_works_on_a_table_created_later(pg: asyncpg.Connection,
                                                                      later_table: str) -> None:
    inserted = await _as_role(pg, "authenticated", '{"role": "authenticated"}',
                              f"INSERT INTO public.{later_table} (note) VALUES ('hi') RETURNING id")
    assert isinstance(inserted, int)


async def test_project_admin_regains_all_on_an_existing_table(pg: asyncpg.Connection) -> None:
    name = _name("existing")
    await pg.execute(f"CREATE TABLE public.{name} (id int); REVOKE ALL ON public.{name} FROM project_admin")
    try:
        assert await _table_privileges(pg, "project_admin", f"public.{name}") == set()
        await bootstrap.apply(pg)
        assert await _table_privileges(pg, "project_admin", f"public.{name}") == set(TABLE_PRIVILEGES)
    finally:
        await pg.execute(f"DROP TABLE public.{name}")


@pytest.mark.parametrize(("schema", "privilege", "role", "granted"), [
    ("public", "USAGE", "anon", True),
    ("public", "USAGE", "authenticated", True),
    ("public", "USAGE", "project_admin", True),
    ("public", "CREATE", "project_admin", True),
    ("public", "CREATE", "anon", False),
    ("public", "CREATE", "authenticated", False),
    ("auth", "USAGE", "anon", True),
    ("auth", "USAGE", "authenticated", True),
    ("auth", "USAGE", "project_admin", True),
    ("auth", "CREATE", "project_admin", False),
    ("system", "USAGE", "anon", False),
    ("system", "USAGE", "authenticated", False),
    ("system", "USAGE", "project_admin", True),
    ("system", "CREATE", "project_admin", False),
])
async def test_schema_privileges(pg: asyncpg.Connection, schema: str, privilege: str, role: str,
                                 granted: bool) -> None:
    assert await pg.fetchval("SELECT has_schema_privilege($1, $2, $3)", role, schema, privilege) is granted


# --- live catalog reload -------------------------------------------------------------------------

class _Listener:
    """A connection LISTENing on pgrst; notifications arrive in commit order."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.payloads: asyncio.Queue[str] = asyncio.Queue()

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.put_nowait(payload)

    async def next(self) -> str:
        return await asyncio.wait_for(self.payloads.get(), timeout=30)

    async def drain(self, conn: asyncpg.Connection) -> None:
        """Consume everything sent so far (up to a sentinel that ``conn`` sends now)."""
        await conn.execute("NOTIFY pgrst, 'sentinel'")
        while await self.next() != "sentinel":
            pass


@pytest_asyncio.fixture
async def listener(pg_url: str) -> AsyncIterator[_Listener]:
    conn = await asyncpg.connect(pg_url)
    result = _Listener(conn)
    await conn.add_listener("pgrst", result._on_notify)
    try:
        yield result
    finally:
        await conn.close()


CREATE_TABLE = "CREATE TABLE {schema}.t (id int)"
# kind -> (setup, the DDL that must notify); {schema} is a fresh schema per test.
RELOADING_DDL = {
    "create table": ("", CREATE_TABLE),
    "add column": (CREATE_TABLE, "ALTER TABLE {schema}.t ADD note text"),
    "create view": ("", "CREATE VIEW {schema}.v AS SELECT 1 AS one"),
    "create function": ("", "CREATE FUNCTION {schema}.f() RETURNS int LANGUAGE sql AS 'SELECT 1'"),
    "enable rls": (CREATE_TABLE, "ALTER TABLE {schema}.t ENABLE ROW LEVEL SECURITY"),
    "create policy": (CREATE_TABLE, "CREATE POLICY mine ON {schema}.t USING (true)"),
    "comment": (CREATE_TABLE, "COMMENT ON TABLE {schema}.t IS 'notes'"),
    "drop table": (CREATE_TABLE, "DROP TABLE {schema}.t"),
}


@pytest.mark.parametrize("kind", list(RELOADING_DDL))
@pytest.mark.parametrize("creator", ["login role", "project_admin"])
async def test_ddl_sends_a_reload_notification(pg: asyncpg.Connection, listener: _Listener, kind: str,
                                               creator: str) -> None:
    schema = _name("ddl")
    setup, ddl = (sql.format(schema=schema) for sql in RELOADING_DDL[kind])
    role = "SET LOCAL ROLE project_admin" if creator == "project_admin" else "SELECT 1"
    await pg.execute(f"CREATE SCHEMA {schema}; GRANT ALL ON SCHEMA {schema} TO project_admin")
    try:
        if setup:
            async with pg.transaction():
                await pg.execute(f"{role}; {setup}")
        await listener.drain(pg)
        async with pg.transaction():
            await pg.execute(f"{role}; {ddl}")
        assert await listener.next() == "reload schema"
    finally:
        await pg.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.mark.parametrize("statements", [
    "CREATE TEMP TABLE t_tmp (id serial PRIMARY KEY, v text DEFAULT 'x'); DROP TABLE t_tmp",
    "BEGIN; CREATE TEMP TABLE t_tmp2 (id int) ON COMMIT DROP; COMMIT",
    "CREATE TABLE IF NOT EXISTS auth.users (id uuid)",
], ids=["temp table", "on commit drop", "if not exists on an existing table"])
async def test_temporary_and_no_op_ddl_send_no_reload_notification(pg: asyncpg.Connection,
                                                                   listener: _Listener,
                                                                   statements: str) -> None:
    await listener.drain(pg)
    await pg.execute(statements)
    # Notifications arrive in commit order: had the DDL sent one, it would come before this.
    await pg.execute("NOTIFY pgrst, 'sentinel'")
    assert await listener.next() == "sentinel"


async def test_the_bootstrap_sends_no_reload_notification(pg: asyncpg.Connection,
                                                          listener: _Listener) -> None:
    await listener.drain(pg)
    await bootstrap.apply(pg)
    await pg.execute("NOTIFY pgrst, 'sentinel'")
    assert await listener.next() == "sentinel"


# --- a login role that is not a superuser ----------------------------------------------------------

async def test_a_bootstrap_role_without_superuser_gets_everything_but_the_event_triggers(
        pg: asyncpg.Connection, pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    if not await pg.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        pytest.skip("TEST_DATABASE_URL does not log in as a superuser, so it cannot create a second role")
    name = _name("owner")
    password = uuid.uuid4().hex
    # What an operator does once as a superuser; the gateway's own role is then an ordinary owner.
    await pg.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'; "
                     f"GRANT anon, authenticated, project_admin TO {name}")
    await pg.execute(f"CREATE DATABASE {name} OWNER {name}")
    try:
        conn = await asyncpg.connect(_with_login(pg_url, name, password, name))
        try:
            with caplog.at_level(logging.WARNING, logger="gateway.bootstrap"):
                await bootstrap.apply(conn)
                await bootstrap.apply(conn)
            assert "not a superuser" in caplog.text
            assert await conn.fetchval("SELECT count(*) FROM pg_event_trigger") == 0
            assert await _as_role(conn, "authenticated", f'{{"sub": "{USER_ID}"}}',
                                  "SELECT auth.uid()") == uuid.UUID(USER_ID)
            await conn.execute(f"CREATE TABLE public.{name} (id int)")
            assert await _table_privileges(conn, "anon", f"public.{name}") == set()
            assert await _table_privileges(conn, "project_admin", f"public.{name}") == set(TABLE_PRIVILEGES)
        finally:
            await conn.close()
    finally:
        await pg.execute(f"DROP DATABASE {name}")
        await pg.execute(f"DROP ROLE {name}")
