"""Subscription figures: ``python -m gateway.bench.subscriptions``.

In:  nothing (options: ``--rows``, ``--subscriptions``, ``--subscribers``, ``--rate``,
     ``--seconds``, ``--identities``, ``--requests``; 0 skips a part).
Out: printed rows, one run, on a throwaway PostgreSQL (tuned as the other benchmarks:
     ``synchronous_commit`` off; ``wal_level`` logical so both change sources can be compared):

1. The change source: single-row autocommitted INSERTs per second into a table with no
   trigger, with the ``gateway_changes`` trigger (NOTIFY, one listener connected), and with a
   ``test_decoding`` logical replication slot; bulk INSERT ... SELECT rows per second the same
   three ways; commit-to-arrival latency p50/p99 of NOTIFY (a LISTEN connection) and of
   logical decoding polled every 10 ms (``pg_logical_slot_get_changes``); and whether
   project_admin (the most privileged role the gateway runs requests as) may use a slot.
2. From ``gateway.bench.graphql``, against a ``gateway serve`` process: idle memory per 1,000
   open subscriptions; commit-to-delivery latency p50/p99 (and the delivered fraction) of
   ``events_changes`` for ``--subscribers`` under ``--rate`` inserts/s, all subscribers one
   caller, then spread over ``--identities`` distinct users (one re-read per user per batch);
   the per-request cost of the cached-document path vs Strawberry's (``--requests``).
3. With ``--owner-users N`` (default 100; 0 skips it), on a table under an owner-only RLS policy:
   one subscriber per user (N distinct callers), ``--rate`` inserts/s for ``--seconds`` whose
   owners go round-robin over the users, so each row is for exactly one subscriber:
   commit-to-delivery latency p50/p99 of each row to its owner, the delivered fraction, and how
   many rows reached a subscriber who does not own them (must be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import asyncpg

from . import database, graphql

SOURCE_SQL = """
CREATE TABLE public.plain (id serial PRIMARY KEY, body text);
CREATE TABLE public.notified (id serial PRIMARY KEY, body text);
CREATE TABLE public.decoded (id serial PRIMARY KEY, body text);
SELECT system.publish_changes('public.notified');
"""

OWNER_SQL = """
ALTER TABLE public.events ADD COLUMN owner uuid;
ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_mine ON public.events FOR SELECT TO authenticated USING (owner = auth.uid());
"""


def percentiles(values: list[float]) -> str:
    values = sorted(values)
    if not values:
        return "nothing arrived"
    return f"p50 {values[len(values) // 2]:.2f} ms, p99 {values[min(len(values) - 1, int(len(values) * .99))]:.2f} ms"


async def insert_rate(conn: asyncpg.Connection, table: str, rows: int) -> tuple[float, float]:
    """(single-row autocommitted INSERTs per second, bulk-inserted rows per second)."""
    start = time.perf_counter()
    for _ in range(rows):
        await conn.execute(f"INSERT INTO public.{table} (body) VALUES ('x')")
    single = rows / (time.perf_counter() - start)
    start = time.perf_counter()
    await conn.execute(f"INSERT INTO public.{table} (body) SELECT 'x' FROM generate_series(1, {rows * 10})")
    return single, rows * 10 / (time.perf_counter() - start)


async def change_source(dsn: str, rows: int) -> None:
    conn = await asyncpg.connect(dsn)
    listener = await asyncpg.connect(dsn)
    arrived: dict[int, float] = {}

    def heard(_c: object, _pid: int, _channel: str, payload: str) -> None:
        import orjson

        arrived[orjson.loads(payload)["pk"]["id"]] = time.perf_counter()

    try:
        await conn.execute(SOURCE_SQL)
        await listener.add_listener("gateway_changes", heard)
        try:
            await conn.execute("SET ROLE project_admin")
            await conn.execute("SELECT pg_create_logical_replication_slot('bench_denied', 'test_decoding')")
            print("logical decoding as project_admin: allowed", flush=True)
        except asyncpg.PostgresError as exc:
            print(f"logical decoding as project_admin: refused ({exc})", flush=True)
        finally:
            await conn.execute("RESET ROLE")
        for label, table in (("no trigger", "plain"), ("trigger + NOTIFY (1 listener)", "notified")):
            single, bulk = await insert_rate(conn, table, rows)
            print(f"change source, {label:34s}: {single:8.0f} single-row INSERTs/s, {bulk:9.0f} rows/s bulk",
                  flush=True)
        await conn.execute("SELECT pg_create_logical_replication_slot('bench_slot', 'test_decoding')")
        single, bulk = await insert_rate(conn, "decoded", rows)
        print(f"change source, {'logical slot (test_decoding)':34s}: {single:8.0f} single-row INSERTs/s, "
              f"{bulk:9.0f} rows/s bulk", flush=True)
        start = time.perf_counter()
        decoded = await conn.fetchval("SELECT count(*) FROM pg_logical_slot_get_changes('bench_slot', NULL, NULL)")
        print(f"change source, decoding the slot's backlog: {decoded:,} lines in "
              f"{time.perf_counter() - start:.2f} s", flush=True)

        # latency: 500 single inserts 5 ms apart, each source's arrival time per id
        committed: dict[int, float] = {}
        for _ in range(500):
            row_id = await conn.fetchval("INSERT INTO public.notified (body) VALUES ('x') RETURNING id")
            committed[row_id] = time.perf_counter()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)
        print("latency, trigger + NOTIFY to a LISTEN connection: "
              + percentiles([(arrived[i] - t) * 1000 for i, t in committed.items() if i in arrived]), flush=True)

        poller = await asyncpg.connect(dsn)
        seen: dict[int, float] = {}
        stop = asyncio.Event()

        async def poll() -> None:
            while not stop.is_set():
                for (data,) in await poller.fetch("SELECT data FROM pg_logical_slot_get_changes('bench_slot', NULL, "
                                                  "NULL) WHERE data LIKE 'table public.decoded: INSERT:%'"):
                    seen[int(data.split("id[integer]:", 1)[1].split(" ", 1)[0])] = time.perf_counter()
                await asyncio.sleep(0.01)

        task = asyncio.create_task(poll())
        committed = {}
        for _ in range(500):
            row_id = await conn.fetchval("INSERT INTO public.decoded (body) VALUES ('x') RETURNING id")
            committed[row_id] = time.perf_counter()
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.5)
        stop.set()
        await task
        await poller.close()
        print("latency, logical decoding polled every 10 ms: "
              + percentiles([(seen[i] - t) * 1000 for i, t in committed.items() if i in seen]), flush=True)
        await conn.execute("SELECT pg_drop_replication_slot('bench_slot')")
    finally:
        await listener.close()
        await conn.close()


async def owner_latency(dsn: str, url: str, secret: str, users: int, rate: float, seconds: float) -> None:
    """Each row to its owner's subscriber under owner-only RLS (see the module's docstring, 3)."""
    import uuid

    from gateway.auth import sign_token

    uids = [uuid.uuid5(uuid.NAMESPACE_DNS, f"owner{i}") for i in range(users)]
    sockets, received, readers = await graphql.open_streams(
        url, [sign_token(secret, {"sub": str(uid), "role": "authenticated"}, 3600) for uid in uids])
    committed: dict[int, tuple[float, int]] = {}
    conn = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            row_id = await conn.fetchval("INSERT INTO public.events (body, owner) VALUES ('x', $1) RETURNING id",
                                         uids[i % users])
            committed[row_id] = (time.perf_counter(), i % users)
        await asyncio.sleep(5)  # stragglers
    finally:
        await conn.close()
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
    foreign = sum(1 for k, into in enumerate(received) for row_id in into if committed[row_id][1] != k)
    delays = [(received[k][row_id] - at) * 1000 for row_id, (at, k) in committed.items() if row_id in received[k]]
    print(f"change latency, owner-only RLS, {users} subscribers ({users} distinct users, each row for one), "
          f"{rate:.0f} inserts/s for {seconds:.0f} s: delivered {len(delays):,}/{len(committed):,}, "
          f"{percentiles(delays)}; rows received by a non-owner: {foreign}", flush=True)


def owner_figures(dsn: str, folder: Path, users: int, rate: float, seconds: float) -> None:
    from . import procs

    secret = "bench-secret-" + "s" * 40
    server = graphql.start_server(dsn, folder, secret)
    try:
        asyncio.run(owner_latency(dsn, server.url.replace("http://", "ws://") + "/graphql", secret, users, rate,
                                  seconds))
    finally:
        procs.stop(server)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.subscriptions", description=__doc__)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--owner-users", type=int, default=100)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-subscriptions-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # the embedded server may run as another OS user
        pg = database.start(workdir, ("source", "graphql", "owners"), extra=(("wal_level", "logical"),))
        try:
            async def prepare() -> None:
                for db, sql in (("source", ""), ("graphql", graphql.TABLE_SQL),
                                ("owners", graphql.TABLE_SQL + OWNER_SQL)):
                    conn = await pg.connect(db)
                    try:
                        await database.apply_bootstrap(conn)
                        if sql:
                            await conn.execute(sql)
                    finally:
                        await conn.close()

            asyncio.run(prepare())
            if opts.rows:
                asyncio.run(change_source(pg.dsn("source"), opts.rows))
            if opts.subscriptions or opts.subscribers:
                graphql.subscription_figures(pg.dsn("graphql"), workdir, opts.subscriptions, opts.subscribers,
                                             opts.rate, opts.seconds, opts.identities)
            if opts.owner_users and opts.seconds:
                owner_figures(pg.dsn("owners"), workdir, opts.owner_users, opts.rate, opts.seconds)
            if opts.requests:
                asyncio.run(graphql.run(pg.dsn("graphql"), workdir, opts.requests))
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
