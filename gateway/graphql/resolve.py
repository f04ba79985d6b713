"""Running a GraphQL operation: one statement per root field; one transaction for a mutation.

In:  a validated operation, the caller's ``Identity`` and the ``CatalogSchema`` it was
     validated against.
Out: the root fields' values (``resolve_root``, called by graphql-core), or for a
     query PostgreSQL's JSON spliced straight into the response (``fast_response``).

``Operation`` is graphql-core's context value. A query runs each statement in one round trip
(``pipeline.run``: the role, the settings and the prepared statement together, read-only), as
REST reads do: under READ COMMITTED a transaction around several reads would not give them one
snapshot anyway, and it would cost a BEGIN and a COMMIT round trip. A mutation opens the
caller's transaction on its first statement, and the whole operation commits only when every
field succeeded. Statements are serialised with a lock (graphql-core resolves a query's root
fields concurrently), and after the first failure further statements are refused with
``Skipped`` (in a mutation PostgreSQL has aborted the transaction; those errors are dropped
from the response). An introspection-only query never takes a connection.

Fast path: for a query whose root fields are all table reads and whose selection
PostgreSQL's JSON represents exactly (no ``__typename`` below the root, no renamed
enum labels), the bodies are spliced into ``{"data": {...}}`` without decoding
them; on any error the operation runs again through graphql-core, which builds
the error response.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from decimal import Decimal
from typing import Any

import orjson
from graphql import GraphQLSchema, OperationDefinitionNode
from graphql.execution.values import get_variable_values

from ..catalog import Catalog
from ..errors import GatewayError
from ..execute import RequestContext, Transaction
from ..identity import Identity
from ..request import Request
from ..settings import Settings
from . import aggregate, connection, nested
from .limits import check_cost
from .translate import GATEWAY, RootField, Walk, operation_steps, root_request


class Skipped(Exception):
    """A statement not run because an earlier one in the operation failed."""


class Operation:
    """One GraphQL operation's transaction, shared by its root fields."""

    def __init__(self, gw: Any, identity: Identity, catalog: Catalog, settings: Settings, *,
                 read_only: bool, method: str = "POST") -> None:
        self.gw = gw
        self.identity = identity
        self.catalog = catalog
        self.settings = settings
        self.read_only = read_only
        self.method = method
        self.cost = 0  # rows asked for so far, summed over root fields
        self.failed = False
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()
        self._tx: Transaction | None = None

    def charge(self, cost: int) -> None:
        self.cost += cost
        check_cost(self.cost, self.settings)

    async def run(self, request: Request) -> Any:
        """Plan and run ``request`` in the operation's transaction (opened on first use)."""
        from .. import pipeline  # the pipeline imports the app's modules; keep this import lazy

        async with self._lock:
            if self.failed:
                raise Skipped()
            try:
                if self.read_only:  # a query: each statement in its own implicit transaction
                    ctx = RequestContext(self.method, "/graphql", read_only=True)
                    return await pipeline.run(self.gw, self.identity, request, ctx, self.catalog)
                if self._tx is None:
                    ctx = RequestContext(self.method, "/graphql", read_only=self.read_only)
                    self._tx = await self._stack.enter_async_context(
                        self.gw.executor.transaction(self.identity, ctx))
                tx: Any = self._tx
                return await pipeline.run_in(tx, self.catalog, self.settings, request)
            except BaseException:
                self.failed = True
                raise

    async def finish(self, commit: bool) -> None:
        """Commit (or roll back) and release the connection; COMMIT failures surface here."""
        if self._tx is not None and (not commit or self.failed):
            self._tx.rollback_on_exit()
        await self._stack.aclose()


# --------------------------------------------------------------------------- graphql-core resolvers


def _decode_call(body: str | None, root: RootField) -> Any:
    if body is None:
        return None
    fn = root.function
    if fn is not None and fn.return_kind == "scalar" and fn.return_category in ("numeric", "bigint"):
        return json.loads(body, parse_float=Decimal)  # keep every digit for Decimal/BigInt output
    return orjson.loads(body)


def _first(body: str | None) -> Any:
    rows = orjson.loads(body) if body else []
    return rows[0] if rows else None


# kind -> how a pipeline Result becomes the field's value
OUTPUT: dict[str, Any] = {
    "list": lambda result, root: orjson.loads(result.body),
    "insert": lambda result, root: orjson.loads(result.body),
    "update": lambda result, root: orjson.loads(result.body),
    "delete": lambda result, root: orjson.loads(result.body),
    "by_pk": lambda result, root: _first(result.body),
    "insert_one": lambda result, root: _first(result.body),
    "update_by_pk": lambda result, root: _first(result.body),
    "delete_by_pk": lambda result, root: _first(result.body),
    "count": lambda result, root: result.total,
    "call": lambda result, root: _decode_call(result.body, root),
}


async def resolve_root(_source: Any, info: Any, **args: Any) -> Any:
    """Every generated Query/Mutation field: translate, run in the operation's transaction, shape."""
    op: Operation = info.context
    fdef = info.parent_type.fields[info.field_name]
    root: RootField = fdef.extensions[GATEWAY]
    walk = Walk(info.variable_values, info.fragments, op.settings, admin=op.identity.is_admin)
    if root.kind in ("aggregate", "groups"):  # one statement; its flat rows nested here
        summary = aggregate.read(root, fdef, info.field_nodes, args, walk)
        op.charge(walk.cost)
        return aggregate.value((await op.run(summary)).body, root.kind)
    if root.kind == "connection":  # a page and, when totalCount is selected, its count
        page = connection.plan(root, fdef, info.field_nodes, args, walk)
        op.charge(walk.cost)
        rows = await op.run(page.read)
        total = (await op.run(page.count)).total if page.count is not None else None
        return connection.value(rows.body, page, total)
    if root.kind in ("insert", "insert_one") and root.shape is not None and nested.has_nested(
            root.shape, [args["object"]] if root.kind == "insert_one" else args.get("objects") or ()):
        inserted = await nested.insert(op.run, root, fdef, info.field_nodes, args, walk)
        op.charge(walk.cost)
        return inserted if root.kind == "insert" else (inserted[0] if inserted else None)
    request = root_request(root, fdef, info.field_nodes, args, walk)
    op.charge(walk.cost)
    try:
        result = await op.run(request)
    except GatewayError as err:
        if err.code == "PGRST124":  # the pipeline's max-affected check, which atMost drives here
            bound = getattr(request, "max_affected", None)
            raise dataclasses.replace(err, message=f"{info.field_name} would change more rows than atMost "
                                                   f"allows ({bound}); nothing was changed") from None
        raise
    return OUTPUT[root.kind](result, root)


# --------------------------------------------------------------------------- fast path

FAST_KINDS = ("list", "by_pk", "count", "typename")


def _fast_part(kind: str, result: Any) -> bytes:
    if kind == "count":
        return str(result.total).encode()
    body = str(result.body).strip()
    if kind == "by_pk":  # at most one row: "[{...}]" -> "{...}", "[]" -> null, the text untouched
        return body[1:-1].strip().encode() or b"null"
    return body.encode()


STEPS_MEMO_SIZE = 1024  # translated operations remembered per schema


async def fast_response(op: Operation, schema: GraphQLSchema, operation: OperationDefinitionNode,
                        fragments: dict[str, Any], raw_variables: dict[str, Any] | None,
                        memo: dict[Any, Any] | None = None) -> bytes | None:
    """The response body built from PostgreSQL's JSON, or None when the normal path must answer.

    ``memo`` (one per schema snapshot) keeps each operation's translation per variable values, so
    a repeated query goes straight to the statements, as a repeated REST read does."""
    planned = _translated(op, schema, operation, fragments, raw_variables, memo)
    if planned is None:
        return None
    steps, cost = planned
    try:
        op.charge(cost)
        parts = [orjson.dumps(s.key) + b":" + (b'"Query"' if s.request is None else
                                               _fast_part(s.kind, await op.run(s.request))) for s in steps]
    except GatewayError:
        return None
    return b'{"data":{' + b",".join(parts) + b"}}"


def _translated(op: Operation, schema: GraphQLSchema, operation: OperationDefinitionNode,
                fragments: dict[str, Any], raw_variables: dict[str, Any] | None,
                memo: dict[Any, Any] | None) -> tuple[list[Any], int] | None:
    """The operation's root steps and row cost, or None when the fast path does not apply."""
    try:
        variables = orjson.dumps(raw_variables, option=orjson.OPT_SORT_KEYS) if raw_variables else b""
    except TypeError:  # not JSON-encodable after all: no memo
        variables, memo = b"", None
    key = (id(operation), variables, op.identity.is_admin)
    hit = memo.get(key) if memo is not None else None
    if hit is not None and hit[0] is operation:  # the id is only trusted for the node it was taken of
        return hit[1]
    coerced = get_variable_values(schema, operation.variable_definitions or (), raw_variables or {})
    if isinstance(coerced, list):  # variable errors: graphql-core reports them
        return None
    walk = Walk(coerced, fragments, op.settings)
    try:
        steps = operation_steps(schema, operation, walk, FAST_KINDS)
    except GatewayError:
        return None
    if steps is None or not walk.exact:
        return None
    if memo is not None:
        if len(memo) >= STEPS_MEMO_SIZE:
            memo.clear()
        memo[key] = (operation, (steps, walk.cost))
    return steps, walk.cost
