"""GraphQL aggregates on the shared planner: ``<t>_aggregate``, ``<t>_groups`` and ``<relation>_aggregate``.

In:  a table's shape (schema building), or an aggregate field's selection (translation).
Out: the object types ``<T>Aggregate`` (``count``, ``sum``/``avg`` over numeric columns,
     ``min``/``max`` over orderable ones), ``<T>Group`` (the same plus ``key``) and ``<T>GroupKey``;
     the select items that ask the planner for those aggregates — REST's ``views.sum()``,
     ``count()``, grouped by the plain columns beside them, one statement — and ``nest``, which
     turns the flat row PostgreSQL returns into the nested GraphQL value.

``posts_aggregate(filter: {...}) { count sum { views } max { created_at } }`` selects
``count()``, ``views.sum()`` and ``created_at.max()`` under the keys ``count``, ``sum\\x1fviews``
and ``max\\x1fcreated_at`` (response keys joined by a separator no GraphQL name contains), and
``nest`` splits them back. Sums and averages of integers and decimals come back as PostgreSQL's
text (BigInt/Decimal scalars), so no digit is lost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from graphql import (
    FieldNode,
    GraphQLField,
    GraphQLFloat,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    get_named_type,
)

from .. import errors
from ..catalog import Column, TypeCategory
from ..request import COUNT_ROWS, AggregateName, FieldRef, Order, Read, SelectColumn, SelectItem
from .scalars import OUTPUT_CAST, SCALARS, BigIntScalar, DecimalScalar
from .translate import RootField, TableShape, Walk, collect, conditions, page_limit

SEP = "\x1f"  # joins an aggregate's response key and its column's: never part of a GraphQL name
NUMERIC: frozenset[str] = frozenset({"int", "bigint", "float", "numeric"})
ORDERABLE: frozenset[str] = NUMERIC | {"text", "date", "time", "timestamp", "timestamptz"}
# (aggregate, column category) -> the result's category, where it differs from the column's
RESULT: dict[tuple[str, str], TypeCategory] = {
    ("sum", "int"): "bigint", ("sum", "bigint"): "numeric", ("avg", "int"): "numeric", ("avg", "bigint"): "numeric",
}
FUNCTIONS: tuple[AggregateName, ...] = ("sum", "avg", "min", "max")


def _columns(shape: TableShape, function: str) -> dict[str, Column]:
    wanted = NUMERIC if function in ("sum", "avg") else ORDERABLE
    return {n: c for n, c in shape.columns.items() if c.category in wanted and not c.is_array}


def _result_category(function: str, column: Column) -> TypeCategory:
    return RESULT.get((function, column.category), column.category)


def _scalar(category: TypeCategory) -> GraphQLOutputType:
    return {"bigint": BigIntScalar, "numeric": DecimalScalar, "float": GraphQLFloat}.get(
        category, SCALARS[category])


def object_types(type_name: str, shape: TableShape, key_resolver: Callable[..., Any],
                 key_type: GraphQLObjectType) -> tuple[GraphQLObjectType, GraphQLObjectType]:
    """``<T>Aggregate`` and ``<T>Group`` (the same fields plus ``key``), sharing the per-function types."""
    fields: dict[str, GraphQLField] = {"count": GraphQLField(GraphQLNonNull(GraphQLInt), resolve=key_resolver)}
    for function in FUNCTIONS:
        cols = _columns(shape, function)
        if cols:
            fields[function] = GraphQLField(GraphQLObjectType(
                f"{type_name}{function.capitalize()}Fields",
                {n: GraphQLField(_scalar(_result_category(function, c)), resolve=key_resolver)
                 for n, c in cols.items()}), resolve=key_resolver)
    group = {"key": GraphQLField(GraphQLNonNull(key_type), resolve=key_resolver), **fields}
    return GraphQLObjectType(f"{type_name}Aggregate", fields), GraphQLObjectType(f"{type_name}Group", group)


def select_items(shape: TableShape, obj: GraphQLObjectType, nodes: Sequence[FieldNode], walk: Walk,
                 ) -> tuple[SelectItem, ...]:
    """The aggregate select items for the selection of an ``<T>Aggregate``/``<T>Group`` field."""
    walk.exact = False  # the flat row is nested by ``nest`` before graphql-core sees it
    items: list[SelectItem] = []
    for key, fnodes in collect((n.selection_set for n in nodes), walk).items():
        name = fnodes[0].name.value
        if name == "count":
            items.append(SelectColumn(FieldRef(COUNT_ROWS), alias=key, aggregate="count"))
        elif name in FUNCTIONS:
            sub = get_named_type(obj.fields[name].type)
            assert isinstance(sub, GraphQLObjectType)
            for column_key, cnodes in collect((n.selection_set for n in fnodes), walk).items():
                column_name = cnodes[0].name.value
                if column_name == "__typename":
                    continue
                column = shape.columns[column_name]
                result = _result_category(name, column)
                items.append(SelectColumn(FieldRef(column.name), alias=f"{key}{SEP}{column_key}", aggregate=name,
                                          aggregate_cast=OUTPUT_CAST.get(result)))
        elif name == "key":
            for column_key, cnodes in collect((n.selection_set for n in fnodes), walk).items():
                column_name = cnodes[0].name.value
                if column_name != "__typename":
                    column = shape.columns[column_name]
                    items.append(SelectColumn(FieldRef(column.name), alias=f"{key}{SEP}{column_key}",
                                              cast=OUTPUT_CAST.get(column.category)))
    if not items:  # only __typename: one aggregate keeps the row
        items.append(SelectColumn(FieldRef(COUNT_ROWS), alias=f"{SEP}count", aggregate="count"))
    return tuple(items)


def nest(row: Mapping[str, Any]) -> dict[str, Any]:
    """``{"count": 3, "sum\\x1fviews": "12"}`` -> ``{"count": 3, "sum": {"views": "12"}}``."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        outer, sep, inner = key.partition(SEP)
        if sep:
            out.setdefault(outer, {})[inner] = value
        else:
            out[key] = value
    return out


def read(root: RootField, fdef: GraphQLField, nodes: Sequence[FieldNode], args: Mapping[str, Any],
         walk: Walk) -> Read:
    """The one statement of a ``<t>_aggregate`` or ``<t>_groups`` field: a read whose select holds the
    aggregates (and, for groups, the ``by`` columns, which PostgreSQL groups by)."""
    shape = root.shape
    assert shape is not None
    obj = get_named_type(fdef.type)
    assert isinstance(obj, GraphQLObjectType)
    items = select_items(shape, obj, nodes, walk)
    where = conditions(args.get("filter"), shape)
    if root.kind == "aggregate":
        walk.cost += 1
        return Read(shape.target, items, where=where, want_total=False, default_limit=False)
    by = tuple(args.get("by") or ())
    if not by:
        raise errors.invalid_query("Give at least one column in 'by' to group on")
    shown = {item.field.name for item in items if isinstance(item, SelectColumn) and item.aggregate is None}
    if shown - set(by):
        raise errors.invalid_query(f"key.{sorted(shown - set(by))[0]} is not one of the 'by' columns")
    limit = page_limit(args.get("limit"), walk.settings)
    walk.cost += limit
    grouped = tuple(SelectColumn(FieldRef(c), alias=f"{SEP}by{i}") for i, c in enumerate(by))
    return Read(shape.target, (*grouped, *items), where=where, order=tuple(Order(FieldRef(c)) for c in by),
                limit=limit, offset=max(int(args.get("offset") or 0), 0), want_total=False)


def value(body: str | None, kind: str) -> Any:
    """The field's value from the read's rows: one aggregate object, or a list of groups."""
    rows = orjson.loads(body) if body else []
    if kind == "aggregate":
        return nest(rows[0] if rows else {"count": 0})
    return [nest(row) for row in rows]
