"""A live gateway over real HTTP, for clients that cannot be handed an ASGI app (the official SDKs).

In:  the session's superuser URL (fixture ``pg_url``) and the schemas a test module exposes
     (the first is the default, as in ``Settings.schemas``).
Out: ``live_server(...)``, a context manager that serves the gateway app with uvicorn on
     127.0.0.1 and a free port in a background thread and yields a ``LiveServer``: the base
     URL and the credentials the clients send (the keys and signing secret of ``support``).
     ``blog_fixture(schema, other)`` is the SQL of the data set the SDK tests share, and
     ``reset_todos(schema)`` puts its writable tables back before a writing test.

The server thread runs its own event loop, so the tests' loop and the gateway's never
share a connection pool. Create tables before the server starts: the catalog is loaded at
start, and later DDL only arrives through the (debounced) NOTIFY listener. The port is bound
here before uvicorn starts (``sockets=``), so nothing can take it between choosing and listening.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from support import API_KEY, JWT_SECRET, run_sql, settings_for

from gateway.app import create_app
from gateway.auth import anon_key, sign_token
from gateway.settings import Settings

START_DEADLINE = 60.0  # seconds the app's lifespan (bootstrap + catalog) may take before we give up
TOKEN_TTL = 24 * 3600  # user tokens outlive any test run


@dataclass(frozen=True)
class LiveServer:
    """One running gateway and how to reach it."""

    url: str  # the gateway root, ``http://127.0.0.1:<port>``; SDKs add ``/api/database/...``
    settings: Settings  # what the app was built from
    token_exp: int  # ``exp`` of every user token, so one name always gets the very same token

    @property
    def api_key(self) -> str:
        """The admin API key (``ik_...``), as ``X-API-Key`` or a Bearer token."""
        return API_KEY

    @property
    def anon_key(self) -> str:
        """The anon JWT ``{"role": "anon"}`` that start-up prints."""
        return anon_key(JWT_SECRET)

    def uid(self, name: str = "alice") -> str:
        """The user's id; the same name always gets the same uuid (as in ``support.Running``)."""
        return str(uuid.uuid5(uuid.NAMESPACE_DNS, name))

    def token(self, name: str = "alice") -> str:
        """A signed ``authenticated`` user JWT, like the one InsForge issues at sign-in."""
        return sign_token(JWT_SECRET, {"sub": self.uid(name), "role": "authenticated",
                                       "email": f"{name}@example.com", "exp": self.token_exp}, None)


@contextlib.contextmanager
def live_server(pg_url: str, schemas: tuple[str, ...] = ("public",), **overrides: Any) -> Iterator[LiveServer]:
    """Serve the gateway on 127.0.0.1 for the duration of the ``with`` block."""
    settings = settings_for(pg_url, schemas, **{"access_log": False, **overrides})
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported to the test thread below
            failures.append(exc)

    thread = threading.Thread(target=run, name=f"gateway-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_DEADLINE
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        server.should_exit = True
        thread.join(START_DEADLINE)
        sock.close()
        raise RuntimeError(f"the gateway did not start on port {port}") from (failures[0] if failures else None)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", settings, int(time.time()) + TOKEN_TTL)
    finally:
        server.should_exit = True
        thread.join(START_DEADLINE)
        sock.close()


def blog_fixture(schema: str, other: str | None = None) -> str:
    """SQL for the SDK tests' data set in ``schema`` (dropped and recreated), plus ``other`` if given.

    users 1..3; posts 1..5 by users 1 and 2 (post 5 has no author and is soft-deleted);
    comments on posts 1 and 4; ``todos`` for writes (reset by ``reset_todos``); ``notes`` with
    owner-only RLS policies; functions ``add`` (immutable), ``posts_by_status`` (stable, setof),
    ``published_count()`` (no arguments) and ``bump`` (volatile, void). ``other`` holds ``events``
    and ``event_count(k)``.
    """
    s = schema
    sql = f"""
drop schema if exists {s} cascade;
create schema {s};
create table {s}.users(id int primary key, name text not null, email text unique);
insert into {s}.users values (1, 'Ann', 'ann@example.com'), (2, 'Bob', 'bob@example.com'), (3, 'Cy', null);
create table {s}.posts(
  id int generated by default as identity primary key, title text not null,
  status text not null default 'draft', views int not null default 0,
  author_id int references {s}.users(id), deleted_at timestamptz,
  created_at timestamptz not null default '2024-01-01T00:00:00Z');
insert into {s}.posts(id, title, status, views, author_id, deleted_at, created_at) values
  (1, 'Hello World', 'published', 50, 1, null, '2024-01-01T00:00:00Z'),
  (2, 'Second post', 'published', 5, 1, null, '2024-01-02T00:00:00Z'),
  (3, 'Draft notes', 'draft', 0, 2, null, '2024-01-03T00:00:00Z'),
  (4, 'hello again', 'published', 120, 2, null, '2024-01-04T00:00:00Z'),
  (5, 'Archived', 'archived', 7, null, '2024-02-01T00:00:00Z', '2024-01-05T00:00:00Z');
alter table {s}.posts alter column id restart with 100;
create table {s}.comments(id int primary key, post_id int not null references {s}.posts(id), body text not null);
insert into {s}.comments values (1, 1, 'first!'), (2, 1, 'nice'), (3, 4, 'again?');
create table {s}.todos(
  id int generated by default as identity primary key, title text not null,
  done boolean not null default false, slug text unique, priority int not null default 3);
create table {s}.notes(
  id int generated by default as identity primary key,
  owner uuid not null default auth.uid(), body text not null);
alter table {s}.notes enable row level security;
create policy notes_select on {s}.notes for select to authenticated using (owner = auth.uid());
create policy notes_insert on {s}.notes for insert to authenticated with check (owner = auth.uid());
create policy notes_update on {s}.notes for update to authenticated
  using (owner = auth.uid()) with check (owner = auth.uid());
create policy notes_delete on {s}.notes for delete to authenticated using (owner = auth.uid());
create function {s}.add(a int, b int) returns int language sql immutable as $$ select a + b $$;
create function {s}.posts_by_status(s text) returns setof {s}.posts language sql stable
  as $$ select * from {s}.posts where status = s order by id $$;
create function {s}.published_count() returns int language sql stable
  as $$ select count(*)::int from {s}.posts where status = 'published' $$;
create function {s}.bump(post int) returns void language sql volatile
  as $$ update {s}.posts set views = views + 1 where id = post $$;
grant usage on schema {s} to anon, authenticated, project_admin;
grant select on all tables in schema {s} to anon;
grant select, insert, update, delete on all tables in schema {s} to authenticated, project_admin;
grant usage on all sequences in schema {s} to authenticated, project_admin;
grant execute on all functions in schema {s} to anon, authenticated, project_admin;
"""
    if other:
        sql += f"""
drop schema if exists {other} cascade;
create schema {other};
create table {other}.events(id int primary key, kind text not null);
insert into {other}.events values (1, 'click'), (2, 'view'), (3, 'click');
create function {other}.event_count(k text) returns int language sql stable
  as $$ select count(*)::int from {other}.events where kind = k $$;
grant usage on schema {other} to anon, authenticated, project_admin;
grant select on all tables in schema {other} to anon;
grant select, insert, update, delete on all tables in schema {other} to authenticated, project_admin;
grant execute on all functions in schema {other} to anon, authenticated, project_admin;
"""
    return sql


def reset_todos(schema: str) -> str:
    """SQL that puts ``todos`` (ids 1..3) and ``notes`` (none) back before a writing test."""
    return f"""
truncate {schema}.todos, {schema}.notes restart identity;
insert into {schema}.todos(title, done, slug, priority) values
  ('buy milk', false, 'milk', 1), ('walk dog', true, 'dog', 2), ('write tests', false, 'tests', 3);
"""


@contextlib.asynccontextmanager
async def blog_server(pg_url: str, schema: str, other: str | None = None) -> AsyncIterator[LiveServer]:
    """``blog_fixture`` in ``schema`` (and ``other``), a live server exposing them, and the schemas
    dropped afterwards."""
    schemas = (schema,) if other is None else (schema, other)
    await run_sql(pg_url, blog_fixture(schema, other))
    with live_server(pg_url, schemas=schemas) as server:
        yield server
    await run_sql(pg_url, "; ".join(f"drop schema {s} cascade" for s in schemas))
