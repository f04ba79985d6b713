"""The runtime state of one gateway process: settings, pool, executor, catalog and schemas.

In:  what the app's lifespan opens (``app.py`` builds one ``Gateway`` and stores it as
     ``request.app.state.gateway``).
Out: the object every front end and admin route reads; ``reload_catalog`` swaps in a new
     catalog with the schemas built from it.

Low in the import graph on purpose: handlers, the pipeline and admin routes import it, and
it imports none of them. The GraphQL schemas are built by a function the app passes in
(``schema_builder``), so the state does not depend on the GraphQL front end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from . import pgversion, reflect
from .auth import Authenticator
from .catalog import Catalog, CatalogHolder
from .execute import Executor
from .graphql.operations import AllowList, PersistedQueries
from .settings import Settings

log = logging.getLogger("gateway")


@dataclass
class Gateway:
    """Everything a request handler needs; ``request.app.state.gateway``."""

    settings: Settings
    executor: Executor
    catalogs: CatalogHolder
    auth: Authenticator
    pool: asyncpg.Pool
    dsn: str
    reloads: int = 0  # catalog swaps since start
    graphql_schema: Any = None  # the GraphQL schema of each role, built from the current catalog
    server: pgversion.ServerVersion | None = None  # the PostgreSQL served, read at start
    persisted: PersistedQueries = field(default_factory=PersistedQueries)  # documents known by hash
    allow_list: AllowList = field(default_factory=AllowList)  # what non-admins may run (empty: anything)
    schema_builder: Callable[[Catalog, Settings], Any] | None = None  # catalog -> schemas per role
    change_feed: Any = None  # the subscription change feed, started by the first subscription
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _building: asyncio.Future[None] | None = None  # set while a reload builds the GraphQL schemas

    async def _load(self, version: int) -> Catalog:
        """Reflect, retrying briefly: DDL committing during reflection (a DROP racing a
        pg_catalog read) can fail one attempt; a later attempt sees the finished change."""
        for attempt in range(4):
            try:
                return await reflect.load_catalog(self.dsn, self.settings.schemas, version)
            except asyncpg.PostgresError as exc:
                if attempt == 3:
                    raise
                log.warning("catalog reflection failed (%s); retrying", exc)
                await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable")

    async def reload_catalog(self) -> None:
        """Rebuild the catalog from the database and swap it in whole.

        Requests in flight keep the snapshot they started with. Concurrent calls
        are serialised so an older snapshot never replaces a newer one.

        The GraphQL schemas are built after the old ones are let go, so a worker holds one set at
        a time (the old and the new together would add their whole size to the peak at every
        reload); the catalog is swapped with them, once they are built. A GraphQL request
        arriving meanwhile waits for them (``schemas``). A build that fails (an extension's
        field clashing with a new table) leaves the previous catalog in place, and its schemas
        are built again.
        """
        async with self._reload_lock:
            current = self.catalogs.get() if self.catalogs.ready else None
            version = (current.version + 1) if current else 1
            started = time.perf_counter()
            catalog = await self._load(version)
            building = asyncio.get_running_loop().create_future()
            self._building = building
            self.graphql_schema = None  # requests still using the old schemas keep them until they finish
            try:
                try:
                    schemas = await asyncio.to_thread(self._build, catalog)
                except Exception:
                    if current is not None:
                        self.graphql_schema = await asyncio.to_thread(self._build, current)
                    raise
                self.catalogs.swap(catalog)
                self.graphql_schema = schemas
            finally:
                self._building = None
                building.set_result(None)
            self.reloads += 1
            log.info("catalog loaded", extra={"version": version, "tables": len(catalog.tables),
                                              "seconds": round(time.perf_counter() - started, 3),
                                              **catalog_changes(current, catalog)})

    def _build(self, catalog: Catalog) -> Any:
        """The schemas of ``catalog`` (None without a builder), built once the old ones are
        collected; run off the event loop.

        What is built here lives until the next reload, so it is frozen out of the collector's
        sight (``gc.freeze``): otherwise every full collection walks the whole catalog and schema
        graph again — a 50 ms pause, a few times a second under load, with 200 tables. The next
        build unfreezes first, so the old snapshot's cycles are collected and nothing leaks."""
        gc.unfreeze()
        # GraphQL types refer to each other: the old schemas are cycles only the collector frees
        gc.collect()
        schemas = self.schema_builder(catalog, self.settings) if self.schema_builder is not None else None
        release_free_memory()
        gc.freeze()
        return schemas

    async def schemas(self) -> Any:
        """The GraphQL schema of each role, waiting while a reload builds them."""
        while self._building is not None:
            await asyncio.shield(self._building)
        return self.graphql_schema


def release_free_memory() -> None:
    """Hand memory the collector freed back to the OS (glibc's ``malloc_trim``; elsewhere nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


def catalog_changes(before: Catalog | None, after: Catalog) -> dict[str, list[str]]:
    """The tables and views a reload added and removed (``schema.name``), for its log line."""
    if before is None:
        return {}
    old, new = set(before.tables), set(after.tables)
    return {"added": sorted(f"{s}.{n}" for s, n in new - old),
            "removed": sorted(f"{s}.{n}" for s, n in old - new)}
