"""The SQL builder: plan shape -> one SQLAlchemy Core statement -> SQL text, compiled once per shape.

In:  a ``plan.Planned`` (a hashable shape plus its parameter values).
Out: an ``execute.Statement``: PostgreSQL SQL with ``$n`` placeholders and the values in
     placeholder order.

Every request is one statement returning one row ``(total, page_rows, body, inserted)``:
``body`` is the response JSON text built by PostgreSQL (``json_agg``; embeds as
``LEFT JOIN LATERAL`` subqueries), so the gateway passes it through without decoding.
Reads are assembled here; writes and calls in ``sqlwrite.py``; the expressions, the
relations and the one operator table (``OPERATORS``) in ``sqlexpr.py``.

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

from .execute import Statement
from .plannodes import Planned, ReadPlan, Rel, Shape, WritePlan
from .planvalues import pg_array_literal
from .sqlexpr import (
    DIALECT,
    OPERATORS,
    body_expr,
    null_of,
    predicate,
    rows_select,
    table,
    total_expr,
)
from .sqlwrite import call_sql, write_sql

__all__ = ["DIALECT", "OPERATORS", "Compiled", "compile_shape", "count_statement", "explain_statement",
           "plan_statement", "read_sql", "statement"]


def read_sql(shape: ReadPlan) -> sa.Select[Any]:
    src = rows_select(shape.rel).subquery("pgrst_source")
    body = body_expr(shape.single) if shape.body else null_of("text")
    return sa.select(total_expr(shape.total, shape.rel, shape.limit_value, shape.offset_value).label("total"),
                     sa.func.count().label("page_rows"), body.label("body"),
                     null_of("bigint").label("inserted")).select_from(src)


@dataclass(frozen=True)
class Compiled:
    sql: str  # PostgreSQL text with $1..$n
    order: tuple[int, ...]  # parameter index for each $n, in order


def _build(shape: Shape) -> Any:
    if isinstance(shape, ReadPlan):
        return read_sql(shape)
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
    """The shape's SQL with slot ``pK`` written ``$1[K+1]``: pyformat's ``%(pK)s`` placeholders,
    filled by Python's own %-formatting (which also turns the escaped ``%%`` back into ``%``)."""
    compiled = _build(shape).compile(dialect=_ARRAY_DIALECT)
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


@functools.lru_cache(maxsize=1024)
def _compile_count(rel: Rel, explain: bool) -> Compiled:
    # EXPLAIN the filtered rows themselves: the estimate of a count(*) would be its one output row
    what = sa.literal_column("1") if explain else sa.func.count()
    counted = sa.select(what).select_from(table(rel.schema, rel.name, rel.alias)).where(
        *[predicate(w, rel) for w in rel.where])
    compiled = counted.compile(dialect=DIALECT)
    text = str(compiled)
    return Compiled(f"EXPLAIN (FORMAT JSON) {text}" if explain else text, _order(compiled))


def _rel_statement(planned: Planned, explain: bool) -> Statement:
    assert isinstance(planned.shape, ReadPlan)
    compiled = _compile_count(planned.shape.rel, explain)
    return Statement(compiled.sql, tuple(planned.params[i] for i in compiled.order))


def explain_statement(planned: Planned) -> Statement:
    """``EXPLAIN (FORMAT JSON)`` of the read's filtered rows: its top node's rows are the estimate."""
    return _rel_statement(planned, explain=True)


def count_statement(planned: Planned) -> Statement:
    """The exact count of the read's filtered rows."""
    return _rel_statement(planned, explain=False)


# EXPLAIN options a caller may ask for (``options=analyze|verbose``), written into the SQL as is
PLAN_OPTIONS = ("analyze", "verbose", "settings", "buffers", "wal")


def plan_statement(planned: Planned, fmt: str, options: tuple[str, ...]) -> Statement:
    """``EXPLAIN (FORMAT JSON|TEXT, <options>)`` of the request's own statement, values bound."""
    assert fmt in ("json", "text") and all(o in PLAN_OPTIONS for o in options), (fmt, options)
    stmt = statement(planned)
    head = ", ".join([f"FORMAT {fmt.upper()}", *(o.upper() for o in options)])
    return Statement(f"EXPLAIN ({head}) {stmt.sql}", stmt.params)
