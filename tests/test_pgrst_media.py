"""Response shaping the PostgREST way, round two, over HTTP: ``nulls=stripped`` and the
``timezone`` preference.

PostgREST documentation, API reference: "Resource Representation" -> "Stripped nulls"
(``Accept: application/vnd.pgrst.array+json;nulls=stripped``, and the object form), and
"Preferences" -> "Timezone" (``Prefer: timezone=...`` sets PostgreSQL's TimeZone for the request's
transaction, so timestamptz values come out in that zone; an invalid zone is an error even with
lenient handling). The schema is ``pgrst_fixture``'s, exposed as ``pgrst_media``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

from gateway.rest.media import Media, PlanMedia, negotiate_media

SCHEMA = "pgrst_media"
ARRAY = "application/vnd.pgrst.array+json;nulls=stripped"
OBJECT = "application/vnd.pgrst.object+json;nulls=stripped"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def send(app: Running, method: str, path: str, headers: dict[str, str], body: Any = None) -> httpx.Response:
    return await app.client.request(method, f"/api/database/{path}", json=body,
                                     headers={**app.user(), **headers})


STRIPPED: list[tuple[str, str, dict[str, str], Any, Any, str]] = [
    # (method, path, headers, body, expected, content type)
    ("GET", "records/users?select=username,email,catchphrase&username=in.(awailas,supabot)&order=username",
     {"Accept": ARRAY}, None,
     [{"username": "awailas"}, {"username": "supabot", "email": "bot@example.com", "catchphrase": "fat cat"}],
     ARRAY),
    ("GET", "records/users?select=username,email&username=eq.awailas", {"Accept": OBJECT}, None,
     {"username": "awailas"}, OBJECT),
    # nested objects are stripped too; an embed whose only key is null becomes {}
    ("GET", "records/messages?id=eq.4&select=id,amount,reviewer,author:users!messages_username_fkey(email)",
     {"Accept": ARRAY}, None, [{"id": 4, "author": {}}], ARRAY),
    # writes and calls that answer with rows
    ("POST", "records/messages?select=id,reviewer,amount",
     {"Accept": ARRAY, "Prefer": "return=representation, tx=rollback"},
     {"id": 99, "message": "x", "channel_id": 1, "username": "supabot", "amount": None},
     [{"id": 99}], ARRAY),
    ("POST", "rpc/bump_amounts?select=id,reviewer&order=id", {"Accept": ARRAY, "Prefer": "tx=rollback"},
     {"by_amount": 0}, [{"id": 1, "reviewer": "kiwicopple"}, {"id": 2}, {"id": 3, "reviewer": "supabot"}], ARRAY),
    # without the parameter nulls stay
    ("GET", "records/users?select=username,email&username=eq.awailas", {"Accept": "application/json"}, None,
     [{"username": "awailas", "email": None}], "application/json"),
    ("GET", "records/users?select=username,email&username=eq.awailas",
     {"Accept": "application/json;nulls=stripped"}, None, [{"username": "awailas", "email": None}],
     "application/json"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "expected", "media"), STRIPPED)
async def test_nulls_stripped_media_type_leaves_out_null_fields(
        app: Running, method: str, path: str, headers: dict[str, str], body: Any, expected: Any, media: str) -> None:
    r = await send(app, method, path, headers, body)
    assert r.status_code in (200, 201), r.text
    assert r.json() == expected
    assert r.headers["content-type"].startswith(media)


ZONES: list[tuple[str, str, str]] = [
    # (Prefer, users.created_at of supabot, the function's view of TimeZone)
    ("timezone=America/Los_Angeles", "2024-01-01T19:04:05-08:00", "America/Los_Angeles"),
    ("timezone=Asia/Kolkata", "2024-01-02T08:34:05+05:30", "Asia/Kolkata"),
    ("count=exact", "2024-01-02T03:04:05+00:00", "UTC"),
]


@pytest.mark.parametrize(("prefer", "created_at", "zone"), ZONES)
async def test_timezone_preference_is_applied_in_the_transaction(
        app: Running, prefer: str, created_at: str, zone: str) -> None:
    r = await send(app, "GET", "records/users?select=created_at&username=eq.supabot", {"Prefer": prefer})
    assert r.status_code == 200, r.text
    assert r.json() == [{"created_at": created_at}]
    assert r.headers["Preference-Applied"] == prefer
    r = await send(app, "POST", "rpc/current_zone", {"Prefer": prefer}, {})
    assert r.status_code == 200, r.text
    assert r.json() == zone
    # the zone lives in the transaction only: the next request is back to UTC
    r = await send(app, "GET", "rpc/current_zone", {})
    assert r.json() == "UTC"


async def test_an_unknown_timezone_is_refused_even_when_lenient(app: Running) -> None:
    r = await send(app, "GET", "records/users?select=created_at", {"Prefer": "timezone=Mars/Olympus_Mons"})
    body = assert_error(r, 400, "VALIDATION_ERROR", "22023")
    assert "Mars/Olympus_Mons" in body["message"]


@pytest.mark.parametrize(("accept", "expected"), [
    (ARRAY, Media("json", True)),
    (OBJECT, Media("object", True)),
    ("application/json;nulls=stripped", Media("json", False)),  # only the vnd.pgrst types take it
    (f"text/csv, {ARRAY};q=0.5", Media("csv", False)),
    ('application/vnd.pgrst.plan+json; for="application/vnd.pgrst.object+json"; options=verbose|analyze',
     Media("object", False, PlanMedia("json", "application/vnd.pgrst.object+json", ("analyze", "verbose")))),
    ('application/vnd.pgrst.plan; for="text/csv", application/json',
     Media("csv", False, PlanMedia("text", "text/csv", ()))),
])
def test_accept_negotiates_stripped_nulls_and_plans(accept: str, expected: Media) -> None:
    assert negotiate_media([accept]) == expected
