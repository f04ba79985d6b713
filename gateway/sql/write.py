"""Write and call statements: a WritePlan or CallPlan -> one SQLAlchemy Core SELECT.

In:  ``plan.nodes.WritePlan`` (insert/upsert, update, delete) or ``plan.nodes.CallPlan``.
Out: one SELECT returning one row ``(total, page_rows, body, inserted)``, like a read:
     the write is a data-modifying CTE (``INSERT/UPDATE/DELETE ... RETURNING``) and the
     representation is built from its RETURNING rows with the read machinery
     (``sql.expr.rows_select``), so embeds work on written rows too.

The payload is one JSON parameter expanded by ``json_populate_recordset`` with the table's
own row type, so PostgreSQL converts every value with the column's type; a function's
arguments are one JSON object expanded by ``json_to_record`` with the parameter types.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement, quoted_name
from sqlalchemy.sql.functions import Function

from ..plan.nodes import UNNAMED, CallPlan, Rel, WritePlan
from .expr import (
    bind,
    body_expr,
    null_of,
    pgtype,
    predicate,
    q,
    rows_select,
    sql_string,
    table,
    total_expr,
)


def _rowtype(shape: WritePlan) -> ColumnElement[Any]:
    return sa.literal_column(f"NULL::{q(shape.schema)}.{q(shape.name)}")


def _payload_rows(shape: WritePlan, fn: Any, arg: ColumnElement[Any]) -> Any:
    """``fn(NULL::table, arg) AS pgrst_body``: JSON turned into rows of the table's own row type."""
    return fn(_rowtype(shape), arg).table_valued(*[sa.column(c) for c in shape.columns]).alias("pgrst_body")


def _insert_rows(shape: WritePlan, payload: ColumnElement[Any]) -> sa.Select[Any]:
    """The rows an INSERT writes: the payload's objects, with DEFAULTs for absent keys if asked."""
    if not shape.defaults:
        body = _payload_rows(shape, sa.func.json_populate_recordset, payload)
        return sa.select(*[body.c[c] for c in shape.columns])
    # missing=default: a key absent from a row's object takes the column DEFAULT (catalog SQL text)
    elems = sa.func.json_array_elements(payload).table_valued("value").alias("pgrst_j")
    body = _payload_rows(shape, sa.func.json_populate_record, elems.c.value)
    defaults = dict(shape.defaults)
    has_key = sa.cast(elems.c.value, pgtype("jsonb")).op("?")
    values = [sa.case((has_key(sa.literal_column(sql_string(c))), body.c[c]),
                      else_=sa.literal_column(defaults[c])) if c in defaults else body.c[c]
              for c in shape.columns]
    return sa.select(*values).select_from(elems.join(body, sa.true()))


# update operations on the current value: (current column, payload value) -> new value
UPDATE_OPS: dict[str, Any] = {
    "inc": lambda current, value: current + value,
    "append": lambda current, value: current.op("||")(value),
    # the key arrives as a JSON string in a jsonb payload column: #>> '{}' unwraps it to text
    "delete_key": lambda current, value: current.op("-")(value.op("#>>")(sa.literal_column("'{}'"))),
}


def write_dml(shape: WritePlan) -> Any:
    """The INSERT/UPDATE/DELETE statement (RETURNING is added by ``write_sql``)."""
    # every column the statement names (written, conflict target, overwritten) is declared on the table
    named = dict.fromkeys((*shape.columns, *(shape.on_conflict or ()), *shape.update_columns))
    target = sa.table(shape.name, *[sa.column(c) for c in named], schema=shape.schema)
    payload = sa.cast(bind(shape.payload), pgtype("json")) if shape.payload is not None else None
    rel = Rel(shape.schema, shape.name, "t0", ())
    where = [predicate(w, rel) for w in shape.where]
    if shape.kind == "insert":
        assert payload is not None
        stmt: Any = postgresql.insert(target).from_select(list(shape.columns), _insert_rows(shape, payload))
        conflict: list[Any] = [sa.column(c) for c in shape.on_conflict or ()]
        if shape.conflict_action == "update":
            stmt = stmt.on_conflict_do_update(
                index_elements=conflict, set_={c: sa.literal_column(f"excluded.{q(c)}") for c in shape.update_columns})
        elif shape.conflict_action == "nothing":
            stmt = stmt.on_conflict_do_nothing(index_elements=conflict)
        return stmt
    if shape.kind == "update":
        if not shape.columns:  # nothing to set: match the rows without changing them
            return sa.select(sa.literal_column("t0.*")).select_from(
                table(shape.schema, shape.name, "t0")).where(*where)
        assert payload is not None
        body = _payload_rows(shape, sa.func.json_populate_record, payload)
        t0 = target.alias("t0")
        ops = dict(shape.operations)
        values = {c: UPDATE_OPS[ops[c]](t0.c[c], body.c[c]) if c in ops else body.c[c] for c in shape.columns}
        return sa.update(t0).values(values).where(*where)  # type: ignore[arg-type]
    return sa.delete(target.alias("t0")).where(*where)  # type: ignore[arg-type]


def write_sql(shape: WritePlan) -> sa.Select[Any]:
    dml = write_dml(shape)
    if not isinstance(dml, sa.Select):
        # xmax = 0 tells an inserted row from one an upsert updated
        extra: list[ColumnElement[Any]] = [sa.literal_column("(xmax = 0)").label("pgrst_inserted")] \
            if shape.count_inserted else []
        star: ColumnElement[Any] = sa.literal_column("*" if shape.kind == "insert" else "t0.*")
        dml = dml.returning(star, *extra)
    cte = dml.cte("pgrst_written")
    if shape.returning is not None:
        rows = rows_select(shape.returning, cte.alias("t0")).subquery("pgrst_source")
        body = body_expr(shape.single)
    else:
        rows = sa.select(sa.literal_column("1").label("one")).select_from(cte).subquery("pgrst_source")
        body = null_of("text")
    inserted: ColumnElement[Any] = null_of("bigint")
    if shape.count_inserted:
        inserted = sa.select(sa.func.count()).select_from(cte).where(
            sa.literal_column("pgrst_inserted")).scalar_subquery()
    return sa.select(null_of("bigint").label("total"), sa.func.count().label("page_rows"),
                     body.label("body"), inserted.label("inserted")).select_from(rows)


def function_call(shape: CallPlan) -> tuple[Function[Any], list[sa.FromClause]]:
    """``schema.fn("a" := pgrst_args."a", ...)`` and the FROM that provides ``pgrst_args``."""
    name = (quoted_name(shape.schema, True),)
    if shape.whole_body:  # one unnamed json/jsonb parameter takes the whole body
        arg = sa.cast(bind(shape.payload), pgtype(shape.args[0][1]))
        return Function(quoted_name(shape.name, True), arg, packagenames=name), []
    # an unnamed parameter is passed by position (it comes first), the others by name
    args: list[ColumnElement[Any]] = [sa.literal_column(
        ("VARIADIC " if var else "") + (f"pgrst_args.{q(UNNAMED)}" if n == "" else f"{q(n)} := pgrst_args.{q(n)}"))
        for n, _t, var in shape.args]
    call: Function[Any] = Function(quoted_name(shape.name, True), *args, packagenames=name)
    if not shape.args:
        return call, []
    record = sa.func.json_to_record(sa.cast(bind(shape.payload), pgtype("json"))).table_valued(
        *[sa.column(n or UNNAMED, pgtype(t)) for n, t, _v in shape.args]).render_derived(
            name="pgrst_args", with_types=True)
    return call, [record]


def call_sql(shape: CallPlan) -> sa.Select[Any]:
    call, froms = function_call(shape)
    if shape.kind in ("scalar", "void"):
        inner = sa.select(call.label("pgrst_value"))
        src = (inner.select_from(*froms) if froms else inner).subquery("pgrst_one")
        body = sa.cast(sa.func.to_json(src.c.pgrst_value), pgtype("text")) if shape.kind == "scalar" \
            else null_of("text")
        return sa.select(null_of("bigint").label("total"), sa.func.count().label("page_rows"),
                         sa.func.min(body).label("body"), null_of("bigint").label("inserted")).select_from(src)
    if shape.kind == "setof_scalar":
        inner = sa.select(call.label("pgrst_value"))
        src = (inner.select_from(*froms) if froms else inner).subquery("pgrst_set")
        agg = sa.func.coalesce(sa.func.json_agg(src.c.pgrst_value), sa.literal_column("'[]'::json"))
        return sa.select(null_of("bigint").label("total"), sa.func.count().label("page_rows"),
                         sa.cast(agg, pgtype("text")).label("body"), null_of("bigint").label("inserted")
                         ).select_from(src)
    # row / setof row: the call's rows become a relation shaped like a table read
    called = call.table_valued().lateral("pgrst_call")
    cte = sa.select(sa.literal_column("pgrst_call.*")).select_from(*froms, called).cte("pgrst_called")
    assert shape.returning is not None
    source = cte.alias(shape.returning.alias)  # one alias object: the rows and the count both read it
    rows = rows_select(shape.returning, source).subquery("pgrst_source")
    return sa.select(total_expr(shape.total, shape.returning, shape.limit_value, shape.offset_value,
                                source=source).label("total"),
                     sa.func.count().label("page_rows"), body_expr(shape.single).label("body"),
                     null_of("bigint").label("inserted")).select_from(rows)
