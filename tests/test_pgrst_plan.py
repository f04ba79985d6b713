"""The execution plan media type over HTTP: ``Accept: application/vnd.pgrst.plan+json`` (and
``+text``, ``for="..."``, ``options=analyze|verbose|settings|buffers|wal``), admin only unless
``GATEWAY_PLAN_ROLES`` widens it.

PostgREST documentation, API reference: "Execution plan" (the ``application/vnd.pgrst.plan``
media type, its ``for`` and ``options`` parameters) and configuration "db-plan-enabled" (here:
served to the roles listed, ``project_admin`` by default, 403 for the others). An ANALYZE of a
write runs it and rolls it back. The schema is ``pgrst_fixture``'s, exposed as ``pgrst_plan``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error, running_app

SCHEMA = "pgrst_plan"
JSON_PLAN = "application/vnd.pgrst.plan+json"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA), (SCHEMA,), teardown_sql=drop_sql(SCHEMA)) as running:
        yield running


async def send(app: Running, method: str, path: str, accept: str, headers: dict[str, str] | None = None,
               body: object = None) -> httpx.Response:
    return await app.client.request(method, f"/api/database/{path}", json=body,
                                    headers={**(headers if headers is not None else app.admin), "Accept": accept})


@pytest.mark.parametrize(("method", "path", "accept", "node"), [
    ("GET", "records/messages?select=id,users!messages_username_fkey(email)&id=eq.1", JSON_PLAN, "Plan"),
    ("GET", "records/messages?id=eq.1", f'{JSON_PLAN}; for="application/vnd.pgrst.object+json"', "Plan"),
    ("GET", "records/messages?select=count()", f"{JSON_PLAN}; options=analyze|verbose|buffers", "Execution Time"),
    ("POST", "rpc/describe", JSON_PLAN, "Plan"),
])
async def test_an_admin_gets_the_json_plan_of_the_request(
        app: Running, method: str, path: str, accept: str, node: str) -> None:
    r = await send(app, method, path, accept, body={"n": 1} if method == "POST" else None)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(JSON_PLAN)
    doc = r.json()
    assert isinstance(doc, list) and node in doc[0]


async def test_the_text_plan_names_the_scanned_table(app: Running) -> None:
    r = await send(app, "GET", "records/messages?id=eq.1", "application/vnd.pgrst.plan+text; options=verbose")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith('application/vnd.pgrst.plan+text; for="application/json"')
    assert "messages" in r.text and "Output:" in r.text


async def test_analyze_of_a_write_is_rolled_back(app: Running) -> None:
    r = await send(app, "PATCH", "records/messages?id=eq.1", f"{JSON_PLAN}; options=analyze",
                   body={"message": "planned"})
    assert r.status_code == 200, r.text
    assert "Execution Time" in r.json()[0]
    row = await app.client.get("/api/database/records/messages?id=eq.1&select=message", headers=app.admin)
    assert row.json() == [{"message": "Hello World"}]


async def test_the_plan_is_admin_only_by_default(app: Running) -> None:
    r = await send(app, "GET", "records/messages", JSON_PLAN, headers=app.user())
    assert_error(r, 403, "FORBIDDEN")
    r = await send(app, "GET", "records/messages", JSON_PLAN, headers=app.anon)
    assert_error(r, 403, "FORBIDDEN")


async def test_plan_roles_widen_it(app: Running, pg_url: str) -> None:
    async with running_app(pg_url, (SCHEMA,), plan_roles=("project_admin", "authenticated")) as wide:
        r = await send(wide, "GET", "records/messages", JSON_PLAN, headers=wide.user())
        assert r.status_code == 200, r.text
        r = await send(wide, "GET", "records/messages", JSON_PLAN, headers=wide.anon)
        assert_error(r, 403, "FORBIDDEN")


@pytest.mark.parametrize("accept", [f"{JSON_PLAN}; options=analyse", f'{JSON_PLAN}; for="image/png"'])
async def test_bad_plan_parameters_are_refused(app: Running, accept: str) -> None:
    r = await send(app, "GET", "records/messages", accept)
    assert 400 <= r.status_code < 500 and r.json()["statusCode"] == r.status_code, r.text
