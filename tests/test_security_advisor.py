"""The security advisor over HTTP and GraphQL against a sample schema holding each risky object.

Every finding is asserted with its exact fix SQL; then the fixes are applied (as the superuser who
owns the sample objects) and each finding must be gone. Runs on PostgreSQL 14 to 18: the one
version difference (``security_invoker`` exists from 15) is asserted for the server at hand over
HTTP, and for 14 and 15+ alike by handing the version to ``advisor.findings``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from support import Running, app_with, assert_error

from gateway.admin import advisor
from gateway.execute import RequestContext
from gateway.identity import ADMIN

SCHEMA = "sec_adv"
PRIVATE = "sec_adv_private"
OWNER = "sec_adv_owner"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
DROP SCHEMA IF EXISTS {PRIVATE} CASCADE;
DROP ROLE IF EXISTS {OWNER};
CREATE ROLE {OWNER} NOLOGIN;
CREATE SCHEMA {SCHEMA};
CREATE SCHEMA {PRIVATE};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin, {OWNER};

-- safe: RLS with a policy, granted to authenticated; an admin-only table without RLS
CREATE TABLE {SCHEMA}.notes (id int PRIMARY KEY, owner uuid, body text);
ALTER TABLE {SCHEMA}.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_mine ON {SCHEMA}.notes TO authenticated USING (owner = auth.uid());
GRANT SELECT ON {SCHEMA}.notes TO authenticated;
CREATE TABLE {SCHEMA}.admin_only (id int PRIMARY KEY);

-- readable by anon and writable by authenticated, no RLS
CREATE TABLE {SCHEMA}.open_posts (id int PRIMARY KEY, body text);
GRANT SELECT ON {SCHEMA}.open_posts TO anon;
GRANT SELECT, INSERT, UPDATE, DELETE ON {SCHEMA}.open_posts TO authenticated;

-- RLS on, no policy, granted
CREATE TABLE {SCHEMA}.locked (id int PRIMARY KEY);
ALTER TABLE {SCHEMA}.locked ENABLE ROW LEVEL SECURITY;
GRANT SELECT ON {SCHEMA}.locked TO authenticated;

-- a policy on a table whose RLS is off
CREATE TABLE {SCHEMA}.forgotten (id int PRIMARY KEY, owner uuid);
CREATE POLICY forgotten_mine ON {SCHEMA}.forgotten USING (owner = auth.uid());

-- a view over the RLS table, owned by the superuser that runs this script
CREATE VIEW {SCHEMA}.notes_view AS SELECT id, body FROM {SCHEMA}.notes;
GRANT SELECT ON {SCHEMA}.notes_view TO anon, authenticated;

-- a view as a migration makes it: owned by project_admin, which has BYPASSRLS
CREATE VIEW {SCHEMA}.notes_admin_view AS SELECT id FROM {SCHEMA}.notes;
ALTER VIEW {SCHEMA}.notes_admin_view OWNER TO project_admin;
GRANT SELECT ON {SCHEMA}.notes_admin_view TO authenticated;

-- a view owned by the owner of the RLS table it reads
CREATE TABLE {SCHEMA}.diary (id int PRIMARY KEY, owner uuid, entry text);
ALTER TABLE {SCHEMA}.diary ENABLE ROW LEVEL SECURITY;
CREATE POLICY diary_mine ON {SCHEMA}.diary TO authenticated USING (owner = auth.uid());
GRANT SELECT ON {SCHEMA}.diary TO authenticated;
CREATE VIEW {SCHEMA}.diary_view AS SELECT id, entry FROM {SCHEMA}.diary;
ALTER TABLE {SCHEMA}.diary OWNER TO {OWNER};
ALTER VIEW {SCHEMA}.diary_view OWNER TO {OWNER};
GRANT SELECT ON {SCHEMA}.diary_view TO authenticated;

-- views handing out a private table without RLS, directly and through a private view
CREATE TABLE {PRIVATE}.salaries (id int PRIMARY KEY, amount int);
CREATE VIEW {PRIVATE}.salaries_inner AS SELECT id, amount FROM {PRIVATE}.salaries;
CREATE VIEW {SCHEMA}.salary_view AS SELECT id, amount FROM {PRIVATE}.salaries;
CREATE VIEW {SCHEMA}.salary_outer AS SELECT id FROM {PRIVATE}.salaries_inner;
GRANT SELECT ON {SCHEMA}.salary_view, {SCHEMA}.salary_outer TO authenticated;

-- SECURITY DEFINER functions: superuser-owned and callable by everyone (PUBLIC's default EXECUTE);
-- owned by a plain role with a fixed search_path, granted to authenticated; not callable by the API
CREATE FUNCTION {SCHEMA}.whoami_root(x int, "odd name" text) RETURNS text LANGUAGE sql SECURITY DEFINER
    AS $$ SELECT current_user::text $$;
CREATE FUNCTION {SCHEMA}.bump(n int) RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = {SCHEMA}
    AS $$ SELECT n + 1 $$;
ALTER FUNCTION {SCHEMA}.bump(int) OWNER TO {OWNER};
REVOKE EXECUTE ON FUNCTION {SCHEMA}.bump(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION {SCHEMA}.bump(int) TO authenticated;
CREATE FUNCTION {SCHEMA}.nightly() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ SELECT $$;
REVOKE EXECUTE ON FUNCTION {SCHEMA}.nightly() FROM PUBLIC;
-- safe: a SECURITY INVOKER function
CREATE FUNCTION {SCHEMA}.plain() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;

-- a materialized view readable by anon
CREATE MATERIALIZED VIEW {SCHEMA}.post_stats AS SELECT count(*) AS n FROM {SCHEMA}.open_posts;
GRANT SELECT ON {SCHEMA}.post_stats TO anon;

-- no primary key: one without an id column, one with
CREATE TABLE {SCHEMA}."Event log" (at timestamptz, what text);
CREATE TABLE {SCHEMA}.tags (id int NOT NULL, name text);
"""

# on 15+ a security_invoker view over an RLS table is fine, whoever owns it
INVOKER_VIEW = f"""
CREATE VIEW {SCHEMA}.notes_invoker WITH (security_invoker = true) AS SELECT id, body FROM {SCHEMA}.notes;
GRANT SELECT ON {SCHEMA}.notes_invoker TO authenticated;
"""

TEARDOWN = f"DROP SCHEMA {SCHEMA} CASCADE; DROP SCHEMA {PRIVATE} CASCADE; DROP ROLE {OWNER};"


def expected(version: int) -> dict[tuple[str, str], str]:
    """(check, object name) -> the exact fix SQL."""
    s = SCHEMA
    view_fix = ("ALTER VIEW {} SET (security_invoker = true);" if version >= 150000
                else "REVOKE ALL ON {} FROM PUBLIC, anon, authenticated;")
    return {
        ("rls_disabled_exposed", "open_posts"): f"ALTER TABLE {s}.open_posts ENABLE ROW LEVEL SECURITY;",
        ("view_reads_table_without_rls", "salary_view"):
            f"ALTER TABLE {PRIVATE}.salaries ENABLE ROW LEVEL SECURITY;",
        ("view_reads_table_without_rls", "salary_outer"):
            f"ALTER TABLE {PRIVATE}.salaries ENABLE ROW LEVEL SECURITY;",
        ("view_bypasses_rls", "notes_view"): view_fix.format(f"{s}.notes_view"),
        ("view_bypasses_rls", "diary_view"): view_fix.format(f"{s}.diary_view"),
        ("view_bypasses_rls", "notes_admin_view"): view_fix.format(f"{s}.notes_admin_view"),
        ("policy_without_rls", "forgotten"): f"ALTER TABLE {s}.forgotten ENABLE ROW LEVEL SECURITY;",
        ("superuser_function_exposed", "whoami_root"):
            f'REVOKE EXECUTE ON FUNCTION {s}.whoami_root(x integer, "odd name" text) '
            "FROM PUBLIC, anon, authenticated;",
        ("definer_function_exposed", "bump"):
            f"REVOKE EXECUTE ON FUNCTION {s}.bump(n integer) FROM PUBLIC, anon, authenticated;",
        ("definer_function_search_path", "whoami_root"):
            f'ALTER FUNCTION {s}.whoami_root(x integer, "odd name" text) SET search_path = {s}, pg_temp;',
        ("definer_function_search_path", "nightly"):
            f"ALTER FUNCTION {s}.nightly() SET search_path = {s}, pg_temp;",
        ("unprotectable_relation_exposed", "post_stats"):
            f"REVOKE ALL ON {s}.post_stats FROM PUBLIC, anon, authenticated;",
        ("rls_enabled_no_policy", "locked"): f"REVOKE ALL ON {s}.locked FROM PUBLIC, anon, authenticated;",
        ("no_primary_key", "Event log"):
            f'ALTER TABLE {s}."Event log" ADD COLUMN id uuid PRIMARY KEY DEFAULT gen_random_uuid();',
        ("no_primary_key", "tags"): f"ALTER TABLE {s}.tags ADD PRIMARY KEY (id);",
    }


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), TEARDOWN) as running:
        yield running


async def server_version(pg: asyncpg.Connection) -> int:
    return int(await pg.fetchval("SELECT current_setting('server_version_num')"))


async def advise(gw: Running, **params: str) -> list[dict[str, Any]]:
    r = await gw.client.get("/api/database/advisor", params=params, headers=gw.admin)
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def by_key(found: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(f["check"], f["object"]["name"]): f for f in found}


async def test_the_advisor_is_for_admins_only(gw: Running) -> None:
    assert_error(await gw.client.get("/api/database/advisor"), 401, "AUTH_INVALID_CREDENTIALS")
    for who in (gw.user(), gw.anon):
        assert_error(await gw.client.get("/api/database/advisor", headers=who), 403, "FORBIDDEN")
    body = (await gw.client.post("/graphql", json={"query": "{ admin { advisor { check } } }"},
                                 headers=gw.user())).json()
    assert body["errors"][0]["extensions"]["error"] == "FORBIDDEN"


async def test_each_risky_object_is_reported_with_the_exact_sql_that_fixes_it(
        gw: Running, pg: asyncpg.Connection) -> None:
    found = await advise(gw)
    assert {k: f["fix"] for k, f in by_key(found).items()} == expected(await server_version(pg))
    assert len(found) == len(by_key(found))  # one finding per (check, object)
    for f in found:
        assert f["object"]["schema"] == SCHEMA and f["why"] and f["title"] and f["detail"]
        check = next(c for c in advisor.CHECKS if c.name == f["check"])
        assert (f["level"], f["title"], f["why"]) == (check.level, check.title, check.why)
    levels = [f["level"] for f in found]
    assert levels == sorted(levels, key=advisor.LEVELS.index)  # most severe first


async def test_the_details_say_who_holds_what_and_why(gw: Running, pg: asyncpg.Connection) -> None:
    found = by_key(await advise(gw))
    assert found[("rls_disabled_exposed", "open_posts")]["detail"] == (
        "RLS is off; anon SELECT, authenticated SELECT, authenticated INSERT, authenticated UPDATE, "
        "authenticated DELETE")
    assert found[("rls_disabled_exposed", "open_posts")]["object"] == {
        "schema": SCHEMA, "name": "open_posts", "kind": "table"}
    assert found[("view_reads_table_without_rls", "salary_outer")]["detail"] == (
        f"Reads {PRIVATE}.salaries without RLS; authenticated SELECT")
    assert found[("view_bypasses_rls", "notes_admin_view")]["detail"].startswith(
        f"Reads {SCHEMA}.notes (RLS on) with the rights of project_admin, which has BYPASSRLS; ")
    assert found[("view_bypasses_rls", "diary_view")]["detail"].startswith(
        f"Reads {SCHEMA}.diary (RLS on) with the rights of {OWNER}, its owner; authenticated SELECT")
    notes_view = found[("view_bypasses_rls", "notes_view")]["detail"]
    assert notes_view.startswith(f"Reads {SCHEMA}.notes (RLS on) with the rights of ")
    assert ", a superuser; anon SELECT, authenticated SELECT" in notes_view
    assert ("PostgreSQL 14 has no security_invoker" in notes_view) == (await server_version(pg) < 150000)
    assert found[("superuser_function_exposed", "whoami_root")]["detail"].endswith(
        "; executable by anon and authenticated")
    assert found[("definer_function_exposed", "bump")]["detail"] == (
        f"Runs as {OWNER}; executable by authenticated")
    assert found[("policy_without_rls", "forgotten")]["detail"] == "RLS is off; policies: forgotten_mine"
    assert found[("unprotectable_relation_exposed", "post_stats")]["object"]["kind"] == "materialized view"


async def test_applying_each_fix_makes_its_finding_disappear_until_none_is_left(
        gw: Running, pg: asyncpg.Connection) -> None:
    version = await server_version(pg)
    found = await advise(gw)
    for f in found:
        await pg.execute(f["fix"])  # the sample's objects belong to the superuser (or its role)
    after = by_key(await advise(gw))
    assert not set(after) & set(by_key(found))
    # what is left are the next steps the fixes themselves lead to: open_posts is now under RLS with
    # grants and no policy; salaries is under RLS, and the views over it read it as the superuser
    follow_ups = {("rls_enabled_no_policy", "open_posts"): f"REVOKE ALL ON {SCHEMA}.open_posts FROM PUBLIC, "
                                                           "anon, authenticated;"}
    if version >= 150000:
        follow_ups[("view_bypasses_rls", "salary_view")] = (
            f"ALTER VIEW {SCHEMA}.salary_view SET (security_invoker = true);")
        follow_ups[("view_bypasses_rls", "salary_outer")] = (  # and the private view it reads through
            f"ALTER VIEW {SCHEMA}.salary_outer SET (security_invoker = true); "
            f"ALTER VIEW {PRIVATE}.salaries_inner SET (security_invoker = true);")
    else:
        for view in ("salary_view", "salary_outer"):
            follow_ups[("view_bypasses_rls", view)] = (
                f"REVOKE ALL ON {SCHEMA}.{view} FROM PUBLIC, anon, authenticated;")
    assert {k: f["fix"] for k, f in after.items()} == follow_ups
    for f in after.values():
        await pg.execute(f["fix"])
    assert await advise(gw) == []
    await pg.execute(FIXTURE)  # back to the sample for the other tests
    await gw.gateway.reload_catalog()


@pytest.mark.parametrize("version", [140013, 150008, 180001])
async def test_the_view_fix_follows_the_server_version_and_clears_the_finding(
        gw: Running, pg: asyncpg.Connection, version: int) -> None:
    """The version decides one thing: security_invoker (15+) or, on 14, withdrawing the view. Both
    fixes run here on the live server, which is 15 or newer, so the REVOKE is proven to clear it too."""
    async def views() -> dict[str, dict[str, Any]]:
        async with gw.gateway.executor.transaction(ADMIN, RequestContext(read_only=True)) as tx:
            found = await advisor.findings(tx, (SCHEMA,), version)
        return {f["object"]["name"]: f for f in found if f["check"] == "view_bypasses_rls"}

    found = await views()
    assert set(found) == {"notes_view", "diary_view", "notes_admin_view"}
    for name, f in found.items():
        if version < 150000:
            assert f["fix"] == f"REVOKE ALL ON {SCHEMA}.{name} FROM PUBLIC, anon, authenticated;"
            assert "PostgreSQL 14 has no security_invoker for views" in f["detail"]
        else:
            assert f["fix"] == f"ALTER VIEW {SCHEMA}.{name} SET (security_invoker = true);"
            assert "PostgreSQL 14" not in f["detail"]
        await pg.execute(f["fix"])
    assert await views() == {}
    await pg.execute(FIXTURE)
    await gw.gateway.reload_catalog()


async def test_a_security_invoker_view_over_an_rls_table_is_not_a_finding(
        gw: Running, pg: asyncpg.Connection) -> None:
    if await server_version(pg) < 150000:
        pytest.skip("PostgreSQL 14 has no security_invoker views; the REVOKE fix is asserted instead")
    await pg.execute(INVOKER_VIEW)
    try:
        assert not [f for f in await advise(gw) if f["object"]["name"] == "notes_invoker"]
    finally:
        await pg.execute(f"DROP VIEW {SCHEMA}.notes_invoker")


async def test_safe_objects_are_not_reported(gw: Running) -> None:
    names = {f["object"]["name"] for f in await advise(gw)}
    assert not names & {"notes", "admin_only", "plain", "salaries", "salaries_inner"}


async def test_only_the_exposed_schemas_are_examined_unless_one_is_named(gw: Running) -> None:
    # the private schema's table has a key, and nothing in it is granted to the API roles
    assert await advise(gw, schema=PRIVATE) == []
    assert {f["object"]["schema"] for f in await advise(gw)} == {SCHEMA}
    r = await gw.client.get("/api/database/advisor", params={"schema": "pg_catalog"}, headers=gw.admin)
    assert_error(r, 400, "INVALID_INPUT")


async def test_graphql_admin_advisor_lists_the_same_findings(gw: Running) -> None:
    rest = await advise(gw)
    query = "{ admin { advisor { check level title object { schema name kind } detail why fix } } }"
    r = await gw.client.post("/graphql", json={"query": query}, headers=gw.admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"admin": {"advisor": rest}}}
    query = "query ($s: String) { admin { advisor(schema: $s) { fix } } }"
    r = await gw.client.post("/graphql", json={"query": query, "variables": {"s": PRIVATE}}, headers=gw.admin)
    assert r.json() == {"data": {"admin": {"advisor": []}}}


async def test_the_checks_run_as_project_admin(gw: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    probe = advisor.Check("probe", "INFO", "t", "w", "SELECT $1::text[] IS NOT NULL AS schema, "
                          "current_user::text AS name, 'probe' AS kind, '' AS detail, '' AS fix")
    monkeypatch.setattr(advisor, "CHECKS", (probe,))
    (only,) = await advise(gw)
    assert only["object"]["name"] == "project_admin"
