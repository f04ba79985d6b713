"""The change feed: ``NOTIFY gateway_changes`` in, per-subscription queues of changes out.

In:  notifications sent by ``system.publish_change()`` (``schema/60_changes.sql``) after each
     committed row change: ``{"s", "t", "op", "pk"}``, heard on one dedicated connection per
     process (like ``reload.py``'s, not part of the request pool).
Out: ``Feed.subscribe(tables)`` -> a ``Subscription`` whose ``next()`` returns the next
     ``Change`` of those tables, or ``RESYNC`` after the listener reconnected (changes made
     meanwhile are lost: live queries re-run, change streams carry on). Every change carries
     ``seq``, its rank in this process's order of arrival (``Feed.seq`` is the last one given).

Bounded everywhere: at most ``graphql_max_subscriptions`` subscriptions per process, at most
``limit`` changes waiting per subscription — one that falls further behind is ended with an
error (``slow_consumer()``) and its ``on_overflow`` callback runs (the WebSocket layer
disconnects the client) rather than growing memory.

Several gateway processes each LISTEN; PostgreSQL delivers every notification to each.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from ..errors import GatewayError
from ..execute import RequestContext
from ..identity import ADMIN
from ..settings import Settings

log = logging.getLogger("gateway.graphql")

CHANNEL = "gateway_changes"
TRIGGER = "gateway_changes"
PUBLISH = "SELECT system.publish_changes(pg_catalog.to_regclass($1))"
APPLICATION_NAME = "gateway change feed"
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0


@dataclass(frozen=True)
class Change:
    table: tuple[str, str]  # (schema, name), the catalog's table key
    op: str  # INSERT, UPDATE or DELETE
    pk: dict[str, Any]  # primary key column -> value
    seq: int = field(default=0, compare=False)  # rank of arrival in this process (Feed.seq)


RESYNC = Change(("", ""), "RESYNC", {})  # the listener reconnected: changes may have been missed


def slow_consumer() -> GatewayError:
    return GatewayError(503, "SERVICE_UNAVAILABLE", "Slow consumer: the subscription fell too far behind and was ended",
                        next_actions="Read events faster, narrow the filter, or subscribe again")


class Subscription:
    """One subscriber's queue of changes (bounded)."""

    def __init__(self, feed: Feed, tables: frozenset[tuple[str, str]], limit: int,
                 on_overflow: Callable[[], None] | None = None) -> None:
        self.feed = feed
        self.tables = tables
        self.limit = limit
        self.on_overflow = on_overflow
        self.queue: collections.deque[Change] = collections.deque()
        self.ready = asyncio.Event()
        self.overflowed = False
        self.counted = True  # one place of graphql_max_subscriptions (Feed.subscribe)

    def offer(self, change: Change) -> None:
        if self.overflowed:
            return
        if len(self.queue) >= self.limit:
            self.overflowed = True  # no more memory for this one; next() ends it
            self.queue.clear()
            self.close()
            if self.on_overflow is not None:
                self.on_overflow()
        else:
            self.queue.append(change)
        self.ready.set()

    async def next(self) -> Change:
        while not self.queue and not self.overflowed:
            self.ready.clear()
            await self.ready.wait()
        if self.overflowed:
            raise slow_consumer()
        return self.queue.popleft()

    def pending(self) -> list[Change]:
        """Everything queued now, without waiting (for debouncing)."""
        if self.overflowed:
            raise slow_consumer()
        out = list(self.queue)
        self.queue.clear()
        return out

    def close(self) -> None:
        self.feed.unsubscribe(self)


class Feed:
    """One process's LISTEN connection and its subscribers."""

    def __init__(self, dsn: str, settings: Settings) -> None:
        self.dsn = dsn
        self.settings = settings
        self.by_table: dict[tuple[str, str], set[Subscription]] = collections.defaultdict(set)
        self.count = 0
        self.seq = 0
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()

    @property
    def backend_pid(self) -> int | None:
        return self._conn.get_server_pid() if self._conn is not None and not self._conn.is_closed() else None

    async def start(self) -> None:
        """Listen (in the background, reconnecting forever) until ``stop()``."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen_forever(), name="gateway-change-feed")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._connected.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def admit(self) -> None:
        """Count one more subscription served by this process; refused (503) at
        ``graphql_max_subscriptions``. ``release()`` gives the place back."""
        if self.count >= self.settings.graphql_max_subscriptions:
            raise GatewayError(503, "SERVICE_UNAVAILABLE",
                               f"This gateway process already serves {self.count} subscriptions",
                               next_actions="Retry later, or raise GATEWAY_GRAPHQL_MAX_SUBSCRIPTIONS")
        self.count += 1

    def release(self) -> None:
        self.count -= 1

    def subscribe(self, tables: frozenset[tuple[str, str]], limit: int | None = None,
                  on_overflow: Callable[[], None] | None = None, counted: bool = True) -> Subscription:
        """A queue of the changes of ``tables`` from now on, at most ``limit`` waiting (the
        ``graphql_subscription_buffer`` setting by default); ``on_overflow`` runs once if it overflows.
        ``counted``: it is one subscriber's (``admit``); a change stream shared by many subscribers
        (``streams.py``) counts them instead."""
        if counted:
            self.admit()
        sub = Subscription(self, tables, limit or self.settings.graphql_subscription_buffer, on_overflow)
        sub.counted = counted
        for table in tables:
            self.by_table[table].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        removed = False
        for table in sub.tables:
            subs = self.by_table.get(table)
            if subs is not None and sub in subs:
                subs.discard(sub)
                removed = True
                if not subs:
                    del self.by_table[table]
        if removed and sub.counted:
            self.release()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            raw = orjson.loads(payload)
            change = Change((raw["s"], raw["t"]), raw["op"], raw["pk"], self.seq + 1)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignoring a malformed change notification %r", payload[:200])
            return
        self.seq += 1
        for sub in tuple(self.by_table.get(change.table, ())):
            sub.offer(change)

    def _on_terminated(self, conn: object) -> None:
        if conn is self._conn:
            self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": APPLICATION_NAME})
        await conn.add_listener(CHANNEL, self._on_notification)
        conn.add_termination_listener(self._on_terminated)
        self._lost.clear()
        self._conn = conn

    async def _listen_forever(self) -> None:
        attempt, first = 0, True
        while True:
            try:
                await self._connect()
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                log.warning("change feed cannot connect (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._connected.set()
            if not first:  # notifications sent while away are gone: tell every subscriber
                log.info("change feed reconnected; subscribers resynchronise")
                for subs in tuple(self.by_table.values()):
                    for sub in tuple(subs):
                        sub.offer(RESYNC)
            first = False
            await self._watch()

    async def _watch(self) -> None:
        """Return when the connection is lost (terminated, or a failed probe)."""
        while True:
            try:
                await asyncio.wait_for(self._lost.wait(), 5)
                break
            except TimeoutError:
                conn = self._conn
                if conn is None or conn.is_closed():
                    break
                try:
                    await conn.fetchval("SELECT 1", timeout=5)
                except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    break
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()


async def publish(gw: Any, tables: Iterable[tuple[str, str]]) -> None:
    """Install the change trigger where the catalog shows none (as project_admin, never the caller)."""
    published: set[tuple[str, str]] = gw.__dict__.setdefault("published_tables", set())
    present = {(t.schema, t.table) for t in gw.catalogs.get().triggers if t.name == TRIGGER}
    for schema, name in tables:
        if (schema, name) in present or (schema, name) in published:
            continue
        quoted = '"' + schema.replace('"', '""') + '"."' + name.replace('"', '""') + '"'
        try:
            async with gw.executor.transaction(ADMIN, RequestContext("POST", "/graphql")) as tx:
                await tx.execute(PUBLISH, quoted)
        except GatewayError as exc:
            raise GatewayError(403, "FORBIDDEN", f"Changes of {schema}.{name} are not published",
                               next_actions=f"The table's owner runs: SELECT system.publish_changes('{quoted}')",
                               details=exc.message) from None
        published.add((schema, name))


def feed_of(gw: Any) -> Feed:
    """The process's feed, created (and started by the caller) on first use."""
    found: Feed | None = getattr(gw, "change_feed", None)
    if found is None:
        found = Feed(gw.dsn, gw.settings)
        gw.change_feed = found
    return found
