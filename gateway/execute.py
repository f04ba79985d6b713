"""The executor: the only module that talks to the connection pool.

In:  an ``Identity`` (who), a ``Statement`` (SQL text with ``$n`` parameters and
     their values) and the request's method and path.
Out: the statement's rows (``asyncpg.Record``), or a ``GatewayError`` — every
     driver exception is translated here, in ``translate``.

Each request is one transaction on a pooled connection, in one of two shapes.

``run`` — one round trip, for every request whose result cannot decide a rollback (reads,
and writes or calls without single-object, max-affected or tx=rollback checks):

  SELECT ... FROM system.gateway_run(role, settings, read_only, sql, params, name, drop)

The function (schema/50_run.sql) sets the role and the request settings with
``set_config(..., true)``, makes the transaction read-only for GET/HEAD, and runs the
statement as a prepared statement of the connection, its values bound as one text[]. The
statement's implicit transaction is the request's transaction; ``statement_timeout`` comes from
the connection. Each connection remembers which statements it has prepared
(``GatewayConnection.prepared``): the SQL text travels only on a connection's first use of it,
and PostgreSQL plans it once per connection instead of on every request (the parse and plan of
a point read cost more than running it). At most ``PREPARED_PER_CONNECTION`` are kept; the
least recently used are deallocated by the call that pushes them out.

``transaction`` — for everything else (admin work, as ``project_admin``, and GraphQL operations):

  round trip 1  BEGIN ISOLATION LEVEL READ COMMITTED [READ ONLY];
                SELECT set_config('role', …, true), set_config('request.jwt.claims', …, true),
                       set_config('request.method', …), set_config('request.path', …),
                       set_config('statement_timeout', …)            (one simple-protocol message)
  round trip 2+ the statements (prepared once per connection, values bound)
  last          COMMIT, or ROLLBACK when the response must not persist

The setup has to come before the statement it governs: PostgreSQL checks table privileges
and applies RLS with the role current when a statement is planned, so the role cannot be
switched inside the request's own statement (``gateway_run`` switches it before planning
the statement it EXECUTEs). PostgREST sends BEGIN and a separate set_config statement
(4 round trips); folding BEGIN and set_config into one simple-protocol message saves one.
The simple protocol cannot bind parameters, so those values are written as E'' literals
(``_literal``), which PostgreSQL reads the same whatever ``standard_conforming_strings``
says; they are the gateway's own values (the verified claims re-encoded by orjson, a role
from a fixed set, the method and the path), never SQL text from the caller.

Every connection logs in as the login role (``login.py``): not a superuser, NOINHERIT, granted
only the three request roles. Nothing here ever runs as the login role itself — every
transaction switches to the caller's role first — and SQL that resets the role lands on a role
with no privileges of its own, so PostgreSQL refuses what the caller's role may not do.

The pool's release hook does nothing for an idle connection (asyncpg's default
would send ``RESET ALL`` etc. — a fourth round trip); request settings are all
transaction-local, so nothing leaks from one request to the next.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from . import errors
from .errors import GatewayError, SqlstateRule
from .identity import ROLES, Identity
from .pgtext import array_literal
from .settings import Settings

log = logging.getLogger("gateway.execute")


@dataclass(frozen=True)
class Statement:
    """SQL text with ``$1..$n`` placeholders and the values to bind."""

    sql: str
    params: tuple[Any, ...] = ()


@dataclass(frozen=True)
class RequestContext:
    """What the per-request settings describe, besides the identity."""

    method: str = "GET"  # request.method
    path: str = "/"  # request.path
    read_only: bool = False  # BEGIN ... READ ONLY
    headers: str | None = None  # request.headers as JSON text, when wanted
    search_path: str | None = None  # search_path for the transaction; None: the database default
    timezone: str | None = None  # Prefer: timezone=...; None: the connection's (UTC)


# the settings and the values travel as array literals in text parameters: asyncpg's encoder for
# a Python list checks every element against collection ABCs, which costs more than the statement
RUN_SQL = ("SELECT total, page_rows, body, inserted "
           "FROM system.gateway_run($1, $2::text::text[], $3, $4, $5::text::text[], $6, $7)")
PREPARED_PER_CONNECTION = 256  # statements each connection keeps prepared for system.gateway_run


class GatewayConnection(asyncpg.Connection):
    """A pooled connection that knows which ``system.gateway_run`` statements it has prepared."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.prepared: collections.OrderedDict[str, None] = collections.OrderedDict()  # LRU, newest last


@functools.lru_cache(maxsize=4096)
def statement_name(sql: str) -> str:
    """The prepared statement's name for ``sql``: the same text gets the same name everywhere."""
    return "gw_" + hashlib.blake2b(sql.encode(), digest_size=12).hexdigest()


def _literal(value: str) -> str:
    """An E'' string literal for ``value`` (backslashes and quotes escaped; NUL refused)."""
    if "\x00" in value:
        raise errors.validation_error("NUL characters are not allowed", code="22021")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def setup_sql(identity: Identity, ctx: RequestContext, statement_timeout_ms: int) -> str:
    """The round-trip-1 script: BEGIN plus every transaction-local setting, the role first."""
    _check_role(identity)
    mode = " READ ONLY" if ctx.read_only else ""
    pairs: list[tuple[str, str]] = [("role", identity.role)]
    pairs += [*request_settings(identity, ctx), ("statement_timeout", str(int(statement_timeout_ms)))]
    sets = ", ".join(f"set_config({_literal(name)}, {_literal(value)}, true)" for name, value in pairs)
    return f"BEGIN ISOLATION LEVEL READ COMMITTED{mode}; SELECT {sets}"


def request_settings(identity: Identity, ctx: RequestContext) -> list[tuple[str, str]]:
    """The request's transaction-local settings besides the role: (name, value), in setting order.
    Both request shapes set exactly these (``setup_sql`` and ``Executor.run``)."""
    pairs = [("request.jwt.claims", orjson.dumps(dict(identity.claims)).decode()),
             ("request.method", ctx.method), ("request.path", ctx.path)]
    if ctx.headers is not None:
        pairs.append(("request.headers", ctx.headers))
    if ctx.search_path is not None:
        pairs.append(("search_path", ctx.search_path))
    if ctx.timezone is not None:  # PostgreSQL validates the name (22023 for an unknown zone)
        pairs.append(("timezone", ctx.timezone))
    return pairs


def _check_role(identity: Identity) -> None:
    if identity.role not in ROLES:  # the role reaches SQL as a value: only the known ones pass
        raise errors.GatewayError(401, "AUTH_UNAUTHORIZED", "Invalid user role claim")


async def _release_reset(conn: asyncpg.Connection) -> None:
    """Pool release hook: roll back a transaction left open (after an error), nothing otherwise."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(dsn: str, settings: Settings, *, min_size: int | None = None,
                      max_size: int | None = None) -> asyncpg.Pool:
    """A bounded pool whose connections never carry per-request state between requests."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min if min_size is None else min_size,
        max_size=settings.pool_max if max_size is None else max_size,
        max_inactive_connection_lifetime=300,
        statement_cache_size=512,
        reset=_release_reset,
        connection_class=GatewayConnection,
        # statement_timeout here as well as in each transaction's setup: a one-round-trip request
        # (``Executor.run``) starts its statement before it can set anything
        server_settings={"application_name": "gateway", "timezone": "UTC",
                         "statement_timeout": str(int(settings.statement_timeout_ms))},
    )
    assert pool is not None
    return pool


def translate(exc: BaseException, identity: Identity | None,
              rules: tuple[SqlstateRule, ...] = errors.SQLSTATE_RULES) -> GatewayError:
    """Every driver or pool exception -> GatewayError. The one place this happens."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = getattr(exc, "sqlstate", None) or "XX000"
        message = getattr(exc, "message", None) or str(exc)
        if sqlstate == "22023" and "role" in message and "does not exist" in message:
            return GatewayError(401, "AUTH_UNAUTHORIZED", message, code=sqlstate)
        if sqlstate in ("08006", "08003", "57P01", "57P02", "57P03"):
            return errors.unavailable("The database is unavailable; retry shortly")
        return errors.from_sqlstate(sqlstate, message, getattr(exc, "detail", None),
                                    getattr(exc, "hint", None),
                                    anonymous=identity.anonymous if identity else False, rules=rules)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return errors.unavailable("No database connection available; retry shortly")
    if isinstance(exc, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.InternalClientError
                  | ConnectionError | OSError):
        return errors.unavailable("The database is unavailable; retry shortly")
    log.exception("unexpected executor error", exc_info=exc)
    return errors.internal()


class Executor:
    """Runs statements as a caller, one transaction per request."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, read_pool: asyncpg.Pool | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.read_pool = read_pool

    @contextlib.asynccontextmanager
    async def _connection(self, read_only: bool, close: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for the block; with ``close``, closed rather than reused after it."""
        pool = self.read_pool if (read_only and self.read_pool is not None) else self.pool
        try:
            conn = await pool.acquire(timeout=self.settings.pool_timeout)
        except Exception as exc:  # timeout, connection refused, ...
            raise translate(exc, None) from exc
        try:
            yield conn
        finally:
            try:
                if close:
                    conn.terminate()  # released closed: the pool connects a new one when needed
                await pool.release(conn)
            except Exception:  # a broken connection is dropped by the pool; nothing to tell the client
                log.debug("release failed", exc_info=True)

    @contextlib.asynccontextmanager
    async def transaction(self, identity: Identity, ctx: RequestContext,
                          rules: tuple[SqlstateRule, ...] = errors.SQLSTATE_RULES,
                          ) -> AsyncIterator[Transaction]:
        """A transaction running as ``identity``'s role; commits on normal exit, rolls back on error.

        Call ``tx.rollback_on_exit()`` to discard the work while still returning normally
        (single-object failures, ``tx=rollback``).

        A transaction given rules of its own runs SQL a caller wrote (raw SQL, migrations,
        imports: ``rawsql.USER_SQL_RULES``). Its connection is closed afterwards instead of going
        back to the pool: dynamic SQL out of the guard's sight could leave session state behind
        (a prepared statement under one of ``gateway_run``'s names, a session setting), and the
        next caller on that connection must not meet it.
        """
        async with self._connection(ctx.read_only, close=rules is not errors.SQLSTATE_RULES) as conn:
            tx = Transaction(conn, identity, rules, ctx.search_path)
            try:
                await conn.execute(setup_sql(identity, ctx, self.settings.statement_timeout_ms))
            except Exception as exc:
                await _safe_rollback(conn)
                raise translate(exc, identity, rules) from exc
            try:
                yield tx
            except BaseException as exc:
                await _safe_rollback(conn)
                if isinstance(exc, Exception):
                    raise translate(exc, identity, rules) from exc
                raise
            try:
                await conn.execute("ROLLBACK" if tx.discard else "COMMIT")
            except Exception as exc:
                await _safe_rollback(conn)
                raise translate(exc, identity, rules) from exc

    async def run(self, identity: Identity, ctx: RequestContext, sql: str,
                  params: Sequence[str | None] | str) -> asyncpg.Record | None:
        """Run one statement as ``identity`` in ONE round trip: ``system.gateway_run`` sets the
        transaction-local role and request settings, then runs ``sql`` (which names its values
        ``$1[1]``, ``$1[2]``, ...) with ``params`` bound (a list of texts, or already their array
        literal). The statement's implicit transaction is the request's, so it is atomic; use
        ``transaction`` when the result decides a rollback."""
        _check_role(identity)
        settings = array_literal([item for pair in request_settings(identity, ctx) for item in pair])
        values = params if isinstance(params, str) else array_literal(params)
        name = statement_name(sql)
        # acquired and released here rather than through ``_connection``: the busiest path skips
        # the async context manager's own cost
        pool = self.read_pool if (ctx.read_only and self.read_pool is not None) else self.pool
        try:
            conn = await pool.acquire(timeout=self.settings.pool_timeout)
        except Exception as exc:  # timeout, connection refused, ...
            raise translate(exc, None) from exc
        try:
            return await self._run_prepared(conn, identity, ctx, settings, sql, values, name)
        finally:
            try:
                await pool.release(conn)
            except Exception:  # a broken connection is dropped by the pool; nothing to tell the client
                log.debug("release failed", exc_info=True)

    @staticmethod
    async def _run_prepared(conn: Any, identity: Identity, ctx: RequestContext, settings: str, sql: str,
                            values: str, name: str) -> asyncpg.Record | None:
        """``system.gateway_run`` on ``conn``, sending the SQL text only when ``conn`` has not prepared it."""
        prepared: collections.OrderedDict[str, None] = conn.prepared
        known = name in prepared
        drop: list[str] | None = None
        if known:
            prepared.move_to_end(name)
        elif len(prepared) >= PREPARED_PER_CONNECTION:
            drop = [prepared.popitem(last=False)[0] for _ in range(len(prepared) - PREPARED_PER_CONNECTION + 1)]
        try:
            try:
                row = await conn.fetchrow(RUN_SQL, identity.role, settings, ctx.read_only,
                                          None if known else sql, values, name, drop)
            except asyncpg.PostgresError as exc:
                if not (known and _statement_missing(exc)):
                    raise
                # deallocated behind the gateway's back (DEALLOCATE ALL in a function): prepare again
                prepared.clear()
                row = await conn.fetchrow(RUN_SQL, identity.role, settings, ctx.read_only, sql, values, name, None)
        except Exception as exc:
            raise translate(exc, identity) from exc
        prepared[name] = None
        return row


def _statement_missing(exc: asyncpg.PostgresError) -> bool:
    """Whether ``exc`` says the prepared statement ``gateway_run`` was asked to execute is gone.
    PL/pgSQL reports it as a statement that returns no rows (42601): the missing statement has no
    result shape when the EXECUTE is planned."""
    return exc.sqlstate == "26000" or (exc.sqlstate == "42601" and "does not return tuples" in str(exc))


class Transaction:
    """A connection inside ``Executor.transaction``; errors come out as GatewayError."""

    def __init__(self, conn: asyncpg.Connection, identity: Identity,
                 rules: tuple[SqlstateRule, ...], search_path: str | None = None) -> None:
        self.conn = conn
        self.identity = identity
        self.rules = rules
        self.search_path = search_path  # what the transaction's setup set (None: the default)
        self.discard = False

    def rollback_on_exit(self) -> None:
        self.discard = True

    async def fetchrow(self, stmt: Statement) -> asyncpg.Record | None:
        try:
            return await self.conn.fetchrow(stmt.sql, *stmt.params)
        except Exception as exc:
            raise translate(exc, self.identity, self.rules) from exc

    async def fetch(self, stmt: Statement) -> Sequence[asyncpg.Record]:
        try:
            return await self.conn.fetch(stmt.sql, *stmt.params)
        except Exception as exc:
            raise translate(exc, self.identity, self.rules) from exc

    async def execute(self, sql: str, *params: Any) -> str:
        try:
            return await self.conn.execute(sql, *params)
        except Exception as exc:
            raise translate(exc, self.identity, self.rules) from exc


async def _safe_rollback(conn: asyncpg.Connection) -> None:
    with contextlib.suppress(Exception):
        if not conn.is_closed() and conn.is_in_transaction():
            await conn.execute("ROLLBACK")
