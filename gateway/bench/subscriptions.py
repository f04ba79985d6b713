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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.subscriptions", description=__doc__)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--identities", type=int, default=100)
    parser.add_argument("--requests", type=int, default=2000)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-bench-subscriptions-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # the embedded server may run as another OS user
        pg = database.start(workdir, ("source", "graphql"), extra=(("wal_level", "logical"),))
        try:
            async def prepare() -> None:
                for db, sql in (("source", ""), ("graphql", graphql.TABLE_SQL)):
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
            if opts.requests:
                asyncio.run(graphql.run(pg.dsn("graphql"), workdir, opts.requests))
        finally:
            pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
