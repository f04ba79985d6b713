"""Computed fields and computed relationships over HTTP.

PostgREST documentation, API reference: "Computed Fields" (a function taking the table's row type,
selected like a column and usable in filters and order; not part of ``*``) and "Resource
Embedding" -> "Computed Relationships" (``f(t) RETURNS SETOF u`` embeds as to-many, ``ROWS 1`` or
``RETURNS u`` as to-one; filters, order and !inner inside them). The schema is
``pgrst_fixture``'s (``blurb_message(messages)``, ``get_messages(channels)``, ``author(messages)``),
exposed as ``pgrst_computed``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

SCHEMA = "pgrst_computed"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def get(app: Running, path: str) -> httpx.Response:
    return await app.client.get(f"/api/database/records/{path}", headers=app.user())


COMPUTED: list[tuple[str, Any]] = [
    # computed fields: selected, aliased, cast, filtered and ordered like columns
    ("messages?select=message,blurb_message&id=eq.1", [{"message": "Hello World", "blurb_message": "Hel"}]),
    ("messages?select=id,b:blurb_message::text&blurb_message=eq.Sup", [{"id": 3, "b": "Sup"}]),
    ("messages?select=id&blurb_message=like.*e*&order=blurb_message.desc", [{"id": 2}, {"id": 1}]),
    ("messages?select=id&order=blurb_message", [{"id": 1}, {"id": 4}, {"id": 2}, {"id": 3}]),
    # not part of *
    ("channels?select=*&id=eq.3", [{"id": 3, "slug": "empty"}]),
    # computed relationships: to-many, to-one (ROWS 1), nested, filtered and ordered inside
    ("channels?select=id,get_messages(id,message)&id=eq.2", [{"id": 2, "get_messages": [
        {"id": 2, "message": "Perfection is attained"}]}]),
    ("channels?select=id,msgs:get_messages(id)&id=in.(1,3)&order=id&msgs.order=id.desc",
     [{"id": 1, "msgs": [{"id": 4}, {"id": 3}, {"id": 1}]}, {"id": 3, "msgs": []}]),
    ("channels?select=id,get_messages(id)&id=eq.1&get_messages.amount=gte.10",
     [{"id": 1, "get_messages": [{"id": 1}]}]),
    ("messages?select=id,author(username,status)&id=eq.3",
     [{"id": 3, "author": {"username": "kiwicopple", "status": "OFFLINE"}}]),
    ("channels?select=id,get_messages(id,blurb_message,author(username))&id=eq.2",
     [{"id": 2, "get_messages": [{"id": 2, "blurb_message": "Per", "author": {"username": "supabot"}}]}]),
    ("channels?select=id,get_messages!inner(id)&order=id",
     [{"id": 1, "get_messages": [{"id": 1}, {"id": 3}, {"id": 4}]}, {"id": 2, "get_messages": [{"id": 2}]}]),
    ("channels?select=id,top:top_message(id,amount)&id=in.(1,3)&order=id",
     [{"id": 1, "top": {"id": 1, "amount": 10}}, {"id": 3, "top": None}]),
    ("channels?select=slug,get_messages(count)&order=id",
     [{"slug": "public", "get_messages": [{"count": 3}]}, {"slug": "random", "get_messages": [{"count": 1}]},
      {"slug": "empty", "get_messages": [{"count": 0}]}]),
]


@pytest.mark.parametrize(("path", "expected"), COMPUTED)
async def test_computed_fields_and_relationships_act_like_columns_and_embeds(
        app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


async def test_computed_fields_work_on_a_paged_parent_with_embeds(app: Running) -> None:
    r = await get(app, "messages?select=id,blurb_message,channels(slug)&order=id&limit=2")
    assert r.status_code == 200, r.text
    assert r.json() == [{"id": 1, "blurb_message": "Hel", "channels": {"slug": "public"}},
                        {"id": 2, "blurb_message": "Per", "channels": {"slug": "random"}}]


async def test_computed_fields_shape_written_rows(app: Running) -> None:
    r = await app.client.post("/api/database/records/messages?select=id,blurb_message",
                              json={"id": 50, "message": "Written", "channel_id": 1, "username": "supabot"},
                              headers={**app.user(), "Prefer": "return=representation, tx=rollback"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"id": 50, "blurb_message": "Wri"}]


async def test_an_unknown_column_or_function_is_still_refused(app: Running) -> None:
    assert_error(await get(app, "messages?select=nope_message"), 400, "INVALID_QUERY", "42703")
    assert_error(await get(app, "channels?select=id,nope_messages(id)"), 400, "INVALID_QUERY", "PGRST200")
    # a computed field of another table is not a column of this one
    assert_error(await get(app, "channels?select=blurb_message"), 400, "INVALID_QUERY", "42703")
