"""Cursor pagination: ``<t>_connection(filter, orderBy, first, after, last, before)``.

In:  the connection field's kind (``RootField``), its selection and coerced arguments, and the
     operation's ``Walk`` (translate.py).
Out: ``plan`` -> a ``Page``: the ``Read`` of one page (plus the count ``Read`` when ``totalCount``
     is selected); ``value`` turns the page's rows into the ``<T>Connection`` value
     ``{nodes, edges {cursor node}, pageInfo, totalCount}``.

Keyset, not offset, so pages stay stable while rows are inserted or deleted elsewhere. The order
is ``orderBy`` followed by the primary key (so it is total); a cursor holds a signature of that
order and the row's values of its columns, as PostgreSQL's text renders them, and ``after`` becomes
"strictly beyond these values in this order" — the usual expansion ``a > x OR (a = x AND b > y)
...``, with NULLs placed where ``NULLS FIRST/LAST`` puts them. ``last``/``before`` read the reversed
order and turn the page around. One more row than asked for tells whether another page exists.
A cursor made under another order is refused (400), and cursors are opaque: base64 of JSON.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from graphql import FieldNode, GraphQLField, GraphQLObjectType, get_named_type

from .. import errors
from ..request import BoolExpr, Condition, FieldRef, Filter, Order, Read, SelectColumn, SelectEmbed, SelectItem
from .translate import RootField, TableShape, Walk, collect, conditions, orders, page_limit, select

CURSOR_KEY = "__cursor_{}"  # hidden output keys holding a row's order values (GraphQL names never start __c)


@dataclass(frozen=True)
class Key:
    """One column of the total order, with where its NULLs go."""

    column: str
    desc: bool
    nulls_last: bool

    def reversed(self) -> Key:
        return Key(self.column, not self.desc, not self.nulls_last)

    def order(self) -> Order:
        return Order(FieldRef(self.column), "desc" if self.desc else "asc", "last" if self.nulls_last else "first")


@dataclass(frozen=True)
class Page:
    """One page's reads and what shaping its rows needs."""

    read: Read  # the page, one row more than asked for
    count: Read | None  # the total over the filter alone, when totalCount is selected
    size: int  # rows asked for (first or last)
    backward: bool  # ``last``: the rows come in reversed order
    signature: str  # the order's signature, written into every cursor
    keys: int  # how many hidden order columns each row carries
    from_cursor: bool  # an ``after`` (forward) or ``before`` (backward) cursor was given


def _signature(keys: Sequence[Key]) -> str:
    text = orjson.dumps([(k.column, k.desc, k.nulls_last) for k in keys])
    return hashlib.sha256(text).hexdigest()[:16]


def encode(signature: str, values: Sequence[str | None]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"o": signature, "v": list(values)})).decode()


def decode(cursor: str, signature: str, keys: int) -> list[str | None]:
    """A cursor's values; 400 when it is malformed or was made under another order."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        values = data["v"]
        ok = data["o"] == signature and isinstance(values, list) and len(values) == keys and all(
            v is None or isinstance(v, str) for v in values)
    except (binascii.Error, ValueError, TypeError, KeyError, orjson.JSONDecodeError):
        ok = False
    if not ok:
        raise errors.invalid_query("The cursor is not one this field gave out for this orderBy",
                                   hint="Use a cursor from a page read with the same orderBy, or start over")
    return list(values)


def _beyond(key: Key, value: str | None) -> Condition | None:
    """Rows strictly after ``value`` in ``key``'s column; None when none can be (NULLs come last)."""
    if value is None:
        return None if key.nulls_last else Filter(FieldRef(key.column), "is", "not_null")
    past = Filter(FieldRef(key.column), "lt" if key.desc else "gt", value)
    return BoolExpr("or", (past, Filter(FieldRef(key.column), "is", "null"))) if key.nulls_last else past


def _equal(key: Key, value: str | None) -> Condition:
    return Filter(FieldRef(key.column), "is", "null") if value is None else Filter(FieldRef(key.column), "eq", value)


def after(keys: Sequence[Key], values: Sequence[str | None], never_null: str) -> Condition:
    """Rows strictly after the row whose order values are ``values`` (OR of per-column cases);
    ``never_null`` names a column that is never NULL (a primary key's), for "no row at all"."""
    branches: list[Condition] = []
    for i, key in enumerate(keys):
        beyond = _beyond(key, values[i])
        if beyond is not None:
            ties = [_equal(k, v) for k, v in zip(keys[:i], values[:i], strict=True)]
            branches.append(BoolExpr("and", (*ties, beyond)) if ties else beyond)
    if not branches:  # the very last possible row: nothing comes after it
        return Filter(FieldRef(never_null), "is", "null")
    return branches[0] if len(branches) == 1 else BoolExpr("or", tuple(branches))


def _keys(shape: TableShape, order: Sequence[Order]) -> list[Key]:
    keys: list[Key] = []
    for o in order:
        if o.relation is not None:
            raise errors.invalid_query("A connection orders by the table's own columns only (cursors hold them)")
        desc = o.direction == "desc"
        keys.append(Key(o.field.name, desc, o.nulls == "last" if o.nulls else not desc))
    named = {k.column for k in keys}
    keys += [Key(c, False, True) for c in shape.table.primary_key if c not in named]
    return keys


def _rows_select(shape: TableShape, obj: GraphQLObjectType, nodes: Sequence[FieldNode],
                 walk: Walk, rows: int) -> tuple[SelectItem, ...]:
    """The node selection: ``nodes { ... }`` and ``edges { node { ... } }`` merged by response key."""
    parts = collect((n.selection_set for n in nodes), walk)
    node_sets = list(parts.get("nodes", ()))
    for edge in parts.get("edges", ()):
        node_sets += collect((edge.selection_set,), walk).get("node", [])
    # graphql-core checks overlapping keys within one parent only: across nodes and edges.node the
    # same key could mean two things, which one row cannot hold
    merged: dict[str, SelectItem] = {}
    for group in node_sets:
        for item in select(shape, obj, [group], walk, rows):
            key = item.key if isinstance(item, SelectEmbed) else (
                item.alias or item.field.output_name if isinstance(item, SelectColumn) else "*")
            if merged.setdefault(key, item) != item:
                raise errors.invalid_query(f"'{key}' means different things in nodes and edges.node; "
                                           "alias one of them differently")
    return tuple(merged.values())


def plan(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
         walk: Walk) -> Page:
    """The page's reads for the connection field (see the module doc)."""
    assert root.shape is not None
    shape = root.shape
    first, last = args.get("first"), args.get("last")
    if first is not None and last is not None:
        raise errors.invalid_query("Give first or last, not both")
    backward = last is not None
    size = page_limit(last if backward else first, walk.settings)
    keys = _keys(shape, orders(args.get("orderBy"), shape))
    signature = _signature(keys)
    where = list(conditions(args.get("filter"), shape))
    pk = shape.table.primary_key[0]
    if args.get("after") is not None:
        where.append(after(keys, decode(args["after"], signature, len(keys)), pk))
    if args.get("before") is not None:
        where.append(after([k.reversed() for k in keys], decode(args["before"], signature, len(keys)), pk))
    read_keys = [k.reversed() for k in keys] if backward else keys
    connection = get_named_type(fdef.type)
    assert isinstance(connection, GraphQLObjectType)
    node_type = get_named_type(connection.fields["nodes"].type)
    assert isinstance(node_type, GraphQLObjectType)
    walk.cost += size
    hidden = tuple(SelectColumn(FieldRef(k.column), alias=CURSOR_KEY.format(i), cast="text")
                   for i, k in enumerate(keys))
    read = Read(shape.target, (*_rows_select(shape, node_type, nodes, walk, size), *hidden), where=tuple(where),
                order=tuple(k.order() for k in read_keys), limit=size + 1, want_total=False, default_limit=False)
    wants_total = any("totalCount" in collect((n.selection_set,), walk) for n in nodes)
    count = Read(shape.target, where=conditions(args.get("filter"), shape), limit=0, count="exact", head=True,
                 want_total=True) if wants_total else None
    cursor_given = args.get("before" if backward else "after") is not None
    return Page(read, count, size, backward, signature, len(keys), cursor_given)


def value(body: str | None, page: Page, total: int | None) -> dict[str, Any]:
    """The ``<T>Connection`` value for the page's rows."""
    rows: list[dict[str, Any]] = orjson.loads(body) if body else []
    more = len(rows) > page.size
    rows = rows[:page.size]
    if page.backward:
        rows.reverse()
    cursors = [encode(page.signature, [row.get(CURSOR_KEY.format(i)) for i in range(page.keys)]) for row in rows]
    return {
        "nodes": rows,
        "edges": [{"cursor": c, "node": row} for c, row in zip(cursors, rows, strict=True)],
        "pageInfo": {
            "hasNextPage": page.from_cursor if page.backward else more,
            "hasPreviousPage": more if page.backward else page.from_cursor,
            "startCursor": cursors[0] if cursors else None,
            "endCursor": cursors[-1] if cursors else None,
        },
        "totalCount": total,
    }
