"""The SQL builder: plan shape -> one SQLAlchemy Core statement -> SQL text, compiled once per shape.

In:  a ``plan.Planned`` (a hashable shape plus its parameter values).
Out: an ``execute.Statement``: PostgreSQL SQL with ``$n`` placeholders and the values in
     placeholder order.

Every request is one statement returning one row ``(total, page_rows, body, inserted)``:
``body`` is the response JSON text built by PostgreSQL (``json_agg``; embeds as
``LEFT JOIN LATERAL`` subqueries), so the gateway passes it through without decoding.
Reads are assembled here; writes and calls in ``sql/write.py``; the expressions, the
relations and the one operator table (``OPERATORS``) in ``sql/expr.py``.

Compilation is cached per shape (``compile_shape``): the SQL text depends only on the
request's shape, so each distinct shape is compiled once and its prepared statement is
reused by asyncpg on every connection. Values never reach the SQL text: every bound
parameter must come from a plan slot (``_order`` checks it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..execute import Statement
from ..plan.nodes import Planned, ReadPlan, Rel, Shape, WritePlan
from ..plan.values import pg_array_literal
from .expr import (
    DIALECT,
    OPERATORS,
    body_expr,
    filtered_rows,
    null_of,
    pgtype,
    rows_select,
    sql_string,
    total_expr,
)
from .write import call_sql, write_sql

__all__ = ["DIALECT", "OPERATORS", "Compiled", "compile_for_run", "compile_shape", "plan_statement", "read_sql",
           "run_params", "statement"]


def read_sql(shape: ReadPlan, for_run: bool = False) -> sa.Select[Any]:
    """The read's statement; ``for_run``: the ``system.gateway_run`` form, whose estimates are taken
    in the same statement (the transaction form counts exactly instead: no read runs in it with an
    estimated total today, and its values are not one array the estimate could be handed)."""
    src = rows_select(shape.rel).subquery("pgrst_source")
    body = body_expr(shape.single) if shape.body else null_of("text")
    estimate = _estimate(shape.rel) if for_run and shape.total in ("planned", "estimated") else None
    total = total_expr(shape.total, shape.rel, shape.limit_value, shape.offset_value, estimate=estimate,
                       count_limit=shape.count_limit)
    return sa.select(total.label("total"), sa.func.count().label("page_rows"), body.label("body"),
                     null_of("bigint").label("inserted")).select_from(src)


def _estimate(rel: Rel) -> Any:
    """``auth.estimate_rows('<the filtered rows>', $1)``: the planner's estimate, taken as the caller.

    The query text is the builder's own (quoted identifiers, ``$1[n]`` placeholders), written as a
    string literal; the values stay in the array ``$1`` that ``system.gateway_run`` binds, and the
    function binds it again for its EXPLAIN."""
    text = _for_run(filtered_rows(rel))
    return sa.func.auth.estimate_rows(sa.literal_column(sql_string(text)),
                                      sa.literal_column("$1", type_=pgtype("text[]")))


@dataclass(frozen=True)
class Compiled:
    sql: str  # PostgreSQL text with $1..$n
    order: tuple[int, ...]  # parameter index for each $n, in order


def _build(shape: Shape, for_run: bool = False) -> Any:
    if isinstance(shape, ReadPlan):
        return read_sql(shape, for_run)
    if isinstance(shape, WritePlan):
        return write_sql(shape)
    return call_sql(shape)


def _order(compiled: Any) -> tuple[int, ...]:
    names = tuple(compiled.positiontup or ())
    # every bound value must come from the plan's slots: a Python literal slipping into an
    # expression would be frozen into the cached SQL's parameters
    assert all(n.startswith("p") and n[1:].isdigit() for n in names), names
    return tuple(int(n[1:]) for n in names)


@functools.lru_cache(maxsize=4096)
def compile_shape(shape: Shape) -> Compiled:
    """Compile a plan shape once; later requests of the same shape reuse the text."""
    compiled = _build(shape).compile(dialect=DIALECT)
    return Compiled(str(compiled), _order(compiled))


def statement(planned: Planned) -> Statement:
    compiled = compile_shape(planned.shape)
    return Statement(compiled.sql, tuple(planned.params[i] for i in compiled.order))


# the same SQL for ``system.gateway_run``: values travel as one text[] and are named $1[n]
_ARRAY_DIALECT = postgresql.dialect(paramstyle="pyformat")


@functools.lru_cache(maxsize=4096)
def compile_for_run(shape: Shape) -> str:
    """The shape's SQL with slot ``pK`` written ``$1[K+1]``."""
    return _for_run(_build(shape, for_run=True))


def _for_run(element: Any) -> str:
    """``element`` compiled with pyformat's ``%(pK)s`` placeholders, filled by Python's own
    %-formatting as ``$1[K+1]`` (which also turns the escaped ``%%`` back into ``%``)."""
    compiled = element.compile(dialect=_ARRAY_DIALECT)
    names = tuple(compiled.params)
    assert all(n.startswith("p") and n[1:].isdigit() for n in names), names  # plan slots only
    return str(compiled) % {n: f"$1[{int(n[1:]) + 1}]" for n in names}


def run_params(planned: Planned) -> list[str | None]:
    """Every slot's value as text, in slot order: the statement casts each to its type."""
    return [None if v is None else _as_text(v) for v in planned.params]


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return pg_array_literal(value)
    return str(value)


# EXPLAIN options a caller may ask for (``options=analyze|verbose``), written into the SQL as is
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


def plan_statement(planned: Planned, fmt: str, options: tuple[str, ...]) -> Statement:
    """``EXPLAIN (FORMAT JSON|TEXT, <options>)`` of the request's own statement, values bound."""
    assert fmt in ("json", "text") and all(o in PLAN_OPTIONS for o in options), (fmt, options)
    stmt = statement(planned)
    head = ", ".join([f"FORMAT {fmt.upper()}", *(o.upper() for o in options)])
    return Statement(f"EXPLAIN ({head}) {stmt.sql}", stmt.params)
