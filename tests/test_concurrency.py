"""Concurrency: many writes at once through the HTTP app, none lost and none doubled.

1,000 single-row inserts are sent at the same moment; each row carries a token of its own and
the table has no unique constraint on it, so a row stored twice would show. 300 increments of
one counter go through an RPC function at once; row locking must serialise them so that the
values returned are exactly 1..300. The pool is the default size with a generous acquire
timeout: the load is meant to queue, not to be shed (shedding is tests/test_faults.py's part).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest_asyncio
from support import Running, app_with

SCHEMA = "conc"
INSERTS = 1000
INCREMENTS = 300
FIXTURE = f"""
drop schema if exists {SCHEMA} cascade; create schema {SCHEMA};
create table {SCHEMA}.rows(id bigint generated always as identity primary key, token uuid not null, n int not null);
create table {SCHEMA}.counters(id int primary key, n int not null default 0);
insert into {SCHEMA}.counters values (1, 0);
create function {SCHEMA}.increment(counter int) returns int language sql volatile as
  'update {SCHEMA}.counters set n = n + 1 where id = counter returning n';
grant usage on schema {SCHEMA} to authenticated;
grant select, insert, update on all tables in schema {SCHEMA} to authenticated;
grant usage on all sequences in schema {SCHEMA} to authenticated;
grant execute on all functions in schema {SCHEMA} to authenticated;
"""


@pytest_asyncio.fixture(scope="module")
async def app(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), pool_timeout=120.0, access_log=False,
                        teardown_sql=f"drop schema {SCHEMA} cascade") as running:
        yield running


async def test_a_thousand_concurrent_inserts_are_each_stored_exactly_once(
        app: Running, pg: asyncpg.Connection) -> None:
    headers = app.user()
    tokens = [str(uuid.uuid4()) for _ in range(INSERTS)]

    async def insert(i: int) -> httpx.Response:
        return await app.client.post("/api/database/records/rows", json=[{"token": tokens[i], "n": i}],
                                     headers=headers, timeout=120)

    started = time.perf_counter()
    responses = await asyncio.gather(*(insert(i) for i in range(INSERTS)))
    seconds = time.perf_counter() - started
    statuses = [r.status_code for r in responses]
    acknowledged = {tokens[i] for i, status in enumerate(statuses) if status == 201}
    print(f"\n{INSERTS} concurrent inserts: {INSERTS / seconds:.0f} req/s, "
          f"{INSERTS - len(acknowledged)} errors")
    assert statuses == [201] * INSERTS, sorted(set(statuses))
    stored = await pg.fetch(f"select token::text, count(*) as copies from {SCHEMA}.rows group by token")
    copies = {row["token"]: row["copies"] for row in stored}
    assert set(copies) == acknowledged
    assert set(copies.values()) == {1}


async def test_three_hundred_concurrent_rpc_increments_lose_nothing(app: Running, pg: asyncpg.Connection) -> None:
    headers = app.user()

    async def increment() -> httpx.Response:
        return await app.client.post("/api/database/rpc/increment", json={"counter": 1}, headers=headers,
                                     timeout=120)

    started = time.perf_counter()
    responses = await asyncio.gather(*(increment() for _ in range(INCREMENTS)))
    seconds = time.perf_counter() - started
    print(f"\n{INCREMENTS} concurrent increments: {INCREMENTS / seconds:.0f} req/s")
    assert [r.status_code for r in responses] == [200] * INCREMENTS
    assert sorted(r.json() for r in responses) == list(range(1, INCREMENTS + 1))
    assert await pg.fetchval(f"select n from {SCHEMA}.counters where id = 1") == INCREMENTS
