"""GraphQL computed fields, computed relationships, relations through views and set-returning root
functions, over HTTP against the real database, with REST parity where REST has the feature."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_comp"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.users (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, title text NOT NULL, user_id int REFERENCES {SCHEMA}.users(id));
CREATE TABLE {SCHEMA}.comments (id int PRIMARY KEY, post_id int REFERENCES {SCHEMA}.posts(id), body text);
INSERT INTO {SCHEMA}.users VALUES (1, 'Ann'), (2, 'Bob');
INSERT INTO {SCHEMA}.posts VALUES (1, 'hello', 1), (2, 'world', 2), (3, 'again', 1);
INSERT INTO {SCHEMA}.comments VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');
CREATE FUNCTION {SCHEMA}.title_upper(p {SCHEMA}.posts) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT upper(p.title) $$;
CREATE FUNCTION {SCHEMA}.recent_comments(p {SCHEMA}.posts) RETURNS SETOF {SCHEMA}.comments LANGUAGE sql STABLE
    AS $$ SELECT * FROM {SCHEMA}.comments c WHERE c.post_id = p.id ORDER BY c.id DESC $$;
CREATE FUNCTION {SCHEMA}.posts_titled(q text) RETURNS SETOF {SCHEMA}.posts LANGUAGE sql STABLE
    AS $$ SELECT * FROM {SCHEMA}.posts WHERE title LIKE q $$;
CREATE VIEW {SCHEMA}.post_cards AS SELECT p.id, p.title, p.user_id AS author FROM {SCHEMA}.posts p;
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        yield running


async def data(gw: Running, query: str) -> Any:
    response = await gw.client.post("/graphql", headers=gw.admin, json={"query": query})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return body["data"]


async def test_a_computed_field_is_selected_filtered_and_ordered_like_a_column(gw: Running) -> None:
    got = await data(gw, '{ posts(filter: {title_upper: {like: "%L%"}}, orderBy: [{title_upper: DESC}]) '
                         "{ id title_upper } }")
    assert got["posts"] == [{"id": 2, "title_upper": "WORLD"}, {"id": 1, "title_upper": "HELLO"}]
    rest = await gw.client.get("/api/database/records/posts?select=id,title_upper&title_upper=like.*L*"
                               "&order=title_upper.desc", headers={**gw.admin, "Accept-Profile": SCHEMA})
    assert rest.json() == got["posts"]


async def test_a_computed_relationship_embeds_like_a_relation(gw: Running) -> None:
    got = await data(gw, "{ posts(filter: {id: {eq: 1}}) { recent_comments(limit: 1) { body } } }")
    assert got["posts"] == [{"recent_comments": [{"body": "b"}]}]


async def test_functions_of_a_row_are_no_longer_root_fields(gw: Running) -> None:
    fields = (await data(gw, '{ __type(name: "Query") { fields { name } } }'))["__type"]["fields"]
    names = {f["name"] for f in fields}
    assert "title_upper" not in names and "recent_comments" not in names and "posts_titled" in names


async def test_a_set_returning_function_takes_filter_order_and_page(gw: Running) -> None:
    got = await data(gw, '{ posts_titled(q: "%o%", filter: {user_id: {eq: 1}}, orderBy: [{id: DESC}], limit: 1) '
                         "{ id title } }")
    assert got["posts_titled"] == [{"id": 1, "title": "hello"}]


async def test_a_view_has_the_relations_of_its_base_tables(gw: Running) -> None:
    got = await data(gw, "{ post_cards(orderBy: [{id: ASC}], limit: 2) { id users { name } } }")
    assert got["post_cards"] == [{"id": 1, "users": {"name": "Ann"}}, {"id": 2, "users": {"name": "Bob"}}]
    filtered = await data(gw, '{ post_cards(filter: {users: {name: {eq: "Bob"}}}) { id } }')
    assert filtered["post_cards"] == [{"id": 2}]
    rest = await gw.client.get("/api/database/records/post_cards?select=id,users(name)&order=id&limit=2",
                               headers={**gw.admin, "Accept-Profile": SCHEMA})
    assert rest.json() == got["post_cards"]
