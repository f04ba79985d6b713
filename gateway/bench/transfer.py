"""Admin transfer and round-trip figures: ``python -m gateway.bench.transfer``.

In:  nothing (``--rows N``, default 100,000).
Out: printed figures, one run, 127.0.0.1 only:
     - bulk upsert of N CSV rows through ``POST /api/database/advance/bulk-upsert`` (new rows,
       then the same file again so every row is an update): seconds and rows/s;
     - SQL and JSON export of the N-row table through ``/advance/export``: seconds and bytes;
     - the per-request cost of running as the caller: one statement alone, against the
       gateway's transaction (BEGIN + set_config in one message, the statement, COMMIT) and its
       one-round-trip form (system.gateway_run), in wall and client-CPU microseconds per request,
       measured sequentially on one connection.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import io
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

try:
    import httpx
except ImportError:  # a plain install: the benchmark's client comes with the [bench] extra
    raise SystemExit("gateway.bench.transfer needs httpx: pip install 'gateway[bench]'") from None

from ..execute import RUN_SQL, RequestContext, request_settings, setup_sql
from ..identity import Identity
from . import database, procs

TABLE_SQL = """
CREATE TABLE public.transfer_rows (
    id bigint PRIMARY KEY, title text NOT NULL, amount numeric, done boolean,
    created_at timestamptz, tags text[], meta jsonb);
"""
LIST_SQL = ("SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT id, title FROM public.transfer_rows "
            "WHERE id > $1 ORDER BY id LIMIT 10) t")
# the same statement as system.gateway_run takes it: four columns, the value as $1[1]
RUN_LIST_SQL = ("SELECT NULL::bigint, count(*), coalesce(json_agg(t), '[]')::text, NULL::bigint FROM "
                "(SELECT id, title FROM public.transfer_rows WHERE id > CAST($1[1] AS bigint) ORDER BY id LIMIT 10) t")


def csv_rows(n: int) -> bytes:
    out = io.StringIO()
    out.write("id,title,amount,done,created_at,tags,meta\n")
    for i in range(1, n + 1):
        out.write(f'{i},"row ""{i}"", with a comma",{i * 1.25},{str(i % 2 == 0).lower()},'
                  f'2026-01-01T00:00:{i % 60:02d}Z,"{{a,b{i % 7}}}","{{""k"": {i}}}"\n')
    return out.getvalue().encode()


def timed(label: str, fn: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = fn()
    seconds = time.perf_counter() - started
    print(f"{label}: {response.status_code} in {seconds:.2f} s")
    return response, seconds


def transfer(base: str, api_key: str, rows: int) -> None:
    data = csv_rows(rows)
    headers = {"X-API-Key": api_key}
    with httpx.Client(base_url=base, timeout=600) as client:
        def upsert() -> httpx.Response:
            return client.post("/api/database/advance/bulk-upsert", headers=headers,
                               files={"file": ("rows.csv", data, "text/csv")},
                               data={"table": "transfer_rows", "upsertKey": "id"})

        for label in ("new rows", "every row an update"):
            r, seconds = timed(f"bulk upsert {rows:,} CSV rows ({label}, {len(data) / 1e6:.1f} MB)", upsert)
            print(f"  -> {rows / seconds:,.0f} rows/s; {r.text[:120]}")
        for fmt in ("sql", "json"):
            export = functools.partial(client.post, "/api/database/advance/export", headers=headers,
                                       json={"tables": ["transfer_rows"], "format": fmt})
            r, _ = timed(f"export {rows:,} rows as {fmt}", export)
            print(f"  -> response {len(r.content) / 1e6:.1f} MB")


async def per_request(dsn: str, n: int = 3000) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    identity = Identity("authenticated", {"sub": "00000000-0000-0000-0000-000000000001", "role": "authenticated"})
    ctx = RequestContext("GET", "/api/database/records/transfer_rows", read_only=True)
    setup = setup_sql(identity, ctx, 30000)

    async def alone() -> None:
        await conn.fetchval(LIST_SQL, 5)

    async def as_caller() -> None:
        await conn.execute(setup)
        await conn.fetchval(LIST_SQL, 5)
        await conn.execute("COMMIT")

    settings = [item for pair in request_settings(identity, ctx) for item in pair]

    async def one_trip() -> None:
        await conn.fetchrow(RUN_SQL, identity.role, settings, True, RUN_LIST_SQL, ["5"])

    async def measure(label: str, fn: Callable[[], Awaitable[None]]) -> None:
        for _ in range(300):
            await fn()
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await fn()
        wall, cpu = (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6
        print(f"{label:58s} {wall:7.1f} us wall  {cpu:7.1f} us client CPU")

    try:
        await measure("statement alone (1 round trip)", alone)
        await measure("as the caller: setup, statement, COMMIT (3 round trips)", as_caller)
        await measure("as the caller: system.gateway_run (1 round trip)", one_trip)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.transfer", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gateway-transfer-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # pgserver's server may run as another OS user
        pg = database.start(workdir, ("transfer",))
        server = None
        try:
            dsn = pg.dsn("transfer")

            async def prepare() -> None:
                conn = await pg.connect("transfer")
                try:
                    await database.apply_bootstrap(conn)
                    await conn.execute(TABLE_SQL)
                finally:
                    await conn.close()

            asyncio.run(prepare())
            port = procs.free_port()
            api_key = "ik_" + "5" * 64
            env = {"DATABASE_URL": dsn, "JWT_SECRET": "t" * 48, "API_KEY": api_key,
                   "GATEWAY_DATA_DIR": str(workdir / "data"), "GATEWAY_ACCESS_LOG": "false",
                   "GATEWAY_STATEMENT_TIMEOUT_MS": "600000"}
            server = procs.start("gateway", procs.gateway_command(port, 1), env, port, workdir)
            why = procs.wait_healthy(server, 60)
            if why:
                print(f"gateway did not start: {why}")
                return 1
            transfer(server.url, api_key, opts.rows)
            asyncio.run(per_request(dsn))
        finally:
            if server is not None:
                procs.stop(server)
            with contextlib.suppress(Exception):
                pg.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
