"""The GraphQL cost estimate: rows a query may return, from the limits given and the catalog's
row estimates (``pg_class.reltuples``), not the default page size raised to the nesting depth."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from support import Running, app_with

from gateway.catalog import Column, Table
from gateway.graphql.translate import expected_rows

SCHEMA = "gql_cost"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.people (id int PRIMARY KEY, name text);
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, person_id int REFERENCES {SCHEMA}.people(id));
CREATE TABLE {SCHEMA}.comments (id int PRIMARY KEY, post_id int REFERENCES {SCHEMA}.posts(id), body text);
INSERT INTO {SCHEMA}.people SELECT g, 'p' || g FROM generate_series(1, 20) g;
INSERT INTO {SCHEMA}.posts SELECT g, 1 + g % 20 FROM generate_series(1, 200) g;
INSERT INTO {SCHEMA}.comments SELECT g, 1 + g % 200, 'c' || g FROM generate_series(1, 2000) g;
ANALYZE {SCHEMA}.people, {SCHEMA}.posts, {SCHEMA}.comments;
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_max_cost=5000) as running:
        yield running


def table(rows: int) -> Table:
    return Table("public", f"t{rows}", "table", (Column("id", "int4", "int4", "int"),), row_estimate=rows)


@pytest.mark.parametrize(("limit", "rows", "parent_rows", "expected"), [
    (100, 0, None, 100),  # unknown size: the limit
    (100, 20, None, 20),  # a small table: what it holds
    (100, 2000, 200, 10),  # per parent row: its share
    (5, 2000, 200, 5),  # never more than the limit
    (100, 3, 50, 1),  # at least one row per parent while anything may come back
    (0, 20, None, 0),  # limit 0 asks for nothing
])
def test_expected_rows_are_bounded_by_the_limit_and_the_tables_estimate(
        limit: int, rows: int, parent_rows: int | None, expected: int) -> None:
    parent = table(parent_rows) if parent_rows is not None else None
    assert expected_rows(limit, table(rows), parent) == expected


async def test_three_nested_lists_on_a_small_database_pass_the_default_limits(gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ people { id posts { id comments { body } } } }"})
    body = response.json()
    assert "errors" not in body, body
    assert len(body["data"]["people"]) == 20
    assert sum(len(p["comments"]) for person in body["data"]["people"] for p in person["posts"]) == 2000


async def test_a_query_that_may_return_too_many_rows_is_refused_with_the_estimate_and_the_limit(
        gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ a: comments(limit: 1000) { id } b: comments(limit: 1000) { id } "
                 "c: comments(limit: 1000) { id } d: posts(limit: 1000) { comments(limit: 1000) { id } } }"})
    message = response.json()["errors"][0]["message"]
    assert "exceeds the maximum of 5000" in message and "cost" in message
