"""Embedding through views over HTTP: a view's relationships come from its base tables' foreign
keys through the view's columns, in both directions, between views, and through chains of views.

PostgREST documentation, API reference: "Resource Embedding" -> "Embedding Views" ("PostgREST
infers the relationships of a view based on the source tables of the view ... Views can also
depend on other views, which in turn depend on the actual base table"). The schema is
``pgrst_fixture``'s: ``recent_messages`` (messages joined to channels), ``active_users`` (over
users) and ``recent_public`` (a view over ``recent_messages``), exposed as ``pgrst_views``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

from gateway.viewlineage import column_origins, tokens

SCHEMA = "pgrst_views"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def get(app: Running, path: str) -> httpx.Response:
    return await app.client.get(f"/api/database/records/{path}", headers=app.user())


THROUGH_VIEWS: list[tuple[str, Any]] = [
    # view -> table (to-one) and table -> view (to-many)
    ("recent_messages?select=message,users(username)&id=eq.3",
     [{"message": "Supabase launch week", "users": {"username": "kiwicopple"}}]),
    ("recent_messages?select=id,channels(slug)&id=eq.2", [{"id": 2, "channels": {"slug": "random"}}]),
    ("users?select=username,recent_messages(id)&username=eq.supabot", [{"username": "supabot",
                                                                        "recent_messages": [{"id": 2}]}]),
    ("channels?select=id,recent_messages(id)&id=eq.1&recent_messages.order=id",
     [{"id": 1, "recent_messages": [{"id": 3}, {"id": 4}]}]),
    # view <-> view
    ("recent_messages?select=id,active_users(email)&id=eq.2",
     [{"id": 2, "active_users": {"email": "bot@example.com"}}]),
    ("active_users?select=username,recent_messages(id)&username=eq.awailas",
     [{"username": "awailas", "recent_messages": [{"id": 4}]}]),
    # a chain: a view over a view over messages
    ("recent_public?select=id,users(username)&order=id", [{"id": 3, "users": {"username": "kiwicopple"}},
                                                           {"id": 4, "users": {"username": "awailas"}}]),
    ("users?select=username,recent_public(id)&username=eq.kiwicopple",
     [{"username": "kiwicopple", "recent_public": [{"id": 3}]}]),
    ("recent_public?select=id,active_users(username)&id=eq.4", [{"id": 4, "active_users": {"username": "awailas"}}]),
    # filters, !inner and aggregates across a view relationship
    ("active_users?select=username,recent_messages!inner(id)&order=username",
     [{"username": "awailas", "recent_messages": [{"id": 4}]},
      {"username": "supabot", "recent_messages": [{"id": 2}]}]),
    ("users?select=username,recent_messages(count)&username=eq.supabot",
     [{"username": "supabot", "recent_messages": [{"count": 1}]}]),
]


@pytest.mark.parametrize(("path", "expected"), THROUGH_VIEWS)
async def test_views_embed_through_their_base_tables_foreign_keys(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


async def test_a_view_without_the_fk_column_has_no_relationship(app: Running) -> None:
    # active_users shows username and email only: nothing relates it to channels
    assert_error(await get(app, "active_users?select=username,channels(id)"), 400, "INVALID_QUERY", "PGRST200")


def test_the_node_tree_reader_keeps_escaped_names_and_skips_computed_columns() -> None:
    assert tokens(r"{TARGETENTRY :resname my\ col :resorigtbl 5}") == [
        "{", "TARGETENTRY", ":resname", "my col", ":resorigtbl", "5", "}"]
    tree = ("({QUERY :commandType 1 :rtable ({RANGETBLENTRY :subquery {QUERY :targetList ({TARGETENTRY "
            ":resname inner :resorigtbl 9 :resorigcol 9 :resjunk false})}}) :targetList ("
            "{TARGETENTRY :expr {CONST :constvalue 4 [ 1 0 0 0 ]} :resname two :resorigtbl 0 :resorigcol 0 "
            ":resjunk false} {TARGETENTRY :resname id :resorigtbl 16384 :resorigcol 1 :resjunk false} "
            "{TARGETENTRY :resname hidden :resorigtbl 16384 :resorigcol 2 :resjunk true})})")
    assert column_origins(tree) == {"id": (16384, 1)}
