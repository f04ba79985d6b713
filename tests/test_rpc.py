"""RPC over HTTP: every method, every kind of return, filters on row results, overloads,
errors raised by functions, and the request settings a function can read.

Schema ``rest_rpc`` (plus ``rest_rpc2`` for the profile headers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from support import ERROR_KEYS, Running, app_with, assert_error

FIXTURE = """
drop schema if exists rest_rpc cascade; drop schema if exists rest_rpc2 cascade;
create schema rest_rpc; create schema rest_rpc2; set search_path = rest_rpc;
create table clients(id int primary key, name text);
insert into clients values (1, 'Microsoft'), (2, 'Apple');
create table projects(id int primary key, name text, client_id int references clients(id));
insert into projects values (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2);
create table log(id int generated always as identity primary key, msg text);
create type pt as (x int, y int);
create type color as enum ('red', 'green');
create function add_them(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function sayhello(name text) returns text language sql stable as $$ select 'Hello, ' || name $$;
create function ints() returns setof int language sql stable as $$ values (1), (2), (3) $$;
create function point() returns pt language sql stable as $$ select 10, 5 $$;
create function out_params(out x int, out y int) language sql stable as $$ select 1, 2 $$;
create function nothing() returns void language sql volatile as $$ select $$;
create function get_projects(cid int) returns setof projects language sql stable
  as $$ select * from projects where client_id = cid $$;
create function project_table() returns table(id int, label text) language sql stable
  as $$ select id, name from projects order by id $$;
create function one_project(pid int) returns projects language sql stable
  as $$ select * from projects where id = pid $$;
create function over(a int) returns text language sql immutable as $$ select 'one' $$;
create function over(a int, b int) returns text language sql immutable as $$ select 'two' $$;
create function tie(a int) returns text language sql immutable as $$ select 'int' $$;
create function tie(a text) returns text language sql immutable as $$ select 'text' $$;
create function write_it(msg text) returns int language sql volatile
  as $$ insert into log(msg) values (msg) returning id $$;
create function pay() returns void language plpgsql as $$ begin
  raise sqlstate 'PT402' using message = 'Payment Required', detail = 'Quota exceeded', hint = 'Upgrade';
end $$;
create function fail() returns void language plpgsql as $$ begin raise exception 'nope: %', 'bad'; end $$;
create function whoami() returns json language sql stable as $$ select json_build_object(
  'claims', current_setting('request.jwt.claims', true)::json,
  'method', current_setting('request.method', true), 'path', current_setting('request.path', true),
  'role', current_user) $$;
create function echo_json(jsonb) returns jsonb language sql immutable as $$ select $1 $$;
create function get_json() returns json language sql immutable as $$ select '{"a": 1}'::json $$;
create function arr() returns int[] language sql immutable as $$ select array[1, 2] $$;
create function fav() returns color language sql immutable as $$ select 'red'::color $$;
create function stamp() returns timestamptz language sql immutable
  as $$ select '2024-06-01T12:00:00+02:00'::timestamptz $$;
create function nullish() returns int language sql immutable as $$ select null::int $$;
create function greet(name text default 'you') returns text language sql immutable as $$ select 'Hi ' || name $$;
create function vsum(variadic nums int[]) returns int language sql immutable
  as $$ select sum(n)::int from unnest(nums) n $$;
create function count_tags(t text[]) returns int language sql immutable as $$ select cardinality(t) $$;
create function is_on(flag boolean) returns boolean language sql immutable as $$ select flag $$;
create function rest_rpc2.elsewhere() returns text language sql immutable as $$ select 'rpc2' $$;
grant usage on schema rest_rpc, rest_rpc2 to anon, authenticated, project_admin;
grant select on all tables in schema rest_rpc to anon, authenticated, project_admin;
grant insert on rest_rpc.log to anon, authenticated, project_admin;
"""

OBJECT = "application/vnd.pgrst.object+json"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, ("rest_rpc", "rest_rpc2"),
                        teardown_sql="drop schema rest_rpc cascade; drop schema rest_rpc2 cascade") as running:
        yield running


async def rpc(app: Running, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
              who: str = "user", raw: bytes | None = None) -> httpx.Response:
    creds = {"user": app.user(), "anon": app.anon, "admin": app.admin}[who]
    content = raw if raw is not None else (None if body is None else orjson.dumps(body))
    return await app.client.request(method, f"/api/database/rpc/{path}", content=content,
                                    headers={**creds, **(headers or {})})



@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("GET", "add_them?a=3&b=4", None, 7),
    ("POST", "add_them", {"a": 3, "b": 4}, 7),
    ("PUT", "add_them", {"a": 3, "b": 5}, 8),
    ("PATCH", "add_them", {"a": 3, "b": 6}, 9),
    ("DELETE", "add_them", {"a": 3, "b": 7}, 10),
    ("DELETE", "add_them?a=1&b=1", None, 2),
    ("POST", "add_them", [{"a": 1, "b": 2}, {"a": 5, "b": 5}], 3),
    ("POST", "sayhello", {"name": "world"}, "Hello, world"),
    ("GET", "sayhello?name=a+b%26c", None, "Hello, a b&c"),
    ("POST", "ints", None, [1, 2, 3]),
    ("POST", "ints", {}, [1, 2, 3]),
    ("GET", "point", None, {"x": 10, "y": 5}),
    ("GET", "out_params", None, {"x": 1, "y": 2}),
    ("GET", "get_json", None, {"a": 1}),
    ("GET", "arr", None, [1, 2]),
    ("GET", "fav", None, "red"),
    ("GET", "stamp", None, "2024-06-01T10:00:00+00:00"),
    ("GET", "nullish", None, None),
    ("GET", "greet", None, "Hi you"),
    ("POST", "greet", {}, "Hi you"),
    ("POST", "greet", {"name": "Ann"}, "Hi Ann"),
    ("POST", "vsum", {"nums": [1, 2, 3]}, 6),
    ("GET", "count_tags?t={a,b}", None, 2),
    ("POST", "count_tags", {"t": ["a", "b", "c"]}, 3),
    ("GET", "is_on?flag=true", None, True),
    ("POST", "is_on", {"flag": False}, False),
    ("POST", "echo_json", {"any": [1, {"b": None}]}, {"any": [1, {"b": None}]}),
    ("GET", "over?a=1", None, "one"),
    ("GET", "over?a=1&b=2", None, "two"),
    ("POST", "one_project", {"pid": 3}, {"id": 3, "name": "IOS", "client_id": 2}),
    ("GET", "project_table?id=eq.2", None, [{"id": 2, "label": "Windows 10"}]),
])
async def test_each_return_kind_has_its_json_shape(app: Running, method: str, path: str, body: Any,
                                                   expected: Any) -> None:
    r = await rpc(app, method, path, body)
    assert r.status_code == 200, r.text
    assert r.json() == expected
    assert r.headers["content-type"] == "application/json; charset=utf-8"


async def test_a_void_function_answers_204(app: Running) -> None:
    for method in ("POST", "GET", "PUT"):
        r = await rpc(app, method, "nothing")
        assert (r.status_code, r.content) == (204, b"")


@pytest.mark.parametrize(("path", "headers", "content_range", "status"), [
    ("add_them?a=1&b=2", {}, "0-0/*", 200),
    ("add_them?a=1&b=2", {"Prefer": "count=exact"}, "0-0/1", 200),
    ("ints", {}, "0-2/*", 200),
    ("ints", {"Prefer": "count=exact"}, "0-2/3", 200),
    ("point", {"Prefer": "count=exact"}, "0-0/1", 200),
    ("get_projects?cid=1", {}, "0-1/*", 200),
    ("get_projects?cid=1", {"Prefer": "count=exact"}, "0-1/2", 200),
    ("get_projects?cid=1&limit=1", {"Prefer": "count=exact"}, "0-0/2", 206),
    ("get_projects?cid=1&offset=5", {"Prefer": "count=exact"}, "*/2", 416),
])
async def test_rpc_content_range_counts_the_result(app: Running, path: str, headers: dict[str, str],
                                                   content_range: str, status: int) -> None:
    r = await rpc(app, "GET", path, headers=headers)
    assert (r.status_code, r.headers["content-range"]) == (status, content_range), r.text


async def test_head_calls_the_function_and_sends_no_body(app: Running) -> None:
    r = await rpc(app, "HEAD", "get_projects?cid=2", headers={"Prefer": "count=exact"})
    assert (r.status_code, r.content, r.headers["content-range"]) == (200, b"", "0-1/2")
    r = await rpc(app, "HEAD", "add_them?a=1&b=2")
    assert (r.status_code, r.content) == (200, b"")


@pytest.mark.parametrize(("method", "path", "body", "expected"), [
    ("POST", "get_projects?select=id,name&order=id", {"cid": 1}, [{"id": 1, "name": "Windows 7"},
                                                                 {"id": 2, "name": "Windows 10"}]),
    ("GET", "get_projects?cid=2&select=name", None, [{"name": "IOS"}, {"name": "OSX"}]),
    ("GET", "get_projects?cid=1&id=gt.1&select=id", None, [{"id": 2}]),
    ("GET", "get_projects?cid=1&or=(id.eq.1,name.like.*10)&select=id&order=id.desc", None, [{"id": 2}, {"id": 1}]),
    ("GET", "get_projects?cid=2&select=id&order=id.desc&limit=1", None, [{"id": 4}]),
    ("GET", "get_projects?cid=2&select=id&order=id&offset=1", None, [{"id": 4}]),
    ("GET", "get_projects?cid=1&select=id,clients(name)&id=eq.1", None, [{"id": 1, "clients": {"name": "Microsoft"}}]),
    ("GET", "get_projects?cid=2&select=id,...clients(client:name)&limit=1&order=id", None,
     [{"id": 3, "client": "Apple"}]),
    ("GET", "project_table?select=label&label=like.Win*&order=id", None, [{"label": "Windows 7"},
                                                                        {"label": "Windows 10"}]),
    ("GET", "one_project?pid=1&select=name", None, {"name": "Windows 7"}),
])
async def test_row_returning_functions_take_select_filters_order_page_and_embeds(
        app: Running, method: str, path: str, body: Any, expected: Any) -> None:
    r = await rpc(app, method, path, body)
    assert r.status_code == 200, r.text
    assert r.json() == expected


async def test_the_object_media_type_works_for_rpc(app: Running) -> None:
    r = await rpc(app, "GET", "get_projects?cid=1&id=eq.2", headers={"Accept": OBJECT})
    assert (r.status_code, r.json()) == (200, {"id": 2, "name": "Windows 10", "client_id": 1})
    assert r.headers["content-type"] == f"{OBJECT}; charset=utf-8"
    assert_error(await rpc(app, "GET", "get_projects?cid=1", headers={"Accept": OBJECT}), 406, "PGRST116", "PGRST116")


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "code"), [
    ("POST", "nosuch", {}, 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("GET", "nosuch", None, 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("POST", "add_them", {"a": 1, "b": 2, "c": 3}, 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("GET", "add_them?a=1&b=2&c=3", None, 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("POST", "add_them", {"a": 1}, 404, "DATABASE_NOT_FOUND", "PGRST202"),
    ("GET", "tie?a=1", None, 300, "PGRST203", "PGRST203"),
    ("GET", "write_it?msg=x", None, 405, None, "25006"),
    ("HEAD", "write_it?msg=x", None, 405, None, None),
    ("POST", "fail", None, 400, None, "P0001"),
    ("GET", "add_them?a=x&b=1", None, 400, "VALIDATION_ERROR", "22P02"),
    ("POST", "add_them", {"a": "x", "b": 1}, 400, "VALIDATION_ERROR", None),
    ("POST", "add_them", {"a": 2**40, "b": 1}, 400, "VALIDATION_ERROR", None),
    ("POST", "count_tags", {"t": 5}, 400, "VALIDATION_ERROR", None),
    ("POST", "add_them?a=eq.1", {"a": 1, "b": 2}, 400, "INVALID_QUERY", None),
    ("GET", "add_them?a=1&b=2&order=x", None, 400, "INVALID_QUERY", None),
    ("GET", "get_projects?cid=1&nosuch=eq.1", None, 400, "INVALID_QUERY", "42703"),
    ("GET", "get_projects?cid=1&select=id,entities(id)", None, 400, "INVALID_QUERY", "PGRST200"),
    ("GET", "get_projects?cid=1&limit=5000", None, 400, "INVALID_QUERY", None),
    ("GET", "add_them?a=1&b=2", None, 406, "PGRST107", "PGRST107"),
])
async def test_rpc_errors_have_the_status_and_body_of_the_rules(app: Running, method: str, path: str, body: Any,
                                                                status: int, error: str | None,
                                                                code: str | None) -> None:
    headers = {"Accept": "text/unknowntype"} if status == 406 else {}
    r = await rpc(app, method, path, body, headers)
    assert r.status_code == status, r.text
    if method == "HEAD":
        return
    body_ = r.json()
    assert body_.keys() >= ERROR_KEYS and body_["statusCode"] == status, body_
    if error:
        assert body_["error"] == error
    if code:
        assert body_["code"] == code


@pytest.mark.parametrize("raw", [b"not json", b"{", b'{"a": 1,}'])
async def test_a_body_that_is_not_json_is_a_validation_error(app: Running, raw: bytes) -> None:
    assert_error(await rpc(app, "POST", "add_them", raw=raw), 400, "VALIDATION_ERROR", "PGRST102")


async def test_a_function_that_writes_runs_under_post(app: Running, pg: asyncpg.Connection) -> None:
    before = await pg.fetchval("select count(*) from rest_rpc.log")
    r = await rpc(app, "POST", "write_it", {"msg": "hello"})
    assert r.status_code == 200 and isinstance(r.json(), int)
    assert await pg.fetchval("select count(*) from rest_rpc.log") == before + 1
    assert await pg.fetchval("select msg from rest_rpc.log order by id desc limit 1") == "hello"


async def test_raising_pt402_answers_402_with_the_message_details_and_hint(app: Running) -> None:
    r = await rpc(app, "POST", "pay")
    assert r.status_code == 402
    body = r.json()
    assert body.keys() >= ERROR_KEYS
    assert (body["statusCode"], body["code"], body["message"], body["details"], body["hint"]) == (
        402, "PT402", "Payment Required", "Quota exceeded", "Upgrade")


async def test_a_plain_raise_answers_400_with_its_message(app: Running) -> None:
    body = assert_error(await rpc(app, "POST", "fail"), 400, "VALIDATION_ERROR", "P0001")
    assert body["message"] == "nope: bad"


@pytest.mark.parametrize(("who", "method", "role"), [
    ("anon", "POST", "anon"), ("anon", "GET", "anon"), ("user", "PATCH", "authenticated"),
    ("admin", "POST", "project_admin"),
])
async def test_a_function_sees_the_request_method_path_and_claims(app: Running, who: str, method: str,
                                                                  role: str) -> None:
    r = await rpc(app, method, "whoami", who=who)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert (seen["method"], seen["path"], seen["role"], seen["claims"]["role"]) == (
        method, "/api/database/rpc/whoami", role, role)
    if who == "user":
        assert seen["claims"]["sub"] == app.uid()


async def test_profiles_reach_functions_of_another_exposed_schema(app: Running) -> None:
    r = await rpc(app, "POST", "elsewhere", {}, {"Content-Profile": "rest_rpc2"})
    assert (r.status_code, r.json()) == (200, "rpc2")
    r = await rpc(app, "GET", "elsewhere", headers={"Accept-Profile": "rest_rpc2"})
    assert (r.status_code, r.json()) == (200, "rpc2")
    assert_error(await rpc(app, "GET", "elsewhere"), 404, "DATABASE_NOT_FOUND", "PGRST202")
    assert_error(await rpc(app, "GET", "add_them?a=1&b=1", headers={"Accept-Profile": "public"}), 406,
                 "PGRST106", "PGRST106")
