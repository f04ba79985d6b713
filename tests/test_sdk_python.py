"""The official Python SDK, ``insforge`` 0.1.0, against a live gateway.

In:  ``insforge.InsforgeClient(base_url=<gateway root>, api_key=<ik_ key>)`` and its
     ``database.from_(table)`` builder, talking HTTP to a gateway (``liveserver``) whose
     default (and only) schema is ``sdk_py``.
Out: the values the SDK returns (or the ``InsforgeHTTPError`` it raises), compared with what
     a PostgREST-backed InsForge gives for the same call, and the requests it sent, compared
     with insforge-behavior §2.2.

What this SDK can express: select/eq/neq/gt/gte/lt/lte/like/ilike/in_/is_null/order/limit/
offset, insert (always a list), update and delete, each optionally with
``return=representation``. It has no count, head, single, upsert, rpc or schema switch, and it
always sends ``X-API-Key``, so every call is an admin call (an ``access_token`` is sent too, but
the API key wins: insforge-behavior §1.1 "Precedence").
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
import pytest_asyncio
from insforge import InsforgeClient
from insforge.exceptions import InsforgeHTTPError
from liveserver import LiveServer, blog_server, reset_todos

SCHEMA = "sdk_py"


@pytest_asyncio.fixture(scope="module")
async def live(pg_url: str) -> AsyncIterator[LiveServer]:
    async with blog_server(pg_url, SCHEMA) as server:
        yield server


class Sent(list[httpx.Request]):
    """The requests a client sent, in order (an httpx request hook appends to it)."""

    async def __call__(self, request: httpx.Request) -> None:
        self.append(request)


@pytest_asyncio.fixture
async def client(live: LiveServer) -> AsyncIterator[tuple[InsforgeClient, Sent]]:
    sdk = InsforgeClient(base_url=live.url, api_key=live.api_key)
    sent = Sent()
    sdk.http_client.event_hooks["request"] = [sent]
    try:
        yield sdk, sent
    finally:
        await sdk.aclose()


@pytest_asyncio.fixture
async def todos(live: LiveServer, pg: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    await pg.execute(reset_todos(SCHEMA))
    yield pg


def target(request: httpx.Request) -> str:
    url = urlsplit(str(request.url))
    return f"{url.path}?{url.query}" if url.query else url.path


def ids(*values: int) -> list[dict[str, int]]:
    return [{"id": v} for v in values]


# --------------------------------------------------------------------------- reads


READS: list[tuple[str, str, Any, Any]] = [
    # (name, table, builder steps applied to from_(table), rows returned)
    ("select star", "users", lambda q: q.select("*").order("id"),
     [{"id": 1, "name": "Ann", "email": "ann@example.com"}, {"id": 2, "name": "Bob", "email": "bob@example.com"},
      {"id": 3, "name": "Cy", "email": None}]),
    ("behavior §2.2 example", "posts",
     lambda q: q.select("id,title").eq("status", "published").order("created_at", desc=True).limit(10).offset(1),
     [{"id": 2, "title": "Second post"}, {"id": 1, "title": "Hello World"}]),
    ("in_ and is_null", "posts", lambda q: q.select("id").in_("id", [1, 2, 5]).is_null("deleted_at").order("id"),
     ids(1, 2)),
    ("neq", "posts", lambda q: q.select("id").neq("status", "published").order("id"), ids(3, 5)),
    ("gt", "posts", lambda q: q.select("id").gt("views", 10).order("id"), ids(1, 4)),
    ("gte and lte on two columns", "posts", lambda q: q.select("id").gte("views", 7).lte("id", 4).order("id"),
     ids(1, 4)),
    ("lt", "posts", lambda q: q.select("id").lt("views", 5), ids(3)),
    ("like with %", "posts", lambda q: q.select("id").like("title", "%post"), ids(2)),
    ("ilike with %", "posts", lambda q: q.select("id").ilike("title", "hello%").order("id"), ids(1, 4)),
    ("eq on text", "users", lambda q: q.select("name").eq("email", "bob@example.com"),
     [{"name": "Bob"}]),
    ("limit and offset", "posts", lambda q: q.select("id").order("views", desc=True).limit(2).offset(1), ids(1, 5)),
    ("to-one embed with an alias", "posts", lambda q: q.select("id,title,author:users(name)").eq("id", 1),
     [{"id": 1, "title": "Hello World", "author": {"name": "Ann"}}]),
    ("to-one embed without a row", "posts", lambda q: q.select("id,author:users(name)").eq("id", 5),
     [{"id": 5, "author": None}]),
    ("to-many embed, empty", "users", lambda q: q.select("name,posts(id)").eq("id", 3), [{"name": "Cy", "posts": []}]),
    ("inner embed filtered through its alias", "posts",
     lambda q: q.select("id,author:users!inner(name)").eq("author.name", "Bob").order("id"),
     [{"id": 3, "author": {"name": "Bob"}}, {"id": 4, "author": {"name": "Bob"}}]),
    ("a repeated key keeps only its last value (client-side)", "posts",
     lambda q: q.select("id").gt("views", 100).lt("views", 10).order("id"), ids(2, 3, 5)),
    ("no match", "posts", lambda q: q.select("id").eq("id", 999), []),
]


@pytest.mark.parametrize(("table", "build", "expected"), [r[1:] for r in READS], ids=[r[0] for r in READS])
async def test_each_read_returns_what_postgrest_returns(client: tuple[InsforgeClient, Sent], table: str,
                                                        build: Any, expected: Any) -> None:
    sdk, _ = client
    assert await build(sdk.database.from_(table)).execute() == expected


async def test_the_sdk_sends_the_request_insforge_behavior_lists(client: tuple[InsforgeClient, Sent],
                                                                 live: LiveServer) -> None:
    sdk, sent = client
    await (sdk.database.from_("posts").select("id,title").eq("status", "published")
           .order("created_at", desc=True).limit(10).offset(20).execute())
    await sdk.database.from_("posts").select("*").in_("id", [1, 2]).is_null("deleted_at").execute()
    assert [(r.method, target(r)) for r in sent] == [
        ("GET", "/api/database/records/posts?select=id%2Ctitle&status=eq.published&order=created_at.desc"
                "&limit=10&offset=20"),
        ("GET", "/api/database/records/posts?select=%2A&id=in.%281%2C2%29&deleted_at=is.null"),
    ]
    assert sent[0].headers["X-API-Key"] == live.api_key
    assert sent[0].headers["User-Agent"].startswith("InsForge-Python/")
    assert "Authorization" not in sent[0].headers


async def test_to_many_embeds_list_every_related_row(client: tuple[InsforgeClient, Sent]) -> None:
    sdk, _ = client
    rows = await sdk.database.from_("users").select("name,posts(id,title)").eq("id", 2).execute()
    assert isinstance(rows, list) and len(rows) == 1
    assert sorted(rows[0]["posts"], key=lambda p: p["id"]) == [{"id": 3, "title": "Draft notes"},
                                                                {"id": 4, "title": "hello again"}]


async def test_an_access_token_is_sent_but_the_api_key_wins(client: tuple[InsforgeClient, Sent], live: LiveServer,
                                                             todos: asyncpg.Connection) -> None:
    """The SDK cannot make a user-limited call: RLS is bypassed as for every admin call (§1.1)."""
    sdk, sent = client
    await todos.execute(f"insert into {SCHEMA}.notes(owner, body) values ($1, 'a1'), ($2, 'b1')",
                        live.uid("alice"), live.uid("bob"))
    rows = await sdk.database.from_("notes").select("body").order("body").execute(access_token=live.token("alice"))
    assert rows == [{"body": "a1"}, {"body": "b1"}]
    assert sent[0].headers["Authorization"] == f"Bearer {live.token('alice')}"
    assert sent[0].headers["X-API-Key"] == live.api_key


# --------------------------------------------------------------------------- writes


async def todo_rows(pg: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await pg.fetch(f"select id, title, done, slug from {SCHEMA}.todos order by id")]


async def test_insert_without_representation_returns_an_empty_list(client: tuple[InsforgeClient, Sent],
                                                                   todos: asyncpg.Connection) -> None:
    sdk, sent = client
    assert await sdk.database.from_("todos").insert([{"title": "new", "slug": "new"}]) == []
    assert (sent[0].method, target(sent[0]), json.loads(sent[0].content)) == (
        "POST", "/api/database/records/todos", [{"title": "new", "slug": "new"}])
    assert "Prefer" not in sent[0].headers
    assert (await todo_rows(todos))[-1] == (4, "new", False, "new")


async def test_insert_with_representation_returns_the_new_rows(client: tuple[InsforgeClient, Sent],
                                                                todos: asyncpg.Connection) -> None:
    sdk, sent = client
    rows = await sdk.database.from_("todos").insert([{"title": "a", "done": True}, {"title": "b", "done": False}],
                                                    return_representation=True)
    assert rows == [{"id": 4, "title": "a", "done": True, "slug": None, "priority": 3},
                    {"id": 5, "title": "b", "done": False, "slug": None, "priority": 3}]
    assert sent[0].headers["Prefer"] == "return=representation"


async def test_update_with_representation_returns_the_changed_rows(client: tuple[InsforgeClient, Sent],
                                                                   todos: asyncpg.Connection) -> None:
    sdk, sent = client
    rows = await sdk.database.from_("todos").eq("id", 1).update({"done": True}, return_representation=True)
    assert rows == [{"id": 1, "title": "buy milk", "done": True, "slug": "milk", "priority": 1}]
    assert (sent[0].method, target(sent[0]), json.loads(sent[0].content)) == (
        "PATCH", "/api/database/records/todos?id=eq.1", {"done": True})


async def test_update_without_representation_answers_204_which_this_sdk_cannot_parse(
        client: tuple[InsforgeClient, Sent], todos: asyncpg.Connection) -> None:
    """insforge-behavior §2.2 "Hazard": the 204 stays (InsForge's own tests expect it); the update is done."""
    sdk, _ = client
    with pytest.raises(json.JSONDecodeError):
        await sdk.database.from_("todos").eq("id", 2).update({"title": "walk cat"})
    assert (await todo_rows(todos))[1] == (2, "walk cat", True, "dog")


async def test_delete_returns_an_empty_list_or_the_deleted_rows(client: tuple[InsforgeClient, Sent],
                                                                todos: asyncpg.Connection) -> None:
    sdk, sent = client
    assert await sdk.database.from_("todos").eq("id", 1).delete() == []
    assert (sent[0].method, target(sent[0]), sent[0].content) == ("DELETE", "/api/database/records/todos?id=eq.1",
                                                                  b"")
    deleted = await sdk.database.from_("todos").in_("id", [2, 3]).delete(return_representation=True)
    assert sorted(row["id"] for row in deleted) == [2, 3]
    assert await todo_rows(todos) == []


# --------------------------------------------------------------------------- errors


async def _insert_duplicate(sdk: InsforgeClient) -> object:
    return await sdk.database.from_("todos").insert([{"title": "again", "slug": "milk"}])


ERRORS: list[tuple[str, Any, int, str, str]] = [
    # (name, call, status, error, nextActions)
    ("unknown table", lambda sdk: sdk.database.from_("nope").select("*").execute(), 404, "TABLE_NOT_FOUND",
     "Check table name and try again"),
    ("unknown column", lambda sdk: sdk.database.from_("posts").select("nope").execute(), 400, "INVALID_QUERY",
     "Check PostgREST filter documentation"),
    ("bad filter value", lambda sdk: sdk.database.from_("posts").select("id").eq("views", "many").execute(), 400,
     "VALIDATION_ERROR", "Ensure field types match the table schema"),
    ("duplicate key", _insert_duplicate, 409, "DATABASE_DUPLICATE", ""),
]


@pytest.mark.parametrize(("call", "status", "error", "next_action"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
async def test_each_failure_raises_the_sdk_error_with_the_spec_fields(
        client: tuple[InsforgeClient, Sent], todos: asyncpg.Connection, call: Any, status: int, error: str,
        next_action: str) -> None:
    sdk, _ = client
    with pytest.raises(InsforgeHTTPError) as raised:
        await call(sdk)
    assert (raised.value.status_code, raised.value.error) == (status, error)
    assert raised.value.message and raised.value.next_action
    assert next_action in raised.value.next_action


async def test_a_wrong_api_key_is_refused_with_401(live: LiveServer) -> None:
    async with InsforgeClient(base_url=live.url, api_key="ik_" + "f" * 64) as sdk:
        assert isinstance(sdk, InsforgeClient)
        with pytest.raises(InsforgeHTTPError) as raised:
            await sdk.database.from_("posts").select("id").execute()
    assert (raised.value.status_code, raised.value.error) == (401, "AUTH_INVALID_API_KEY")
