"""Functions (RPC) the PostgREST way, round two, over HTTP: transaction preferences, overload
resolution, the single unnamed parameter, and which functions are offered at all.

PostgREST documentation, API reference: "Preferences" -> "Transaction End Preference" (``tx``),
"Max Affected" (RPC: the rows of the result set; PGRST124, and PGRST128 for a function that
returns no set) and "Strict or Lenient Handling"; "Functions as RPC" -> "Overloaded functions"
and "Functions with a single unnamed parameter"; "Errors" (PGRST202, PGRST203). Trigger and
event-trigger functions cannot be called directly, so neither RPC, GraphQL nor the OpenAPI
document offers them. The schema is ``pgrst_fixture``'s, exposed as ``pgrst_rpc``; a function in
the unexposed schema ``pgrst_rpc_hidden`` is out of reach.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

SCHEMA = "pgrst_rpc"
HIDDEN = """
drop schema if exists pgrst_rpc_hidden cascade; create schema pgrst_rpc_hidden;
create function pgrst_rpc_hidden.secret() returns int language sql as $$ select 42 $$;
grant usage on schema pgrst_rpc_hidden to anon, authenticated;
"""


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA) + HIDDEN, (SCHEMA,),
                        teardown_sql=drop_sql(SCHEMA) + "; drop schema pgrst_rpc_hidden cascade") as running:
        yield running


async def rpc(app: Running, name: str, body: Any = None, prefer: str | None = None,
              headers: dict[str, str] | None = None, query: str = "") -> httpx.Response:
    extra = {**({"Prefer": prefer} if prefer else {}), **(headers or {})}
    if body is None:
        return await app.client.get(f"/api/database/rpc/{name}{query}", headers={**app.user(), **extra})
    return await app.client.post(f"/api/database/rpc/{name}{query}", json=body, headers={**app.user(), **extra})


async def amounts(app: Running) -> list[Any]:
    r = await app.client.get("/api/database/records/messages?select=amount&order=id", headers=app.user())
    return [row["amount"] for row in r.json()]


# --------------------------------------------------------------------------- transaction preferences

TX_CASES: list[tuple[str, str, int, str | None, str | None]] = [
    # (function, Prefer, status, PostgREST code, Preference-Applied)
    ("bump_amounts", "tx=rollback", 200, None, "tx=rollback"),
    ("bump_amounts", "handling=strict, max-affected=1", 400, "PGRST124", None),
    ("bump_amounts", "handling=strict, max-affected=2, tx=rollback", 400, "PGRST124", None),
    ("bump_amounts", "max-affected=1, tx=rollback", 200, None, "tx=rollback"),  # lenient: not applied
    ("bump_amounts", "handling=strict, max-affected=3, tx=rollback", 200, None,
     "tx=rollback, handling=strict, max-affected=3"),
    ("bump_count", "handling=strict, max-affected=10", 400, "PGRST128", None),
]


@pytest.mark.parametrize(("function", "prefer", "status", "code", "applied"), TX_CASES)
async def test_rpc_honours_tx_rollback_and_strict_max_affected_and_echoes_only_what_it_applied(
        app: Running, function: str, prefer: str, status: int, code: str | None, applied: str | None) -> None:
    before = await amounts(app)
    r = await rpc(app, function, {"by_amount": 100}, prefer)
    if code:
        assert_error(r, status, "INVALID_QUERY", code)
    else:
        assert r.status_code == status, r.text
        assert r.headers.get("Preference-Applied") == applied
        assert sorted(row["amount"] for row in r.json()) == sorted(a + 100 for a in before if a is not None)
    assert await amounts(app) == before  # rolled back, or refused before anything stuck


async def test_rpc_within_max_affected_commits(app: Running) -> None:
    before = await amounts(app)
    r = await rpc(app, "bump_amounts", {"by_amount": 1}, "handling=strict, max-affected=3")
    assert r.status_code == 200, r.text
    assert r.headers["Preference-Applied"] == "handling=strict, max-affected=3"
    assert await amounts(app) == [None if a is None else a + 1 for a in before]
    undo = await rpc(app, "bump_amounts", {"by_amount": -1})
    assert undo.status_code == 200 and await amounts(app) == before


async def test_reads_do_not_echo_tx_or_max_affected(app: Running) -> None:
    r = await app.client.get("/api/database/records/messages?select=id",
                             headers={**app.user(), "Prefer": "tx=rollback, max-affected=1, count=exact"})
    assert r.status_code == 200
    assert r.headers["Preference-Applied"] == "count=exact"


# --------------------------------------------------------------------------- overloads and unnamed parameters

CALLS: list[tuple[str, Any, str, Any]] = [
    # (function, JSON body or None for GET, query string, result)
    ("double_it", {"": 21}, "", 42),  # a single unnamed parameter of any type
    ("double_it", None, "?=21", 42),
    ("echo_doc", {"a": [1, 2]}, "", {"a": [1, 2]}),  # an unnamed json parameter takes the whole body
    ("echo_doc", {"": {"b": True}}, "", {"b": True}),
    # same names, told apart by the JSON value's type
    ("describe", {"n": 7}, "", "int 7"),
    ("describe", {"n": "seven"}, "", "text seven"),
    ("describe", {"n": 7, "extra": "x"}, "", "int 7 x"),
    ("describe", None, "?n=7&extra=y", "int 7 y"),
    # only one overload takes both names
    ("describe_twice", {"a": 1, "b": 2}, "", "two"),
]


@pytest.mark.parametrize(("function", "body", "query", "expected"), CALLS)
async def test_overloads_resolve_by_names_then_value_types(
        app: Running, function: str, body: Any, query: str, expected: Any) -> None:
    r = await rpc(app, function, body, query=query)
    assert r.status_code == 200, r.text
    assert r.json() == expected


UNRESOLVED: list[tuple[str, Any, str, int, str]] = [
    ("ambiguous", {"x": 1}, "", 300, "PGRST203"),  # int and bigint both take a JSON integer
    ("describe", None, "?n=7", 300, "PGRST203"),  # query values are text: int or text cannot be told
    # one overload only adds a defaulted parameter: PostgreSQL could not choose either
    ("describe_twice", {"a": 1}, "", 300, "PGRST203"),
    ("describe", {"zzz": 1}, "", 404, "PGRST202"),
    ("describe", {}, "", 404, "PGRST202"),
    ("double_it", {"a": 1}, "", 404, "PGRST202"),  # an unnamed int parameter does not take a whole body
    ("touch", {}, "", 404, "PGRST202"),  # a trigger function is no RPC
]


@pytest.mark.parametrize(("function", "body", "query", "status", "code"), UNRESOLVED)
async def test_ambiguous_calls_are_300_and_unmatched_calls_are_404(
        app: Running, function: str, body: Any, query: str, status: int, code: str) -> None:
    r = await rpc(app, function, body, query=query)
    assert_error(r, status, code if status == 300 else "DATABASE_NOT_FOUND", code)


async def test_functions_of_an_unexposed_schema_are_out_of_reach(app: Running) -> None:
    r = await rpc(app, "secret", {}, headers={"Content-Profile": "pgrst_rpc_hidden"})
    assert_error(r, 406, "PGRST106", "PGRST106")
    r = await rpc(app, "secret", {})
    assert_error(r, 404, "DATABASE_NOT_FOUND", "PGRST202")


async def test_trigger_functions_are_left_out_of_graphql_and_openapi(app: Running) -> None:
    r = await app.client.post("/graphql", headers=app.admin, json={
        "query": "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"})
    schema = r.json()["data"]["__schema"]
    names = {f["name"] for part in ("queryType", "mutationType") for f in schema[part]["fields"]}
    assert "bump_amounts" in names and "now_text" in names
    assert "touch" not in names
    doc = (await app.client.get("/api/database/openapi.json", headers=app.admin)).json()
    assert "/api/database/rpc/bump_amounts" in doc["paths"]
    assert "/api/database/rpc/touch" not in doc["paths"]
