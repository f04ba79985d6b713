"""Resource embedding over HTTP: to-one, to-many, many-to-many, hints, !inner, spreads,
embed filters/order/page, anti/semi joins, and the relationship errors (300/400).

Schema ``rest_embed``: postgrest-semantics §16's clients/projects/tasks/users/users_tasks,
plus ``messages`` (two foreign keys to users: ambiguous), ``project_details`` (one-to-one)
and ``entities`` (unrelated to everything). Nothing here writes except one POST/PATCH pair
that checks the representation of a write carries embeds, on its own table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from support import ERROR_KEYS, Running, app_with, assert_error

from gateway import plan, sql
from gateway.rest.parse import parse_records

FIXTURE = """
drop schema if exists rest_embed cascade; create schema rest_embed; set search_path = rest_embed;
create table clients(id int primary key, name text);
insert into clients values (1, 'Microsoft'), (2, 'Apple');
create table projects(id int primary key, name text, client_id int references clients(id));
insert into projects values (1, 'Windows 7', 1), (2, 'Windows 10', 1), (3, 'IOS', 2), (4, 'OSX', 2),
  (5, 'Orphan', null);
create table tasks(id int primary key, name text, project_id int references projects(id));
insert into tasks values (1, 'Design w7', 1), (2, 'Code w7', 1), (3, 'Design IOS', 3), (4, 'Code IOS', 3),
  (5, 'Design OSX', 4);
create table users(id int primary key, name text);
insert into users values (1, 'Angela'), (2, 'Michael'), (3, 'Dwight');
create table users_tasks(user_id int references users(id), task_id int references tasks(id),
  primary key (user_id, task_id));
insert into users_tasks values (1, 1), (3, 1), (2, 2), (1, 3);
create table messages(id int primary key, body text,
  sender_id int constraint message_sender references users(id),
  receiver_id int constraint message_receiver references users(id));
insert into messages values (1, 'hi', 1, 2), (2, 'yo', 2, 1), (3, 'hey', 1, 3);
create table project_details(project_id int primary key references projects(id), notes text);
insert into project_details values (1, 'legacy'), (3, 'mobile');
create table entities(id int primary key); insert into entities values (1), (2);
create table written(id int primary key, client_id int references clients(id));
grant usage on schema rest_embed to anon, authenticated, project_admin;
grant select on all tables in schema rest_embed to anon, authenticated, project_admin;
grant insert, update on rest_embed.written to authenticated;
"""



@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, ("rest_embed",),
                        teardown_sql="drop schema rest_embed cascade") as running:
        yield running


async def get(app: Running, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return await app.client.get(f"/api/database/records/{path}", headers={**app.user(), **(headers or {})})



@pytest.mark.parametrize(("path", "expected"), [
    # §16 14-16: cardinality decides the shape
    ("projects?id=eq.1&select=id,clients(*),tasks(id,name)&tasks.order=id",
     [{"id": 1, "clients": {"id": 1, "name": "Microsoft"},
       "tasks": [{"id": 1, "name": "Design w7"}, {"id": 2, "name": "Code w7"}]}]),
    ("projects?id=in.(1,5)&select=id,clients(id)&order=id", [{"id": 1, "clients": {"id": 1}},
                                                             {"id": 5, "clients": None}]),
    ("projects?id=eq.5&select=id,tasks(id)", [{"id": 5, "tasks": []}]),
    ("tasks?id=eq.1&select=id,theUsers:users(id)&theUsers.order=id", [{"id": 1, "theUsers": [{"id": 1}, {"id": 3}]}]),
    ("users?id=eq.1&select=name,tasks(name)&tasks.order=id", [{"name": "Angela", "tasks": [
        {"name": "Design w7"}, {"name": "Design IOS"}]}]),
    ("tasks?id=eq.2&select=id,users!users_tasks(name)", [{"id": 2, "users": [{"name": "Michael"}]}]),
    # aliases and key order
    ("projects?id=eq.3&select=owner:clients(name),title:name", [{"owner": {"name": "Apple"}, "title": "IOS"}]),
    # nested levels
    ("clients?id=eq.2&select=name,projects(name,tasks(name,users(name)))&projects.order=id&projects.tasks.order=id",
     [{"name": "Apple", "projects": [
         {"name": "IOS", "tasks": [{"name": "Design IOS", "users": [{"name": "Angela"}]},
                                   {"name": "Code IOS", "users": []}]},
         {"name": "OSX", "tasks": [{"name": "Design OSX", "users": []}]}]}]),
    ("tasks?id=eq.5&select=name,projects(name,clients(name))",
     [{"name": "Design OSX", "projects": {"name": "OSX", "clients": {"name": "Apple"}}}]),
    # one-to-one both ways
    ("projects?id=in.(1,2)&select=id,project_details(notes)&order=id",
     [{"id": 1, "project_details": {"notes": "legacy"}}, {"id": 2, "project_details": None}]),
    ("project_details?project_id=eq.3&select=notes,projects(name)", [{"notes": "mobile", "projects": {"name": "IOS"}}]),
    # hints: constraint name or FK column picks among two foreign keys, both ways
    ("messages?id=eq.1&select=id,from:users!message_sender(name),to:users!receiver_id(name)",
     [{"id": 1, "from": {"name": "Angela"}, "to": {"name": "Michael"}}]),
    ("users?id=eq.1&select=name,sent:messages!sender_id(id),got:messages!message_receiver(id)&sent.order=id",
     [{"name": "Angela", "sent": [{"id": 1}, {"id": 3}], "got": [{"id": 2}]}]),
    ("messages?id=eq.3&select=id,sender_id(name)", [{"id": 3, "sender_id": {"name": "Angela"}}]),
    ("projects?id=eq.4&select=id,clients!client_id(name)", [{"id": 4, "clients": {"name": "Apple"}}]),
    # embed filters, order, limit, offset (by relation name and by alias), and logic trees
    ("clients?select=id,projects(id)&projects.id=gt.2&order=id", [{"id": 1, "projects": []},
                                                                 {"id": 2, "projects": [{"id": 3}, {"id": 4}]}]),
    ("clients?id=eq.1&select=id,projects(name)&projects.name=like.*10", [{"id": 1, "projects": [
        {"name": "Windows 10"}]}]),
    ("clients?id=eq.1&select=id,ps:projects(id)&ps.order=id.desc&ps.limit=1", [{"id": 1, "ps": [{"id": 2}]}]),
    ("clients?id=eq.2&select=id,projects(id)&projects.order=id&projects.offset=1",
     [{"id": 2, "projects": [{"id": 4}]}]),
    ("clients?id=eq.1&select=id,projects(id)&projects.or=(id.eq.1,id.eq.9)", [{"id": 1, "projects": [{"id": 1}]}]),
    ("clients?id=eq.2&select=id,projects(id,tasks(id))&projects.tasks.id=eq.4&projects.order=id",
     [{"id": 2, "projects": [{"id": 3, "tasks": [{"id": 4}]}, {"id": 4, "tasks": []}]}]),
    ("projects?id=eq.1&select=id,clients(name)&clients.name=eq.Apple", [{"id": 1, "clients": None}]),
    # §16 19
    ("projects?id=eq.1&select=id,tasks(name)&tasks.order=name.asc", [{"id": 1, "tasks": [
        {"name": "Code w7"}, {"name": "Design w7"}]}]),
    # spread of a to-one embed
    ("projects?id=eq.1&select=id,...clients(client_name:name)", [{"id": 1, "client_name": "Microsoft"}]),
    ("projects?id=eq.5&select=id,...clients(name)", [{"id": 5, "name": None}]),
    # parents ordered by a to-one embed's column
    ("projects?select=id&order=clients(name).desc.nullslast,id", [{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4},
                                                                  {"id": 5}]),
    ("projects?select=id&order=clients(name),id&limit=2", [{"id": 3}, {"id": 4}]),
])
async def test_embeds_have_the_shape_of_their_relationship(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


@pytest.mark.parametrize(("path", "expected"), [
    # §16 17: !inner drops parents whose filtered embed is empty; without it every project stays
    ("projects?select=id,clients!inner(id)&clients.id=eq.2", [3, 4]),
    ("projects?select=id,clients(id)&clients.id=eq.2", [1, 2, 3, 4, 5]),
    ("projects?select=id,clients!inner(id)", [1, 2, 3, 4]),
    ("clients?select=id,projects!inner(id)&projects.name=eq.IOS", [2]),
    ("users?select=id,tasks!inner(id)&tasks.name=like.Code*", [2]),
    # §16 18: an empty embed adds no key; with is.null it is an anti-join, with not.is.null a semi-join
    ("projects?select=id,clients()&clients=is.null", [5]),
    ("projects?select=id,clients()&clients=not.is.null", [1, 2, 3, 4]),
    ("clients?select=id,projects()&projects.name=eq.IOS&projects=not.is.null", [2]),
    ("projects?select=id,tasks()&tasks=is.null", [2, 5]),
    ("projects?select=id,clients(id)&or=(clients.is.null,id.eq.1)", [1, 5]),
    ("projects?select=id,c:clients()&c=is.null", [5]),
])
async def test_inner_embeds_and_null_tests_filter_the_parents(app: Running, path: str, expected: list[int]) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert sorted(row["id"] for row in r.json()) == expected
    if "()" in path:
        assert all(list(row) == ["id"] for row in r.json())


async def test_a_select_of_only_empty_embeds_gives_empty_objects(app: Running) -> None:
    r = await get(app, "projects?select=clients()&clients=is.null")
    assert (r.status_code, r.json()) == (200, [{}])


async def test_an_inner_embed_is_counted_like_the_rows(app: Running) -> None:
    r = await get(app, "projects?select=id,clients!inner(id)&clients.id=eq.2&limit=1", {"Prefer": "count=exact"})
    assert (r.status_code, r.headers["content-range"]) == (206, "0-0/2")


async def test_embeds_work_in_the_single_object_media_type(app: Running) -> None:
    r = await get(app, "projects?id=eq.3&select=name,clients(name)",
                  {"Accept": "application/vnd.pgrst.object+json"})
    assert (r.status_code, r.json()) == (200, {"name": "IOS", "clients": {"name": "Apple"}})


@pytest.mark.parametrize(("path", "status", "error", "code"), [
    # §16 20
    ("projects?select=id&tasks.id=eq.1", 400, "INVALID_QUERY", "PGRST108"),
    ("projects?select=id&tasks.order=id", 400, "INVALID_QUERY", "PGRST108"),
    ("projects?select=id,clients(id)&tasks=is.null", 400, "INVALID_QUERY", None),
    ("projects?select=id,entities(id)", 400, "INVALID_QUERY", "PGRST200"),
    ("projects?select=id,nosuch(id)", 400, "INVALID_QUERY", "PGRST200"),
    ("projects?select=id,clients!nohint(id)", 400, "INVALID_QUERY", "PGRST200"),
    ("messages?select=id,users(name)", 300, "PGRST201", "PGRST201"),
    ("users?select=id,messages(id)", 300, "PGRST201", "PGRST201"),
    ("projects?select=id,tasks(id)&order=tasks(name)", 400, "INVALID_QUERY", "PGRST118"),
    ("projects?select=id,clients(nosuch)", 400, "INVALID_QUERY", "42703"),
    ("projects?select=id,clients(id)&clients.nosuch=eq.1", 400, "INVALID_QUERY", "42703"),
    ("projects?select=id,tasks(id)&tasks.limit=-1", 416, "PGRST103", "PGRST103"),
])
async def test_relationship_errors_are_300_or_400_with_the_postgrest_code(app: Running, path: str, status: int,
                                                                           error: str, code: str | None) -> None:
    r = await get(app, path)
    assert r.status_code == status, r.text
    body = r.json()
    assert body.keys() >= ERROR_KEYS and body["error"] == error, body
    if code:
        assert body["code"] == code


async def test_an_ambiguous_embed_lists_the_candidates(app: Running) -> None:
    body = assert_error(await get(app, "messages?select=id,users(name)"), 300, "PGRST201", "PGRST201")
    assert "message_sender" in body["details"] and "message_receiver" in body["details"]
    assert "users!message_sender" in body["hint"]


async def test_a_missing_relationship_suggests_a_close_name(app: Running) -> None:
    body = assert_error(await get(app, "projects?select=id,client(id)"), 400, "INVALID_QUERY", "PGRST200")
    assert "clients" in body["hint"]


async def test_writes_return_embeds_of_the_written_rows(app: Running) -> None:
    headers = {**app.user(), "Prefer": "return=representation"}
    r = await app.client.post("/api/database/records/written?select=id,clients(name)",
                              json={"id": 1, "client_id": 2}, headers=headers)
    assert (r.status_code, r.json()) == (201, [{"id": 1, "clients": {"name": "Apple"}}])
    r = await app.client.patch("/api/database/records/written?id=eq.1&select=id,...clients(client:name)",
                               json={"client_id": 1}, headers=headers)
    assert (r.status_code, r.json()) == (200, [{"id": 1, "client": "Microsoft"}])


async def test_an_embed_runs_in_the_same_statement_as_its_parent(app: Running) -> None:
    """No N+1: the statement for a nested embed is one SELECT with lateral joins."""
    parsed = parse_records("GET", "clients", "select=name,projects(name,tasks(name,users(name)))",
                           {"accept-profile": "rest_embed"}, b"")
    text = sql.statement(plan.plan(parsed.request, app.gateway.catalogs.get(), app.settings)).sql
    assert text.count("LATERAL") == 3
    assert text.lstrip().upper().startswith("SELECT")
