"""SQL expressions and relations: plan nodes -> SQLAlchemy Core, for reads, writes and calls alike.

In:  plan nodes (``plan.nodes``): column expressions, predicates, order terms and ``Rel``
     trees with their embeds.
Out: SQLAlchemy Core elements: the predicate of a filter (``OPERATORS``, the one operator
     table REST and GraphQL share), the page of a relation with its embeds as
     ``LEFT JOIN LATERAL`` subqueries (``rows_select``; grouped by its plain outputs when it
     selects aggregates; a computed relationship's lateral is its function's rows, a computed
     field a call on the row), its filtered count (or estimate) and the JSON body aggregate.
     ``sql/__init__.py`` and ``sql/write.py`` assemble these into whole statements.

Every value is a bound parameter (``bind``), sent as text (or text[] / JSON text) and cast
to the column's type by PostgreSQL; every identifier is quoted by SQLAlchemy's preparer.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import ColumnElement, quoted_name
from sqlalchemy.sql.functions import Function
from sqlalchemy.types import UserDefinedType

from .. import errors
from ..plan.nodes import (
    CAST_TYPE,
    BoolPred,
    ColExpr,
    EmbedPred,
    ExistsPred,
    Join,
    OrderTerm,
    OutColumn,
    OutEmbed,
    P,
    Pred,
    PredNode,
    Rel,
)

DIALECT = postgresql.dialect(paramstyle="numeric_dollar")
_Q = DIALECT.identifier_preparer


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


def typed_param(p: P, type_: str, is_list: bool = False) -> ColumnElement[Any]:
    """A text (or text[], for a list) parameter cast to ``type_`` by the type's input function."""
    if is_list:
        return sa.cast(sa.cast(bind(p), pgtype("text[]")), pgtype(type_))
    if type_ == "text":
        return text_param(p)
    return sa.cast(text_param(p), pgtype(type_))


def int_param(p: P) -> ColumnElement[Any]:
    return sa.cast(bind(p), pgtype("bigint"))


def table(schema: str, name: str, alias: str) -> sa.FromClause:
    return sa.table(name, schema=schema).alias(alias)


# --------------------------------------------------------------------------- expressions


def row_call(function: tuple[str, str], alias: str, row_type: tuple[str, str]) -> Function[Any]:
    """``schema.fn(CAST(alias AS schema.table))``: a function of the whole row (the cast makes the
    row of a paged subquery or a CTE, an anonymous record, the table's own row type)."""
    row = sa.cast(sa.literal_column(alias), pgtype(f"{q(row_type[0])}.{q(row_type[1])}"))
    return Function(quoted_name(function[1], True), row, packagenames=(quoted_name(function[0], True),))


def col_expr(e: ColExpr) -> ColumnElement[Any]:
    expr: ColumnElement[Any] = ref(e.rel, e.column) if e.function is None or e.row_type is None else row_call(
        e.function, e.rel, e.row_type)
    if e.json_path:
        if e.wrap_jsonb:
            expr = sa.func.to_jsonb(expr)
        for step in e.json_path:
            key = sa.cast(text_param(step.key), pgtype("integer")) if step.is_index else text_param(step.key)
            expr = expr.op("->>" if step.as_text else "->")(key)
    if e.cast:
        if not CAST_TYPE.match(e.cast):
            raise errors.invalid_query(f"Invalid cast type '{e.cast}'", code="PGRST100")
        expr = sa.cast(expr, pgtype(e.cast))
    return expr


def _binary(pattern_op: str) -> Callable[[ColumnElement[Any], Any], ColumnElement[Any]]:
    return lambda c, v: c.op(pattern_op, is_comparison=True)(v)


# name -> (column, value) -> predicate; one table for both front ends
OPERATORS: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[Any]]] = {
    "eq": operator.eq,
    "neq": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "like": _binary("LIKE"),
    "ilike": _binary("ILIKE"),
    "match": _binary("~"),
    "imatch": _binary("~*"),
    "isdistinct": lambda c, v: c.is_distinct_from(v),
    "has_key": _binary("?"),
    "has_any_keys": _binary("?|"),
    "has_all_keys": _binary("?&"),
    "cs": _binary("@>"),
    "cd": _binary("<@"),
    "ov": _binary("&&"),
    "sl": _binary("<<"),
    "sr": _binary(">>"),
    "nxr": _binary("&<"),
    "nxl": _binary("&>"),
    "adj": _binary("-|-"),
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
    if isinstance(node, ExistsPred):
        j = node.join
        assert j.target is not None and j.target_alias is not None
        return sa.exists(sa.select(sa.literal_column("1")).select_from(
            table(j.target[0], j.target[1], j.target_alias)).where(
            *[ref(j.target_alias, c) == ref(j.parent, p) for p, c in j.pairs],
            *[predicate(w, rel) for w in node.where]))
    expr = _pred(node)
    return sa.not_(expr) if node.negate else expr


def _pred(p: Pred) -> ColumnElement[Any]:
    column = col_expr(p.expr)
    if p.op == "is":
        return IS_VALUES[p.is_value or "null"](column)
    assert p.arg is not None
    if p.text_compare:
        column = sa.cast(column, pgtype("text"))
    if p.op in FTS_FUNCTIONS:
        fn = getattr(sa.func, FTS_FUNCTIONS[p.op])
        lang = sa.cast(text_param(p.language), pgtype("regconfig")) if p.language else None
        query = fn(lang, text_param(p.arg)) if lang is not None else fn(text_param(p.arg))
        if not p.tsvector:
            column = sa.func.to_tsvector(lang, column) if lang is not None else sa.func.to_tsvector(column)
        return column.op("@@", is_comparison=True)(query)
    value: Any = typed_param(p.arg, p.arg_type, p.list_arg)
    if p.op == "in":
        return column == sa.any_(value)
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
    if join is not None and join.function is not None and join.parent_type is not None:
        # a computed relationship: the rows the function returns for the parent row, nothing to join on
        # but the null row a ``RETURNS u`` function gives when it finds nothing
        rows = row_call(join.function, join.parent, join.parent_type).table_valued().alias(rel.alias)
        # (spelled out: SQLAlchemy would turn NOT (r IS NULL) into r IS NOT NULL, "no field null")
        return rows, [sa.literal_column(f"NOT ({rel.alias} IS NULL)", sa.Boolean)]
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
    if rel.distinct_on:
        sel = sel.ext(postgresql.distinct_on(*[col_expr(c) for c in rel.distinct_on]))
    if rel.order:
        sel = sel.order_by(*[order_by(t) for t in rel.order])
    if rel.limit is not None:
        sel = sel.limit(page_value(rel.limit))
    if rel.offset is not None:
        sel = sel.offset(page_value(rel.offset))
    return sel


def page_value(value: P | int) -> ColumnElement[Any]:
    """A page bound: an integer the planner validated, written as such; a slot otherwise."""
    if isinstance(value, P):
        return int_param(value)
    return sa.literal_column(str(int(value)))


AGGREGATES: dict[str, Callable[[ColumnElement[Any]], ColumnElement[Any]]] = {
    "sum": sa.func.sum, "avg": sa.func.avg, "min": sa.func.min, "max": sa.func.max, "count": sa.func.count,
}


def aggregated(rel: Rel) -> bool:
    """Whether ``rel`` selects an aggregate: then its plain outputs are its GROUP BY."""
    return any(isinstance(o, OutColumn) and o.aggregate for o in rel.outputs)


def _aggregate(out: OutColumn) -> ColumnElement[Any]:
    assert out.aggregate is not None
    expr = sa.func.count() if out.expr.column == "*" and not out.expr.json_path else AGGREGATES[out.aggregate](
        col_expr(out.expr))
    if out.aggregate_cast:
        if not CAST_TYPE.match(out.aggregate_cast):
            raise errors.invalid_query(f"Invalid cast type '{out.aggregate_cast}'", code="PGRST100")
        expr = sa.cast(expr, pgtype(out.aggregate_cast))
    return expr


def projection(rel: Rel, source: sa.FromClause) -> sa.Select[Any]:
    """SELECT the relation's outputs (columns and embeds) from ``source`` (aliased ``rel.alias``).

    With an aggregate among the outputs, every other output is grouped by: an embed's JSON by
    its text (json has no equality), turned back into json in the select list."""
    grouped = aggregated(rel)
    cols: list[ColumnElement[Any]] = []
    groups: list[ColumnElement[Any]] = []
    for out in rel.outputs:
        if isinstance(out, OutColumn):
            if out.aggregate:
                cols.append(_aggregate(out).label(out.key))
            else:
                expr = col_expr(out.expr)
                cols.append(expr.label(out.key))
                groups.append(expr)
            continue
        if out.key is None:
            continue  # an empty embed (``clients()``) only filters, through EXISTS in the WHERE
        source = source.outerjoin(embed_lateral(out), sa.true())
        if out.spread:
            spread: list[ColumnElement[Any]] = [sa.literal_column(f"{out.alias}.{q(k)}") for k in output_keys(out.rel)]
            cols.extend(c.label(k) for c, k in zip(spread, output_keys(out.rel), strict=True))
            groups.extend(spread)
            continue
        value: ColumnElement[Any] = sa.literal_column(f"{out.alias}.obj") if out.to_one else sa.func.coalesce(
            sa.literal_column(f"{out.alias}.arr"), sa.literal_column("'[]'::json"))
        if grouped:
            as_text = sa.cast(value, pgtype("text"))
            groups.append(as_text)
            value = sa.cast(as_text, pgtype("json"))
        cols.append(value.label(out.key))
    # no columns at all (only empty embeds, ``select=clients()``): PostgreSQL's zero-column
    # SELECT gives rows that json_agg renders as {}
    sel = sa.select(*cols).select_from(source)
    return sel.group_by(*groups) if grouped and groups else sel


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
    if emb.spread and emb.to_one:
        return inner.limit(sa.literal_column("1")).lateral(emb.alias)
    rows = inner.subquery("pgrst_r")
    if emb.spread:  # to-many: each key becomes an array, all in the rows' one order (correlated)
        return sa.select(*[sa.func.coalesce(sa.func.json_agg(sa.literal_column(f"pgrst_r.{q(k)}")),
                                            sa.literal_column("'[]'::json")).label(k)
                           for k in output_keys(rel)]).select_from(rows).lateral(emb.alias)
    row: ColumnElement[Any] = sa.literal_column("pgrst_r")
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
    if not has_embeds or aggregated(rel):  # groups are paged, not the rows they are made of
        return _page(projection(rel, base).where(*where), rel)
    # filter and page the parent rows first, so laterals run for the page only
    page = _page(sa.select(sa.literal_column(f"{rel.alias}.*")).select_from(base).where(*where), rel)
    sel = projection(rel, page.subquery(rel.alias))
    if rel.order:
        sel = sel.order_by(*[order_by(t) for t in rel.order])
    return sel


def filtered_rows(rel: Rel, source: sa.FromClause | None = None) -> sa.Select[Any]:
    """``SELECT 1 FROM <rel> WHERE <its filters>``: the rows a total counts (or the planner estimates)."""
    base = source if source is not None else table(rel.schema, rel.name, rel.alias)
    return sa.select(sa.literal_column("1")).select_from(base).where(*[predicate(w, rel) for w in rel.where])


def count_select(rel: Rel, source: sa.FromClause | None = None) -> sa.ScalarSelect[Any]:
    """``(SELECT count(*) FROM <rel> WHERE <its filters>)``; ``source`` is already aliased ``rel.alias``."""
    base = source if source is not None else table(rel.schema, rel.name, rel.alias)
    return sa.select(sa.func.count()).select_from(base).where(
        *[predicate(w, rel) for w in rel.where]).scalar_subquery()


def body_expr(single: bool) -> ColumnElement[Any]:
    """The response body: every row of ``pgrst_source`` as a JSON array (element 0 for a single object)."""
    row: ColumnElement[Any] = sa.literal_column("pgrst_source")
    if single:
        return sa.cast(sa.func.json_agg(row).op("->")(sa.literal_column("0")), pgtype("text"))
    return sa.cast(sa.func.coalesce(sa.func.json_agg(row), sa.literal_column("'[]'::json")), pgtype("text"))


def null_of(type_: str) -> ColumnElement[Any]:
    """A typed NULL, for the statement columns a shape does not fill."""
    return sa.cast(sa.null(), pgtype(type_))


def total_expr(mode: str, rel: Rel, limit: P | None, offset: P | None,
               source: sa.FromClause | None = None, estimate: ColumnElement[Any] | None = None,
               count_limit: P | None = None) -> ColumnElement[Any]:
    """The total behind X-Total-Count; every mode skips counting when the page itself proves it.

    A page shorter than the limit that is non-empty (or starts at 0) ends the result, so the
    total is ``offset + rows``; otherwise the count subquery runs (an initPlan: PostgreSQL
    evaluates it only when the CASE reaches it). With ``estimate`` (the planner's row estimate
    of the filtered rows, ``auth.estimate_rows``) "planned" answers the estimate and
    "estimated" counts only when the estimate is at most ``count_limit``. An estimate is
    returned negated, so one bigint column tells an exact total (>= 0) from an estimate (< 0).
    Without ``estimate`` every mode but "none" counts exactly.
    """
    if mode == "none":
        return null_of("bigint")
    rows = sa.func.count()
    off = int_param(offset) if offset is not None else sa.literal_column("0")
    zero: ColumnElement[Any] = sa.literal_column("0")
    short = sa.or_(rows > zero, off == zero)
    if limit is not None:
        short = sa.and_(rows < int_param(limit), short)
    counted: ColumnElement[Any] = count_select(rel, source)
    if estimate is not None and mode == "planned":
        counted = -estimate
    elif estimate is not None and mode == "estimated":
        assert count_limit is not None
        # the estimate is taken once (OFFSET 0 keeps the subquery, and its volatile call, whole)
        # and the exact count, another initPlan, runs only when the estimate is small enough
        planned = sa.select(estimate.label("rows")).offset(zero).subquery("pgrst_estimate")
        guess: ColumnElement[Any] = sa.literal_column("pgrst_estimate.rows")
        counted = sa.select(sa.case((guess <= int_param(count_limit), counted), else_=-guess)).select_from(
            planned).scalar_subquery()
    return sa.case((short, off + rows), else_=counted)
