"""The SQL guard, without a database: what each mode refuses, how, and what it lets through."""

from __future__ import annotations

import pytest

from gateway.admin import sqlguard
from gateway.errors import GatewayError

# Attempts to reach auth.users, the system schema or the server from strict raw SQL.
STRICT_BYPASSES = [
    "SELECT * FROM auth.users",
    'SELECT * FROM "auth"."users"',
    "SELECT * FROM AUTH.USERS",
    'SELECT * FROM U&"\\0061uth".users',
    "WITH u AS (SELECT * FROM auth.users) SELECT * FROM u",
    "SELECT (SELECT email FROM auth.users LIMIT 1)",
    "SELECT * FROM posts WHERE id IN (SELECT id FROM auth.users)",
    "SELECT * FROM posts JOIN auth.users u ON true",
    "SELECT * FROM posts, LATERAL (SELECT * FROM auth.users) x",
    "TABLE auth.users",
    "SELECT to_json(u) FROM auth.users u",
    "SELECT 1; SELECT * FROM auth.users",
    "WITH d AS (DELETE FROM auth.users RETURNING *) SELECT * FROM d",
    "UPDATE auth.users SET email = 'x'",
    "DELETE FROM system.custom_migrations",
    "SELECT * FROM system.custom_migrations",
    "MERGE INTO auth.users u USING posts ON true WHEN MATCHED THEN DELETE",
    "EXPLAIN ANALYZE SELECT * FROM auth.users",
    "DECLARE c CURSOR FOR SELECT * FROM auth.users",
    "CREATE VIEW leak AS SELECT * FROM auth.users",
    "CREATE TABLE leak AS SELECT * FROM auth.users",
    "SELECT * INTO leak FROM auth.users",
    "CREATE TABLE leak (LIKE auth.users)",
    "CREATE RULE r AS ON INSERT TO posts DO ALSO SELECT * FROM auth.users",
    "CREATE POLICY p ON posts USING (EXISTS (SELECT 1 FROM auth.users))",
    "SELECT * FROM json_populate_recordset(null::auth.users, '[]')",
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT email FROM auth.users $$",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM auth.users; END",
    "CREATE FUNCTION f() RETURNS SETOF auth.users LANGUAGE sql AS 'SELECT 1'",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
    "DO $$ BEGIN PERFORM 1; END $$",
    "PREPARE p AS SELECT * FROM auth.users",
    "EXECUTE p",
    "CALL p()",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT * FROM pg_shadow",
    "SELECT rolname FROM pg_roles",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_temp.x",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT * FROM ROWS FROM (pg_ls_dir('.'))",
    "SELECT pg_catalog.extract('year', now())",
    "SELECT lo_import('/etc/passwd')",
    "SELECT query_to_xml('select * from auth.users', true, true, '')",
    "SELECT table_to_xml('auth.users'::regclass, true, true, '')",
    "SELECT ts_stat('select to_tsvector(email) from auth.users')",
    "SELECT * FROM dblink('dbname=x', 'select 1') AS t(a int)",
    "SELECT x FROM posts WHERE x = OPERATOR(pg_catalog.=) 1",
    "COPY auth.users TO STDOUT",
    "COPY posts TO STDOUT",
    "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT null::uuid'",
    "DROP FUNCTION auth.uid()",
    "ALTER TABLE posts SET SCHEMA auth",
    "ALTER TABLE posts ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES auth.users (id)",
    "GRANT SELECT ON auth.users TO anon",
    "GRANT USAGE ON SCHEMA system TO anon",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA auth GRANT SELECT ON TABLES TO anon",
    "DROP SCHEMA system CASCADE",
    "COMMENT ON SCHEMA auth IS 'x'",
    "CREATE TRIGGER tr AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION f()",
    "CREATE EXTENSION dblink",
    "SET search_path = auth",
    "SELECT * FROM posts TABLESAMPLE system (1), auth.users",
    "CREATE AGGREGATE a(text) (sfunc = pg_catalog.pg_read_file, stype = text)",
    "CREATE TABLE leak PARTITION OF auth.users FOR VALUES IN (1)",
    "CREATE MATERIALIZED VIEW leak AS SELECT * FROM auth.users",
    "VALUES ((SELECT email FROM auth.users))",
    "INSERT INTO \"auth\".users (id) VALUES ('x')",
    "SELECT * FROM auth/**/.users",
]

# Refused in every mode, with the reference's message where it has one.
ALWAYS_REFUSED = [
    ("SELECT set_config('role', 'postgres', false)", "session configuration"),
    ("SELECT 1 -- set_config in a comment", "session configuration"),
    ('SELECT "set_config"(\'role\', \'x\', false)', "session configuration"),
    ("SET ROLE postgres", "execution role"),
    ('SET "ROLE" TO postgres', "execution role"),
    ("SET LOCAL ROLE postgres", "execution role"),
    ("RESET ROLE", "execution role"),
    ("SET SESSION AUTHORIZATION postgres", "execution role"),
    ("RESET ALL", "RESET ALL"),
    ("SET search_path = public", "search_path"),
    ("SET statement_timeout = 0", "statement_timeout"),
    ("SET standard_conforming_strings = off", "standard_conforming_strings"),
    ("SET client_encoding = 'LATIN1'", "client_encoding"),
    ("CREATE ROLE intruder", "roles"),
    ("ALTER USER anon WITH SUPERUSER", "roles"),
    ("DROP GROUP anon", "roles"),
    ("ALTER ROLE anon RENAME TO x", "roles"),
    ("ALTER ROLE anon SET search_path = auth", "roles"),
    ("GRANT postgres TO anon", "roles"),
    ("DROP OWNED BY anon", "roles"),
    ("CREATE DATABASE x", "restricted"),
    ("DROP DATABASE postgres", "restricted"),
    ("ALTER DATABASE postgres SET search_path = auth", "restricted"),
    ("GRANT CREATE ON DATABASE postgres TO anon", "restricted"),
    ("ALTER SYSTEM SET work_mem = '1GB'", "restricted"),
    ("CREATE TABLESPACE t LOCATION '/tmp'", "restricted"),
    ("CREATE EVENT TRIGGER e ON ddl_command_end EXECUTE FUNCTION f()", "restricted"),
    ("LOAD 'plpgsql'", "restricted"),
    ("COPY posts FROM PROGRAM 'id'", "files or programs"),
    ("COPY posts TO '/tmp/x'", "files or programs"),
    ("COPY (SELECT 1) TO '/tmp/x'", "files or programs"),
    ("PREPARE p AS SELECT 1", "Prepared statements"),
    ("DEALLOCATE ALL", "Prepared statements"),
    ("DISCARD ALL", "DISCARD"),
    ("SELECT pg_read_file('/etc/passwd')", "server's files"),
    ("SELECT public.dblink('x', 'y')", "server's files"),
    ("SELECT pg_terminate_backend(1)", "server's files"),
    ("SELECT pg_advisory_lock(1)", "server's files"),
    ("CREATE FUNCTION f() RETURNS int AS 'libc', 'abs' LANGUAGE c", "C or internal"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS 'SELECT 1'",
     "standard_conforming_strings"),
]

STRICT_ALLOWED = [
    "SELECT 1",
    "SELECT * FROM posts WHERE published = $1",
    "SELECT extract(year FROM now()), x AT TIME ZONE 'UTC', 'a' SIMILAR TO 'b', trim(both 'x' FROM 'y'), "
    "substring('abc' FROM 1 FOR 2), 1::int, '1 day'::interval, current_date FROM t",
    "CREATE TABLE system_log (id serial PRIMARY KEY, system text, auth text, UNIQUE (system, auth))",
    "INSERT INTO system_log (system, auth) VALUES ('auth', 'system')",
    "CREATE POLICY p ON posts FOR SELECT TO authenticated USING (auth.uid() = user_id)",
    "SELECT auth.uid(), auth.role(), auth.email(), auth.jwt()",
    "SET timezone = 'Europe/Paris'",
    "CREATE TYPE mood AS ENUM ('auth', 'system')",
    "CREATE INDEX ON t (lower(name))",
    "SELECT a.x FROM t a JOIN u USING (auth, system)",
    "CREATE VIEW v (auth, system) AS SELECT 1, 2",
    "CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b'",
    "SELECT count(*) FILTER (WHERE x > 1) OVER (PARTITION BY y) FROM t",
    "SELECT json_build_object('a', 1), now(), gen_random_uuid()",
    "ALTER TABLE t RENAME COLUMN system TO x",
    "GRANT SELECT ON t TO anon",
    "NOTIFY pgrst, 'reload schema'",
    "SELECT 'auth.users', 'pg_read_file'",
    "-- auth.users\nSELECT 1 /* pg_catalog.pg_authid */",
    "CREATE TABLE t2 (id int GENERATED ALWAYS AS IDENTITY, c timestamptz DEFAULT now(), j jsonb NOT NULL DEFAULT '{}')",
    "ALTER TABLE t ENABLE ROW LEVEL SECURITY",
    "CREATE TRIGGER tr BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch()",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
    'SELECT x::text COLLATE "C" FROM t ORDER BY 1',
    "DROP TABLE IF EXISTS t",
    "TRUNCATE t",
    "EXPLAIN SELECT * FROM t",
]

RELAXED_ALLOWED = [
    "SELECT * FROM auth.users",
    "INSERT INTO auth.users (email) VALUES ('a@example.com')",
    "INSERT INTO auth.users (email) VALUES ('a@example.com') ON CONFLICT DO NOTHING",
    "SELECT rolname FROM pg_roles",
    "CREATE TABLE posts (user_id uuid REFERENCES auth.users (id))",
    "DO $$ BEGIN PERFORM 1; END $$",
    "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
    "CREATE VIEW v AS SELECT id FROM auth.users",
    "UPDATE posts SET author = (SELECT email FROM auth.users LIMIT 1)",
    "CALL p()",
]

RELAXED_REFUSED = [
    "UPDATE auth.users SET email = 'x'",
    "DELETE FROM auth.users",
    "TRUNCATE auth.users",
    "TRUNCATE posts, system.custom_migrations",
    "ALTER TABLE auth.users ADD COLUMN x int",
    "ALTER TABLE auth.users DISABLE ROW LEVEL SECURITY",
    "DROP TABLE auth.users",
    "CREATE INDEX ON auth.users (email)",
    "CREATE POLICY p ON auth.users USING (true)",
    "CREATE TRIGGER tr AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION f()",
    "INSERT INTO auth.users (id) VALUES (gen_random_uuid()) ON CONFLICT (id) DO UPDATE SET email = 'x'",
    "WITH d AS (DELETE FROM auth.users RETURNING 1) SELECT * FROM d",
    "MERGE INTO system.custom_migrations m USING posts ON true WHEN MATCHED THEN DELETE",
    "LOCK auth.users",
    "DROP SCHEMA auth CASCADE",
    "ALTER SCHEMA auth RENAME TO a",
    "CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql AS 'SELECT null::uuid'",
    "DROP FUNCTION auth.uid()",
    "GRANT SELECT ON auth.users TO anon",
    "REVOKE ALL ON system.custom_migrations FROM project_admin",
    "COMMENT ON TABLE auth.users IS 'x'",
    "ALTER TABLE posts SET SCHEMA system",
    "CREATE TABLE auth.x (a int)",
    "CREATE TYPE system.t AS (a int)",
    "UPDATE pg_authid SET rolsuper = true",
]


@pytest.mark.parametrize("sql", STRICT_BYPASSES)
def test_strict_mode_refuses_every_way_of_reaching_protected_objects(sql: str) -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check(sql, "strict")
    assert (info.value.status, info.value.error) in ((403, "FORBIDDEN"), (400, "INVALID_INPUT"))


def test_there_are_at_least_twenty_strict_bypass_attempts() -> None:
    assert len(STRICT_BYPASSES) >= 20


@pytest.mark.parametrize("mode", ["strict", "relaxed", "migration", "import"])
@pytest.mark.parametrize(("sql", "reason"), ALWAYS_REFUSED)
def test_every_mode_refuses_role_session_database_and_server_access(sql: str, reason: str, mode: str) -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check(sql, mode)  # type: ignore[arg-type]
    assert info.value.status == 403
    assert info.value.error == "FORBIDDEN"
    assert reason.lower() in info.value.message.lower()


@pytest.mark.parametrize("sql", STRICT_ALLOWED)
def test_strict_mode_lets_ordinary_sql_through(sql: str) -> None:
    assert sqlguard.check(sql, "strict")


@pytest.mark.parametrize("mode", ["relaxed", "migration", "import"])
@pytest.mark.parametrize("sql", RELAXED_ALLOWED)
def test_relaxed_modes_may_read_and_insert_into_system_tables(sql: str, mode: str) -> None:
    assert sqlguard.check(sql, mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["relaxed", "migration", "import"])
@pytest.mark.parametrize("sql", RELAXED_REFUSED)
def test_relaxed_modes_refuse_changing_system_tables(sql: str, mode: str) -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check(sql, mode)  # type: ignore[arg-type]
    assert info.value.status == 403


@pytest.mark.parametrize("sql", ["BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT a",
                                 "RELEASE SAVEPOINT a", "ROLLBACK TO SAVEPOINT a", "PREPARE TRANSACTION 'x'",
                                 "CREATE TABLE a (); COMMIT"])
@pytest.mark.parametrize(("mode", "status"), [("strict", 403), ("relaxed", 403), ("migration", 400),
                                              ("import", 400)])
def test_transaction_control_is_refused_and_migrations_say_so_with_400(sql: str, mode: str, status: int) -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check(sql, mode)  # type: ignore[arg-type]
    assert info.value.status == status
    assert "transaction control" in info.value.message.lower()


@pytest.mark.parametrize("mode", ["strict", "relaxed", "migration", "import"])
def test_a_syntax_error_is_a_400_with_postgresqls_message(mode: str) -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check("SELEC 1", mode)  # type: ignore[arg-type]
    assert info.value.status == 400
    assert info.value.code == "42601"
    assert 'syntax error at or near "SELEC"' in info.value.message


def test_copy_through_the_connection_is_a_400_outside_strict_mode() -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check("COPY posts FROM STDIN", "import")
    assert info.value.status == 400


def test_empty_sql_is_refused_as_invalid_input() -> None:
    with pytest.raises(GatewayError) as info:
        sqlguard.check("  -- nothing\n", "relaxed")
    assert (info.value.status, info.value.error) == (400, "INVALID_INPUT")


def test_statements_are_split_by_the_parser_and_kept_as_written() -> None:
    sql = ("CREATE TABLE a (t text DEFAULT 'x;y');\n-- between\n"
           "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n"
           "INSERT INTO a VALUES (E'it''s;\\n')  ")
    assert sqlguard.split_statements(sql) == [
        "CREATE TABLE a (t text DEFAULT 'x;y')",
        "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$",
        "INSERT INTO a VALUES (E'it''s;\\n')",
    ]


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT 1", False),
    ("INSERT INTO t VALUES (1); UPDATE t SET a = 2", False),
    ("SELECT 1; CREATE TABLE t (a int)", True),
    ("ALTER TABLE t ADD COLUMN b int", True),
    ("DROP VIEW v", True),
    ("SELECT * INTO t2 FROM t", True),
    ("DO $$ BEGIN EXECUTE 'CREATE TABLE x ()'; END $$", True),
])
def test_schema_changes_are_recognised_for_catalog_reloads(sql: str, expected: bool) -> None:
    assert sqlguard.changes_schema(sql) is expected


def test_imported_tables_are_listed_in_first_seen_order() -> None:
    sql = ('CREATE TABLE IF NOT EXISTS "b" (a int); INSERT INTO a VALUES (1); INSERT INTO "b" VALUES (2);'
           "INSERT INTO a VALUES (3); INSERT INTO public.a VALUES (4)")
    assert sqlguard.statement_tables(sql) == [(None, "b"), (None, "a"), ("public", "a")]
