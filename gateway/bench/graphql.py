"""GraphQL per-request cost by execution path: ``python -m gateway.bench.graphql``.

In:  nothing (``--requests N``, default 2,000 per row).
Out: printed rows, one run, in-process (httpx over ASGI, no sockets), sequential requests:
     wall and CPU microseconds per request for the same operations served by
     - the gateway's cached-document fast path (PostgreSQL's JSON spliced into the response);
     - the gateway's view with graphql-core ``execute`` on the cached document;
     - the gateway's view with ``strawberry.Schema.execute`` on the cached document (used when
       the extensions module declares Strawberry schema extensions);
     - Strawberry's own ASGI view (``strawberry.asgi.GraphQL``) over the same merged schema,
       which parses and validates every request.
     A throwaway PostgreSQL holds one 1,000-row table; the extensions module is written to a
     temporary folder.
     With ``--subscriptions N`` (default 1,000; 0 skips it): the resident memory a ``gateway
     serve`` process gains per 1,000 idle subscriptions, opened over connections of 50
     operations each: a module subscription that sent one event and waits (the WebSocket and
     Strawberry's share), and generated change streams (``events_changes``).
     Then (``--subscribers 100 --rate 200 --seconds 10``): commit-to-delivery latency p50/p99
     of ``events_changes { pk row { id } }`` (each row re-read as each subscriber) while one
     connection inserts at that rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from . import database

TABLE_SQL = """
CREATE TABLE public.posts (id int PRIMARY KEY, title text NOT NULL);
INSERT INTO public.posts SELECT i, 'post ' || i FROM generate_series(1, 1000) i;
GRANT SELECT ON public.posts TO anon, authenticated, project_admin;
CREATE TABLE public.events (id serial PRIMARY KEY, body text);
GRANT SELECT ON public.events TO anon, authenticated, project_admin;
SELECT system.publish_changes('public.events');
"""

MODULE = """
import strawberry
from strawberry.extensions import SchemaExtension
from gateway.graphql.extend import Generated, run_generated

Posts = Generated("Posts")


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hi"

    @strawberry.field
    async def latest(self, info: strawberry.Info, limit: int = 1) -> list[Posts]:
        return await run_generated(info, "posts", orderBy=[{"id": "DESC"}], limit=limit)


class Nothing(SchemaExtension):
    pass


extensions = [Nothing] if WITH_EXTENSION else []
"""

FAST = "{ posts(limit: 1, orderBy: [{id: DESC}]) { id title } }"
HAND = "{ latest(limit: 1) { id title } }"
CONST = "{ hello }"


async def measure(label: str, send: Callable[[], Awaitable[httpx.Response]], n: int) -> None:
    first = await send()
    assert first.status_code == 200 and "errors" not in first.json(), first.text
    for _ in range(min(300, n)):
        await send()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        await send()
    wall, cpu = (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6
    print(f"{label:84s} {wall:8.1f} us wall {cpu:8.1f} us CPU", flush=True)


async def run(dsn: str, folder: Path, n: int) -> None:
    from strawberry.asgi import GraphQL

    from gateway.app import create_app
    from gateway.auth import anon_key
    from gateway.graphql import sbcompat
    from gateway.settings import Settings

    secret = "bench-secret-" + "s" * 40
    headers = {"Authorization": f"Bearer {anon_key(secret)}"}
    for name, with_extension in (("bench_ext_plain", False), ("bench_ext_extended", True)):
        (folder / f"{name}.py").write_text(f"WITH_EXTENSION = {with_extension}\n" + textwrap.dedent(MODULE))
    sys.path.insert(0, str(folder))
    for name in ("bench_ext_plain", "bench_ext_extended"):
        settings = Settings(database_url=dsn, jwt_secret=secret, api_key="ik_" + "0" * 64, data_dir=str(folder),
                            authenticator_password="bench-login-" + "p" * 30, graphql_extensions=name,
                            access_log=False, log_level="warning")
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench")

            def post(query: str, c: httpx.AsyncClient = client) -> Callable[[], Awaitable[httpx.Response]]:
                return lambda: c.post("/graphql", json={"query": query}, headers=headers)

            if name == "bench_ext_plain":
                await measure("gateway view, fast path: generated list, 1 row", post(FAST), n)
                await measure("gateway view, graphql-core on the cached document: hand-written list, 1 row",
                              post(HAND), n)
                await measure("gateway view, graphql-core on the cached document: { hello }", post(CONST), n)
                schema = sbcompat.strawberry_of(app.state.gateway.graphql_schema["anon"].schema)
                assert schema is not None
                strawberry_app = GraphQL(schema, graphql_ide=None)
                own = httpx.AsyncClient(transport=httpx.ASGITransport(app=strawberry_app), base_url="http://bench")
                await measure("Strawberry's ASGI view (parses and validates each request): { hello }",
                              post(CONST, own), n)
                await own.aclose()
            else:
                await measure("gateway view, Strawberry execute on the cached document: hand-written list, 1 row",
                              post(HAND), n)
                await measure("gateway view, Strawberry execute on the cached document: { hello }", post(CONST), n)
            await client.aclose()


IDLE_MODULE = """
import asyncio
from collections.abc import AsyncGenerator

import strawberry


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "hi"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def idle(self) -> AsyncGenerator[int, None]:
        yield 1
        await asyncio.sleep(3600)
"""


async def open_idle(url: str, key: str, n: int, per_connection: int = 50,
                    query: str = "subscription { idle }", first_event: bool = True) -> list[Any]:
    """``n`` idle subscriptions (each awaited to its first event, when it sends one); the connections."""
    import json

    from websockets.asyncio.client import connect

    sockets = []
    for start in range(0, n, per_connection):
        ws = await connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        count = min(per_connection, n - start)
        payload = {"query": query}
        for i in range(count):
            await ws.send(json.dumps({"id": str(i), "type": "subscribe", "payload": payload}))
        if first_event:
            for _ in range(count):
                assert json.loads(await ws.recv())["type"] == "next"
        sockets.append(ws)
    return sockets


def start_server(dsn: str, folder: Path, secret: str) -> Any:
    from . import procs

    (folder / "bench_ext_idle.py").write_text(textwrap.dedent(IDLE_MODULE))
    port = procs.free_port()
    env = {"DATABASE_URL": dsn, "JWT_SECRET": secret, "API_KEY": "ik_" + "0" * 64, "GATEWAY_DATA_DIR": str(folder),
           "GATEWAY_AUTHENTICATOR_PASSWORD": "bench-login-" + "p" * 30, "GATEWAY_ACCESS_LOG": "false",
           "GATEWAY_GRAPHQL_EXTENSIONS": "bench_ext_idle", "GATEWAY_LOG_LEVEL": "warning"}
    server = procs.start("gateway", procs.gateway_command(port, 1), env, port, folder)
    problem = procs.wait_healthy(server, 120)
    if problem:
        procs.stop(server)
        raise RuntimeError(f"gateway did not start ({problem})")
    return server


async def idle_memory(url: str, key: str, worker: Any, n: int, query: str, label: str,
                      first_event: bool = True) -> None:
    warm = await open_idle(url, key, 50, query=query, first_event=first_event)  # first-use allocations
    await asyncio.sleep(1)
    before = worker.memory_info().rss
    sockets = await open_idle(url, key, n, query=query, first_event=first_event)
    await asyncio.sleep(3)  # a change stream sends nothing: give the server time to open them all
    after = worker.memory_info().rss
    print(f"{label}: {n:,} open, server RSS +{(after - before) / 1e6:.1f} MB "
          f"= {(after - before) / 1e6 / n * 1000:.1f} MB per 1,000", flush=True)
    for ws in (*warm, *sockets):
        await ws.close()


async def open_streams(url: str, keys: list[str]) -> tuple[list[Any], list[dict[int, float]], list[Any]]:
    """One ``events_changes { pk row { id } }`` subscriber per key in ``keys``, all registered on
    return: (their sockets, per subscriber the arrival time of each row id, the reading tasks)."""
    import json

    from websockets.asyncio.client import connect

    received: list[dict[int, float]] = []
    sockets = []
    for key in keys:
        ws = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": "subscription { events_changes { pk row { id } } }"}}))
        sockets.append(ws)
        received.append({})
    await asyncio.sleep(1)  # every subscription registered before the first insert

    async def read(ws: Any, into: dict[int, float]) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "next":
                into[message["payload"]["data"]["events_changes"]["pk"]["id"]] = time.perf_counter()

    return sockets, received, [asyncio.create_task(read(ws, into)) for ws, into in zip(sockets, received, strict=True)]


async def latency(url: str, keys: list[str], dsn: str, subscribers: int, rate: float, seconds: float) -> None:
    """Commit-to-delivery latency of ``events_changes`` for ``subscribers`` under ``rate`` inserts/s;
    subscriber ``i`` connects with ``keys[i % len(keys)]``."""
    import asyncpg

    sockets, received, readers = await open_streams(url, [keys[i % len(keys)] for i in range(subscribers)])
    committed: dict[int, float] = {}
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            row_id = await conn.fetchval("INSERT INTO public.events (body) VALUES ('x') RETURNING id")
            committed[row_id] = time.perf_counter()  # autocommit: the INSERT has committed
        await asyncio.sleep(5)  # stragglers
    finally:
        await conn.close()
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    delays = sorted((into[i] - at) * 1000 for into in received for i, at in committed.items() if i in into)
    expected = len(committed) * subscribers
    if not delays:
        print("change latency: nothing delivered")
        return
    p50, p99 = delays[len(delays) // 2], delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    callers = "one caller" if len(keys) == 1 else f"{len(keys)} distinct users"
    print(f"change latency, {subscribers} subscribers ({callers}), {rate:.0f} inserts/s for {seconds:.0f} s: "
          f"delivered {len(delays):,}/{expected:,}, commit->delivery p50 {p50:.1f} ms, p99 {p99:.1f} ms",
          flush=True)


def subscription_figures(dsn: str, folder: Path, n: int, subscribers: int, rate: float, seconds: float,
                         identities: int = 1) -> None:
    """Idle memory of ``n`` subscriptions, then change latency with one caller and, when
    ``identities`` > 1, with the subscribers spread over that many users."""
    import uuid

    from gateway.auth import anon_key, sign_token

    from . import procs

    secret = "bench-secret-" + "s" * 40
    server = start_server(dsn, folder, secret)
    try:
        worker = server.workers()[0]
        url = server.url.replace("http://", "ws://") + "/graphql"
        key = anon_key(secret)

        async def measure() -> None:
            if n:
                await idle_memory(url, key, worker, n, "subscription { idle }",
                                  "idle subscriptions (extensions module, WebSocket only)")
                await idle_memory(url, key, worker, n, "subscription { events_changes { pk } }",
                                  "idle change streams (events_changes)", first_event=False)
            if subscribers and seconds:
                await latency(url, [key], dsn, subscribers, rate, seconds)
                if identities > 1:
                    users = [sign_token(secret, {"sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"user{i}")),
                                                 "role": "authenticated"}, 3600)
                             for i in range(identities)]
                    await latency(url, users, dsn, subscribers, rate, seconds)

        asyncio.run(measure())
    finally:
        procs.stop(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.graphql", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-graphql-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # pgserver's server may run as another OS user
        pg = database.start(workdir, ("graphql",))
        try:
            async def prepare() -> None:
                conn = await pg.connect("graphql")
                try:
                    await database.apply_bootstrap(conn)
                    await conn.execute(TABLE_SQL)
                finally:
                    await conn.close()

            asyncio.run(prepare())
            if opts.requests:
                asyncio.run(run(pg.dsn("graphql"), workdir, opts.requests))
            if opts.subscriptions or opts.subscribers:
                subscription_figures(pg.dsn("graphql"), workdir, opts.subscriptions, opts.subscribers, opts.rate,
                                     opts.seconds)
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
