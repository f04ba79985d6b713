"""Cursor pagination (``<t>_connection``) over HTTP against the real database: keyset pages forward
and backward, NULLs in the order, stability under inserts, cursors tied to their order, totalCount
only when asked for, and RLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from support import Running, app_with

from gateway.graphql import connection

SCHEMA = "gql_conn"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.items (id int PRIMARY KEY, grp int, label text, owner uuid);
ALTER TABLE {SCHEMA}.items ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON {SCHEMA}.items FOR SELECT TO authenticated USING (owner = auth.uid());
GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
"""
# grp: 1, 1, 2, 2, NULL, NULL, 3 ... for ids 1..10
DATA = f"""
TRUNCATE {SCHEMA}.items;
INSERT INTO {SCHEMA}.items SELECT g, CASE WHEN g IN (5, 6) THEN NULL ELSE (g + 1) / 2 END, 'i' || g,
    CASE WHEN g % 2 = 0 THEN '{{ALICE}}'::uuid END FROM generate_series(1, 10) g;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        yield running


@pytest_asyncio.fixture
async def data(gw: Running, pg: asyncpg.Connection) -> None:
    await pg.execute(DATA.replace("{ALICE}", gw.uid("alice")))


async def page(gw: Running, args: str, fields: str = "nodes { id } pageInfo { hasNextPage hasPreviousPage "
               "startCursor endCursor }", headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await gw.client.post("/graphql", headers=headers or gw.admin, json={
        "query": f"{{ items_connection({args}) {{ {fields} }} }}"})
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["items_connection"]
    return result


def ids(result: dict[str, Any]) -> list[int]:
    return [n["id"] for n in result["nodes"]]


async def walk_forward(gw: Running, order: str, size: int) -> list[int]:
    seen: list[int] = []
    after = ""
    for _ in range(20):
        result = await page(gw, f"first: {size}, orderBy: {order}{after}")
        seen += ids(result)
        if not result["pageInfo"]["hasNextPage"]:
            return seen
        after = f', after: "{result["pageInfo"]["endCursor"]}"'
    raise AssertionError("pagination did not end")


async def walk_backward(gw: Running, order: str, size: int) -> list[int]:
    seen: list[int] = []
    before = ""
    for _ in range(20):
        result = await page(gw, f"last: {size}, orderBy: {order}{before}")
        seen = ids(result) + seen
        if not result["pageInfo"]["hasPreviousPage"]:
            return seen
        before = f', before: "{result["pageInfo"]["startCursor"]}"'
    raise AssertionError("pagination did not end")


@pytest.mark.parametrize(("order", "expected"), [
    ("[{id: ASC}]", list(range(1, 11))),
    ("[{id: DESC}]", list(range(10, 0, -1))),
    ("[{grp: ASC}]", [1, 2, 3, 4, 7, 8, 9, 10, 5, 6]),  # NULLs last, ties by id
    ("[{grp: DESC}]", [5, 6, 9, 10, 7, 8, 3, 4, 1, 2]),  # NULLs first
    ("[{grp: ASC_NULLS_FIRST}, {id: DESC}]", [6, 5, 2, 1, 4, 3, 8, 7, 10, 9]),
    ("[{grp: DESC_NULLS_LAST}, {label: ASC}]", [10, 9, 7, 8, 3, 4, 1, 2, 5, 6]),  # "i10" < "i9"
])
@pytest.mark.parametrize("size", [1, 3, 4])
async def test_pages_forward_and_backward_visit_every_row_once_in_order(
        gw: Running, data: None, order: str, expected: list[int], size: int) -> None:
    assert await walk_forward(gw, order, size) == expected
    assert await walk_backward(gw, order, size) == expected


async def test_page_info_and_edges(gw: Running, data: None) -> None:
    first = await page(gw, "first: 2, orderBy: [{id: ASC}]",
                       "edges { cursor node { id label } } pageInfo { hasNextPage hasPreviousPage endCursor }")
    assert [e["node"] for e in first["edges"]] == [{"id": 1, "label": "i1"}, {"id": 2, "label": "i2"}]
    assert first["pageInfo"]["hasNextPage"] and not first["pageInfo"]["hasPreviousPage"]
    assert first["pageInfo"]["endCursor"] == first["edges"][-1]["cursor"]
    second = await page(gw, f'first: 2, after: "{first["pageInfo"]["endCursor"]}", orderBy: [{{id: ASC}}]')
    assert ids(second) == [3, 4] and second["pageInfo"]["hasPreviousPage"]


async def test_a_page_after_a_cursor_is_stable_when_rows_are_inserted_before_it(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    first = await page(gw, "first: 3, orderBy: [{id: ASC}]")
    await pg.execute(f"INSERT INTO {SCHEMA}.items (id, grp) VALUES (0, 0), (-1, 0)")
    second = await page(gw, f'first: 3, after: "{first["pageInfo"]["endCursor"]}", orderBy: [{{id: ASC}}]')
    assert ids(second) == [4, 5, 6]


async def test_a_cursor_from_another_order_or_a_forged_one_is_refused(gw: Running, data: None) -> None:
    cursor = (await page(gw, "first: 1, orderBy: [{id: ASC}]"))["pageInfo"]["endCursor"]
    forged = connection.encode("0" * 16, ["1"])
    for args in (f'first: 1, after: "{cursor}", orderBy: [{{grp: ASC}}]', 'first: 1, after: "not-a-cursor"',
                 f'first: 1, after: "{forged}"'):
        response = await gw.client.post("/graphql", headers=gw.admin, json={
            "query": f"{{ items_connection({args}) {{ nodes {{ id }} }} }}"})
        error = response.json()["errors"][0]
        assert "cursor" in error["message"] and error["extensions"]["statusCode"] == 400


async def test_total_count_counts_the_filter_not_the_page(gw: Running, data: None) -> None:
    result = await page(gw, "first: 2, filter: {grp: {is: NOT_NULL}}", "totalCount nodes { id }")
    assert result["totalCount"] == 8 and len(result["nodes"]) == 2


async def test_rls_decides_which_rows_a_connection_pages_through(gw: Running, data: None) -> None:
    result = await page(gw, "first: 10", "totalCount nodes { id }", gw.user("alice"))
    assert ids(result) == [2, 4, 6, 8, 10] and result["totalCount"] == 5


async def test_first_and_last_together_are_refused(gw: Running, data: None) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ items_connection(first: 1, last: 1) { nodes { id } } }"})
    assert "first or last" in response.json()["errors"][0]["message"]
