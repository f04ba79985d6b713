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
from collections.abc import AsyncIterator
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

from .feed import RESYNC, Subscription, feed_of, publish
from .resolve import OUTPUT
from .scalars import JSONScalar
from .streams import spec_of, streams_of
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


async def _open(session: Any, tables: set[tuple[str, str]]) -> Subscription:
    feed = feed_of(session.gw)
    await feed.start()
    await publish(session.gw, tables)
    return feed.subscribe(frozenset(tables), on_overflow=getattr(session, "slow_consumer", None))


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


async def changes(_root: Any, info: Any, **args: Any) -> AsyncIterator[dict[str, Any]]:
    """The change stream as graphql-core's source stream (the path used when ``streams.open_fast``
    does not apply, e.g. with the user's Strawberry extensions): the events of the subscriber's
    group (``streams.py``), executed per subscriber."""
    session = info.context
    spec = spec_of(info.schema, info.field_name, info.field_nodes, args, info.variable_values, info.fragments,
                   session.settings)
    member = await streams_of(session.gw).join(session, spec, getattr(session, "slow_consumer", None))
    try:
        while True:
            yield (await member.next()).values
    finally:
        member.close()
