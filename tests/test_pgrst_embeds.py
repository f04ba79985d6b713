"""Embedding the PostgREST way, round two, over HTTP: self-referencing tables, foreign-key
constraint and column names as embed targets, hints on either side, and ordering by an aliased
embed.

PostgREST documentation, API reference, "Resource Embedding": "Foreign Key Joins" (target by
table, constraint or column name), "Disambiguation" and "Hints" (``!fk``, ``!column``), "Recursive
Relationships" (a self reference: the table name embeds the children, the FK column the parent),
"Spread To-Many relationships" (``...messages(id)``: each column an array, correlated), and
"Ordering" of "Related tables" (``order=alias(column).desc``). The schema is
``pgrst_fixture``'s, exposed as ``pgrst_embeds``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

SCHEMA = "pgrst_embeds"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def get(app: Running, path: str) -> httpx.Response:
    return await app.client.get(f"/api/database/records/{path}", headers=app.user())


SELF_REFERENCES: list[tuple[str, Any]] = [
    # the table name embeds the children (the to-many side)
    ("collections?id=eq.1&select=id,collections(id)&collections.order=id",
     [{"id": 1, "collections": [{"id": 2}, {"id": 3}]}]),
    ("collections?id=eq.3&select=id,collections(id)", [{"id": 3, "collections": []}]),
    # the FK column embeds the parent (the to-one side)
    ("collections?id=eq.4&select=id,parent_id(id,description)",
     [{"id": 4, "parent_id": {"id": 2, "description": "child a"}}]),
    ("collections?id=eq.1&select=id,parent:parent_id(id)", [{"id": 1, "parent": None}]),
    ("collections?id=eq.3&select=id,up:collections_parent_id_fkey(id)", [{"id": 3, "up": {"id": 1}}]),
    # both sides at once, aliased
    ("collections?id=eq.2&select=id,parent:parent_id(id),children:collections(id)",
     [{"id": 2, "parent": {"id": 1}, "children": [{"id": 4}]}]),
    # the hinted forms pick the children through that FK: by its column or by its constraint
    ("collections?id=eq.1&select=id,collections!parent_id(id)&collections.order=id",
     [{"id": 1, "collections": [{"id": 2}, {"id": 3}]}]),
    ("collections?id=eq.1&select=id,kids:collections!collections_parent_id_fkey(id,description)&kids.order=id.desc",
     [{"id": 1, "kids": [{"id": 3, "description": "child b"}, {"id": 2, "description": "child a"}]}]),
    # nested levels of the same table, filters and !inner inside a self embed
    ("collections?id=eq.1&select=id,collections(id,collections(id))&collections.order=id",
     [{"id": 1, "collections": [{"id": 2, "collections": [{"id": 4}]}, {"id": 3, "collections": []}]}]),
    ("collections?id=eq.1&select=id,collections(id)&collections.description=eq.child b",
     [{"id": 1, "collections": [{"id": 3}]}]),
    ("collections?select=id,collections!inner(id)&order=id&collections.order=id",
     [{"id": 1, "collections": [{"id": 2}, {"id": 3}]}, {"id": 2, "collections": [{"id": 4}]}]),
    # a unique self reference is one-to-one on both sides: an object each way
    ("employees?id=eq.1&select=name,employees(name)", [{"name": "First", "employees": {"name": "Second"}}]),
    ("employees?id=eq.2&select=name,successor_of(name)", [{"name": "Second", "successor_of": {"name": "First"}}]),
]


@pytest.mark.parametrize(("path", "expected"), SELF_REFERENCES)
async def test_self_referencing_tables_embed_children_by_table_name_and_parent_by_column(
        app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


TARGETS: list[tuple[str, Any]] = [
    # the constraint name as the target, on the to-many side and on the to-one side
    ("users?username=eq.supabot&select=username,first_friend_of:best_friends_first_user_fkey(id)"
     "&first_friend_of.order=id",
     [{"username": "supabot", "first_friend_of": [{"id": 1}, {"id": 2}]}]),
    ("best_friends?id=eq.1&select=id,best_friends_second_user_fkey(username)",
     [{"id": 1, "best_friends_second_user_fkey": {"username": "kiwicopple"}}]),
    # a column of the parent as the target: its FK column (to-one) or its referenced column (to-many)
    ("best_friends?id=eq.2&select=id,third:third_user(username),first_user(username)",
     [{"id": 2, "third": None, "first_user": {"username": "supabot"}}]),
    ("channels?id=eq.2&select=slug,msgs:id(id)", [{"slug": "random", "msgs": [{"id": 2}]}]),
    # a hint naming the column on either side of the FK
    ("users?username=eq.supabot&select=username,messages!reviewer(id)",
     [{"username": "supabot", "messages": [{"id": 3}]}]),
    ("messages?id=eq.1&select=id,users!reviewer(username)", [{"id": 1, "users": {"username": "kiwicopple"}}]),
    ("messages?id=eq.1&select=id,users!messages_username_fkey(username)",
     [{"id": 1, "users": {"username": "supabot"}}]),
]


@pytest.mark.parametrize(("path", "expected"), TARGETS)
async def test_constraint_and_column_names_work_as_embed_targets_and_hints(
        app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


ORDERS: list[tuple[str, list[int]]] = [
    ("messages?select=id,author:users!messages_username_fkey(email)&order=author(email).desc.nullslast,id",
     [3, 1, 2, 4]),
    ("messages?select=id,author:users!messages_username_fkey(email)&order=author(email).asc.nullsfirst,id",
     [4, 1, 2, 3]),
    ("messages?select=id,checker:users!reviewer(username)&order=checker(username).asc.nullslast,id", [1, 3, 2, 4]),
    ("best_friends?select=id,second:best_friends_second_user_fkey(username)&order=second(username).desc", [1, 2]),
]


@pytest.mark.parametrize(("path", "ids"), ORDERS)
async def test_order_by_a_column_of_an_aliased_to_one_embed(app: Running, path: str, ids: list[int]) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert [row["id"] for row in r.json()] == ids


SPREADS: list[tuple[str, Any]] = [
    ("channels?select=channel_id:id,...messages(id,message)&id=eq.2",
     [{"channel_id": 2, "id": [2], "message": ["Perfection is attained"]}]),
    ("channels?select=slug,...messages(ids:id,rev:reviewer)&id=eq.1&messages.order=id",
     [{"slug": "public", "ids": [1, 3, 4], "rev": ["kiwicopple", "supabot", None]}]),
    ("channels?select=slug,...messages(ids:id)&id=eq.1&messages.order=id.desc", [{"slug": "public", "ids": [4, 3, 1]}]),
    ("channels?select=slug,...messages(ids:id)&id=eq.3", [{"slug": "empty", "ids": []}]),
    ("channels?select=slug,...messages(ids:id)&id=eq.1&messages.username=eq.supabot",
     [{"slug": "public", "ids": [1]}]),
    # a to-one spread inside stays one value per row, so it becomes an array too
    ("channels?select=slug,...messages(ids:id,...users!messages_username_fkey(email))&id=eq.2",
     [{"slug": "random", "ids": [2], "email": ["bot@example.com"]}]),
    ("channels?select=slug,...get_messages(mid:id)&id=eq.2", [{"slug": "random", "mid": [2]}]),
]


@pytest.mark.parametrize(("path", "expected"), SPREADS)
async def test_a_to_many_spread_turns_each_column_into_a_correlated_array(
        app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


REFUSED: list[tuple[str, int, str]] = [
    # two FKs from messages to users: the table name alone is ambiguous
    ("users?select=username,messages(id)", 300, "PGRST201"),
    ("best_friends?select=id,users(username)", 300, "PGRST201"),
    ("collections?select=id,collections!nonexistent(id)", 400, "PGRST200"),
    ("users?select=username,messages!nonexistent(id)", 400, "PGRST200"),
    # a hint naming a column that is on one side of one FK and the other side of another is ambiguous
    ("messages?select=id,users!username(email)", 300, "PGRST201"),
    # ordering by a to-many embed stays refused
    ("channels?select=id,msgs:messages(id)&order=msgs(id)", 400, "PGRST118"),
]


@pytest.mark.parametrize(("path", "status", "code"), REFUSED)
async def test_ambiguous_or_unknown_relationships_are_refused_with_postgrest_codes(
        app: Running, path: str, status: int, code: str) -> None:
    r = await get(app, path)
    assert_error(r, status, code if status == 300 else "INVALID_QUERY", code)


async def test_graphql_self_references_and_views_keep_working(app: Running) -> None:
    query = ('{ collections(orderBy: [{id: ASC}], limit: 2) { id parent { id } } '
             'recent_messages(orderBy: [{id: ASC}], limit: 1) { id username } }')
    r = await app.client.post("/graphql", json={"query": query}, headers=app.user())
    assert r.status_code == 200, r.text
    assert r.json() == {"data": {"collections": [{"id": 1, "parent": None}, {"id": 2, "parent": {"id": 1}}],
                                 "recent_messages": [{"id": 2, "username": "supabot"}]}}
