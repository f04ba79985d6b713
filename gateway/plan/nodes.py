"""Plan nodes: the hashable shapes the planner produces and the SQL builder compiles.

In:  built by the planner (``plan/read.py``, ``plan/write.py``, ``plan/call.py``).
Out: ``Planned(shape, params)``. ``shape`` is a tree of frozen dataclasses in which every
     caller-supplied value is a ``P`` slot; ``params`` holds the values in slot order. Two
     requests that differ only in values have equal shapes, so ``sql/__init__.py`` compiles each
     shape once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

# what ``ColExpr.cast`` may hold: a type name (optionally schema-qualified or quoted), modifiers
# and array brackets. It is written into the SQL text, so the planner and the builder both check it.
CAST_TYPE = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .\"]*(\(\d+(,\s*\d+)?\))?(\[\])*$")


@dataclass(frozen=True)
class P:
    """A parameter slot: ``params[index]`` at execution."""

    index: int  # position in Planned.params


@dataclass(frozen=True)
class JsonKey:
    """One step of a JSON path, its key bound as a parameter."""

    key: P  # the key (text) or index (digits) as a parameter
    as_text: bool  # ->> rather than ->
    is_index: bool  # bind as integer


@dataclass(frozen=True)
class ColExpr:
    """A column of a relation alias, optionally a JSON path into it and a cast."""

    rel: str  # SQL alias of the relation ("t0")
    column: str  # column name as the catalog spells it
    json_path: tuple[JsonKey, ...] = ()  # empty for the plain column
    wrap_jsonb: bool = False  # non-json column under a JSON path: to_jsonb(col) first
    cast: str | None = None  # ``::type`` in select (type text checked by the parser's grammar)
    function: tuple[str, str] | None = None  # computed field: schema.fn(row of ``rel``); ``column`` is fn's name
    row_type: tuple[str, str] | None = None  # (schema, table) the row is cast to for that call

    @property
    def value_type(self) -> str | None:
        """The SQL type a compared value must be cast to; None: keep the column's."""
        if not self.json_path:
            return None
        return "text" if self.json_path[-1].as_text else "jsonb"


@dataclass(frozen=True)
class Pred:
    """One filter: ``expr op value``."""

    expr: ColExpr  # the compared column (or JSON path)
    op: str  # operator name from request.FilterOp
    arg: P | None  # None for ``is``
    arg_type: str  # SQL type the text parameter is cast to
    negate: bool = False  # NOT (...)
    modifier: Literal["any", "all"] | None = None  # op ANY/ALL (array value)
    is_value: str | None = None  # for ``is``: null/not_null/true/false/unknown
    language: P | None = None  # fts configuration
    text_compare: bool = False  # like/match/fts on a non-text column: compare its text form
    tsvector: bool = True  # fts on a tsvector column; False: to_tsvector(column) first
    list_arg: bool = False  # the parameter is a list (in, any/all), bound as text[] and cast to arg_type


@dataclass(frozen=True)
class BoolPred:
    """An and/or tree of predicates."""

    op: Literal["and", "or"]  # how the items combine
    items: tuple[PredNode, ...]  # at least one
    negate: bool = False  # NOT (...)


@dataclass(frozen=True)
class EmbedPred:
    """Whether a parent row has embedded rows: EXISTS (semi-join) or NOT EXISTS (anti-join)."""

    embed: str  # SQL alias of the embed's lateral
    is_null: bool  # True: keep parents without embedded rows
    to_one: bool  # the embed's cardinality (informational)


@dataclass(frozen=True)
class ExistsPred:
    """EXISTS a related row (``join.target`` as ``join.target_alias``) matching ``where``."""

    join: Join  # correlation with the parent row (target and target_alias set)
    where: tuple[PredNode, ...]  # ANDed, on the related alias


PredNode = Pred | BoolPred | EmbedPred | ExistsPred


@dataclass(frozen=True)
class OrderTerm:
    """One ORDER BY term."""

    expr: ColExpr  # the sort key
    direction: Literal["asc", "desc"] | None  # None: PostgreSQL's default
    nulls: Literal["first", "last"] | None  # None: PostgreSQL's default for the direction
    via: Join | None = None  # ordering by a to-one embed's column: a correlated subquery


@dataclass(frozen=True)
class Join:
    """How an embedded relation correlates with its parent."""

    parent: str  # parent's SQL alias
    pairs: tuple[tuple[str, str], ...]  # (parent column, child column) — or junction columns for m2m
    junction: tuple[str, str] | None = None  # (schema, table) for m2m
    junction_alias: str | None = None  # SQL alias of the junction table
    junction_pairs: tuple[tuple[str, str], ...] = ()  # (junction column, child column)
    target: tuple[str, str] | None = None  # child (schema, table), for order-by subqueries
    target_alias: str | None = None  # SQL alias of the child in an order-by subquery
    function: tuple[str, str] | None = None  # computed relationship: rows of schema.fn(parent row)
    parent_type: tuple[str, str] | None = None  # (schema, table) the parent row is cast to for that call


@dataclass(frozen=True)
class OutColumn:
    """A key of the output objects and the column (expression) that fills it."""

    key: str  # output JSON key
    expr: ColExpr  # its value (column "*" with aggregate "count": count the rows)
    aggregate: str | None = None  # sum/avg/min/max/count: aggregated, grouped by the plain outputs
    aggregate_cast: str | None = None  # ``::type`` of the aggregate's result (checked like ColExpr.cast)


@dataclass(frozen=True)
class OutEmbed:
    """An embedded relation: an object (to-one) or an array (to-many) under ``key``."""

    key: str | None  # output key; None: the embed adds no key (``clients()``)
    rel: Rel  # the embedded rows, with their own outputs, filters, order and page
    join: Join  # how they correlate with the parent row
    to_one: bool  # object (or null) rather than array
    spread: bool = False  # ``...rel(cols)``: the embed's keys go into the parent object
    inner: bool = False  # ``!inner``: parents without embedded rows are dropped
    alias: str = ""  # SQL alias of the lateral subquery ("e1")


@dataclass(frozen=True)
class Rel:
    """A relation to read rows from, with its outputs, filters, order and page."""

    schema: str  # the relation's schema
    name: str  # table, view or (for function results) function name
    alias: str  # SQL alias ("t0")
    outputs: tuple[OutColumn | OutEmbed, ...]  # keys of each output object, in order
    where: tuple[PredNode, ...] = ()  # ANDed filters
    order: tuple[OrderTerm, ...] = ()  # ORDER BY
    # the page, written into the SQL as integers (PostgREST does the same): a prepared statement's
    # plan for "LIMIT $1" cannot know the page is ten rows, so PostgreSQL would plan it again on
    # every run; a validated integer in the text lets one plan serve
    limit: P | int | None = None  # None: no LIMIT
    offset: P | int | None = None  # None: no OFFSET
    source: Literal["table", "cte"] = "table"  # "cte": rows come from the write's RETURNING
    distinct_on: tuple[ColExpr, ...] = ()  # DISTINCT ON (...): the first row per distinct value


# "auto": exact, skipped when the page itself proves the total; "planned": the planner's estimate;
# "estimated": exact when the planner expects at most ``count_limit`` rows, its estimate otherwise
TotalMode = Literal["none", "exact", "auto", "planned", "estimated"]


@dataclass(frozen=True)
class ReadPlan:
    """A read: one relation tree, its total and its body."""

    rel: Rel  # what to read
    total: TotalMode  # how X-Total-Count is found (see TotalMode); every mode but "none" keeps the short-page rule
    body: bool  # False for HEAD: no JSON aggregation
    single: bool  # the body is element 0 (the pipeline checks there is exactly one row)
    limit_value: P | None  # the page size and offset again, for the total shortcut
    offset_value: P | None  # (Content-Range's first position)
    count_limit: P | None = None  # "estimated": the most rows the planner may expect for an exact count


@dataclass(frozen=True)
class WritePlan:
    """A write: one data-modifying statement and the shape of its returned rows."""

    kind: Literal["insert", "update", "delete"]  # the DML statement
    schema: str  # the written table's schema
    name: str  # the written table
    columns: tuple[str, ...]  # payload columns written
    payload: P | None  # JSON text of the row(s)
    where: tuple[PredNode, ...] = ()  # update/delete filters, on alias "t0"
    on_conflict: tuple[str, ...] | None = None  # ON CONFLICT target columns (upserts)
    conflict_action: Literal["update", "nothing"] | None = None  # DO UPDATE / DO NOTHING; None: no clause
    update_columns: tuple[str, ...] = ()  # DO UPDATE SET c = excluded.c for these
    defaults: tuple[tuple[str, str], ...] = ()  # (column, DEFAULT expression) for missing=default
    returning: Rel | None = None  # shape of the returned rows (source="cte")
    single: bool = False  # the body is element 0
    count_inserted: bool = False  # report how many rows were inserted (upsert 201 vs 200)
    operations: tuple[tuple[str, str], ...] = ()  # update: (column, inc|append|delete_key) on the current value


@dataclass(frozen=True)
class CallPlan:
    """A function call: the overload, its arguments and the kind of its result."""

    schema: str  # the function's schema
    name: str  # the function
    args: tuple[tuple[str, str, bool], ...]  # (name, SQL type, variadic); "" is the unnamed one, passed by position
    payload: P  # JSON object of the arguments (the unnamed one under the key UNNAMED), or the whole body
    kind: Literal["scalar", "setof_scalar", "row", "setof_row", "void"]  # decides the body's JSON shape
    returning: Rel | None  # shaping of row results (source="cte")
    scalar_type: str = "text"  # the declared return type of a scalar function
    single: bool = False  # the body is element 0 (composite returns and the object media type)
    total: TotalMode = "none"  # a total for row results when a count was asked for
    limit_value: P | None = None  # page of row results, as in ReadPlan
    offset_value: P | None = None
    whole_body: bool = False  # the payload is the one unnamed json/jsonb argument itself


# the payload key of a single unnamed parameter (``{"": value}``): a record column needs a name
UNNAMED = "pgrst_unnamed"

Shape = ReadPlan | WritePlan | CallPlan


@dataclass
class Planned:
    """The planner's output: the shape to compile and the values to bind."""

    shape: Shape  # hashable: the SQL text is cached on it
    params: list[Any] = field(default_factory=list)  # values, in slot order

