"""reload.Reloader against a real PostgreSQL: NOTIFY pgrst -> debounced on_reload calls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from gateway.reload import Reloader, wants_reload

S = "reload_t1"

MakeReloader = Callable[..., Awaitable[Reloader]]


async def eventually(check: Callable[[], bool], timeout: float = 15.0) -> None:
    """Wait until ``check()`` holds (a bound on waiting, not a timing assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


@pytest.fixture
async def make_reloader(pg_url: str) -> AsyncIterator[MakeReloader]:
    started: list[Reloader] = []

    async def make(on_reload: Callable[[], Awaitable[None]] | None = None, debounce_ms: int = 50) -> Reloader:
        async def nothing() -> None:
            return None

        r = Reloader(pg_url, on_reload or nothing, debounce_ms)
        await r.start()
        started.append(r)
        return r

    yield make
    for r in started:
        await r.stop()


@pytest.mark.parametrize(("payload", "reload"), [
    ("reload schema", True),
    ("", True),
    (" Reload Schema ", True),
    ("reload config", False),
    ("something else", False),
])
def test_only_schema_payloads_ask_for_a_reload(payload: str, reload: bool) -> None:
    assert wants_reload(payload) is reload


@pytest.mark.parametrize("payload", ["reload schema", ""])
async def test_a_notify_on_pgrst_triggers_a_reload(
        make_reloader: MakeReloader, pg: asyncpg.Connection, payload: str) -> None:
    r = await make_reloader()
    assert r.connected and r.reloads == 0
    await pg.execute("select pg_notify('pgrst', $1)", payload)
    await eventually(lambda: r.reloads == 1)


async def test_a_burst_of_twenty_notifications_causes_at_most_two_reloads(
        make_reloader: MakeReloader, pg: asyncpg.Connection) -> None:
    r = await make_reloader(debounce_ms=500)
    for _ in range(20):  # separate transactions: PostgreSQL folds identical notifications within one
        await pg.execute("NOTIFY pgrst, 'reload schema'")
    await eventually(lambda: r.reloads >= 1)
    await asyncio.sleep(1.5)  # three debounce windows: long enough for any further reload to show up
    assert 1 <= r.reloads <= 2


async def test_a_notification_during_a_reload_gets_a_reload_of_its_own(
        make_reloader: MakeReloader, pg: asyncpg.Connection) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        entered.set()
        await release.wait()

    r = await make_reloader(slow)
    await pg.execute("NOTIFY pgrst")
    await asyncio.wait_for(entered.wait(), 15)
    entered.clear()
    await pg.execute("NOTIFY pgrst")
    await eventually(lambda: r.pending)
    release.set()
    await eventually(lambda: r.reloads == 2)


async def test_a_failing_callback_is_logged_and_the_listener_keeps_going(
        make_reloader: MakeReloader, pg: asyncpg.Connection, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("catalog query failed")

    r = await make_reloader(flaky)
    await pg.execute("NOTIFY pgrst")
    await eventually(lambda: r.reloads == 1)
    await pg.execute("NOTIFY pgrst")
    await eventually(lambda: r.reloads == 2)
    assert (calls, r.failures) == (2, 1)
    assert "schema reload failed" in caplog.text


async def test_after_its_backend_is_terminated_the_listener_reconnects_and_reloads(
        make_reloader: MakeReloader, pg: asyncpg.Connection) -> None:
    r = await make_reloader()
    old_pid = r.backend_pid
    assert old_pid is not None
    assert await pg.fetchval("select pg_terminate_backend($1)", old_pid)
    # notifications sent while it was away are lost, so reconnecting reloads by itself
    await eventually(lambda: r.reloads == 1 and r.connected)
    assert r.backend_pid not in (None, old_pid)
    await pg.execute("NOTIFY pgrst")
    await eventually(lambda: r.reloads == 2)


async def test_stop_closes_the_listening_connection(make_reloader: MakeReloader, pg: asyncpg.Connection) -> None:
    r = await make_reloader()
    pid = r.backend_pid
    await r.stop()
    assert not r.connected and r.backend_pid is None
    gone = "select not exists (select 1 from pg_stat_activity where pid = $1)"
    for _ in range(200):
        if await pg.fetchval(gone, pid):
            break
        await asyncio.sleep(0.02)
    assert await pg.fetchval(gone, pid)
    await r.stop()  # stopping twice is harmless


async def test_ddl_reaches_the_listener_through_the_event_trigger(
        make_reloader: MakeReloader, pg: asyncpg.Connection) -> None:
    # the bootstrap (applied by the pg_url fixture) installs the trigger when it runs as a superuser
    if not await pg.fetchval("select exists (select 1 from pg_event_trigger where evtname = $1)",
                             "gateway_reload_on_ddl"):
        pytest.skip("the reload event trigger is not installed in this database")
    r = await make_reloader()
    await pg.execute(f"drop schema if exists {S} cascade; create schema {S}; create table {S}.t (id int)")
    await eventually(lambda: r.reloads >= 1)
    await pg.execute(f"drop schema {S} cascade")


async def test_each_catalog_reload_is_logged_with_its_duration_and_the_tables_added_and_removed(
        pg_url: str) -> None:
    import logging

    from support import app_with

    class Keep(logging.Handler):
        def __init__(self) -> None:
            super().__init__()
            self.records: list[logging.LogRecord] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record)

    kept = Keep()
    logger = logging.getLogger("gateway")
    level = logger.level
    logger.addHandler(kept)
    logger.setLevel(logging.INFO)
    try:
        async with app_with(pg_url, "CREATE SCHEMA reload_log; CREATE TABLE reload_log.old_one (id int);",
                            ("reload_log",), "DROP SCHEMA reload_log CASCADE") as running:
            conn = await asyncpg.connect(pg_url)
            try:
                await conn.execute("DROP TABLE reload_log.old_one; CREATE TABLE reload_log.new_one (id int)")
            finally:
                await conn.close()
            await running.gateway.reload_catalog()
    finally:
        logger.removeHandler(kept)
        logger.setLevel(level)
    loaded = [r for r in kept.records if r.getMessage() == "catalog loaded"]
    # the listener may have reloaded on the DDL's NOTIFY first; one of the reloads saw the change
    changed = [r.__dict__ for r in loaded if r.__dict__.get("added") or r.__dict__.get("removed")]
    assert [(c["added"], c["removed"]) for c in changed] == [(["reload_log.new_one"], ["reload_log.old_one"])]
    assert all(isinstance(r.__dict__["seconds"], float) for r in loaded)
