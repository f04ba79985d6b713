"""Records reads over HTTP: filters, select, order, pages, headers, media types, profiles, errors.

The fixture is postgrest-semantics §16's (items, simple_pk, no_pk, chores, entities,
tiobe_pls, clients, projects) plus ``kinds`` (one column of every interesting type) and
``many`` (more rows than the default limit), in schema ``rest_read``; ``rest_read2`` is a
second exposed schema for the profile headers. Nothing here writes.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support import ERROR_KEYS, Running, app_with, assert_error

FIXTURE = """
drop schema if exists rest_read cascade; drop schema if exists rest_read2 cascade;
create schema rest_read; create schema rest_read2;
set search_path = rest_read;
create table items(id int primary key); insert into items select generate_series(1, 15);
create table many(id int primary key); insert into many select generate_series(1, 1050);
create table simple_pk(k text primary key, extra text not null);
insert into simple_pk values ('xyyx', 'u'), ('xYYx', 'v');
create table no_pk(a text, b text); insert into no_pk values (null, null), ('1', '0'), ('2', '0');
create table chores(id int primary key, done bool); insert into chores values (1, true), (2, false), (3, null);
create table entities(id int primary key); insert into entities values (1), (2), (3), (4);
create table tiobe_pls(name text primary key, rank int);
insert into tiobe_pls values ('Java', 1), ('C', 2), ('Python', 4);
create table clients(id int primary key, name text); insert into clients values (1, 'Microsoft'), (2, 'Apple');
create table projects(id int primary key, name text, client_id int references clients(id));
insert into projects values (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2),
  (5, 'Orphan', null);
create table people(id int primary key, name text);
insert into people values (1, 'Hebdon, John'), (2, 'Williams, Mary'), (3, 'David White'), (4, 'Double"Quote');
create type mood as enum ('sad', 'ok', 'happy');
create table kinds(
  id int primary key, body text, data jsonb, meta json, tags text[], during int4range,
  born timestamptz, day date, mood mood, uid uuid, price numeric, flag bool, doc tsvector,
  "createdAt" timestamptz, "first name" text);
insert into kinds values
  (1, 'The fat cat sat on the mat', '{"foo": {"bar": "baz"}, "age": 30, "list": [1, 2]}', '{"k": "a"}',
   '{a,b}', '[1,5)', '2024-01-01T00:00:00Z', '2024-01-01', 'happy', '11111111-1111-1111-1111-111111111111',
   10.5, true, to_tsvector('english', 'fat cats running'), '2024-01-01T00:00:00Z', 'Ann'),
  (2, 'A quick brown fox', '{"foo": {"bar": "qux"}, "age": 10}', '{"k": "b"}',
   '{c}', '[10,20)', '2024-06-01T12:00:00+02:00', '2024-06-01', 'sad', '22222222-2222-2222-2222-222222222222',
   3, false, to_tsvector('english', 'quick fox'), '2024-02-01T00:00:00Z', 'Bob'),
  (3, 'Les chats sont gras', '{"age": 20}', '{"k": null}',
   '{a,c}', '[5,10)', null, null, 'ok', null, null, null, null, '2024-03-01T00:00:00Z', null),
  (4, null, null, null, '{}', null, null, null, null, null, null, null, null, null, null);
create table secret(id int primary key); insert into secret values (1);
create view item_view as select id from items where id <= 3;
create view many_view as select count(*) as total from many;
create table rest_read2.other(id int primary key, label text);
insert into rest_read2.other values (1, 'elsewhere');
grant usage on schema rest_read, rest_read2 to anon, authenticated, project_admin;
grant select on all tables in schema rest_read to anon, authenticated, project_admin;
grant select on all tables in schema rest_read2 to anon, authenticated, project_admin;
revoke all on rest_read.secret from anon, authenticated, project_admin;
analyze;
"""

OBJECT = "application/vnd.pgrst.object+json"


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, ("rest_read", "rest_read2"),
                        teardown_sql="drop schema rest_read cascade; drop schema rest_read2 cascade") as running:
        yield running


async def get(app: Running, path: str, headers: dict[str, str] | None = None, method: str = "GET",
              who: str = "user") -> httpx.Response:
    creds = {"user": app.user(), "anon": app.anon, "admin": app.admin}[who]
    return await app.client.request(method, f"/api/database/records/{path}", headers={**creds, **(headers or {})})



def ids(r: httpx.Response, key: str = "id") -> list[Any]:
    assert r.status_code == 200, r.text
    return sorted(row[key] for row in r.json())


# --------------------------------------------------------------------------- filters (§16 1-12 and every operator)


@pytest.mark.parametrize(("path", "expected"), [
    ("items?id=eq.5", [5]),
    ("items?id=not.in.(2,4,6,7,8,9,10,11,12,13,14,15)", [1, 3, 5]),
    ("items?id=in.()", []),
    ("items?id=gte.14&id=lte.15", [14, 15]),
    ("chores?done=is.NULL", [3]),
    ("chores?done=is.unknown", [3]),
    ("chores?done=is.true", [1]),
    ("chores?done=is.false", [2]),
    ("chores?done=not.is.true", [2, 3]),
    ("entities?or=(id.eq.1,id.eq.2)", [1, 2]),
    ("entities?not.or=(id.eq.1,id.eq.2)", [3, 4]),
    ("entities?and=(id.eq.1,not.or(id.eq.2,id.eq.3),or(id.eq.1,id.eq.4))", [1]),
    ("entities?not.and=(id.gt.1,id.lt.4)", [1, 4]),
    ("entities?or=( id.eq.1 , and(id.gt.2,id.lt.4) )", [1, 3]),
    ("entities?or=(id.in.(1,4),id.eq.2)", [1, 2, 4]),
    ("projects?id=eq(any).{3,4,5}", [3, 4, 5]),
    ("projects?id=gt(all).{4,3}", [5]),
    ("projects?id=not.eq(any).{3,4,5}", [1, 2]),
    ("people?name=in.(\"Hebdon, John\",\"Williams, Mary\")", [1, 2]),
    ("people?name=in.(David White,\"Hebdon, John\")", [1, 3]),
    ("people?name=in.(\"Double\\\"Quote\")", [4]),
    ("people?name=eq.Hebdon, John", [1]),
    ("people?or=(name.eq.\"Hebdon, John\",id.eq.3)", [1, 3]),
    ("kinds?body=eq.A quick brown fox", [2]),
    ("kinds?body=neq.A quick brown fox", [1, 3]),
    ("kinds?price=gt.3", [1]),
    ("kinds?price=gte.3", [1, 2]),
    ("kinds?price=lt.10.5", [2]),
    ("kinds?price=lte.10.5", [1, 2]),
    ("kinds?body=like.*cat*", [1]),
    ("kinds?body=ilike.*THE*", [1]),
    ("kinds?body=like.A%25", [2]),
    ("kinds?body=ilike.%25CHATS%25", [3]),
    ("kinds?body=match.^A", [2]),
    ("kinds?body=match.f.x$", [2]),
    ("kinds?body=imatch.^a q", [2]),
    ("kinds?body=like(any).{*cat*,*fox}", [1, 2]),
    ("kinds?body=ilike(all).{*THE*,*MAT}", [1]),
    ("kinds?body=match(any).{^A,^Les}", [2, 3]),
    ("kinds?body=imatch(all).{^a,FOX$}", [2]),
    ("kinds?id=like.1*", [1]),
    ("kinds?mood=in.(sad,ok)", [2, 3]),
    ("kinds?mood=eq.happy", [1]),
    ("kinds?mood=gt.sad", [1, 3]),
    ("kinds?flag=is.null", [3, 4]),
    ("kinds?flag=is.not_null", [1, 2]),
    ("kinds?flag=not.is.null", [1, 2]),
    ("kinds?price=isdistinct.3", [1, 3, 4]),
    ("kinds?price=not.isdistinct.3", [2]),
    ("kinds?doc=fts.fat", [1]),
    ("kinds?doc=fts(english).cats", [1]),
    ("kinds?doc=plfts.quick fox", [2]),
    ("kinds?body=fts.fat", [1]),
    ("kinds?body=plfts.fat cat", [1]),
    ("kinds?body=phfts(english).quick brown", [2]),
    ("kinds?body=wfts.fat -dog", [1]),
    ("kinds?body=wfts(english).\"brown fox\" or dog", [2]),
    ("kinds?body=fts(french).chat", [3]),
    ("kinds?body=not.fts.fat", [2, 3]),
    ("kinds?tags=cs.{a}", [1, 3]),
    ("kinds?tags=cd.{a,b}", [1, 4]),
    ("kinds?tags=ov.{b,c}", [1, 2, 3]),
    ("kinds?tags=not.cs.{a}", [2, 4]),
    ("kinds?data=cs.{\"age\":30}", [1]),
    ("kinds?data=cd.{\"age\":20,\"x\":1}", [3]),
    ("kinds?during=cs.[6,7)", [3]),
    ("kinds?during=ov.[4,6)", [1, 3]),
    ("kinds?during=sl.[6,7)", [1]),
    ("kinds?during=sr.[0,6)", [2]),
    ("kinds?during=nxr.[0,10)", [1, 3]),
    ("kinds?during=nxl.[5,6)", [2, 3]),
    ("kinds?during=adj.[5,7)", [1]),
    ("kinds?data->foo->>bar=eq.baz", [1]),
    ("kinds?data->age=gt.15", [1, 3]),
    ("kinds?data->>age=eq.10", [2]),
    ("kinds?data->list->0=eq.1", [1]),
    ("kinds?data->list->>-1=eq.2", [1]),
    ("kinds?meta->>k=eq.b", [2]),
    ("kinds?meta->k=eq.\"a\"", [1]),
    ("kinds?or=(data->foo->>bar.eq.qux,id.eq.3)", [2, 3]),
    ("kinds?uid=eq.11111111-1111-1111-1111-111111111111", [1]),
    ("kinds?born=gt.2024-03-01", [2]),
    ("kinds?born=lt.2024-06-01T11:00:00Z", [1, 2]),
    ("kinds?day=eq.2024-06-01", [2]),
    ("kinds?createdAt=gte.2024-02-01", [2, 3]),
    ("kinds?first name=eq.Ann", [1]),
    ("kinds?\"first name\"=eq.Bob", [2]),
    ("item_view?id=gt.1", [2, 3]),
])
async def test_each_filter_selects_exactly_the_matching_rows(app: Running, path: str, expected: list[int]) -> None:
    assert ids(await get(app, path)) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("no_pk?a=is.null", [{"a": None, "b": None}]),
    ("no_pk?a=not.is.null&order=a", [{"a": "1", "b": "0"}, {"a": "2", "b": "0"}]),
    ("no_pk?a=is.not_null&order=a", [{"a": "1", "b": "0"}, {"a": "2", "b": "0"}]),
    ("simple_pk?k=like.*yx", [{"k": "xyyx", "extra": "u"}]),
    ("simple_pk?k=ilike.xy*&order=extra", [{"k": "xyyx", "extra": "u"}, {"k": "xYYx", "extra": "v"}]),
    ("no_pk?a=isdistinct.2&order=a.nullsfirst", [{"a": None, "b": None}, {"a": "1", "b": "0"}]),
])
async def test_filters_on_text_and_null_columns_match_postgrest(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200 and r.json() == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("entities?select=%2A&or=%28id.eq.1%2Cid.eq.2%29", [1, 2]),
    ("kinds?select=id&body=ilike.%25QUICK%25&uid=not.is.null", [2]),
    ("projects?select=id%2Cname&id=in.%281%2C2%29&order=id.desc", [1, 2]),
    ("kinds?select=id&mood=eq.happy&price=gt.10&order=createdAt.desc&limit=10", [1]),
])
async def test_percent_encoded_sdk_urls_are_understood(app: Running, path: str, expected: list[int]) -> None:
    assert ids(await get(app, path)) == expected


async def test_not_in_with_an_empty_list_matches_every_row(app: Running) -> None:
    assert ids(await get(app, "items?id=not.in.()")) == list(range(1, 16))


# --------------------------------------------------------------------------- select


@pytest.mark.parametrize(("path", "expected"), [
    ("items?select=myId:id::text&id=eq.1", [{"myId": "1"}]),
    ("items?select=id::text&id=eq.2", [{"id": "2"}]),
    ("kinds?select=data->foo->>bar&id=eq.1", [{"bar": "baz"}]),
    ("kinds?select=settings:data->foo->>bar&id=eq.2", [{"settings": "qux"}]),
    ("kinds?select=n:data->age::int&id=eq.1", [{"n": 30}]),
    ("kinds?select=data->foo&id=eq.1", [{"foo": {"bar": "baz"}}]),
    ("kinds?select=meta->>k&id=eq.2", [{"k": "b"}]),
    ("kinds?select=tags,during&id=eq.1", [{"tags": ["a", "b"], "during": "[1,5)"}]),
    ("kinds?select=born,day&id=eq.1", [{"born": "2024-01-01T00:00:00+00:00", "day": "2024-01-01"}]),
    ("kinds?select=born&id=eq.2", [{"born": "2024-06-01T10:00:00+00:00"}]),
    ("kinds?select=mood,uid,price,flag&id=eq.1",
     [{"mood": "happy", "uid": "11111111-1111-1111-1111-111111111111", "price": 10.5, "flag": True}]),
    ("kinds?select=createdAt&id=eq.3", [{"createdAt": "2024-03-01T00:00:00+00:00"}]),
    ("kinds?select=\"first name\"&id=eq.1", [{"first name": "Ann"}]),
    ("kinds?select=id,price::text&id=eq.1", [{"id": 1, "price": "10.5"}]),
    ("other?select=*&schema=rest_read2", [{"id": 1, "label": "elsewhere"}]),
])
async def test_select_shapes_keys_values_and_types(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


@pytest.mark.parametrize(("select", "keys"), [
    ("name,id", ["name", "id"]),
    ("*", ["id", "name", "client_id"]),
    ("", ["id", "name", "client_id"]),
    ("client_id,*", ["client_id", "id", "name", "client_id"]),
])
async def test_select_keeps_the_requested_key_order(app: Running, select: str, keys: list[str]) -> None:
    r = await get(app, f"projects?id=eq.1&select={select}")
    assert r.status_code == 200
    assert list(r.json()[0]) == list(dict.fromkeys(keys))


async def test_a_bad_cast_type_is_a_400_with_the_sqlstate(app: Running) -> None:
    assert_error(await get(app, "items?select=id::nosuchtype"), 400, "INVALID_QUERY", "42704")


async def test_an_unknown_column_is_invalid_query_with_a_suggestion(app: Running) -> None:
    body = assert_error(await get(app, "items?idd=eq.1"), 400, "INVALID_QUERY", "42703")
    assert "id" in body["message"] and "did you mean" in body["message"].lower()
    body = assert_error(await get(app, "projects?select=nam"), 400, "INVALID_QUERY", "42703")
    assert "'name'" in body["message"]


# --------------------------------------------------------------------------- order


@pytest.mark.parametrize(("path", "expected"), [
    ("projects?select=id&order=client_id.desc.nullslast,id.desc", [4, 3, 2, 1, 5]),
    ("projects?select=id&order=client_id.nullsfirst,id", [5, 1, 2, 3, 4]),
    ("projects?select=id&order=client_id.desc,id", [5, 3, 4, 1, 2]),
    ("items?select=id&order=id.desc&limit=3", [15, 14, 13]),
    ("kinds?select=id&order=data->>age.desc", [4, 1, 3, 2]),
    ("kinds?select=id&order=data->age.desc.nullslast", [1, 3, 2, 4]),
    ("kinds?select=id&order=createdAt.desc.nullslast", [3, 2, 1, 4]),
    ("kinds?select=id&order=\"createdAt\".asc", [1, 2, 3, 4]),
    ("tiobe_pls?select=name&order=name", ["C", "Java", "Python"]),
    ("projects?select=id&order=clients(name).desc,id&client_id=not.is.null", [1, 2, 3, 4]),
])
async def test_order_sorts_rows_as_asked(app: Running, path: str, expected: list[Any]) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert [next(iter(row.values())) for row in r.json()] == expected


@pytest.mark.parametrize("order", ["id.asc.nullslasttt", "id.up", "id..asc", ",id"])
async def test_a_malformed_order_is_invalid_query(app: Running, order: str) -> None:
    assert_error(await get(app, f"items?order={order}"), 400, "INVALID_QUERY", "PGRST100")


async def test_ordering_by_an_unknown_column_names_it(app: Running) -> None:
    body = assert_error(await get(app, "items?order=nosuch.desc"), 400, "INVALID_QUERY", "42703")
    assert "nosuch" in body["message"]


# --------------------------------------------------------------------------- pages, counts and Content-Range


@pytest.mark.parametrize(("path", "headers", "status", "content_range", "rows"), [
    ("items?id=eq.5", {}, 200, "0-0/1", 1),
    ("items?order=id&limit=3&offset=2", {}, 200, "2-4/15", 3),
    ("items", {"Range": "10-100"}, 200, "10-14/15", 5),
    ("items", {"Range": "0-1", "Range-Unit": "items"}, 200, "0-1/15", 2),
    ("items?limit=3", {"Range": "0-1"}, 200, "0-1/15", 2),
    ("items", {"Range": "bogus"}, 200, "0-14/15", 15),
    ("items?id=eq.0", {"Prefer": "count=exact"}, 200, "*/0", 0),
    ("items?limit=0", {}, 200, "*/15", 0),
    ("items?limit=0", {"Prefer": "count=exact"}, 206, "*/15", 0),
    ("items?limit=1", {}, 200, "0-0/15", 1),
    ("items?limit=1", {"Prefer": "count=exact"}, 206, "0-0/15", 1),
    ("items?offset=15", {"Prefer": "count=exact"}, 206, "*/15", 0),
    ("items?offset=100", {}, 200, "*/15", 0),
    ("items?offset=-5&limit=2", {}, 200, "0-1/15", 2),
    ("items", {"Prefer": "count=exact"}, 200, "0-14/15", 15),
    ("items?limit=2", {"Prefer": "count=planned"}, 206, "0-1/15", 2),
    ("items?limit=2", {"Prefer": "count=estimated"}, 206, "0-1/15", 2),
    ("items?id=gt.10&limit=2", {"Prefer": "count=planned"}, 206, "0-1/5", 2),
    ("many", {}, 200, "0-99/1050", 100),
    ("many?limit=1000&offset=1000", {}, 200, "1000-1049/1050", 50),
    ("many?select=id&offset=1040", {"Prefer": "count=exact"}, 206, "1040-1049/1050", 10),
    ("many?select=id&offset=1040", {}, 200, "1040-1049/1050", 10),
    ("many?limit=10", {"Prefer": "count=estimated"}, 206, "0-9/1050", 10),
    ("items?select=*&offset=0&limit=10", {"Prefer": "count=exact"}, 206, "0-9/15", 10),
])
async def test_pages_give_the_status_and_content_range_of_the_rules(
        app: Running, path: str, headers: dict[str, str], status: int, content_range: str, rows: int) -> None:
    r = await get(app, path, headers)
    assert r.status_code == status, r.text
    assert r.headers["content-range"] == content_range
    assert r.headers["x-total-count"] == content_range.rsplit("/", 1)[1]
    assert len(r.json()) == rows


@pytest.mark.parametrize(("path", "headers"), [
    ("items?offset=100", {"Prefer": "count=exact"}),
    ("items?limit=-1", {}),
    ("items", {"Range": "1-0"}),
])
async def test_an_unsatisfiable_range_is_416(app: Running, path: str, headers: dict[str, str]) -> None:
    r = await get(app, path, headers)
    assert_error(r, 416, "PGRST103", "PGRST103")
    if "offset" in path:
        assert r.headers["content-range"] == "*/15"


@pytest.mark.parametrize("limit", ["1001", "abc", "1.5", ""])
async def test_a_limit_outside_1_to_1000_or_not_a_number_is_invalid_query(app: Running, limit: str) -> None:
    assert_error(await get(app, f"many?limit={limit}"), 400, "INVALID_QUERY")


async def test_head_sends_the_headers_of_get_and_no_body(app: Running) -> None:
    r = await get(app, "items?limit=2&offset=3", {"Prefer": "count=exact"}, method="HEAD")
    assert (r.status_code, r.content, r.headers["content-range"]) == (206, b"", "3-4/15")
    assert r.headers["x-total-count"] == "15"
    r = await get(app, "items?id=lt.4", method="HEAD")
    assert (r.status_code, r.content, r.headers["content-range"], r.headers["x-total-count"]) == (
        200, b"", "0-2/3", "3")


async def test_preference_applied_echoes_the_honoured_tokens(app: Running) -> None:
    r = await get(app, "items?limit=1", {"Prefer": "count=exact, bogus=1"})
    assert r.headers["preference-applied"] == "count=exact"
    assert "preference-applied" not in (await get(app, "items?limit=1")).headers
    r = await get(app, "items?limit=1", {"Prefer": "return=representation, resolution=merge-duplicates"})
    assert "preference-applied" not in r.headers
    assert_error(await get(app, "items", {"Prefer": "handling=strict, bogus"}), 400, "INVALID_QUERY", "PGRST122")


# --------------------------------------------------------------------------- media types and common headers


async def test_the_object_media_type_returns_one_bare_object(app: Running) -> None:
    r = await get(app, "items?id=eq.5", {"Accept": OBJECT})
    assert (r.status_code, r.json()) == (200, {"id": 5})
    assert r.headers["content-type"] == f"{OBJECT}; charset=utf-8"


@pytest.mark.parametrize(("path", "rows"), [("items?id=eq.0", 0), ("items?id=lt.3", 2)])
async def test_the_object_media_type_refuses_anything_but_one_row(app: Running, path: str, rows: int) -> None:
    body = assert_error(await get(app, path, {"Accept": OBJECT}), 406, "PGRST116", "PGRST116")
    assert body["details"] == f"The result contains {rows} rows"


@pytest.mark.parametrize(("accept", "content_type"), [
    ("application/json", "application/json; charset=utf-8"),
    ("*/*", "application/json; charset=utf-8"),
    ("text/html;q=0.5, application/json", "application/json; charset=utf-8"),
    (f"application/json;q=0.1, {OBJECT}", f"{OBJECT}; charset=utf-8"),
])
async def test_accept_is_negotiated(app: Running, accept: str, content_type: str) -> None:
    r = await get(app, "items?id=eq.5", {"Accept": accept})
    assert r.status_code == 200 and r.headers["content-type"] == content_type


async def test_csv_is_produced_from_the_rows(app: Running) -> None:
    r = await get(app, "kinds?select=id,body,tags,flag&id=lt.3&order=id", {"Accept": "text/csv"})
    assert (r.status_code, r.headers["content-type"]) == (200, "text/csv; charset=utf-8")
    assert r.text.splitlines() == ["id,body,tags,flag", '1,The fat cat sat on the mat,"[""a"",""b""]",true',
                                   '2,A quick brown fox,"[""c""]",false']


async def test_an_unproducible_media_type_is_406(app: Running) -> None:
    assert_error(await get(app, "items", {"Accept": "text/unknowntype"}), 406, "PGRST107", "PGRST107")


@pytest.mark.parametrize("path", ["items", "items?id=eq.x", "nosuch", "items?id=0"])
async def test_every_reply_carries_vary(app: Running, path: str) -> None:
    vary = [v.strip() for v in (await get(app, path)).headers["vary"].split(",")]
    assert vary[:3] == ["Accept", "Prefer", "Range"]


@pytest.mark.parametrize(("path", "allow"), [
    ("items", "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"),
    ("other?schema=rest_read2", "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"),
    ("many_view", "OPTIONS,GET,HEAD"),
])
async def test_options_lists_the_methods_the_relation_allows(app: Running, path: str, allow: str) -> None:
    r = await app.client.options(f"/api/database/records/{path}")
    assert (r.status_code, r.headers["allow"]) == (200, allow)


async def test_options_on_an_unknown_table_is_404(app: Running) -> None:
    assert_error(await app.client.options("/api/database/records/nosuch"), 404, "TABLE_NOT_FOUND")


# --------------------------------------------------------------------------- schemas (profiles)


@pytest.mark.parametrize(("path", "headers"), [
    ("other", {"Accept-Profile": "rest_read2"}),
    ("other?schema=rest_read2", {}),
    ("other?schema=rest_read2", {"Accept-Profile": "rest_read"}),
])
async def test_a_profile_reaches_another_exposed_schema(app: Running, path: str, headers: dict[str, str]) -> None:
    r = await get(app, path, headers)
    assert (r.status_code, r.json()) == (200, [{"id": 1, "label": "elsewhere"}])


async def test_a_table_of_another_schema_is_not_found_without_its_profile(app: Running) -> None:
    assert_error(await get(app, "other"), 404, "TABLE_NOT_FOUND", "42P01")


async def test_an_unexposed_schema_is_refused_with_406(app: Running) -> None:
    assert_error(await get(app, "items", {"Accept-Profile": "public"}), 406, "PGRST106", "PGRST106")


@pytest.mark.parametrize("query", ["schema=pg_catalog", "schema=information_schema", "schema=",
                                   "schema=%20", "schema=rest_read&schema=rest_read2"])
async def test_system_blank_or_repeated_schemas_are_invalid_input(app: Running, query: str) -> None:
    assert_error(await get(app, f"items?{query}"), 400, "INVALID_INPUT")


async def test_a_pg_profile_header_is_invalid_input(app: Running) -> None:
    assert_error(await get(app, "items", {"Accept-Profile": "pg_catalog"}), 400, "INVALID_INPUT")


# --------------------------------------------------------------------------- errors and access


async def test_an_unknown_table_is_table_not_found(app: Running) -> None:
    body = assert_error(await get(app, "nonexistent"), 404, "TABLE_NOT_FOUND", "42P01")
    assert body["message"] == "Table 'nonexistent' does not exist"
    assert body["nextActions"] == "Check table name and try again"


async def test_an_anonymous_read_without_a_grant_is_401_and_a_signed_in_one_is_403(app: Running) -> None:
    r = await get(app, "secret", who="anon")
    assert_error(r, 401, "FORBIDDEN", "42501")
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert_error(await get(app, "secret"), 403, "FORBIDDEN", "42501")


async def test_the_anon_role_can_read_granted_tables(app: Running) -> None:
    assert ids(await get(app, "entities", who="anon")) == [1, 2, 3, 4]


@pytest.mark.parametrize(("path", "status", "error", "code"), [
    ("items?id=0", 400, "INVALID_QUERY", "PGRST100"),
    ("items?id=foo.1", 400, "INVALID_QUERY", "PGRST100"),
    ("items?id=", 400, "INVALID_QUERY", "PGRST100"),
    ("chores?done=is.nil", 400, "INVALID_QUERY", "PGRST100"),
    ("entities?or=()", 400, "INVALID_QUERY", "PGRST100"),
    ("entities?or=(id.eq.1", 400, "INVALID_QUERY", "PGRST100"),
    ("items?id=eq(some).{1}", 400, "INVALID_QUERY", "PGRST100"),
    ("items?id=in.(1,2", 400, "INVALID_QUERY", "PGRST100"),
    ("items?select=id,", 400, "INVALID_QUERY", "PGRST100"),
    ("items?select=id)", 400, "INVALID_QUERY", "PGRST100"),
    ("items?id=eq.abc", 400, "VALIDATION_ERROR", "22P02"),
    ("items?id=in.( ,3,4)", 400, "VALIDATION_ERROR", "22P02"),
    ("items?id=eq.99999999999999999999", 400, "VALIDATION_ERROR", None),
    ("kinds?born=gt.notadate", 400, "VALIDATION_ERROR", "22007"),
    ("kinds?uid=eq.zzz", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?flag=eq.maybe", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?mood=eq.angry", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?tags=cs.notarray", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?during=adj.garbage", 400, "VALIDATION_ERROR", None),
    ("kinds?data=cs.{bad json", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?data->age=gt.not json", 400, "VALIDATION_ERROR", "22P02"),
    ("kinds?doc=fts(nosuchlang).fat", 400, None, None),
    ("kinds?body=fts.fat %26 (", 400, "INVALID_QUERY", "42601"),
    ("kinds?body=match.(", 400, "VALIDATION_ERROR", None),
    ("kinds?price=cs.{1}", 400, "INVALID_QUERY", None),
    ("kinds?body=adj.[1,2)", 400, "INVALID_QUERY", None),
    ("kinds?body=is.true", 400, None, None),
    ("kinds?select=body::int", 400, None, None),
    ("kinds?select=id::int)", 400, "INVALID_QUERY", "PGRST100"),
    ("people?name=eq.a%00b", 400, "VALIDATION_ERROR", None),
    ("people?name=in.(a%00b)", 400, "VALIDATION_ERROR", None),
    ("kinds?data->>a%00=eq.1", 400, "INVALID_QUERY", "PGRST100"),
    ("items?select=id::\"text", 400, "INVALID_QUERY", None),
])
async def test_bad_input_is_a_4xx_with_the_spec_body(app: Running, path: str, status: int, error: str | None,
                                                     code: str | None) -> None:
    r = await get(app, path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body.keys() >= ERROR_KEYS and body["statusCode"] == status
    if error:
        assert body["error"] == error, body
    if code:
        assert body["code"] == code, body


FRAGMENTS = ["id", "eq", ".", ",", "(", ")", "not", "in", "is", "null", "*", "->", "->>", "::", "\"", "{", "}",
             "or", "and", ":", "!", "inner", "asc", "desc", "nullslast", "1", "-1", "x", " ", "%25", "\\", "fts",
             "cs", "body", "data", "tags", "kinds", "projects", "clients", "(any)", "...", "'", ";", "$1"]
KEYS = ["select", "order", "limit", "offset", "or", "and", "not.or", "id", "body", "data->x", "tags",
        "clients.id", "columns", "on_conflict", "x.limit", "doc"]


def _fuzz_queries(count: int) -> list[str]:
    rng = random.Random(20240601)
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 3)):
            value = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 8)))
            parts.append(f"{rng.choice(KEYS)}={value}")
        out.append("&".join(parts))
    return out


async def test_no_query_string_produces_a_server_error(app: Running) -> None:
    for query in _fuzz_queries(400):
        for table in ("kinds", "projects"):
            r = await get(app, f"{table}?{query}")
            assert r.status_code < 500, (query, r.text)
            if r.status_code >= 400:
                assert r.json().keys() >= ERROR_KEYS, (query, r.text)
