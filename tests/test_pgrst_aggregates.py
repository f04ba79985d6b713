"""Aggregates in ``select`` over HTTP: ``count()``, ``sum/avg/min/max``, casts, automatic GROUP BY,
aggregates inside embeds (``messages(count)``), grouping by embeds and spreads, and the switch
that turns them off.

PostgREST documentation, API reference: "Aggregate Functions" (Automatic GROUP BY, The count()
Aggregate, Casting Aggregates, Aggregates and Resource Embedding) and "Errors" (PGRST123 when
aggregates are disabled; here they are served unless ``GATEWAY_AGGREGATES=false``). The schema is
``pgrst_fixture``'s, exposed as ``pgrst_aggregates``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error, running_app

SCHEMA = "pgrst_aggregates"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def get(app: Running, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await app.client.get(f"/api/database/{path}", headers={**app.user(), **(headers or {})})


def by(key: str) -> Any:
    return lambda rows: sorted(rows, key=lambda row: str(row[key]))


AGGREGATES: list[tuple[str, Any]] = [
    ("records/messages?select=amount.sum()", [{"sum": 35}]),
    ("records/messages?select=count()", [{"count": 4}]),
    ("records/messages?select=count()&channel_id=eq.1", [{"count": 3}]),  # filters come first
    ("records/messages?select=reviewer.count()", [{"count": 2}]),  # a column's count skips nulls
    ("records/messages?select=amount.avg()::int,amount.min(),amount.max()", [{"avg": 12, "min": 5, "max": 20}]),
    ("records/messages?select=n:count()::text", [{"n": "4"}]),
    # automatic GROUP BY over the plain columns, with aliases and order
    ("records/messages?select=total:amount.sum(),n:count(),channel_id&order=channel_id",
     [{"total": 15, "n": 3, "channel_id": 1}, {"total": 20, "n": 1, "channel_id": 2}]),
    ("records/messages?select=username,count()&order=username.desc&limit=2",
     [{"username": "supabot", "count": 2}, {"username": "kiwicopple", "count": 1}]),
    # inside embeds: the legacy ``count``, count(), and grouped sums per parent
    ("records/users?select=username,messages!messages_username_fkey(count)&order=username",
     [{"username": "awailas", "messages": [{"count": 1}]}, {"username": "dragarcia", "messages": [{"count": 0}]},
      {"username": "kiwicopple", "messages": [{"count": 1}]}, {"username": "supabot", "messages": [{"count": 2}]}]),
    ("records/channels?select=slug,messages(n:count(),amount.max())&order=id",
     [{"slug": "public", "messages": [{"n": 3, "max": 10}]}, {"slug": "random", "messages": [{"n": 1, "max": 20}]},
      {"slug": "empty", "messages": [{"n": 0, "max": None}]}]),
    ("records/users?select=username,messages!messages_username_fkey(amount.sum(),channel_id)&username=eq.supabot"
     "&messages.order=channel_id",
     [{"username": "supabot", "messages": [{"sum": 10, "channel_id": 1}, {"sum": 20, "channel_id": 2}]}]),
]


@pytest.mark.parametrize(("path", "expected"), AGGREGATES)
async def test_aggregates_group_by_the_plain_columns(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


GROUPED_BY_EMBEDS: list[tuple[str, str, Any]] = [
    ("records/messages?select=amount.sum(),channels(slug)", "sum",
     [{"sum": 15, "channels": {"slug": "public"}}, {"sum": 20, "channels": {"slug": "random"}}]),
    ("records/messages?select=amount.sum(),...channels(slug)", "slug",
     [{"sum": 15, "slug": "public"}, {"sum": 20, "slug": "random"}]),
]


@pytest.mark.parametrize(("path", "key", "expected"), GROUPED_BY_EMBEDS)
async def test_aggregates_group_by_embedded_resources_and_spreads(
        app: Running, path: str, key: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert by(key)(r.json()) == expected


async def test_aggregates_shape_function_results_too(app: Running) -> None:
    r = await app.client.post("/api/database/rpc/bump_amounts?select=amount.sum(),count()", json={"by_amount": 1},
                              headers={**app.user(), "Prefer": "tx=rollback"})
    assert r.status_code == 200, r.text
    assert r.json() == [{"sum": 38, "count": 3}]


async def test_ordering_by_a_column_that_is_not_grouped_is_a_client_error(app: Running) -> None:
    r = await get(app, "records/messages?select=amount.sum(),channel_id&order=id")
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["statusCode"] == r.status_code


@pytest.mark.parametrize("path", [
    "records/messages?select=count()", "records/messages?select=amount.sum(),channel_id",
    "records/users?select=username,messages!messages_username_fkey(count)",
    "records/channels?select=slug,messages(amount.avg())",
])
async def test_aggregates_can_be_turned_off(app: Running, pg_url: str, path: str) -> None:
    async with running_app(pg_url, (SCHEMA,), aggregates=False) as off:
        r = await get(off, path)
        assert_error(r, 400, "INVALID_QUERY", "PGRST123")
