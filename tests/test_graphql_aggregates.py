"""GraphQL aggregates over HTTP against the real database, with REST parity on the shared planner:
``<t>_aggregate(filter)``, ``<t>_groups(by, filter, limit, offset)`` and ``<relation>_aggregate`` on
to-many relations — one statement per root field, RLS applied to what is aggregated."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_agg"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.writers (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, writer_id int REFERENCES {SCHEMA}.writers(id), status text,
                              views int, big bigint, price numeric, score float8, at timestamptz, owner uuid);
ALTER TABLE {SCHEMA}.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_admin ON {SCHEMA}.posts FOR SELECT TO project_admin USING (true);
CREATE POLICY posts_mine ON {SCHEMA}.posts FOR SELECT TO authenticated USING (owner = auth.uid());
INSERT INTO {SCHEMA}.writers VALUES (1, 'Ann'), (2, 'Bob'), (3, 'Cy');
INSERT INTO {SCHEMA}.posts VALUES
  (1, 1, 'published', 10, 9007199254740993, 1.10, 0.5, '2024-01-01T00:00:00Z', '{{ALICE}}'),
  (2, 1, 'published', 20, 1, 2.20, 1.5, '2024-01-02T00:00:00Z', NULL),
  (3, 2, 'draft', 5, 1, 3.30, NULL, '2024-01-03T00:00:00Z', '{{ALICE}}'),
  (4, 2, 'published', NULL, NULL, NULL, 2.0, '2024-01-04T00:00:00Z', NULL);
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    alice = str(uuid.uuid5(uuid.NAMESPACE_DNS, "alice"))
    async with app_with(pg_url, FIXTURE.replace("{ALICE}", alice), (SCHEMA,)) as running:
        assert running.uid("alice") == alice
        yield running


async def data(gw: Running, query: str, headers: dict[str, str] | None = None) -> Any:
    response = await gw.client.post("/graphql", headers=headers or gw.admin, json={"query": query})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


async def rest(gw: Running, query: str) -> Any:
    response = await gw.client.get(f"/api/database/records/posts?{query}", headers={
        **gw.admin, "Accept-Profile": SCHEMA})
    assert response.status_code == 200, response.text
    return response.json()


async def test_an_aggregate_of_the_filtered_rows_matches_rest(gw: Running) -> None:
    got = await data(gw, '{ posts_aggregate(filter: {status: {eq: "published"}}) { count sum { views big price '
                         "score } avg { views } min { at views } max { at price } } }")
    assert got["posts_aggregate"] == {
        "count": 3, "sum": {"views": "30", "big": "9007199254740994", "price": "3.30", "score": 4.0},
        "avg": {"views": "15.0000000000000000"}, "min": {"at": "2024-01-01T00:00:00+00:00", "views": 10},
        "max": {"at": "2024-01-04T00:00:00+00:00", "price": "2.20"}}
    assert await rest(gw, "select=count(),views:views.sum(),big:big.sum()::text&status=eq.published") == [
        {"count": 3, "views": 30, "big": "9007199254740994"}]


async def test_an_aggregate_of_nothing_counts_zero(gw: Running) -> None:
    got = await data(gw, '{ posts_aggregate(filter: {status: {eq: "none"}}) { count sum { views } } }')
    assert got["posts_aggregate"] == {"count": 0, "sum": {"views": None}}


async def test_groups_aggregate_per_value_of_the_by_columns(gw: Running) -> None:
    got = await data(gw, "{ posts_groups(by: [status]) { key { status } count sum { views } } }")
    assert got["posts_groups"] == [{"key": {"status": "draft"}, "count": 1, "sum": {"views": "5"}},
                                   {"key": {"status": "published"}, "count": 3, "sum": {"views": "30"}}]
    rest_rows = await rest(gw, "select=status,count()&order=status")
    assert [(r["status"], r["count"]) for r in rest_rows] == [("draft", 1), ("published", 3)]


async def test_groups_page_and_refuse_a_key_outside_by(gw: Running) -> None:
    got = await data(gw, "{ posts_groups(by: [writer_id, status], limit: 2, offset: 1) { key { writer_id status } "
                         "count } }")
    assert got["posts_groups"] == [{"key": {"writer_id": 2, "status": "draft"}, "count": 1},
                                   {"key": {"writer_id": 2, "status": "published"}, "count": 1}]
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ posts_groups(by: [status]) { key { writer_id } count } }"})
    assert "not one of the 'by' columns" in response.json()["errors"][0]["message"]


async def test_a_to_many_relation_aggregate_sits_beside_the_list(gw: Running) -> None:
    got = await data(gw, "{ writers(orderBy: [{id: ASC}]) { name posts_aggregate { count max { views } } "
                         "recent: posts_aggregate(filter: {status: {eq: \"published\"}}) { count } } }")
    assert got["writers"] == [
        {"name": "Ann", "posts_aggregate": {"count": 2, "max": {"views": 20}}, "recent": {"count": 2}},
        {"name": "Bob", "posts_aggregate": {"count": 2, "max": {"views": 5}}, "recent": {"count": 1}},
        {"name": "Cy", "posts_aggregate": {"count": 0, "max": {"views": None}}, "recent": {"count": 0}}]
    rest_rows = (await gw.client.get("/api/database/records/writers?select=name,posts(count)&order=id", headers={
        **gw.admin, "Accept-Profile": SCHEMA})).json()
    assert [r["posts"][0]["count"] for r in rest_rows] == [2, 2, 0]


@pytest.mark.parametrize("query", [
    "{ posts_aggregate { count } }",
    "{ writers(filter: {id: {eq: 1}}) { posts_aggregate { count } } }",
])
async def test_rls_decides_what_is_aggregated(gw: Running, query: str) -> None:
    admin = await data(gw, query)
    alice = await data(gw, query, gw.user("alice"))
    def count(d: Any) -> int:
        return int(d["posts_aggregate"]["count"] if "posts_aggregate" in d
                   else d["writers"][0]["posts_aggregate"]["count"])
    expected = (4, 2) if query.startswith("{ posts") else (2, 1)  # alice owns posts 1 and 3
    assert (count(admin), count(alice)) == expected
