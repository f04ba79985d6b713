"""The official JavaScript SDK, ``@insforge/sdk`` (postgrest-js underneath), against a live gateway.

In:  ``tests/sdk/run.mjs`` driven through ``node``, with ``@insforge/sdk`` installed by ``npm``
     into a temporary folder once per session, and a gateway on a free port (``liveserver``)
     exposing ``sdk_js`` (the default) and ``sdk_js_other``.
Out: for each SDK call, the ``data``, ``error``, ``count`` and ``status`` the SDK hands back,
     compared with what a PostgREST-backed InsForge returns for the same call, and the HTTP
     requests the SDK sent, compared with insforge-behavior §2.1.

Skipped, with the reason, only when ``node``/``npm`` are missing or the install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import pytest_asyncio
from liveserver import LiveServer, blog_server, reset_todos

SCHEMA, OTHER = "sdk_js", "sdk_js_other"
SDK_FOLDER = Path(__file__).parent / "sdk"
OBJECT = "application/vnd.pgrst.object+json"

Chain = list[list[Any]]  # [["from", "posts"], ["select", "*"], ...], called on client.database


@pytest.fixture(scope="session")
def sdk_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``@insforge/sdk`` installed by npm (once per session)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed to run @insforge/sdk (not found on PATH)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 18:
        pytest.skip(f"@insforge/sdk needs node 18 or newer (global fetch); found {version}")
    folder = tmp_path_factory.mktemp("insforge-sdk")
    shutil.copy(SDK_FOLDER / "package.json", folder / "package.json")
    try:
        done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder,
                              capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install @insforge/sdk did not finish within 10 minutes")
    if done.returncode != 0:
        pytest.skip(f"npm install @insforge/sdk failed: {done.stderr.strip()[-500:]}")
    return folder


@pytest_asyncio.fixture(scope="module")
async def live(pg_url: str) -> AsyncIterator[LiveServer]:
    async with blog_server(pg_url, SCHEMA, OTHER) as server:
        yield server


@pytest_asyncio.fixture
async def todos(live: LiveServer, pg: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """``todos`` back to ids 1..3 and no notes; yields the superuser connection for checks."""
    await pg.execute(reset_todos(SCHEMA))
    yield pg


def run_js(sdk_dir: Path, live: LiveServer, *ops: tuple[str, Chain]) -> list[dict[str, Any]]:
    """Run each (client, chain) in one Node process; one result per op (see run.mjs)."""
    clients = {
        "admin": {"anonKey": live.api_key},  # Bearer ik_...: the API key is admin
        "anon": {"anonKey": live.anon_key},
        "alice": {"anonKey": live.anon_key, "accessToken": live.token("alice")},
        "bob": {"anonKey": live.anon_key, "accessToken": live.token("bob")},
        "other": {"anonKey": live.anon_key, "db": {"schema": OTHER}},
    }
    document = {"baseUrl": live.url, "clients": clients,
                "ops": [{"client": client, "chain": chain} for client, chain in ops]}
    done = subprocess.run(["node", str(SDK_FOLDER / "run.mjs"), str(sdk_dir)], input=json.dumps(document),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    for result in results:
        assert "thrown" not in result, result["thrown"]
    return results


def one(sdk_dir: Path, live: LiveServer, client: str, chain: Chain) -> dict[str, Any]:
    return run_js(sdk_dir, live, (client, chain))[0]


def ids(*values: int) -> list[dict[str, int]]:
    return [{"id": v} for v in values]


USERS = [{"id": 1, "name": "Ann", "email": "ann@example.com"}, {"id": 2, "name": "Bob", "email": "bob@example.com"},
         {"id": 3, "name": "Cy", "email": None}]


def posts(*steps: list[Any], columns: str = "id") -> Chain:
    return [["from", "posts"], ["select", columns], *steps]


# --------------------------------------------------------------------------- reads


READS: list[tuple[str, Chain, Any, int | None, int]] = [
    # (name, chain as client "anon", data, count, status)
    ("select star", [["from", "users"], ["select", "*"], ["order", "id"]], USERS, None, 200),
    ("embed, filters, order, limit",
     posts(["eq", "status", "published"], ["gt", "views", 10], ["order", "created_at", {"ascending": False}],
           ["limit", 10], columns="id,title,author:users(name)"),
     [{"id": 4, "title": "hello again", "author": {"name": "Bob"}},
      {"id": 1, "title": "Hello World", "author": {"name": "Ann"}}], None, 200),
    ("count exact with range", [["from", "posts"], ["select", "id", {"count": "exact"}], ["order", "id"],
                                ["range", 0, 1]], ids(1, 2), 5, 206),
    ("range in the middle", posts(["order", "id"], ["range", 2, 3]), ids(3, 4), None, 200),
    ("head count", [["from", "posts"], ["select", "*", {"count": "exact", "head": True}]], None, 5, 200),
    ("head count with a filter", [["from", "posts"], ["select", "*", {"count": "exact", "head": True}],
                                  ["eq", "status", "published"]], None, 3, 200),
    ("single", posts(["eq", "id", 1], ["single"], columns="id,title"), {"id": 1, "title": "Hello World"}, None, 200),
    ("maybeSingle, one row", posts(["eq", "id", 2], ["maybeSingle"]), {"id": 2}, None, 200),
    ("maybeSingle, no row", posts(["eq", "id", 999], ["maybeSingle"]), None, None, 200),
    ("or, in, is, ilike with %", posts(["or", "status.eq.draft,status.eq.archived"], ["in", "id", [3, 5]],
                                       ["is", "deleted_at", None], ["ilike", "title", "%notes%"]), ids(3), None, 200),
    ("ilike is case-insensitive", posts(["ilike", "title", "hello%"], ["order", "id"]), ids(1, 4), None, 200),
    ("like", posts(["like", "title", "%post"]), ids(2), None, 200),
    ("neq", posts(["neq", "status", "published"], ["order", "id"]), ids(3, 5), None, 200),
    ("gte and lte", posts(["gte", "views", 7], ["lte", "views", 50], ["order", "id"]), ids(1, 5), None, 200),
    ("lt", posts(["lt", "views", 5]), ids(3), None, 200),
    ("not is null", posts(["not", "deleted_at", "is", None]), ids(5), None, 200),
    ("is null on a foreign key", posts(["is", "author_id", None]), ids(5), None, 200),
    ("not in", posts(["not", "id", "in", "(1,2,3)"], ["order", "id"]), ids(4, 5), None, 200),
    ("match", posts(["match", {"status": "published", "author_id": 2}]), ids(4), None, 200),
    ("filter", posts(["filter", "views", "gt", "100"]), ids(4), None, 200),
    ("or with a nested and", posts(["or", "views.gt.100,and(status.eq.published,views.lt.10)"], ["order", "id"]),
     ids(2, 4), None, 200),
    ("two orders, nulls first", posts(["order", "author_id", {"ascending": False, "nullsFirst": True}],
                                      ["order", "id"]), ids(5, 3, 4, 1, 2), None, 200),
    ("order and limit", posts(["order", "views", {"ascending": False}], ["limit", 2]), ids(4, 1), None, 200),
    ("to-many embed with its own order and limit",
     [["from", "users"], ["select", "name,posts(id)"], ["order", "id"],
      ["order", "id", {"referencedTable": "posts", "ascending": False}], ["limit", 1, {"referencedTable": "posts"}]],
     [{"name": "Ann", "posts": ids(2)}, {"name": "Bob", "posts": ids(4)}, {"name": "Cy", "posts": []}], None, 200),
    ("nested embeds on a single row",
     posts(["eq", "id", 1], ["order", "id", {"referencedTable": "comments"}], ["single"],
           columns="title,author:users(name),comments(body)"),
     {"title": "Hello World", "author": {"name": "Ann"}, "comments": [{"body": "first!"}, {"body": "nice"}]},
     None, 200),
    ("inner embed drops rows without a match",
     posts(["order", "id"], ["order", "id", {"referencedTable": "comments"}], columns="id,comments!inner(id)"),
     [{"id": 1, "comments": ids(1, 2)}, {"id": 4, "comments": ids(3)}], None, 200),
    ("to-one embed without a row is null", posts(["eq", "id", 5], columns="id,author:users(name)"),
     [{"id": 5, "author": None}], None, 200),
    ("filter on an inner embed", posts(["eq", "author.name", "Bob"], ["order", "id"],
                                       columns="id,author:users!inner(name)"),
     [{"id": 3, "author": {"name": "Bob"}}, {"id": 4, "author": {"name": "Bob"}}], None, 200),
    ("alias and cast", posts(["eq", "id", 1], columns="ident:id,views::text"), [{"ident": 1, "views": "50"}],
     None, 200),
    ("rpc POST", [["rpc", "add", {"a": 1, "b": 2}]], 3, None, 200),
    ("rpc get: true", [["rpc", "add", {"a": 2, "b": 5}, {"get": True}]], 7, None, 200),
    ("rpc without arguments", [["rpc", "published_count"]], 3, None, 200),
    ("rpc returning rows, filtered", [["rpc", "posts_by_status", {"s": "published"}], ["select", "id,title"],
                                      ["gt", "views", 10], ["order", "id"]],
     [{"id": 1, "title": "Hello World"}, {"id": 4, "title": "hello again"}], None, 200),
    ("rpc head count", [["rpc", "posts_by_status", {"s": "published"}, {"head": True, "count": "exact"}]],
     None, 3, 200),
    ("rpc count with range", [["rpc", "posts_by_status", {"s": "published"}, {"count": "exact"}], ["select", "id"],
                              ["range", 0, 0]], ids(1), 3, 206),
    ("rpc single", [["rpc", "posts_by_status", {"s": "draft"}], ["select", "id,title"], ["single"]],
     {"id": 3, "title": "Draft notes"}, None, 200),
    ("schema() read", [["schema", OTHER], ["from", "events"], ["select", "id,kind"], ["eq", "kind", "click"],
                       ["order", "id"]], [{"id": 1, "kind": "click"}, {"id": 3, "kind": "click"}], None, 200),
    ("schema() rpc", [["schema", OTHER], ["rpc", "event_count", {"k": "click"}]], 2, None, 200),
]


@pytest.mark.parametrize(("name", "data", "count", "status"), [(r[0], *r[2:]) for r in READS],
                         ids=[r[0] for r in READS])
def test_each_read_returns_what_postgrest_returns(batch: dict[str, dict[str, Any]], name: str, data: Any,
                                                  count: int | None, status: int) -> None:
    result = batch[f"read: {name}"]
    assert (result["error"], result["data"], result["count"], result["status"]) == (None, data, count, status)


def test_a_client_configured_with_another_default_schema_reads_it(batch: dict[str, dict[str, Any]]) -> None:
    result = batch["default schema"]
    assert (result["error"], result["data"]) == (None, ids(1, 2, 3))
    assert result["requests"][0]["headers"]["accept-profile"] == OTHER


ERRORS: list[tuple[str, str, Chain, int, str, str]] = [
    # (name, client, chain, status, error.error, error.code)
    ("single with no row", "anon", posts(["eq", "id", 999], ["single"]), 406, "PGRST116", "PGRST116"),
    ("single with many rows", "anon", posts(["eq", "status", "published"], ["single"]), 406, "PGRST116", "PGRST116"),
    ("unknown table", "anon", [["from", "nope"], ["select", "*"]], 404, "TABLE_NOT_FOUND", "42P01"),
    ("unknown column", "anon", posts(columns="nope"), 400, "INVALID_QUERY", "42703"),
    ("unknown function", "anon", [["rpc", "nope", {}]], 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("anon may not write", "anon", [["from", "todos"], ["insert", {"title": "x"}]], 401, "FORBIDDEN", "42501"),
    ("schema not exposed", "anon", [["schema", "public"], ["from", "users"], ["select", "*"]], 406, "PGRST106",
     "PGRST106"),
]


@pytest.mark.parametrize(("name", "status", "error", "code"), [(e[0], *e[3:]) for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_each_failure_reaches_the_sdk_as_its_error(batch: dict[str, dict[str, Any]], name: str, status: int,
                                                   error: str, code: str) -> None:
    result = batch[f"error: {name}"]
    assert result["data"] is None and result["status"] == status, result
    assert (result["error"]["error"], result["error"]["code"]) == (error, code), result["error"]
    assert result["error"]["message"]


def test_maybe_single_with_many_rows_is_refused_by_the_sdk(batch: dict[str, dict[str, Any]]) -> None:
    result = batch["maybeSingle, many rows"]
    assert (result["data"], result["status"], result["error"]["code"]) == (None, 406, "PGRST116")


# --------------------------------------------------------------------------- requests (insforge-behavior §2.1)


def _sent(result: dict[str, Any]) -> tuple[str, str, dict[str, str], str | None]:
    request = result["requests"][-1]
    url = urlsplit(request["url"])
    return request["method"], f"{url.path}?{url.query}" if url.query else url.path, request["headers"], request["body"]


RECORDS = "/api/database/records"
TODOS = f"{RECORDS}/todos"
REQUESTS: list[tuple[str, Chain, str, str, dict[str, str | None], Any]] = [
    # (name, chain as "alice", method, path?query, headers (None: absent), JSON body (None: none))
    ("select", [["from", "posts"], ["select", "*"]], "GET", f"{RECORDS}/posts?select=*", {}, None),
    ("select with embed and filters", posts(["eq", "status", "published"], ["gt", "views", 10],
                                            ["order", "created_at", {"ascending": False}], ["limit", 10],
                                            columns="id,title,author:users(name)"),
     "GET", f"{RECORDS}/posts?select=id%2Ctitle%2Cauthor%3Ausers%28name%29&status=eq.published&views=gt.10"
     "&order=created_at.desc&limit=10", {}, None),
    ("count and range", [["from", "posts"], ["select", "*", {"count": "exact"}], ["range", 0, 9]],
     "GET", f"{RECORDS}/posts?select=*&offset=0&limit=10", {"prefer": "count=exact"}, None),
    ("head", [["from", "posts"], ["select", "*", {"count": "exact", "head": True}]],
     "HEAD", f"{RECORDS}/posts?select=*", {"prefer": "count=exact"}, None),
    ("single", posts(["eq", "id", 1], ["single"], columns="*"), "GET", f"{RECORDS}/posts?select=*&id=eq.1",
     {"accept": OBJECT}, None),
    ("maybeSingle", posts(["eq", "id", 1], ["maybeSingle"], columns="*"), "GET",
     f"{RECORDS}/posts?select=*&id=eq.1", {"accept": "application/json"}, None),
    ("or, in, is, ilike", posts(["or", "status.eq.a,status.eq.b"], ["in", "id", [1, 2]], ["is", "deleted_at", None],
                                ["ilike", "title", "%x%"], columns="*"),
     "GET", f"{RECORDS}/posts?select=*&or=%28status.eq.a%2Cstatus.eq.b%29&id=in.%281%2C2%29&deleted_at=is.null"
     "&title=ilike.%25x%25", {}, None),
    ("insert an object", [["from", "todos"], ["insert", {"title": "r"}]], "POST", TODOS, {"prefer": None},
     {"title": "r"}),
    ("insert an array with select", [["from", "todos"], ["insert", [{"title": "r", "slug": "r"}]], ["select"]],
     "POST", f"{TODOS}?columns=%22title%22%2C%22slug%22&select=*", {"prefer": "return=representation"},
     [{"title": "r", "slug": "r"}]),
    ("update with select", [["from", "todos"], ["update", {"done": True}], ["eq", "id", 1], ["select"]], "PATCH",
     f"{TODOS}?id=eq.1&select=*", {"prefer": "return=representation"}, {"done": True}),
    ("delete", [["from", "todos"], ["delete"], ["eq", "id", 1]], "DELETE", f"{TODOS}?id=eq.1",
     {"content-type": "application/json"}, None),
    ("upsert", [["from", "todos"], ["upsert", {"slug": "r", "title": "s"}, {"onConflict": "slug"}], ["select"]],
     "POST", f"{TODOS}?on_conflict=slug&select=*", {"prefer": "resolution=merge-duplicates, return=representation"},
     {"slug": "r", "title": "s"}),
    ("rpc", [["rpc", "add", {"a": 1, "b": 2}]], "POST", "/api/database/rpc/add", {}, {"a": 1, "b": 2}),
    ("rpc without arguments", [["rpc", "published_count"]], "POST", "/api/database/rpc/published_count", {}, {}),
    ("rpc get", [["rpc", "add", {"a": 1, "b": 2}, {"get": True}]], "GET", "/api/database/rpc/add?a=1&b=2", {},
     None),
    ("rpc head", [["rpc", "posts_by_status", {"s": "x"}, {"head": True, "count": "exact"}]],
     "HEAD", "/api/database/rpc/posts_by_status?s=x", {"prefer": "count=exact"}, None),
    ("schema read", [["schema", OTHER], ["from", "events"], ["select", "*"]], "GET", f"{RECORDS}/events?select=*",
     {"accept-profile": OTHER}, None),
    ("schema rpc", [["schema", OTHER], ["rpc", "event_count", {"k": "a"}]], "POST", "/api/database/rpc/event_count",
     {"content-profile": OTHER}, {"k": "a"}),
]


@pytest.mark.parametrize(("name", "method", "target", "headers", "body"), [(r[0], *r[2:]) for r in REQUESTS],
                         ids=[r[0] for r in REQUESTS])
def test_the_sdk_sends_the_requests_insforge_behavior_lists(batch: dict[str, dict[str, Any]], live: LiveServer,
                                                            name: str, method: str, target: str,
                                                            headers: dict[str, str | None], body: Any) -> None:
    sent_method, sent_target, sent_headers, sent_body = _sent(batch[f"request: {name}"])
    assert (sent_method, sent_target) == (method, target)
    assert sent_headers["authorization"] == f"Bearer {live.token('alice')}"
    assert "apikey" not in sent_headers
    assert {k: sent_headers.get(k) for k in headers} == headers
    assert (json.loads(sent_body) if sent_body else None) == body


@pytest.fixture(scope="module")
def batch(sdk_dir: Path, live: LiveServer) -> dict[str, dict[str, Any]]:
    """Every call above, run in one Node process (loading the SDK takes most of a second)."""
    named: list[tuple[str, str, Chain]] = [
        *((f"read: {name}", "anon", chain) for name, chain, *_ in READS),
        *((f"error: {name}", client, chain) for name, client, chain, *_ in ERRORS),
        *((f"request: {name}", "alice", chain) for name, chain, *_ in REQUESTS),
        ("default schema", "other", [["from", "events"], ["select", "id"], ["order", "id"]]),
        ("maybeSingle, many rows", "anon", posts(["eq", "status", "published"], ["maybeSingle"])),
    ]
    results = run_js(sdk_dir, live, *((client, chain) for _, client, chain in named))
    return {name: result for (name, _, _), result in zip(named, results, strict=True)}


# --------------------------------------------------------------------------- writes (todos, as a signed-in user)


def todos_chain(*steps: list[Any]) -> Chain:
    return [["from", "todos"], *steps]


TITLES, DONE, PRIORITIES = (f"select array_agg({c} order by id) from {SCHEMA}.todos" for c in ("title", "done",
                                                                                                  "priority"))
IDS = f"select array_agg(id order by id) from {SCHEMA}.todos"
WRITES: list[tuple[str, Chain, tuple[Any, int | None, int, str | None], str, Any]] = [
    # (name, chain as "alice", (data, count, status, error code), SQL checked afterwards, its value)
    ("insert an object without select: 201 with []", todos_chain(["insert", {"title": "new", "slug": "new"}]),
     ([], None, 201, None), f"select row(t.*)::text from {SCHEMA}.todos t where slug = 'new'", "(4,new,f,new,3)"),
    ("insert an array with select", todos_chain(["insert", [{"title": "a"}, {"title": "b"}]], ["select", "id,title"]),
     ([{"id": 4, "title": "a"}, {"id": 5, "title": "b"}], None, 201, None), IDS, [1, 2, 3, 4, 5]),
    ("insert with defaultToNull false takes the defaults",
     todos_chain(["insert", [{"title": "a"}, {"title": "b", "done": True}], {"defaultToNull": False}],
                 ["select", "title,done"]),
     ([{"title": "a", "done": False}, {"title": "b", "done": True}], None, 201, None), DONE,
     [False, True, False, False, True]),
    ("insert, select, single", todos_chain(["insert", {"title": "solo"}], ["select", "id,title"], ["single"]),
     ({"id": 4, "title": "solo"}, None, 201, None), IDS, [1, 2, 3, 4]),
    ("insert, select, maybeSingle", todos_chain(["insert", {"title": "solo"}], ["select", "id"], ["maybeSingle"]),
     ({"id": 4}, None, 201, None), IDS, [1, 2, 3, 4]),
    ("insert a duplicate: 409", todos_chain(["insert", {"title": "again", "slug": "milk"}]),
     (None, None, 409, "23505"), IDS, [1, 2, 3]),
    ("update with select", todos_chain(["update", {"done": True}], ["eq", "id", 1], ["select", "id,done"]),
     ([{"id": 1, "done": True}], None, 200, None), DONE, [True, True, False]),
    ("update without select: 204", todos_chain(["update", {"priority": 9}], ["in", "id", [2, 3]]),
     (None, None, 204, None), PRIORITIES, [1, 9, 9]),
    ("update with count", todos_chain(["update", {"done": True}, {"count": "exact"}], ["eq", "done", False]),
     (None, 2, 204, None), DONE, [True, True, True]),
    ("delete: 204", todos_chain(["delete"], ["eq", "id", 1]), (None, None, 204, None), IDS, [2, 3]),
    ("delete with select", todos_chain(["delete"], ["eq", "id", 2], ["select", "id,title"]),
     ([{"id": 2, "title": "walk dog"}], None, 200, None), IDS, [1, 3]),
    ("delete with count", todos_chain(["delete", {"count": "exact"}], ["eq", "id", 3]), (None, 1, 204, None), IDS,
     [1, 2]),
    ("upsert merging on a unique column: 200",
     todos_chain(["upsert", {"slug": "milk", "title": "buy oat milk"}, {"onConflict": "slug"}],
                 ["select", "id,title,slug"]),
     ([{"id": 1, "title": "buy oat milk", "slug": "milk"}], None, 200, None), TITLES,
     ["buy oat milk", "walk dog", "write tests"]),
    ("upsert ignoring duplicates returns only new rows",
     todos_chain(["upsert", [{"slug": "milk", "title": "zzz"}, {"slug": "new", "title": "new one"}],
                  {"onConflict": "slug", "ignoreDuplicates": True}], ["select", "title,slug"]),
     ([{"title": "new one", "slug": "new"}], None, 201, None), TITLES,
     ["buy milk", "walk dog", "write tests", "new one"]),
    ("upsert by primary key inserts and updates",
     todos_chain(["upsert", [{"id": 2, "title": "walk cat"}, {"id": 10, "title": "ten"}]], ["select", "id,title"]),
     ([{"id": 2, "title": "walk cat"}, {"id": 10, "title": "ten"}], None, 201, None), TITLES,
     ["buy milk", "walk cat", "write tests", "ten"]),
    ("single with several rows: 406, rolled back",
     todos_chain(["update", {"priority": 7}], ["in", "id", [1, 3]], ["select"], ["single"]),
     (None, None, 406, "PGRST116"), PRIORITIES, [1, 2, 3]),
]


@pytest.mark.parametrize(("chain", "expected", "check", "after"), [w[1:] for w in WRITES],
                         ids=[w[0] for w in WRITES])
async def test_each_write_returns_what_postgrest_returns_and_changes_the_table(
        sdk_dir: Path, live: LiveServer, todos: asyncpg.Connection, chain: Chain,
        expected: tuple[Any, int | None, int, str | None], check: str, after: Any) -> None:
    result = one(sdk_dir, live, "alice", chain)
    error = result["error"]
    assert (result["data"], result["count"], result["status"], error and error["code"]) == expected, error
    assert await todos.fetchval(check) == after


async def test_a_void_rpc_runs_and_returns_no_data(sdk_dir: Path, live: LiveServer, pg: asyncpg.Connection) -> None:
    try:
        result = one(sdk_dir, live, "alice", [["rpc", "bump", {"post": 3}]])
        assert (result["error"], result["data"], result["status"]) == (None, None, 204)
        assert await pg.fetchval(f"select views from {SCHEMA}.posts where id = 3") == 1
    finally:
        await pg.execute(f"update {SCHEMA}.posts set views = 0 where id = 3")


# --------------------------------------------------------------------------- RLS: a user session sees its own rows


async def test_a_user_session_sees_and_changes_only_its_own_rows(sdk_dir: Path, live: LiveServer,
                                                                 todos: asyncpg.Connection) -> None:
    notes = [["from", "notes"]]
    results = run_js(
        sdk_dir, live,
        ("alice", [*notes, ["insert", [{"body": "a1"}, {"body": "a2"}]], ["select", "body"]]),
        ("bob", [*notes, ["insert", {"body": "b1"}]]),
        ("alice", [*notes, ["select", "body", {"count": "exact"}], ["order", "body"]]),
        ("bob", [*notes, ["select", "body"]]),
        ("anon", [*notes, ["select", "body"]]),
        ("admin", [*notes, ["select", "body"], ["order", "body"]]),
        ("alice", [*notes, ["update", {"body": "stolen"}], ["eq", "body", "b1"], ["select", "body"]]),
        ("alice", [*notes, ["delete"], ["eq", "body", "b1"], ["select", "body"]]),
        ("alice", [*notes, ["insert", {"body": "forged", "owner": live.uid("bob")}]]),
    )
    inserted, _, alice, bob, anon, admin, update, delete, forged = results
    assert (inserted["data"], inserted["status"]) == ([{"body": "a1"}, {"body": "a2"}], 201)
    assert (alice["data"], alice["count"]) == ([{"body": "a1"}, {"body": "a2"}], 2)
    assert bob["data"] == [{"body": "b1"}]
    assert anon["data"] == []
    assert admin["data"] == [{"body": "a1"}, {"body": "a2"}, {"body": "b1"}]
    assert (update["data"], delete["data"]) == ([], [])
    assert (forged["status"], forged["error"]["code"]) == (403, "42501")
    owners = await todos.fetch(f"select owner::text, body from {SCHEMA}.notes order by body")
    assert [tuple(r) for r in owners] == [(live.uid("alice"), "a1"), (live.uid("alice"), "a2"),
                                         (live.uid("bob"), "b1")]

