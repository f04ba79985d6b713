"""Live reload: ``NOTIFY pgrst`` in, calls of ``on_reload()`` out.

In:  notifications on channel ``pgrst`` (payload ``'reload schema'`` or empty),
     heard on a dedicated asyncpg connection that is not part of the request pool.
Out: calls of the async ``on_reload`` callback, off the request path.

Bursts are debounced the way PostgREST does it: the first notification reloads
at once; anything arriving while that reload runs or within ``debounce_ms``
after it causes exactly one more reload, and so on. A migration that sends 20
notifications therefore costs two reloads, and the last one always starts after
the last notification, so no change is missed.

When the listening connection is lost (the server restarted, the backend was
terminated, the network dropped) the listener reconnects with exponential
backoff and then reloads, because notifications sent while it was away are gone.
A silent network drop is noticed by a periodic ``SELECT 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger("gateway.reload")

CHANNEL = "pgrst"
# Payloads that mean "the schema changed"; PostgREST's other ones ('reload config') are ignored.
RELOAD_PAYLOADS = frozenset({"", "reload schema"})
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 10.0  # seconds between reconnection attempts, doubling
APPLICATION_NAME = "gateway reload listener"  # how the connection shows in pg_stat_activity
HEALTH_INTERVAL, HEALTH_TIMEOUT = 30.0, 10.0  # seconds: how often and how patiently to probe the connection


def wants_reload(payload: str) -> bool:
    """Whether a ``pgrst`` notification with this payload asks for a schema reload."""
    return payload.strip().lower() in RELOAD_PAYLOADS


class Reloader:
    """Listens on ``pgrst`` and calls ``on_reload`` (debounced) until ``stop()``."""

    def __init__(self, dsn: str, on_reload: Callable[[], Awaitable[None]], debounce_ms: int = 100) -> None:
        self._dsn = dsn
        self._on_reload = on_reload
        self._debounce = debounce_ms / 1000
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()  # the listening connection went away
        self._wanted = asyncio.Event()  # a reload was asked for and has not started yet
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.reloads = 0  # completed calls of on_reload (failed ones included)
        self.failures = 0  # calls of on_reload that raised

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def pending(self) -> bool:
        """A reload was asked for and has not started yet."""
        return self._wanted.is_set()

    @property
    def backend_pid(self) -> int | None:
        """The listening connection's server process id (for pg_stat_activity and tests)."""
        return self._conn.get_server_pid() if self.connected and self._conn is not None else None

    def request_reload(self) -> None:
        """Ask for a reload as if a notification had arrived."""
        self._wanted.set()

    async def start(self) -> None:
        """Connect (or keep trying in the background) and start listening.

        No reload is made for the first connection: the caller has just loaded the catalog.
        """
        if self._tasks:
            return
        self._stopping = False
        try:
            await self._connect()
        except Exception as exc:  # never fatal: the background loop keeps trying
            log.warning("schema reload listener could not connect (%s); retrying in the background", exc)
        self._tasks = [asyncio.create_task(self._listen_forever(), name="gateway-reload-listener"),
                       asyncio.create_task(self._reload_forever(), name="gateway-reload-worker")]

    async def stop(self) -> None:
        """Stop listening and reloading; a reload in progress is cancelled (the old catalog stays)."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._disconnect()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn, server_settings={"application_name": APPLICATION_NAME})
        try:
            await conn.add_listener(CHANNEL, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._lost.clear()
        self._conn = conn
        conn.add_termination_listener(self._on_terminated)
        log.info("listening for schema reloads on channel %r", CHANNEL)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.remove_termination_listener(self._on_terminated)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), HEALTH_TIMEOUT)
            if not conn.is_closed():
                conn.terminate()

    def _on_notification(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if wants_reload(payload):
            self._wanted.set()
        else:
            log.debug("ignoring notification %r on %r", payload, CHANNEL)

    def _on_terminated(self, conn: object) -> None:
        if conn is self._conn:  # not a late call about a connection already replaced
            self._lost.set()

    async def _listen_forever(self) -> None:
        """Keep a listening connection; after every reconnection, reload."""
        attempt = 0
        while not self._stopping:
            if not self.connected:
                try:
                    await self._connect()
                except Exception as exc:  # refused, auth, server starting up: all worth retrying
                    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** attempt) * random.uniform(0.5, 1.0)
                    attempt += 1
                    log.warning("schema reload listener cannot connect (%s); retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                attempt = 0
                log.info("schema reload listener reconnected; reloading in case notifications were missed")
                self._wanted.set()
            await self._watch()

    async def _watch(self) -> None:
        """Return once the connection is lost; probe it now and then for silent network drops."""
        try:
            await asyncio.wait_for(self._lost.wait(), HEALTH_INTERVAL)
        except TimeoutError:
            conn = self._conn
            try:
                if conn is not None:
                    await conn.fetchval("SELECT 1", timeout=HEALTH_TIMEOUT)
                return
            except Exception as exc:  # whatever the failure, this connection is no longer trusted
                log.warning("schema reload listener connection is unresponsive (%s)", exc)
        log.warning("schema reload listener lost its connection")
        await self._disconnect()

    async def _reload_forever(self) -> None:
        """Reload at once when asked, then at most once per debounce window."""
        while True:
            await self._wanted.wait()
            self._wanted.clear()  # asks arriving from here on get a reload of their own
            try:
                await self._on_reload()
            except Exception:
                self.failures += 1
                log.exception("schema reload failed; the previous catalog stays in use")
            finally:
                self.reloads += 1
            await asyncio.sleep(self._debounce)
