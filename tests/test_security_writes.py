"""No unintended mass writes or data loss, tried as a careless or hostile caller would.

- PATCH and DELETE on /records with no filter at all: 400 with advice, for every role, nothing changed
  (pg-safeupdate's rule); a filter that matches every row on purpose still passes.
- GraphQL update_*/delete_* whose filter narrows nothing (``{}``, ``{and: []}``, only nulls): the same.
- Import with truncate empties exactly the tables in the file: when a table outside the file references
  one of them it is 409 naming that table, and nothing changes (never ``TRUNCATE ... CASCADE``).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support import Running, app_with, assert_error

SCHEMA = "sec_writes"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
GRANT CREATE ON SCHEMA {SCHEMA} TO project_admin;
CREATE TABLE {SCHEMA}.items (id int PRIMARY KEY, label text);
CREATE TABLE {SCHEMA}.loose (note text, n int);  -- no key, nullable columns only
CREATE TABLE {SCHEMA}.authors (id int PRIMARY KEY, name text);
CREATE TABLE {SCHEMA}.books (id int PRIMARY KEY, author_id int REFERENCES {SCHEMA}.authors (id), title text);
CREATE TABLE {SCHEMA}.reviews (id int PRIMARY KEY, book_id int REFERENCES {SCHEMA}.books (id), body text);
-- every role may write everything: the refusals below come from the unfiltered-write rule, not from grants
GRANT ALL ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""

DATA = f"""
TRUNCATE {SCHEMA}.items, {SCHEMA}.loose, {SCHEMA}.reviews, {SCHEMA}.books, {SCHEMA}.authors;
DROP TABLE IF EXISTS {SCHEMA}.imported;
INSERT INTO {SCHEMA}.items VALUES (1, 'a'), (2, 'b'), (3, 'c');
INSERT INTO {SCHEMA}.loose VALUES ('x', 1), (NULL, NULL);
INSERT INTO {SCHEMA}.authors VALUES (1, 'ann'), (2, 'bo');
INSERT INTO {SCHEMA}.books VALUES (1, 1, 'first'), (2, 2, 'second');
INSERT INTO {SCHEMA}.reviews VALUES (1, 1, 'good'), (2, 2, 'fine');
"""

ROLES = ("anon", "user", "admin")
EVERYTHING = f"""
SELECT (SELECT array_agg(row(i.*)::text ORDER BY id) FROM {SCHEMA}.items i),
       (SELECT array_agg(row(l.*)::text ORDER BY n) FROM {SCHEMA}.loose l),
       (SELECT array_agg(row(a.*)::text ORDER BY id) FROM {SCHEMA}.authors a),
       (SELECT array_agg(row(b.*)::text ORDER BY id) FROM {SCHEMA}.books b),
       (SELECT array_agg(row(r.*)::text ORDER BY id) FROM {SCHEMA}.reviews r)
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), f"DROP SCHEMA {SCHEMA} CASCADE") as running:
        yield running


@pytest_asyncio.fixture
async def data(gw: Running, pg: asyncpg.Connection) -> None:
    await pg.execute(DATA)


def creds(gw: Running, who: str) -> dict[str, str]:
    return {"anon": gw.anon, "user": gw.user(), "admin": gw.admin}[who]


async def everything(pg: asyncpg.Connection) -> tuple[Any, ...]:
    return tuple(await pg.fetchrow(EVERYTHING))


async def write(gw: Running, method: str, path: str, who: str, headers: dict[str, str] | None = None,
                ) -> httpx.Response:
    body = {"label": "zz"} if method == "PATCH" else None
    return await gw.client.request(method, f"/api/database/records/{path}", json=body,
                                   headers={**creds(gw, who), **(headers or {})})


# --------------------------------------------------------------------------- REST


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("method", ["PATCH", "DELETE"])
@pytest.mark.parametrize("headers", [{}, {"Prefer": "return=representation, count=exact"},
                                     {"Accept": "application/vnd.pgrst.object+json"},
                                     {"Prefer": "handling=strict, max-affected=1000"}])
async def test_patch_and_delete_without_filters_are_refused_for_every_role_and_change_nothing(
        gw: Running, data: None, pg: asyncpg.Connection, who: str, method: str, headers: dict[str, str]) -> None:
    before = await everything(pg)
    r = await write(gw, method, "items", who, headers)
    body = assert_error(r, 400, "INVALID_QUERY", "21000")
    verb = "UPDATE" if method == "PATCH" else "DELETE"
    assert body["message"] == f"{verb} requires a filter: without one it would affect every row of 'items'"
    assert "?id=not.is.null" in body["nextActions"] and "?id=not.is.null" in body["hint"]
    assert await everything(pg) == before


@pytest.mark.parametrize("who", ROLES)
async def test_a_filter_that_matches_every_row_on_purpose_still_updates_and_deletes_them(
        gw: Running, data: None, pg: asyncpg.Connection, who: str) -> None:
    r = await write(gw, "PATCH", "items?id=not.is.null", who, {"Prefer": "return=representation"})
    assert r.status_code == 200 and len(r.json()) == 3, r.text
    assert await pg.fetchval(f"SELECT array_agg(DISTINCT label) FROM {SCHEMA}.items") == ["zz"]
    r = await write(gw, "DELETE", "items?id=not.is.null", who)
    assert r.status_code == 204, r.text
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.items") == 0


async def test_the_advice_for_a_table_without_a_key_is_a_filter_that_really_matches_every_row(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    refused = assert_error(await write(gw, "DELETE", "loose", "admin"), 400, "INVALID_QUERY", "21000")
    advice = re.search(r"\?(\S+?)\)?$", refused["nextActions"])
    assert advice and advice.group(1) == "or=(note.is.null,note.not.is.null)"  # note is nullable
    r = await write(gw, "DELETE", f"loose?{advice.group(1)}", "admin", {"Prefer": "return=representation"})
    assert r.status_code == 200 and len(r.json()) == 2, r.text  # the row whose note is NULL too
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.loose") == 0


async def test_filters_that_narrow_nothing_in_the_query_string_are_not_mistaken_for_filters(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    before = await everything(pg)
    # select=, order= and columns= are not filters
    for path in ("items?select=id", "items?order=id", "items?columns=label"):
        r = await write(gw, "PATCH", path, "admin")
        assert_error(r, 400, "INVALID_QUERY", "21000")
    assert await everything(pg) == before


# --------------------------------------------------------------------------- GraphQL


async def gql(gw: Running, query: str, who: str = "admin") -> dict[str, Any]:
    r = await gw.client.post("/graphql", json={"query": query}, headers=creds(gw, who))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.mark.parametrize("who", ROLES)
@pytest.mark.parametrize("field", ["update_items(filter: {0}, set: {{label: \"zz\"}}) {{ id }}",
                                   "delete_items(filter: {0}) {{ id }}"])
@pytest.mark.parametrize("empty", ["{}", "{and: []}", "{or: []}", "{id: {eq: null}}", "{not: {}}",
                                   "{or: [{}, {id: {eq: 1}}]}"])
async def test_graphql_update_and_delete_whose_filter_narrows_nothing_are_refused(
        gw: Running, data: None, pg: asyncpg.Connection, who: str, field: str, empty: str) -> None:
    before = await everything(pg)
    body = await gql(gw, "mutation { " + field.format(empty) + " }", who)
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["error"] == "INVALID_QUERY" and error["extensions"]["statusCode"] == 400
    assert "requires a filter" in error["message"]
    assert "filter: {id: {is: NOT_NULL}}" in error["extensions"]["hint"]
    assert await everything(pg) == before


@pytest.mark.parametrize("field", ["update_items(set: {label: \"zz\"}) { id }", "delete_items { id }"])
async def test_graphql_update_and_delete_without_a_filter_argument_are_refused(
        gw: Running, data: None, pg: asyncpg.Connection, field: str) -> None:
    before = await everything(pg)
    r = await gw.client.post("/graphql", json={"query": "mutation { " + field + " }"}, headers=gw.admin)
    body = r.json()
    assert body.get("data") is None and "filter" in body["errors"][0]["message"], body
    assert await everything(pg) == before


async def test_a_graphql_filter_that_matches_every_row_on_purpose_still_works(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    body = await gql(gw, """mutation {
        u: update_items(filter: {id: {is: NOT_NULL}}, set: {label: "zz"}) { id }
        d: delete_loose(filter: {or: [{note: {is: NULL}}, {note: {is: NOT_NULL}}]}) { n } }""")
    assert "errors" not in body, body
    assert len(body["data"]["u"]) == 3 and len(body["data"]["d"]) == 2
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.loose") == 0


# --------------------------------------------------------------------------- import with truncate


async def import_sql(gw: Running, content: str, truncate: bool = True) -> httpx.Response:
    return await gw.client.post("/api/database/advance/import", headers=gw.admin,
                                files={"file": ("backup.sql", content.encode(), "application/sql")},
                                data={"truncate": "true" if truncate else "false"})


async def test_import_with_truncate_refuses_when_tables_outside_the_file_reference_it_and_changes_nothing(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    before = await everything(pg)
    content = (f"CREATE TABLE {SCHEMA}.imported (id int);\n"
               f"INSERT INTO {SCHEMA}.authors VALUES (9, 'new');\n")
    r = await import_sql(gw, content)
    body = assert_error(r, 409, "DATABASE_CONSTRAINT_VIOLATION", "23503")
    assert f"{SCHEMA}.books" in body["message"] and "nothing was imported" in body["message"]
    assert f"{SCHEMA}.books references {SCHEMA}.authors" in body["details"]
    assert f"{SCHEMA}.reviews" not in body["message"]  # it references books, which is not truncated
    assert "without truncate" in body["nextActions"]
    assert await everything(pg) == before  # books (the child) and authors both untouched
    assert await pg.fetchval(f"SELECT to_regclass('{SCHEMA}.imported')") is None


async def test_import_with_truncate_empties_exactly_the_tables_in_the_file(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    # reviews references books, books references authors: the file names reviews and books only
    content = (f"INSERT INTO {SCHEMA}.books VALUES (5, 1, 'fifth');\n"
               f"INSERT INTO {SCHEMA}.reviews VALUES (5, 5, 'new');\n")
    r = await import_sql(gw, content)
    assert r.status_code == 200, r.text
    assert r.json()["rowsImported"] == 2
    assert [tuple(x) for x in await pg.fetch(f"SELECT id, title FROM {SCHEMA}.books")] == [(5, "fifth")]
    assert [tuple(x) for x in await pg.fetch(f"SELECT id FROM {SCHEMA}.reviews")] == [(5,)]
    # the referenced table and unrelated tables keep every row
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.authors") == 2
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.items") == 3


async def test_import_without_truncate_is_not_refused_for_referenced_tables(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    r = await import_sql(gw, f"INSERT INTO {SCHEMA}.authors VALUES (9, 'new');\n", truncate=False)
    assert r.status_code == 200, r.text
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.authors") == 3
    assert await pg.fetchval(f"SELECT count(*) FROM {SCHEMA}.books") == 2
