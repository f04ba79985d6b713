"""The ``postgrest`` Python client (supabase's postgrest-py) against a live gateway, unchanged.

In:  ``AsyncPostgrestClient`` pointed at a gateway (``liveserver``) that exposes ``sdk_pgrst``
     (the default) and ``sdk_pgrst_other``. The client joins ``from_(t)`` as ``<base>/t`` and
     ``rpc(f)`` as ``<base>/rpc/f``, so tables use the base ``<root>/api/database/records`` and
     functions ``<root>/api/database``. It always sends ``Accept-Profile``/``Content-Profile``
     for its schema (``public`` unless told), so each client names ``sdk_pgrst``.
Out: ``APIResponse.data``/``count`` (or the ``APIError`` raised), compared with what a
     PostgREST-backed InsForge returns for the same call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import asyncpg
import pytest
import pytest_asyncio
from liveserver import LiveServer, blog_server, reset_todos
from postgrest import APIError, AsyncPostgrestClient, CountMethod
from postgrest.types import ReturnMethod

SCHEMA, OTHER = "sdk_pgrst", "sdk_pgrst_other"


@pytest_asyncio.fixture(scope="module")
async def live(pg_url: str) -> AsyncIterator[LiveServer]:
    async with blog_server(pg_url, SCHEMA, OTHER) as server:
        yield server


class Clients:
    """Table and RPC clients for one credential (postgrest-py needs one base URL for each)."""

    def __init__(self, live: LiveServer, token: str | None) -> None:
        self.records = AsyncPostgrestClient(f"{live.url}/api/database/records", schema=SCHEMA)
        self.rpc = AsyncPostgrestClient(f"{live.url}/api/database", schema=SCHEMA)
        if token:
            self.records.auth(token)
            self.rpc.auth(token)

    async def close(self) -> None:
        await self.records.aclose()
        await self.rpc.aclose()


@pytest_asyncio.fixture
async def clients(live: LiveServer) -> AsyncIterator[Callable[[str | None], Clients]]:
    """``clients(token)``: clients that send ``Authorization: Bearer <token>`` (None: no credential)."""
    made: list[Clients] = []

    def make(token: str | None) -> Clients:
        made.append(Clients(live, token))
        return made[-1]

    yield make
    for c in made:
        await c.close()


@pytest_asyncio.fixture
async def alice(live: LiveServer, clients: Callable[[str | None], Clients]) -> Clients:
    return clients(live.token("alice"))


@pytest_asyncio.fixture
async def todos(live: LiveServer, pg: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    await pg.execute(reset_todos(SCHEMA))
    yield pg


def ids(*values: int) -> list[dict[str, int]]:
    return [{"id": v} for v in values]


Build = Callable[[Clients], Any]  # the query, not yet executed


def call(c: Clients, fn: str, args: dict[str, Any], **options: Any) -> Any:
    """``rpc(fn, args)``: postgrest-py types the arguments as strings, but sends any JSON."""
    return c.rpc.rpc(fn, args, **options)


def data(response: Any) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], response.data)

READS: list[tuple[str, Build, Any, int | None]] = [
    # (name, query as alice, data, count)
    ("select star", lambda c: c.records.from_("users").select("*").order("id"),
     [{"id": 1, "name": "Ann", "email": "ann@example.com"}, {"id": 2, "name": "Bob", "email": "bob@example.com"},
      {"id": 3, "name": "Cy", "email": None}], None),
    ("embed, filters, order, limit",
     lambda c: c.records.from_("posts").select("id", "title", "author:users(name)").eq("status", "published")
     .gt("views", 10).order("created_at", desc=True).limit(10),
     [{"id": 4, "title": "hello again", "author": {"name": "Bob"}},
      {"id": 1, "title": "Hello World", "author": {"name": "Ann"}}], None),
    ("count exact with range", lambda c: c.records.from_("posts").select("id", count=CountMethod.exact).order("id")
     .range(0, 1), ids(1, 2), 5),
    ("head count", lambda c: c.records.from_("posts").select("*", count=CountMethod.exact, head=True)
     .eq("status", "published"), [], 3),
    ("or, in, is, ilike", lambda c: c.records.from_("posts").select("id").or_("status.eq.draft,status.eq.archived")
     .in_("id", [3, 5]).is_("deleted_at", None).ilike("title", "%notes%"), ids(3), None),
    ("not is", lambda c: c.records.from_("posts").select("id").not_.is_("deleted_at", None), ids(5), None),
    ("neq, gte, lte", lambda c: c.records.from_("posts").select("id").neq("status", "draft").gte("views", 7)
     .lte("views", 50).order("id"), ids(1, 5), None),
    ("like, lt", lambda c: c.records.from_("posts").select("id").like("title", "%o%").lt("views", 10).order("id"),
     ids(2, 3), None),
    ("match", lambda c: c.records.from_("posts").select("id").match({"status": "published", "author_id": 2}),
     ids(4), None),
    ("filter", lambda c: c.records.from_("posts").select("id").filter("views", "gt", "100"), ids(4), None),
    ("order nulls first, then offset",
     lambda c: c.records.from_("posts").select("id").order("author_id", desc=True, nullsfirst=True).order("id")
     .limit(3).offset(1), ids(3, 4, 1), None),
    ("to-many embed with its own order and limit",
     lambda c: c.records.from_("users").select("name", "posts(id)").order("id")
     .order("id", desc=True, foreign_table="posts").limit(1, foreign_table="posts"),
     [{"name": "Ann", "posts": ids(2)}, {"name": "Bob", "posts": ids(4)}, {"name": "Cy", "posts": []}], None),
    ("inner embed", lambda c: c.records.from_("posts").select("id", "comments!inner(id)").order("id")
     .order("id", foreign_table="comments"), [{"id": 1, "comments": ids(1, 2)}, {"id": 4, "comments": ids(3)}], None),
    ("single", lambda c: c.records.from_("posts").select("id", "title").eq("id", 1).single(),
     {"id": 1, "title": "Hello World"}, None),
    ("schema()", lambda c: c.records.schema(OTHER).from_("events").select("id", "kind").eq("kind", "click")
     .order("id"), [{"id": 1, "kind": "click"}, {"id": 3, "kind": "click"}], None),
    ("rpc POST", lambda c: call(c, "add", {"a": 1, "b": 2}), 3, None),
    ("rpc get", lambda c: call(c, "add", {"a": 2, "b": 5}, get=True), 7, None),
    ("rpc without arguments", lambda c: call(c, "published_count", {}), 3, None),
    ("rpc returning rows, filtered", lambda c: call(c, "posts_by_status", {"s": "published"}).select("id")
     .gt("views", 10).order("id"), ids(1, 4), None),
    ("rpc single", lambda c: call(c, "posts_by_status", {"s": "draft"}).select("id", "title").single(),
     {"id": 3, "title": "Draft notes"}, None),
    ("rpc head count", lambda c: call(c, "posts_by_status", {"s": "published"}, head=True, count=CountMethod.exact),
     [], 3),
    ("schema() rpc", lambda c: c.rpc.schema(OTHER).rpc("event_count", {"k": "click"}), 2, None),
]


@pytest.mark.parametrize(("name", "build", "data", "count"), READS, ids=[r[0] for r in READS])
async def test_each_read_returns_what_postgrest_returns(alice: Clients, name: str, build: Build, data: Any,
                                                        count: int | None) -> None:
    response = await build(alice).execute()
    assert (response.data, response.count) == (data, count)


async def test_maybe_single_gives_the_row_none_or_an_error(alice: Clients) -> None:
    posts = alice.records.from_("posts")
    one = await posts.select("id").eq("id", 2).maybe_single().execute()
    none = await posts.select("id").eq("id", 999).maybe_single().execute()
    assert (one.data if one else one, none) == ({"id": 2}, None)
    with pytest.raises(APIError) as raised:
        await posts.select("id").eq("status", "published").maybe_single().execute()
    assert raised.value.code == "406"  # the client's own error: more than one row


ERRORS: list[tuple[str, str | None, Build, str]] = [
    # (name, who: "alice" / "anon" / None, query, error code)
    ("single with no row", "alice", lambda c: c.records.from_("posts").select("id").eq("id", 999).single(), "PGRST116"),
    ("unknown table", "alice", lambda c: c.records.from_("nope").select("*"), "42P01"),
    ("unknown column", "alice", lambda c: c.records.from_("posts").select("nope"), "42703"),
    ("unknown function", "alice", lambda c: call(c, "nope", {}), "PGRST202"),
    ("schema not exposed", "alice", lambda c: c.records.schema("public").from_("users").select("*"), "PGRST106"),
    ("anon may not write", "anon", lambda c: c.records.from_("todos").insert({"title": "x"}), "42501"),
    ("no credential", None, lambda c: c.records.from_("posts").select("id"), "AUTH_INVALID_CREDENTIALS"),
]


@pytest.mark.parametrize(("who", "build", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
async def test_each_failure_raises_api_error_with_the_postgrest_code(
        live: LiveServer, clients: Callable[[str | None], Clients], who: str | None, build: Build, code: str) -> None:
    token = {"alice": live.token("alice"), "anon": live.anon_key, None: None}[who]
    with pytest.raises(APIError) as raised:
        await build(clients(token)).execute()
    assert raised.value.code == code
    assert raised.value.message


# --------------------------------------------------------------------------- writes


async def todo_rows(pg: asyncpg.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in await pg.fetch(f"select id, title, done, slug, priority from {SCHEMA}.todos order by id")]


async def test_insert_returns_the_rows_and_minimal_returns_none(alice: Clients, todos: asyncpg.Connection) -> None:
    table = alice.records.from_("todos")
    one = await table.insert({"title": "solo", "slug": "solo"}).execute()
    two: list[dict[str, Any]] = [{"title": "a"}, {"title": "b", "done": True}]
    many = await table.insert(two, default_to_null=False, count=CountMethod.exact).execute()
    quiet = await table.insert({"title": "quiet"}, returning=ReturnMethod.minimal).execute()
    assert one.data == [{"id": 4, "title": "solo", "done": False, "slug": "solo", "priority": 3}]
    assert ([(r["title"], r["done"]) for r in data(many)], many.count) == ([("a", False), ("b", True)], 2)
    assert quiet.data == []
    assert [r[1] for r in await todo_rows(todos)][3:] == ["solo", "a", "b", "quiet"]


async def test_upsert_merges_on_the_conflict_column_or_ignores_duplicates(alice: Clients,
                                                                          todos: asyncpg.Connection) -> None:
    table = alice.records.from_("todos")
    merged = await table.upsert({"slug": "milk", "title": "buy oat milk"}, on_conflict="slug").execute()
    ignored = await table.upsert([{"slug": "dog", "title": "zzz"}, {"slug": "new", "title": "new one"}],
                                 on_conflict="slug", ignore_duplicates=True).execute()
    by_pk = await table.upsert({"id": 3, "title": "write more tests", "slug": "tests"}).execute()
    assert [(r["id"], r["title"]) for r in data(merged)] == [(1, "buy oat milk")]
    assert [r["slug"] for r in data(ignored)] == ["new"]
    assert [(r["id"], r["title"]) for r in data(by_pk)] == [(3, "write more tests")]
    assert [r[1] for r in await todo_rows(todos)] == ["buy oat milk", "walk dog", "write more tests", "new one"]


async def test_update_and_delete_return_the_affected_rows(alice: Clients, todos: asyncpg.Connection) -> None:
    table = alice.records.from_("todos")
    updated = await table.update({"priority": 9}, count=CountMethod.exact).in_("id", [1, 2]).execute()
    deleted = await table.delete().eq("done", True).execute()
    assert ([r["priority"] for r in data(updated)], updated.count) == ([9, 9], 2)
    assert [r["id"] for r in data(deleted)] == [2]
    assert [(r[0], r[4]) for r in await todo_rows(todos)] == [(1, 9), (3, 3)]


async def test_a_write_asking_for_single_with_several_rows_is_refused_and_rolled_back(
        alice: Clients, todos: asyncpg.Connection) -> None:
    query = alice.records.from_("todos").update({"priority": 7}).in_("id", [1, 3])
    with pytest.raises(APIError) as raised:
        await query.single().execute()
    assert raised.value.code == "PGRST116"
    assert [r[4] for r in await todo_rows(todos)] == [1, 2, 3]


async def test_a_user_session_sees_and_changes_only_its_own_rows(live: LiveServer,
                                                                 clients: Callable[[str | None], Clients],
                                                                 todos: asyncpg.Connection) -> None:
    alice, bob = clients(live.token("alice")), clients(live.token("bob"))
    await alice.records.from_("notes").insert([{"body": "a1"}, {"body": "a2"}]).execute()
    await bob.records.from_("notes").insert({"body": "b1"}).execute()
    mine = await alice.records.from_("notes").select("body", count=CountMethod.exact).order("body").execute()
    stolen = await alice.records.from_("notes").update({"body": "stolen"}).eq("body", "b1").execute()
    assert (mine.data, mine.count) == ([{"body": "a1"}, {"body": "a2"}], 2)
    assert stolen.data == []
    with pytest.raises(APIError) as raised:
        await alice.records.from_("notes").insert({"body": "forged", "owner": live.uid("bob")}).execute()
    assert raised.value.code == "42501"
    assert sorted(r["body"] for r in await todos.fetch(f"select body from {SCHEMA}.notes")) == ["a1", "a2", "b1"]
