"""Embedding through views over HTTP: a view's relationships come from its base tables' foreign
keys through the view's columns, in both directions, between views, and through chains of views.

PostgREST documentation, API reference: "Resource Embedding" -> "Embedding Views" ("PostgREST
infers the relationships of a view based on the source tables of the view ... Views can also
depend on other views, which in turn depend on the actual base table"). The schema is
``pgrst_fixture``'s: ``recent_messages`` (messages joined to channels), ``active_users`` (over
users) and ``recent_public`` (a view over ``recent_messages``), exposed as ``pgrst_views``, plus
``writers`` and ``books``, views over tables of the unexposed schema ``pgrst_views_private`` ("the
base table could be in a private schema as well").
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pgrst_fixture import drop_sql, schema_sql
from support import Running, app_with, assert_error

from gateway.viewlineage import column_origins, tokens

SCHEMA = "pgrst_views"
# base tables in a schema the API does not expose, shown only through views of the exposed one
PRIVATE = """
drop schema if exists pgrst_views_private cascade; create schema pgrst_views_private;
create table pgrst_views_private.authors(id int primary key, name text);
create table pgrst_views_private.books(id int primary key, title text,
  author_id int references pgrst_views_private.authors(id), owner text references pgrst_views.users(username));
insert into pgrst_views_private.authors values (1, 'Ursula'), (2, 'Italo');
insert into pgrst_views_private.books values (1, 'Earthsea', 1, 'supabot'), (2, 'Dispossessed', 1, null),
  (3, 'Cosmicomics', 2, 'kiwicopple');
create view pgrst_views.writers as select id, name from pgrst_views_private.authors;
create view pgrst_views.books as select id, title, author_id, owner from pgrst_views_private.books;
grant select on pgrst_views.writers, pgrst_views.books to anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, schema_sql(SCHEMA) + PRIVATE, (SCHEMA,),
                        teardown_sql=drop_sql(SCHEMA) + "; drop schema pgrst_views_private cascade") as running:
        yield running


async def get(app: Running, path: str) -> httpx.Response:
    return await app.client.get(f"/api/database/records/{path}", headers=app.user())


THROUGH_VIEWS: list[tuple[str, Any]] = [
    # view -> table (to-one) and table -> view (to-many)
    ("recent_messages?select=message,users(username)&id=eq.3",
     [{"message": "Supabase launch week", "users": {"username": "kiwicopple"}}]),
    ("recent_messages?select=id,channels(slug)&id=eq.2", [{"id": 2, "channels": {"slug": "random"}}]),
    ("users?select=username,recent_messages(id)&username=eq.supabot", [{"username": "supabot",
                                                                        "recent_messages": [{"id": 2}]}]),
    ("channels?select=id,recent_messages(id)&id=eq.1&recent_messages.order=id",
     [{"id": 1, "recent_messages": [{"id": 3}, {"id": 4}]}]),
    # view <-> view
    ("recent_messages?select=id,active_users(email)&id=eq.2",
     [{"id": 2, "active_users": {"email": "bot@example.com"}}]),
    ("active_users?select=username,recent_messages(id)&username=eq.awailas",
     [{"username": "awailas", "recent_messages": [{"id": 4}]}]),
    # a chain: a view over a view over messages
    ("recent_public?select=id,users(username)&order=id", [{"id": 3, "users": {"username": "kiwicopple"}},
                                                           {"id": 4, "users": {"username": "awailas"}}]),
    ("users?select=username,recent_public(id)&username=eq.kiwicopple",
     [{"username": "kiwicopple", "recent_public": [{"id": 3}]}]),
    ("recent_public?select=id,active_users(username)&id=eq.4", [{"id": 4, "active_users": {"username": "awailas"}}]),
    # filters, !inner and aggregates across a view relationship
    ("active_users?select=username,recent_messages!inner(id)&order=username",
     [{"username": "awailas", "recent_messages": [{"id": 4}]},
      {"username": "supabot", "recent_messages": [{"id": 2}]}]),
    ("users?select=username,recent_messages(count)&username=eq.supabot",
     [{"username": "supabot", "recent_messages": [{"count": 1}]}]),
    # many-to-many through a junction table, with a view at either end
    ("channels?select=slug,active_users(username)&id=eq.2&active_users.order=username",
     [{"slug": "random", "active_users": [{"username": "awailas"}, {"username": "supabot"}]}]),
    ("active_users?select=username,channels(slug)&username=eq.supabot&channels.order=id",
     [{"username": "supabot", "channels": [{"slug": "public"}, {"slug": "random"}]}]),
    # base tables in an unexposed schema lend their FKs to the views over them
    ("books?select=title,writers(name)&id=eq.3", [{"title": "Cosmicomics", "writers": {"name": "Italo"}}]),
    ("writers?select=name,books(title)&id=eq.1&books.order=id",
     [{"name": "Ursula", "books": [{"title": "Earthsea"}, {"title": "Dispossessed"}]}]),
    ("books?select=title,users(username)&id=eq.1", [{"title": "Earthsea", "users": {"username": "supabot"}}]),
    ("users?select=username,books(title)&username=eq.kiwicopple",
     [{"username": "kiwicopple", "books": [{"title": "Cosmicomics"}]}]),
]


@pytest.mark.parametrize(("path", "expected"), THROUGH_VIEWS)
async def test_views_embed_through_their_base_tables_foreign_keys(app: Running, path: str, expected: Any) -> None:
    r = await get(app, path)
    assert r.status_code == 200, r.text
    assert r.json() == expected


async def test_a_view_without_the_fk_column_has_no_relationship(app: Running) -> None:
    # active_users shows username and email only: nothing relates it to collections
    assert_error(await get(app, "active_users?select=username,collections(id)"), 400, "INVALID_QUERY", "PGRST200")
    # an unexposed base table is never an embed target itself
    assert_error(await get(app, "writers?select=name,authors(id)"), 400, "INVALID_QUERY", "PGRST200")


def test_the_node_tree_reader_keeps_escaped_names_and_skips_computed_columns() -> None:
    assert tokens(r"{TARGETENTRY :resname my\ col :resorigtbl 5}") == [
        "{", "TARGETENTRY", ":resname", "my col", ":resorigtbl", "5", "}"]
    tree = ("({QUERY :commandType 1 :rtable ({RANGETBLENTRY :subquery {QUERY :targetList ({TARGETENTRY "
            ":resname inner :resorigtbl 9 :resorigcol 9 :resjunk false})}}) :targetList ("
            "{TARGETENTRY :expr {CONST :constvalue 4 [ 1 0 0 0 ]} :resname two :resorigtbl 0 :resorigcol 0 "
            ":resjunk false} {TARGETENTRY :resname id :resorigtbl 16384 :resorigcol 1 :resjunk false} "
            "{TARGETENTRY :resname hidden :resorigtbl 16384 :resorigcol 2 :resjunk true})})")
    assert column_origins(tree) == {"id": (16384, 1)}
