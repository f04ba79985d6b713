"""The SQL builder: plan shape -> one SQLAlchemy Core statement -> SQL text.

In:  a ``plan.Planned`` (a hashable shape plus its parameter values).
Out: an ``execute.Statement``: PostgreSQL SQL with ``$n`` placeholders and the
     values in placeholder order.

Every request is one statement returning one row ``(total, page_rows, body,
inserted)``: ``body`` is the response JSON text built by PostgreSQL
(``json_agg``; embeds as ``LEFT JOIN LATERAL`` subqueries), so the gateway
passes it through without decoding. Writes are ``INSERT/UPDATE/DELETE ...
RETURNING`` inside the same statement. Values are always bound parameters,
sent as text (or text[] / JSON text) and cast to the column's type by
PostgreSQL; identifiers are always quoted by SQLAlchemy's preparer.

Compilation is cached per shape (``_compile``): the SQL text depends only on
the request's shape, so each distinct shape is compiled once and its prepared
statement is reused by asyncpg on every connection.

Operators live in one table, ``OPERATORS``, used by REST and GraphQL alike.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement, quoted_name
from sqlalchemy.sql.functions import Function
from sqlalchemy.types import UserDefinedType

from . import errors
from .execute import Statement
from .plan import (
    BoolPred,
    CallPlan,
    ColExpr,
    EmbedPred,
    Join,
    OrderTerm,
    OutColumn,
    OutEmbed,
    P,
    Planned,
    Pred,
    PredNode,
    ReadPlan,
    Rel,
    Shape,
    WritePlan,
)

DIALECT = postgresql.dialect(paramstyle="numeric_dollar")
_Q = DIALECT.identifier_preparer
# a cast type written by a caller (``col::text``): a type name, optional modifiers and array brackets
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .\"]*(\(\d+(,\s*\d+)?\))?(\[\])*$")


class PgType(UserDefinedType[Any]):
    """A PostgreSQL type rendered exactly as the catalog spells it (format_type output)."""

    cache_ok = True

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def get_col_spec(self, **kw: Any) -> str:
        return self.spec


@functools.lru_cache(maxsize=1024)
def pgtype(spec: str) -> PgType:
    return PgType(spec)


def q(name: str) -> str:
    """A quoted identifier."""
    return _Q.quote_identifier(name)


def sql_string(name: str) -> str:
    """A catalog name as a string literal (for jsonb ``?``); E'' reads the same under any settings."""
    return "E'" + name.replace("\\", "\\\\").replace("'", "''") + "'"


def ref(alias: str, column: str) -> ColumnElement[Any]:
    """``alias."column"`` — aliases are the planner's own (t0, e1, ...), columns are quoted."""
    return sa.literal_column(f"{alias}.{q(column)}")


def bind(p: P) -> sa.BindParameter[Any]:
    return sa.bindparam(f"p{p.index}")


def text_param(p: P) -> ColumnElement[Any]:
    return sa.cast(bind(p), pgtype("text"))


def typed_param(p: P, type_: str) -> ColumnElement[Any]:
    """A text parameter cast to ``type_``: PostgreSQL converts it with the type's input function."""
    if type_ == "text":
        return text_param(p)
    if type_.endswith("[]"):
        return sa.cast(sa.cast(bind(p), pgtype("text[]")), pgtype(type_))
    return sa.cast(text_param(p), pgtype(type_))


def int_param(p: P) -> ColumnElement[Any]:
    return sa.cast(bind(p), pgtype("bigint"))


def table(schema: str, name: str, alias: str) -> sa.FromClause:
    return sa.table(name, schema=schema).alias(alias)


# --------------------------------------------------------------------------- expressions


def col_expr(e: ColExpr) -> ColumnElement[Any]:
    expr: ColumnElement[Any] = ref(e.rel, e.column)
    if e.json_path:
        if e.wrap_jsonb:
            expr = sa.func.to_jsonb(expr)
        for step in e.json_path:
            key = sa.cast(text_param(step.key), pgtype("integer")) if step.is_index else text_param(step.key)
            expr = expr.op("->>" if step.as_text else "->")(key)
    if e.cast:
        if not _TYPE_NAME.match(e.cast):
            raise errors.invalid_query(f"Invalid cast type '{e.cast}'", code="PGRST100")
        expr = sa.cast(expr, pgtype(e.cast))
    return expr


def _like(pattern_op: str) -> Callable[[ColumnElement[Any], Any], ColumnElement[Any]]:
    return lambda c, v: c.op(pattern_op)(v)


# name -> (column, value) -> predicate; one table for both front ends
OPERATORS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[Any]]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "like": _like("LIKE"),
    "ilike": _like("ILIKE"),
    "match": _like("~"),
    "imatch": _like("~*"),
    "isdistinct": lambda c, v: c.is_distinct_from(v),
    "cs": _like("@>"),
    "cd": _like("<@"),
    "ov": _like("&&"),
    "sl": _like("<<"),
    "sr": _like(">>"),
    "nxr": _like("&<"),
    "nxl": _like("&>"),
    "adj": _like("-|-"),
}

FTS_FUNCTIONS = {"fts": "to_tsquery", "plfts": "plainto_tsquery", "phfts": "phraseto_tsquery",
                 "wfts": "websearch_to_tsquery"}

IS_VALUES: dict[str, Callable[[ColumnElement[Any]], ColumnElement[Any]]] = {
    "null": lambda c: c.is_(None),
    "not_null": lambda c: c.is_not(None),
    "true": lambda c: c.is_(sa.true()),
    "false": lambda c: c.is_(sa.false()),
    "unknown": lambda c: c.is_(None),
}


def predicate(node: PredNode, rel: Rel) -> ColumnElement[Any]:
    if isinstance(node, BoolPred):
        parts = [predicate(i, rel) for i in node.items]
        expr = sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
        return sa.not_(expr) if node.negate else expr
    if isinstance(node, EmbedPred):
        emb = next(o for o in rel.outputs if isinstance(o, OutEmbed) and o.alias == node.embed)
        exists = sa.exists(embed_exists(emb))
        return sa.not_(exists) if node.is_null else exists
    expr = _pred(node)
    return sa.not_(expr) if node.negate else expr


def _pred(p: Pred) -> ColumnElement[Any]:
    column = col_expr(p.expr)
    if p.op == "is":
        return IS_VALUES[p.is_value or "null"](column)
    assert p.arg is not None
    if p.op in FTS_FUNCTIONS:
        fn = getattr(sa.func, FTS_FUNCTIONS[p.op])
        lang = sa.cast(text_param(p.language), pgtype("regconfig")) if p.language else None
        query = fn(lang, text_param(p.arg)) if lang is not None else fn(text_param(p.arg))
        if not p.tsvector:
            column = sa.func.to_tsvector(lang, column) if lang is not None else sa.func.to_tsvector(column)
        return column.op("@@")(query)
    if p.text_compare:
        column = sa.cast(column, pgtype("text"))
    if p.op == "in":
        return column == sa.any_(typed_param(p.arg, p.arg_type))
    value: Any = typed_param(p.arg, p.arg_type)
    if p.modifier:
        value = sa.any_(value) if p.modifier == "any" else sa.all_(value)
    return OPERATORS[p.op](column, value)


def order_by(term: OrderTerm) -> ColumnElement[Any]:
    expr: ColumnElement[Any] = col_expr(term.expr)
    if term.via is not None:
        j = term.via
        assert j.target is not None and j.target_alias is not None
        sub = sa.select(expr).select_from(table(j.target[0], j.target[1], j.target_alias)).where(
            *[ref(j.target_alias, c) == ref(j.parent, p) for p, c in j.pairs]).limit(sa.literal_column("1"))
        expr = sub.scalar_subquery()
    out: ColumnElement[Any] = expr.desc() if term.direction == "desc" else (
        expr.asc() if term.direction == "asc" else expr)
    if term.nulls == "first":
        out = out.nulls_first()
    elif term.nulls == "last":
        out = out.nulls_last()
    return out


# --------------------------------------------------------------------------- relations


def _from(rel: Rel, join: Join | None) -> tuple[sa.FromClause, list[ColumnElement[Any]]]:
    """The FROM of a relation (with an m2m junction) and the conditions tying it to its parent."""
    source = table(rel.schema, rel.name, rel.alias)
    conds: list[ColumnElement[Any]] = []
    if join is not None:
        if join.junction is not None:
            assert join.junction_alias is not None
            junction = table(join.junction[0], join.junction[1], join.junction_alias)
            source = source.join(junction, sa.and_(*[ref(join.junction_alias, jc) == ref(rel.alias, tc)
                                                     for jc, tc in join.junction_pairs]))
            conds = [ref(join.junction_alias, jc) == ref(join.parent, pc) for pc, jc in join.pairs]
        else:
            conds = [ref(rel.alias, cc) == ref(join.parent, pc) for pc, cc in join.pairs]
    return source, conds


def embed_exists(emb: OutEmbed) -> sa.Select[Any]:
    source, conds = _from(emb.rel, emb.join)
    return sa.select(sa.literal_column("1")).select_from(source).where(
        *conds, *[predicate(w, emb.rel) for w in emb.rel.where])


def _page(sel: sa.Select[Any], rel: Rel) -> sa.Select[Any]:
    if rel.order:
        sel = sel.order_by(*[order_by(t) for t in rel.order])
    if rel.limit is not None:
        sel = sel.limit(int_param(rel.limit))
    if rel.offset is not None:
        sel = sel.offset(int_param(rel.offset))
    return sel


def projection(rel: Rel, source: sa.FromClause) -> sa.Select[Any]:
    """SELECT the relation's outputs (columns and embeds) from ``source`` (aliased ``rel.alias``)."""
    cols: list[ColumnElement[Any]] = []
    for out in rel.outputs:
        if isinstance(out, OutColumn):
            cols.append(col_expr(out.expr).label(out.key))
            continue
        lateral = embed_lateral(out)
        source = source.outerjoin(lateral, sa.true())
        if out.key is None:
            continue
        if out.spread:
            cols.extend(sa.literal_column(f"{out.alias}.{q(k)}").label(k) for k in output_keys(out.rel))
        elif out.to_one:
            cols.append(sa.literal_column(f"{out.alias}.obj").label(out.key))
        else:
            cols.append(sa.func.coalesce(sa.literal_column(f"{out.alias}.arr"),
                                         sa.literal_column("'[]'::json")).label(out.key))
    if not cols:  # every output was an empty embed: keep a valid select list
        cols.append(sa.literal_column("NULL").label("pgrst_none"))
    return sa.select(*cols).select_from(source)


def output_keys(rel: Rel) -> list[str]:
    keys: list[str] = []
    for out in rel.outputs:
        if isinstance(out, OutColumn):
            keys.append(out.key)
        elif out.key is not None:
            keys.extend(output_keys(out.rel) if out.spread else [out.key])
    return keys


def embed_lateral(emb: OutEmbed) -> sa.FromClause:
    """``LATERAL (...) AS eN``: the embedded rows of one parent row, as JSON (or columns, for a spread)."""
    rel = emb.rel
    source, conds = _from(rel, emb.join)
    inner = projection(rel, source).where(*conds, *[predicate(w, rel) for w in rel.where])
    inner = _page(inner, rel)
    if emb.spread:
        return inner.limit(sa.literal_column("1")).lateral(emb.alias)
    rows = inner.subquery("pgrst_r")
    row = sa.literal_column("pgrst_r")
    if emb.to_one:
        agg = sa.select(sa.func.row_to_json(row).label("obj")).select_from(rows).limit(sa.literal_column("1"))
    else:
        agg = sa.select(sa.func.json_agg(row).label("arr")).select_from(rows)
    return agg.lateral(emb.alias)


def rows_select(rel: Rel, source: sa.FromClause | None = None) -> sa.Select[Any]:
    """The page of ``rel``: filtered, ordered and limited first, embeds joined on the page only."""
    base = source if source is not None else table(rel.schema, rel.name, rel.alias)
    has_embeds = any(isinstance(o, OutEmbed) for o in rel.outputs)
    where = [predicate(w, rel) for w in rel.where]
    if not has_embeds:
        return _page(projection(rel, base).where(*where), rel)
    # filter and page the parent rows first, so laterals run for the page only
    page = _page(sa.select(sa.literal_column(f"{rel.alias}.*")).select_from(base).where(*where), rel)
    sel = projection(rel, page.subquery(rel.alias))
    if rel.order:
        sel = sel.order_by(*[order_by(t) for t in rel.order])
    return sel


def count_select(rel: Rel, source: sa.FromClause | None = None) -> sa.ScalarSelect[Any]:
    base = source.alias(rel.alias) if source is not None else table(rel.schema, rel.name, rel.alias)
    return sa.select(sa.func.count()).select_from(base).where(
        *[predicate(w, rel) for w in rel.where]).scalar_subquery()


def body_expr(single: bool) -> ColumnElement[Any]:
    row = sa.literal_column("pgrst_source")
    if single:
        return sa.cast(sa.func.json_agg(row).op("->")(sa.literal_column("0")), pgtype("text"))
    return sa.cast(sa.func.coalesce(sa.func.json_agg(row), sa.literal_column("'[]'::json")), pgtype("text"))


def total_expr(mode: str, rel: Rel, limit: P | None, offset: P | None,
               source: sa.FromClause | None = None) -> ColumnElement[Any]:
    """The total behind X-Total-Count; "auto" skips counting when the page itself proves it."""
    if mode == "none":
        return sa.cast(sa.null(), pgtype("bigint"))
    rows = sa.func.count()
    off = int_param(offset) if offset is not None else sa.literal_column("0")
    zero = sa.literal_column("0")
    short = sa.or_(rows > zero, off == zero)
    if limit is not None:
        short = sa.and_(rows < int_param(limit), short)
    return sa.case((short, off + rows), else_=count_select(rel, source))


# --------------------------------------------------------------------------- statements


def read_sql(shape: ReadPlan) -> sa.Select[Any]:
    src = rows_select(shape.rel).subquery("pgrst_source")
    body = body_expr(shape.single) if shape.body else sa.cast(sa.null(), pgtype("text"))
    return sa.select(total_expr(shape.total, shape.rel, shape.limit_value, shape.offset_value).label("total"),
                     sa.func.count().label("page_rows"), body.label("body"),
                     sa.cast(sa.null(), pgtype("bigint")).label("inserted")).select_from(src)


def _rowtype(shape: WritePlan) -> ColumnElement[Any]:
    return sa.literal_column(f"NULL::{q(shape.schema)}.{q(shape.name)}")


def _payload_rows(shape: WritePlan, fn: Any, arg: ColumnElement[Any]) -> Any:
    """``fn(NULL::table, arg) AS pgrst_body``: JSON turned into rows of the table's own row type."""
    return fn(_rowtype(shape), arg).table_valued(*[sa.column(c) for c in shape.columns]).alias("pgrst_body")


def write_dml(shape: WritePlan) -> Any:
    """The INSERT/UPDATE/DELETE statement (RETURNING is added by ``write_sql``)."""
    target = sa.table(shape.name, *[sa.column(c) for c in shape.columns], schema=shape.schema)
    payload = sa.cast(bind(shape.payload), pgtype("json")) if shape.payload is not None else None
    rel = Rel(shape.schema, shape.name, "t0", ())
    where = [predicate(w, rel) for w in shape.where]
    if shape.kind == "insert":
        assert payload is not None
        if shape.defaults:
            # missing=default: a key absent from a row's object takes the column DEFAULT
            elems = sa.func.json_array_elements(payload).table_valued("value").alias("pgrst_j")
            body = _payload_rows(shape, sa.func.json_populate_record, elems.c.value)
            defaults = dict(shape.defaults)
            has_key = sa.cast(elems.c.value, pgtype("jsonb")).op("?")
            values = [sa.case((has_key(sa.literal_column(sql_string(c))), body.c[c]),
                              else_=sa.literal_column(defaults[c])) if c in defaults else body.c[c]
                      for c in shape.columns]
            select = sa.select(*values).select_from(elems.join(body, sa.true()))
        else:
            body = _payload_rows(shape, sa.func.json_populate_recordset, payload)
            select = sa.select(*[body.c[c] for c in shape.columns])
        stmt: Any = postgresql.insert(target).from_select(list(shape.columns), select)
        if shape.conflict_action == "update":
            stmt = stmt.on_conflict_do_update(
                index_elements=[sa.column(c) for c in shape.on_conflict or ()],
                set_={c: sa.literal_column(f"excluded.{q(c)}") for c in shape.update_columns})
        elif shape.conflict_action == "nothing":
            stmt = stmt.on_conflict_do_nothing(index_elements=[sa.column(c) for c in shape.on_conflict or ()])
        return stmt
    if shape.kind == "update":
        if not shape.columns:  # nothing to set: match the rows without changing them
            return sa.select(sa.literal_column("t0.*")).select_from(
                table(shape.schema, shape.name, "t0")).where(*where)
        assert payload is not None
        body = _payload_rows(shape, sa.func.json_populate_record, payload)
        return sa.update(target.alias("t0")).values({c: body.c[c] for c in shape.columns}).where(*where)
    return sa.delete(target.alias("t0")).where(*where)


def write_sql(shape: WritePlan) -> sa.Select[Any]:
    dml = write_dml(shape)
    if not isinstance(dml, sa.Select):
        extra = [sa.literal_column("(xmax = 0)").label("pgrst_inserted")] if shape.count_inserted else []
        star = sa.literal_column("*" if shape.kind == "insert" else "t0.*")
        dml = dml.returning(star, *extra)
    cte = dml.cte("pgrst_written")
    null_bigint = sa.cast(sa.null(), pgtype("bigint"))
    if shape.returning is not None:
        rows = rows_select(shape.returning, cte.alias("t0")).subquery("pgrst_source")
        body = body_expr(shape.single)
    else:
        rows = sa.select(sa.literal_column("1").label("one")).select_from(cte).subquery("pgrst_source")
        body = sa.cast(sa.null(), pgtype("text"))
    inserted: ColumnElement[Any] = null_bigint
    if shape.count_inserted:
        inserted = sa.select(sa.func.count()).select_from(cte).where(
            sa.literal_column("pgrst_inserted")).scalar_subquery()
    return sa.select(null_bigint.label("total"), sa.func.count().label("page_rows"),
                     body.label("body"), inserted.label("inserted")).select_from(rows)


def function_call(shape: CallPlan) -> tuple[ColumnElement[Any], list[sa.FromClause]]:
    """``schema.fn("a" := pgrst_args."a", ...)`` and the FROM that provides ``pgrst_args``."""
    name = (quoted_name(shape.schema, True),)
    if len(shape.args) == 1 and shape.args[0][0] == "":
        # one unnamed json/jsonb parameter takes the whole body
        arg = sa.cast(bind(shape.payload), pgtype(shape.args[0][1]))
        return Function(quoted_name(shape.name, True), arg, packagenames=name), []
    args = [sa.literal_column(("VARIADIC " if var else "") + f"{q(n)} := pgrst_args.{q(n)}")
            for n, _t, var in shape.args]
    call = Function(quoted_name(shape.name, True), *args, packagenames=name)
    if not shape.args:
        return call, []
    record = sa.func.json_to_record(sa.cast(bind(shape.payload), pgtype("json"))).table_valued(
        *[sa.column(n, pgtype(t)) for n, t, _v in shape.args]).render_derived(name="pgrst_args", with_types=True)
    return call, [record]


def call_sql(shape: CallPlan) -> sa.Select[Any]:
    call, froms = function_call(shape)
    null_bigint = sa.cast(sa.null(), pgtype("bigint"))
    if shape.kind in ("scalar", "void"):
        inner = sa.select(call.label("pgrst_value"))
        src = (inner.select_from(*froms) if froms else inner).subquery("pgrst_one")
        value = src.c.pgrst_value
        body = sa.cast(sa.func.to_json(value), pgtype("text")) if shape.kind == "scalar" else sa.cast(
            sa.null(), pgtype("text"))
        return sa.select(null_bigint.label("total"), sa.func.count().label("page_rows"),
                         sa.func.min(body).label("body"), null_bigint.label("inserted")).select_from(src)
    if shape.kind == "setof_scalar":
        inner = sa.select(call.label("pgrst_value"))
        src = (inner.select_from(*froms) if froms else inner).subquery("pgrst_set")
        agg = sa.func.coalesce(sa.func.json_agg(src.c.pgrst_value), sa.literal_column("'[]'::json"))
        return sa.select(null_bigint.label("total"), sa.func.count().label("page_rows"),
                         sa.cast(agg, pgtype("text")).label("body"), null_bigint.label("inserted")).select_from(src)
    # row / setof row: the call's rows become a relation shaped like a table read
    assert isinstance(call, Function)
    called = call.table_valued().lateral("pgrst_call")
    cte = sa.select(sa.literal_column("pgrst_call.*")).select_from(*froms, called).cte("pgrst_called")
    assert shape.returning is not None
    rows = rows_select(shape.returning, cte.alias("t0")).subquery("pgrst_source")
    return sa.select(total_expr(shape.total, shape.returning, shape.limit_value, shape.offset_value,
                                source=cte).label("total"),
                     sa.func.count().label("page_rows"), body_expr(shape.single).label("body"),
                     null_bigint.label("inserted")).select_from(rows)


# --------------------------------------------------------------------------- compile + cache


@dataclass(frozen=True)
class Compiled:
    sql: str
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
    order = _order(compiled)
    return Compiled(str(compiled), order)


def statement(planned: Planned) -> Statement:
    compiled = compile_shape(planned.shape)
    return Statement(compiled.sql, tuple(planned.params[i] for i in compiled.order))


@functools.lru_cache(maxsize=1024)
def _compile_count(rel: Rel, explain: bool) -> Compiled:
    counted = sa.select(sa.func.count()).select_from(table(rel.schema, rel.name, rel.alias)).where(
        *[predicate(w, rel) for w in rel.where])
    compiled = counted.compile(dialect=DIALECT)
    order = _order(compiled)
    text = str(compiled)
    return Compiled(f"EXPLAIN (FORMAT JSON) {text}" if explain else text, order)


def _rel_statement(planned: Planned, explain: bool) -> Statement:
    assert isinstance(planned.shape, ReadPlan)
    compiled = _compile_count(planned.shape.rel, explain)
    return Statement(compiled.sql, tuple(planned.params[i] for i in compiled.order))


def explain_statement(planned: Planned) -> Statement:
    """``EXPLAIN (FORMAT JSON)`` of the read's filtered count: its top node's rows are the estimate."""
    return _rel_statement(planned, explain=True)


def count_statement(planned: Planned) -> Statement:
    """The exact count of the read's filtered rows."""
    return _rel_statement(planned, explain=False)
