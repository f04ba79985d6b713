"""GraphQL filters and ordering through relationships, over HTTP against the real database.

``<T>Filter`` has a field per relation: to-one ``author: UsersFilter`` (the linked row matches),
to-many ``comments: CommentsFilter`` (at least one related row matches); ``and/or/not`` combine
them. ``<T>OrderBy`` has a field per to-one relation. Related rows are read as the caller, so RLS
decides what they can match. Results are compared with REST's ``!inner`` embeds, PostgREST's way
of filtering through a relationship.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_rel"
ALICE, BOB = (uuid.uuid5(uuid.NAMESPACE_DNS, name) for name in ("alice", "bob"))  # as support.Running.uid

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.authors (id int PRIMARY KEY, name text NOT NULL, country text);
CREATE TABLE {SCHEMA}.books (id int PRIMARY KEY, title text NOT NULL,
                              author_id int NOT NULL REFERENCES {SCHEMA}.authors(id),
                              editor_id int REFERENCES {SCHEMA}.authors(id));
CREATE TABLE {SCHEMA}.reviews (id int PRIMARY KEY, book_id int REFERENCES {SCHEMA}.books(id), stars int,
                                owner uuid);
ALTER TABLE {SCHEMA}.reviews ENABLE ROW LEVEL SECURITY;
CREATE POLICY reviews_mine ON {SCHEMA}.reviews FOR SELECT TO authenticated USING (owner = auth.uid());
CREATE POLICY reviews_admin ON {SCHEMA}.reviews FOR SELECT TO project_admin USING (true);
INSERT INTO {SCHEMA}.authors VALUES (1, 'Ann', 'NO'), (2, 'Bob', 'SE'), (3, 'Cy', NULL);
INSERT INTO {SCHEMA}.books VALUES (1, 'Fjords', 1, 2), (2, 'Lakes', 2, NULL), (3, 'Moors', 3, 1), (4, 'Hills', 1, 3);
INSERT INTO {SCHEMA}.reviews VALUES (1, 1, 5, '{ALICE}'), (2, 1, 2, '{BOB}'), (3, 2, 4, '{BOB}'), (4, 3, 1, '{ALICE}');
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        assert running.uid("alice") == str(ALICE)
        yield running


async def ids(gw: Running, query: str, headers: dict[str, str] | None = None) -> list[int]:
    response = await gw.client.post("/graphql", json={"query": query}, headers=headers or gw.admin)
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    (rows,) = body["data"].values()
    return [row["id"] for row in rows]


async def rest_ids(gw: Running, query: str, headers: dict[str, str] | None = None) -> list[int]:
    response = await gw.client.get(f"/api/database/records/books?{query}", headers={
        **(headers or gw.admin), "Accept-Profile": SCHEMA})
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


@pytest.mark.parametrize(("graphql_filter", "rest_query", "expected"), [
    ('{author: {country: {eq: "NO"}}}', "select=id,authors!books_author_id_fkey!inner(id)&authors.country=eq.NO",
     [1, 4]),
    ("{editor: {id: {is: NOT_NULL}}}", "select=id,authors!books_editor_id_fkey!inner(id)", [1, 3, 4]),
    ("{reviews: {stars: {gte: 4}}}", "select=id,reviews!inner(id)&reviews.stars=gte.4", [1, 2]),
    ("{reviews: {}}", "select=id,reviews!inner(id)", [1, 2, 3]),
])
async def test_a_relation_filter_keeps_the_rows_rest_inner_embeds_keep(
        gw: Running, graphql_filter: str, rest_query: str, expected: list[int]) -> None:
    assert await ids(gw, f"{{ books(filter: {graphql_filter}, orderBy: [{{id: ASC}}]) {{ id }} }}") == expected
    assert await rest_ids(gw, f"{rest_query}&order=id") == expected


async def test_relation_filters_combine_with_and_or_not(gw: Running) -> None:
    query = ('{ books(filter: {or: [{author: {name: {eq: "Bob"}}}, {not: {reviews: {}}}]}, orderBy: [{id: ASC}])'
             " { id } }")
    assert await ids(gw, query) == [2, 4]


async def test_filters_nest_through_several_relations(gw: Running) -> None:
    query = '{ authors(filter: {books_by_author_id: {reviews: {stars: {eq: 1}}}}) { id } }'
    assert await ids(gw, query) == [3]


async def test_rls_on_the_related_rows_decides_what_a_relation_filter_can_match(gw: Running) -> None:
    query = "{ books(filter: {reviews: {stars: {gte: 2}}}, orderBy: [{id: ASC}]) { id } }"
    assert await ids(gw, query) == [1, 2]
    assert await ids(gw, query, gw.user("alice")) == [1]  # alice's 5 on book 1; bob's reviews are hidden
    assert await ids(gw, query, gw.user("bob")) == [1, 2]


async def test_ordering_by_a_to_one_relations_column(gw: Running) -> None:
    assert await ids(gw, "{ books(orderBy: [{author: {name: DESC}}, {id: ASC}]) { id } }") == [3, 2, 1, 4]
    assert await ids(gw, "{ books(orderBy: [{editor: {name: ASC_NULLS_FIRST}}, {id: ASC}]) { id } }") == [2, 3, 1, 4]


async def test_ordering_two_relations_deep_is_a_clear_error(gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ reviews(orderBy: [{book: {author: {name: ASC}}}]) { id } }"})
    body = response.json()
    assert body["data"] is None and "one relation deep" in body["errors"][0]["message"]


async def test_distinct_on_keeps_the_first_row_per_value_in_the_given_order(gw: Running) -> None:
    query = "{ books(distinctOn: [author_id], orderBy: [{author_id: ASC}, {id: DESC}]) { id } }"
    assert await ids(gw, query) == [4, 2, 3]  # Ann's latest book, then Bob's, then Cy's
    nested = await gw.client.post("/graphql", headers=gw.admin, json={"query": (
        "{ authors(filter: {id: {eq: 1}}) { id books_by_author_id(distinctOn: [author_id], "
        "orderBy: [{author_id: ASC}, {title: ASC}]) { title } } }")})
    assert nested.json() == {"data": {"authors": [{"id": 1, "books_by_author_id": [{"title": "Fjords"}]}]}}


async def test_distinct_on_columns_that_do_not_lead_the_order_are_a_clear_error(gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": "{ books(distinctOn: [author_id], orderBy: [{id: ASC}]) { id } }"})
    body = response.json()
    assert body["data"] is None
    assert "must match the leading orderBy columns" in body["errors"][0]["message"]
    assert body["errors"][0]["extensions"]["statusCode"] == 400
