"""The pipeline, written once, in order: request model -> plan -> SQL -> executor -> Result.

In:  a ``request.Request`` from either front end, the caller's ``Identity`` and
     the request context (method, path, read-only).
Out: a ``Result``: the JSON body text PostgreSQL built, the total and the row
     counts the front ends turn into status codes and headers.

Both front ends call ``run`` (one transaction per request: REST, and each root field of a
GraphQL query) or ``run_in`` (inside a transaction the caller holds, as a GraphQL mutation
does for all of its fields).

A request whose result cannot decide a rollback runs in one round trip
(``Executor.run``), reads included, their estimated totals too (the statement takes the
planner's estimate itself); the others run in a transaction: the one statement, then the
checks that must roll the work back (single object: exactly one row; ``max-affected``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from . import errors, plan, sql
from . import request as rq
from .catalog import Catalog
from .execute import RequestContext, Statement, Transaction
from .identity import Identity
from .pgtext import array_literal
from .settings import Settings

if TYPE_CHECKING:
    from .state import Gateway


@dataclass(frozen=True)
class Result:
    body: str | None  # the response JSON text built by PostgreSQL (array; object when single); None: no body
    total: int | None  # total matching rows (X-Total-Count), when known
    page_rows: int  # rows in this page, or rows written
    offset: int  # first row's position (Content-Range)
    inserted: int | None = None  # upserts: rows that were inserted rather than updated
    kind: Literal["rows", "value", "void"] = "rows"  # RPC: a row set, one JSON value/object, or nothing
    estimated: bool = False  # ``total`` is the planner's estimate, not a count (X-Total-Count-Estimated)


async def run(gw: Gateway, identity: Identity, req: rq.Request, ctx: RequestContext,
              catalog: Catalog | None = None) -> Result:
    """Plan and run ``req`` in its own transaction as ``identity``, against ``catalog`` (default: the
    current one; GraphQL passes the snapshot its schema was built from)."""
    catalog = catalog or gw.catalogs.get()
    prepared = prepare(req, catalog, gw.settings)  # planning errors never take a connection
    planned = prepared.planned
    schema = _schema(planned.shape)
    path = search_path(schema)
    if path != ctx.search_path:  # set in the transaction's setup round trip, not a statement of its own
        ctx = dataclasses.replace(ctx, search_path=path)
    try:  # ``advised``, written out: this is the busiest path, and a generator-based context costs
        # system.gateway_run sets only the request.* settings and search_path: a time zone needs the setup
        if ctx.timezone is None and one_round_trip(req, planned.shape):
            run_sql, values = prepared.for_run
            return _result(await gw.executor.run(identity, ctx, run_sql, values), planned, req)
        async with gw.executor.transaction(identity, ctx) as tx:
            return await _execute(tx, planned, prepared.statement, req)
    except errors.GatewayError as err:
        raise errors.grant_advice(err, identity.role, PRIVILEGES[type(req)], schema) from None


# the table privilege each kind of request needs (a Call's function needs EXECUTE: grant_advice)
PRIVILEGES: dict[type, str] = {rq.Read: "SELECT", rq.Insert: "INSERT", rq.Update: "UPDATE", rq.Delete: "DELETE",
                               rq.Call: "EXECUTE"}


@contextlib.contextmanager
def advised(role: str, req: rq.Request, schema: str) -> Iterator[None]:
    """A refusal for a missing privilege raised inside comes out naming the GRANT that would open it."""
    try:
        yield
    except errors.GatewayError as err:
        raise errors.grant_advice(err, role, PRIVILEGES[type(req)], schema) from None


async def explain(gw: Gateway, identity: Identity, req: rq.Request, ctx: RequestContext, fmt: str,
                  options: tuple[str, ...]) -> str:
    """EXPLAIN of the statement ``req`` would run, as ``identity``; always rolled back (ANALYZE runs it).
    Out: the JSON document (``fmt`` "json") or the plan's text lines."""
    catalog = gw.catalogs.get()
    planned = prepare(req, catalog, gw.settings).planned
    stmt = sql.plan_statement(planned, fmt, options)
    schema = _schema(planned.shape)
    with advised(identity.role, req, schema):
        async with gw.executor.transaction(identity, dataclasses.replace(ctx, search_path=search_path(schema))) as tx:
            tx.rollback_on_exit()
            rows = await tx.fetch(stmt)
    if fmt == "json":
        doc = rows[0][0]
        return doc if isinstance(doc, str) else orjson.dumps(doc).decode()
    return "\n".join(str(r[0]) for r in rows)


async def run_in(tx: Transaction, catalog: Catalog, settings: Settings, req: rq.Request) -> Result:
    """Plan and run ``req`` inside a transaction the caller holds."""
    prepared = prepare(req, catalog, settings)
    with advised(tx.identity.role, req, _schema(prepared.planned.shape)):
        return await _execute(tx, prepared.planned, prepared.statement, req)


MEMO_SIZE = 4096  # reads remembered per catalog snapshot


class Prepared:
    """A plan and, built on first use and then kept, the SQL of whichever request shape runs it."""

    def __init__(self, planned: plan.Planned) -> None:
        self.planned = planned

    @functools.cached_property
    def statement(self) -> Statement:
        """For a transaction: ``$n`` placeholders and the values in their order."""
        return sql.statement(self.planned)

    @functools.cached_property
    def for_run(self) -> tuple[str, str]:
        """For ``Executor.run``: the ``$1[n]`` form and the values' array literal (every value as text)."""
        return sql.compile_for_run(self.planned.shape), array_literal(sql.run_params(self.planned))


def prepare(req: rq.Request, catalog: Catalog, settings: Settings) -> Prepared:
    """``req`` planned. A read (hashable, values included) is planned once per catalog snapshot,
    SQL included: the same read against the same catalog always plans the same."""
    if isinstance(req, rq.Read):
        hit = catalog.memo.get(req)
        if hit is not None:
            return hit
    prepared = Prepared(plan.plan(req, catalog, settings))
    if isinstance(req, rq.Read):
        if len(catalog.memo) >= MEMO_SIZE:
            catalog.memo.clear()
        catalog.memo[req] = prepared
    return prepared


# PostgREST puts the request's schema first on the search path (then public), so function
# bodies and triggers that name objects without a schema find the ones beside them
SEARCH_PATH = "SELECT set_config('search_path', $1, true)"


def search_path(schema: str) -> str | None:
    """The search_path a request in ``schema`` needs; None when the database default (public) serves."""
    if schema == "public":
        return None
    return '"' + schema.replace('"', '""') + '", public'


def _schema(shape: plan.Shape) -> str:
    return shape.rel.schema if isinstance(shape, plan.ReadPlan) else shape.schema


async def _execute(tx: Transaction, planned: plan.Planned, stmt: Statement, req: rq.Request) -> Result:
    path = search_path(_schema(planned.shape))
    if path != tx.search_path:  # a transaction opened for another schema (GraphQL over several)
        await tx.execute(SEARCH_PATH, path or "public")
        tx.search_path = path
    result = _result(await tx.fetchrow(stmt), planned, req)  # raising here rolls the transaction back
    if getattr(req, "rollback", False):
        tx.rollback_on_exit()
    return result


def one_round_trip(req: rq.Request, shape: plan.Shape) -> bool:
    """Whether ``req`` can run as one statement in its own implicit transaction: nothing decided
    after the statement may have to roll it back. Reads always qualify, even when single: a 406
    after a read has nothing to undo."""
    if isinstance(shape, plan.ReadPlan):
        return True
    return not (getattr(req, "single", False) or getattr(req, "rollback", False)
                or getattr(req, "max_affected", None) is not None)


def _result(row: Any, planned: plan.Planned, req: rq.Request) -> Result:
    """The statement's one row as a Result, after the checks that refuse it (406, max-affected)."""
    assert row is not None  # the statement is an aggregate: always one row
    total, page_rows, body, inserted = row["total"], int(row["page_rows"]), row["body"], row["inserted"]
    if getattr(req, "single", False) and page_rows != 1:
        # raising inside the transaction rolls it back: a PATCH matching 3 rows changes nothing
        raise errors.postgrest(406, "PGRST116", "Cannot coerce the result to a single JSON object",
                               details=f"The result contains {page_rows} rows")
    max_affected = getattr(req, "max_affected", None)
    if max_affected is not None and page_rows > max_affected:
        raise errors.invalid_query("Query result exceeds max-affected preference constraint",
                                   code="PGRST124", details=f"The query affects {page_rows} rows")
    offset = _offset(planned)
    total, estimated = _total(total, page_rows, offset, req)
    return Result(body, total, page_rows, offset, None if inserted is None else int(inserted),
                  _kind(planned.shape), estimated)


def _total(total: int | None, page_rows: int, offset: int, req: rq.Request) -> tuple[int | None, bool]:
    """The statement's total as (total, estimated): a negative total is the planner's estimate
    (``sql.expr.total_expr``). Without ``Prefer: count`` an estimate never falls below the rows
    the page itself proves exist; an explicit count=planned/estimated answers the estimate as is,
    as PostgREST does."""
    if total is None or total >= 0:
        return total, False
    estimate = -int(total)
    if getattr(req, "count", None) is None:
        estimate = max(estimate, offset + page_rows)
    return estimate, True


def _kind(shape: plan.Shape) -> Literal["rows", "value", "void"]:
    if not isinstance(shape, plan.CallPlan) or shape.kind == "setof_row":
        return "rows"
    return "void" if shape.kind == "void" else "value"


def _offset(planned: plan.Planned) -> int:
    shape = planned.shape
    if isinstance(shape, plan.ReadPlan | plan.CallPlan) and shape.offset_value is not None:
        return int(planned.params[shape.offset_value.index] or 0)
    return 0
