"""Generated subscriptions: change streams and live queries over the change feed (``feed.py``).

In:  a generated ``GraphQLSchema`` (``add_subscriptions``), and at run time a ``ws.Session``
     (the subscriber: role and claims) as ``info.context``.
Out: the schema with a ``Subscription`` root:

    posts_changes(filter: PostsFilter): PostsChange!    type PostsChange { op: ChangeOp!  pk: JSON!  row: Posts }
    posts(...) / posts_by_pk(...) / posts_count(...)    live queries: the Query field's type and arguments

Change streams (tables with a primary key): every change committed after the subscription
started. An INSERT or UPDATE is re-read AS THE SUBSCRIBER with the subscription's filter and the
row's key before it is sent, so a subscriber never receives a row it could not SELECT or that
does not match; ``row`` is that read (the subscriber's selection). A DELETE carries only the key
(``row`` null), to every subscriber of the table (the filter cannot be judged on a deleted row);
a subscription starts only after a read as the subscriber succeeded, so only subscribers with
SELECT privilege get any.

Live queries: the result is sent at once, then the query re-runs (as the subscriber) after a
change of any table it reads, debounced by ``graphql_live_debounce_ms``, and is sent only when
it differs from the last one sent — except after the feed reconnected (changes may have been
missed), when it is sent again regardless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
from graphql import (
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)

from ..errors import GatewayError
from ..execute import RequestContext
from ..identity import ADMIN
from .feed import RESYNC, Change, Subscription, feed_of
from .resolve import OUTPUT
from .scalars import JSONScalar
from .translate import GATEWAY, RelationField, RootField, Walk, collect, root_request

log = logging.getLogger("gateway.graphql")

LIVE_KINDS = ("list", "by_pk", "count")
TRIGGER = "gateway_changes"
PUBLISH = "SELECT system.publish_changes(pg_catalog.to_regclass($1))"

CHANGE_OP = GraphQLEnumType("ChangeOp", {op: GraphQLEnumValue(op) for op in ("INSERT", "UPDATE", "DELETE")},
                            description="What happened to the row.")


def _event(event: Any, _info: Any, **_args: Any) -> Any:
    return event  # a subscription field's value is the event its generator yielded


def _by_name(source: dict[str, Any], info: Any) -> Any:
    return source[info.field_name]


def _by_key(source: dict[str, Any], info: Any) -> Any:
    return source.get(info.path.key)


def add_subscriptions(schema: GraphQLSchema) -> GraphQLSchema:
    """``schema`` with a Subscription root: a live twin of every read and a change stream per table."""
    query = schema.query_type
    assert query is not None
    fields: dict[str, GraphQLField] = {}
    for name, fdef in query.fields.items():
        root = fdef.extensions.get(GATEWAY)
        if not isinstance(root, RootField) or root.kind not in LIVE_KINDS:
            continue
        fields[name] = GraphQLField(fdef.type, fdef.args, _event, subscribe=live, description=fdef.description,
                                    extensions={GATEWAY: root})
        shape = root.shape
        table = shape.table if shape else None
        if root.kind != "list" or shape is None or table is None or not table.primary_key or table.kind != "table" \
                or not set(table.primary_key) <= {c.name for c in shape.columns.values()}:
            continue  # a change is announced by its key: the role must see every key column
        obj = get_named_type(fdef.type)
        change_name, field_name = f"{obj.name}Change", f"{name}_changes"
        if change_name in schema.type_map or field_name in query.fields:
            log.warning("no %s subscription: the name %s is taken", field_name, change_name)
            continue
        change = GraphQLObjectType(change_name, {
            "op": GraphQLField(GraphQLNonNull(CHANGE_OP), resolve=_by_name),
            "pk": GraphQLField(GraphQLNonNull(JSONScalar), resolve=_by_name, description="The row's primary key."),
            "row": GraphQLField(obj, resolve=_by_key,
                                description="The row as the subscriber reads it (null for DELETE)."),
        }, description=f"A committed change of {table.schema}.{table.name}.")
        fields[field_name] = GraphQLField(GraphQLNonNull(change), {"filter": fdef.args["filter"]}, _event,
                                          subscribe=changes, extensions={GATEWAY: root},
                                          description=f"Changes of {table.name} committed from now on.")
    if not fields:
        return schema
    roots = {schema.query_type, schema.mutation_type}
    return GraphQLSchema(schema.query_type, schema.mutation_type, GraphQLObjectType("Subscription", fields),
                         types=[t for t in schema.type_map.values() if t not in roots],
                         directives=schema.directives, extensions=schema.extensions)


# --------------------------------------------------------------------------- opening a subscription


async def _publish(session: Any, tables: Iterable[tuple[str, str]]) -> None:
    """Install the change trigger where the catalog shows none (as project_admin, never the caller)."""
    gw = session.gw
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


async def _open(session: Any, tables: set[tuple[str, str]]) -> Subscription:
    feed = feed_of(session.gw)
    await feed.start()
    await _publish(session, tables)
    return feed.subscribe(frozenset(tables))


def _read_tables(root: RootField, fdef: GraphQLField, nodes: Any, walk: Walk) -> set[tuple[str, str]]:
    """The tables a selection reads: the root's and every embedded relation's."""
    assert root.shape is not None
    tables = {root.shape.table.key}

    def visit(obj: Any, selection_sets: Any) -> None:
        if not isinstance(obj, GraphQLObjectType):
            return
        for group in collect(selection_sets, walk).values():
            field = obj.fields.get(group[0].name.value)
            kind = field.extensions.get(GATEWAY) if field else None
            if isinstance(kind, RelationField) and field is not None:
                tables.add(kind.target.table.key)
                visit(get_named_type(field.type), [n.selection_set for n in group])

    visit(get_named_type(fdef.type), [n.selection_set for n in nodes])
    return tables


# --------------------------------------------------------------------------- live queries


async def live(_root: Any, info: Any, **args: Any) -> AsyncIterator[Any]:
    session = info.context
    fdef = info.parent_type.fields[info.field_name]
    root: RootField = fdef.extensions[GATEWAY]
    debounce = session.settings.graphql_live_debounce_ms / 1000

    async def run() -> Any:
        walk = Walk(info.variable_values, info.fragments, session.settings)
        request = root_request(root, fdef, info.field_nodes, args, walk)
        session.charge(walk.cost)
        return OUTPUT[root.kind](await session.run(request), root)

    tables = _read_tables(root, fdef, info.field_nodes, Walk(info.variable_values, info.fragments, session.settings))
    first = await run()  # as the subscriber: a caller who may not read it gets the error, not a subscription
    sub = await _open(session, tables)
    try:
        last = orjson.dumps(first, default=str)
        yield first
        while True:
            resync = await sub.next() is RESYNC
            await asyncio.sleep(debounce)  # a burst of changes costs one re-run
            resync = any(c is RESYNC for c in sub.pending()) or resync
            value = await run()
            encoded = orjson.dumps(value, default=str)
            if resync or encoded != last:
                last = encoded
                yield value
    finally:
        sub.close()


# --------------------------------------------------------------------------- change streams


async def _shared(change: Change, session: Any, request: Any) -> Any:
    """``request`` run as the session's caller, once per change for every subscriber who would run the
    very same statement as the very same caller (same role and claims): 100 subscribers of one
    query and role cost one re-read per change, not 100."""
    identity = session.identity
    key = (identity.role, orjson.dumps(dict(identity.claims), option=orjson.OPT_SORT_KEYS), request)
    task = change.reads.get(key)
    if task is None:
        task = change.reads[key] = asyncio.ensure_future(session.run(request))
    return await asyncio.shield(task)


async def changes(_root: Any, info: Any, **args: Any) -> AsyncIterator[dict[str, Any]]:
    session = info.context
    root: RootField = info.parent_type.fields[info.field_name].extensions[GATEWAY]
    assert root.shape is not None
    shape = root.shape
    list_fdef = info.schema.query_type.fields[info.field_name[: -len("_changes")]]
    keys = {name: col.name for name, col in shape.columns.items() if col.name in shape.table.primary_key}
    walk = Walk(info.variable_values, info.fragments, session.settings)
    row_keys = {key: nodes for key, nodes in collect([n.selection_set for n in info.field_nodes], walk).items()
                if nodes[0].name.value == "row"}
    user_filter = args.get("filter")

    async def visible(change: Change) -> dict[str, Any] | None:
        """The changed row as the subscriber reads it, per ``row`` key; None: not visible."""
        match = {name: {"eq": change.pk.get(column)} for name, column in keys.items()}
        where = {"and": [user_filter, match]} if user_filter else match
        out: dict[str, Any] = {}
        for key, nodes in row_keys.items() or {None: []}.items():
            w = Walk(info.variable_values, info.fragments, session.settings)
            kind = RootField("list" if key else "count", shape)
            result = await _shared(change, session, root_request(kind, list_fdef, nodes, {"filter": where, "limit": 1},
                                                                 w))
            rows = orjson.loads(result.body) if key else [None] * (result.total or 0)
            if not rows:
                return None
            if key:
                out[key] = rows[0]
        return out

    # only a subscriber who can read the table gets a stream (DELETE keys included)
    probe = {next(iter(keys)): {"is": "null"}}
    await session.run(root_request(RootField("count", shape), list_fdef, [], {"filter": probe}, walk))
    sub = await _open(session, {shape.table.key})
    try:
        while True:
            change: Change = await sub.next()
            if change is RESYNC:
                continue
            event: dict[str, Any] = {"op": change.op, "pk": change.pk}
            if change.op == "DELETE":
                yield {**event, **dict.fromkeys(row_keys)}
                continue
            rows = await visible(change)
            if rows is not None:
                yield {**event, **rows}
    finally:
        sub.close()
