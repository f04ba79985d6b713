"""The read planner: names, embeds, filters and order resolved against the catalog.

In:  request-model pieces (``request.Read``, select items, conditions, order terms), the
     ``Catalog`` and the ``Settings`` (limits).
Out: plan nodes (``plan.nodes``): a ``Rel`` tree for a read, and the ``Planner`` base class
     that the write and call planners (``plan/write.py``, ``plan/call.py``) extend.

Unknown tables are 404 TABLE_NOT_FOUND, unknown columns 400 INVALID_QUERY with a "did you
mean". Filter values stay text and are cast to the column type by PostgreSQL, as PostgREST
does; obviously malformed numbers, booleans and uuids are refused here with a clearer message,
and an operator that cannot apply to a column's type is refused before PostgreSQL would answer
"operator does not exist". A computed field (``f(table) RETURNS scalar``) resolves like a column;
an aggregate in ``select`` (``amount.sum()``, ``count()``) becomes an aggregated output, refused
with PGRST123 when ``Settings.aggregates`` is off. Relationships are resolved in ``plan/rels.py``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from .. import errors
from .. import request as rq
from ..catalog import Catalog, Column, Relationship, Table
from ..settings import Settings
from .nodes import (
    CAST_TYPE,
    BoolPred,
    ColExpr,
    EmbedPred,
    ExistsPred,
    Join,
    JsonKey,
    OrderTerm,
    OutColumn,
    OutEmbed,
    P,
    Pred,
    PredNode,
    ReadPlan,
    Rel,
    TotalMode,
)
from .rels import find_relationship
from .values import check_filter_value, pg_array_literal

# operator -> the column families it applies to (absent: every family). A mismatch is refused
# here; PostgreSQL would answer "operator does not exist" (42883), which maps to a 404.
OPERATOR_FAMILIES: dict[str, tuple[str, ...]] = {
    "cs": ("array", "range", "jsonb"),
    "cd": ("array", "range", "jsonb"),
    "ov": ("array", "range"),
    "sl": ("range",), "sr": ("range",), "nxr": ("range",), "nxl": ("range",), "adj": ("range",),
    "has_key": ("jsonb",), "has_any_keys": ("jsonb",), "has_all_keys": ("jsonb",),
}
KEY_LIST_OPS = ("has_any_keys", "has_all_keys")  # a list of keys, bound as text[]
PATTERN_OPS = ("like", "ilike", "match", "imatch")
FTS_OPS = ("fts", "plfts", "phfts", "wfts")

# count kind (``Prefer: count``, or "default" without one) -> (total mode, exact-count limit)
COUNT_KINDS: dict[str, Callable[[Settings], tuple[TotalMode, int | None]]] = {
    "exact": lambda s: ("auto", None),
    "planned": lambda s: ("planned", None),
    "estimated": lambda s: ("estimated", s.max_rows),
    "default": lambda s: ("estimated", s.exact_count_limit),
}


class Planner:
    """Shared state of one planning run: the parameter list and the SQL aliases handed out."""

    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.params: list[Any] = []  # values, in slot order
        self._aliases = 0  # last alias number used

    # ---- small tools

    def param(self, value: Any) -> P:
        self.params.append(value)
        return P(len(self.params) - 1)

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def schema(self, target: rq.Target) -> str:
        schema = target.schema or self.catalog.default_schema
        if schema not in self.catalog.schemas:
            raise errors.postgrest(406, "PGRST106", f"The schema '{schema}' is not exposed",
                                   details=f"Exposed schemas: {', '.join(self.catalog.schemas)}")
        return schema

    def table(self, target: rq.Target) -> Table:
        t = self.catalog.table(target.name, self.schema(target))
        if t is None:
            raise errors.table_not_found(target.name)
        return t

    def column(self, table: Table, name: str) -> Column:
        """A column, or a computed field (``f(table) RETURNS scalar``) seen as one."""
        col = table.column(name)
        if col is None:
            fn = self.catalog.computed_field(table, name)
            if fn is None:
                raise unknown_column(table, name)
            col = Column(name, fn.return_type, fn.return_udt, fn.return_category, fn.return_type.endswith("[]"))
        return col

    # ---- reads

    def page(self, limit: int | None, offset: int, default: bool) -> tuple[int | None, int]:
        """Apply the default and the 0..max rule to a root page (PostgREST: limit=0 is an empty page)."""
        if limit is None:
            limit = self.settings.default_limit if default else None
        elif limit > self.settings.max_rows:
            raise errors.invalid_query(f"limit must be between 1 and {self.settings.max_rows}, got {limit}")
        elif limit < 0:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable",
                                   details="Limit should be greater than or equal to zero.")
        return limit, max(offset, 0)

    def read(self, req: rq.Read) -> ReadPlan:
        table = self.table(req.target)
        limit, offset = self.page(req.limit, req.offset, req.default_limit)
        lim_p = self.param(limit) if limit is not None else None
        off_p = self.param(offset)
        rel = self.rel(table, "t0", req.select, req.where, req.order, limit, offset, distinct_on=req.distinct_on)
        if req.distinct_on and (req.want_total or req.count):
            raise errors.invalid_query("A count cannot be combined with distinctOn")
        total, count_limit = self.total(req)
        return ReadPlan(rel, total, body=not req.head, single=req.single, limit_value=lim_p, offset_value=off_p,
                        count_limit=None if count_limit is None else self.param(count_limit))

    def total(self, req: rq.Read) -> tuple[TotalMode, int | None]:
        """How the read's total is found, and the most rows the planner may expect for an exact count.

        ``Prefer: count`` keeps PostgREST's meaning (``estimated``: exact up to max rows); without
        it the total is exact when cheap (``GATEWAY_EXACT_COUNT_LIMIT``), or always with
        ``GATEWAY_COUNT=exact``."""
        if req.count is None and not req.want_total:
            return "none", None
        kind = req.count or ("exact" if self.settings.count == "exact" else "default")
        return COUNT_KINDS[kind](self.settings)

    def rel(self, table: Table, alias: str, select: Sequence[rq.SelectItem], where: Sequence[rq.Condition],
            order: Sequence[rq.Order], limit: int | None, offset: int | None,
            source: Literal["table", "cte"] = "table", distinct_on: Sequence[str] = ()) -> Rel:
        outputs: list[OutColumn | OutEmbed] = []
        embeds: dict[str, OutEmbed] = {}
        for item in select:
            if isinstance(item, rq.SelectStar):
                outputs.extend(OutColumn(c.name, ColExpr(alias, c.name)) for c in table.columns)
            elif isinstance(item, rq.SelectColumn):
                outputs.append(self.out_column(table, alias, item))
            else:
                emb = self.embed(table, alias, item)
                embeds.setdefault(item.relation, emb)
                embeds[item.key] = emb  # an alias wins over a relation name it shadows
                outputs.append(emb)
        preds = tuple(self.condition(table, alias, c, embeds) for c in where)
        preds += tuple(EmbedPred(e.alias, False, e.to_one) for e in outputs
                       if isinstance(e, OutEmbed) and e.inner)
        named = {item.key: item for item in select if isinstance(item, rq.SelectEmbed)}
        terms = tuple(self.order_term(table, alias, o, named.get(o.relation) if o.relation else None)
                      for o in order)
        distinct = tuple(ColExpr(alias, self.column(table, name).name) for name in distinct_on)
        leading = {(t.expr.column, t.expr.json_path, t.via) for t in terms[:len(distinct)]}
        if distinct and terms and leading != {(d.column, (), None) for d in distinct}:
            # PostgreSQL's rule: the DISTINCT ON columns must be the leftmost ORDER BY columns
            raise errors.invalid_query(
                f"distinctOn ({', '.join(distinct_on)}) must match the leading orderBy columns",
                hint=f"Order by {', '.join(distinct_on)} first, then by what picks the row kept for each")
        return Rel(table.schema, table.name, alias, tuple(outputs), preds, terms, limit, offset, source, distinct)

    def out_column(self, table: Table, alias: str, item: rq.SelectColumn) -> OutColumn:
        """A selected column, or an aggregate of one (``amount.sum()``, ``count()``, legacy ``count``)."""
        aggregate, field = item.aggregate, item.field
        if (aggregate is None and field.name == "count" and not field.json_path and item.cast is None
                and table.column("count") is None):
            aggregate, field = "count", rq.FieldRef(rq.COUNT_ROWS)  # ``messages(count)``: PostgREST's old form
        if aggregate is None:
            return OutColumn(item.alias or field.output_name, self.col_expr(table, alias, field, item.cast))
        if not self.settings.aggregates:
            raise errors.invalid_query("Use of aggregate functions is not allowed", code="PGRST123")
        if item.aggregate_cast is not None and not CAST_TYPE.match(item.aggregate_cast):
            raise errors.invalid_query(f"Invalid cast type '{item.aggregate_cast}'")
        expr = ColExpr(alias, rq.COUNT_ROWS) if field.name == rq.COUNT_ROWS else self.col_expr(
            table, alias, field, item.cast)
        return OutColumn(item.alias or aggregate, expr, aggregate, item.aggregate_cast)

    def embed(self, parent: Table, parent_alias: str, item: rq.SelectEmbed) -> OutEmbed:
        rel = self.relationship(parent, item.relation, item.hint)
        target = self.catalog.tables[rel.target]
        alias = self.alias("t")
        if item.limit is not None and item.limit < 0:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable")
        child = self.rel(target, alias, item.select, item.where, item.order, item.limit, item.offset or None,
                         distinct_on=item.distinct_on)
        if rel.function is not None:
            join = Join(parent_alias, (), function=rel.function, parent_type=parent.key)
        elif rel.cardinality == "m2m":
            assert rel.junction is not None
            join = Join(parent_alias, tuple(zip(rel.source_columns, rel.junction_source_columns, strict=True)),
                        junction=rel.junction, junction_alias=self.alias("j"),
                        junction_pairs=tuple(zip(rel.junction_target_columns, rel.target_columns, strict=True)))
        else:
            join = Join(parent_alias, tuple(zip(rel.source_columns, rel.target_columns, strict=True)),
                        target=rel.target, target_alias=alias)
        key = item.key if item.select else None  # ``clients()`` filters only and adds no key
        return OutEmbed(key, child, join, rel.to_one, item.spread, item.inner, self.alias("e"))

    def relationship(self, parent: Table, name: str, hint: str | None) -> Relationship:
        """Pick the one relationship ``name`` (+ ``hint``) means, PostgREST's way (``plan.rels``)."""
        return find_relationship(self.catalog, parent, name, hint)

    def col_expr(self, table: Table, alias: str, ref: rq.FieldRef, cast: str | None = None) -> ColExpr:
        col = self.column(table, ref.name)
        if cast is not None and not CAST_TYPE.match(cast):
            raise errors.invalid_query(f"Invalid cast type '{cast}'")
        path = tuple(JsonKey(self.param(s.key), s.as_text, _is_index(s.key)) for s in ref.json_path)
        computed = self.catalog.computed_field(table, col.name) if table.column(col.name) is None else None
        # jsonb operators throughout: a json (or composite, array) column is converted first
        return ColExpr(alias, col.name, path, wrap_jsonb=bool(path) and col.udt != "jsonb", cast=cast,
                       function=(computed.schema, computed.name) if computed else None,
                       row_type=table.key if computed else None)

    def order_term(self, table: Table, alias: str, o: rq.Order, embed: rq.SelectEmbed | None = None) -> OrderTerm:
        """An order term; ``author(email).desc`` names an embed of the select by alias or relation."""
        if o.relation is None:
            return OrderTerm(self.col_expr(table, alias, o.field), o.direction, o.nulls)
        rel = (self.relationship(table, embed.relation, embed.hint) if embed is not None
               else self.relationship(table, o.relation, o.hint))
        if not rel.to_one or rel.function is not None:
            raise errors.invalid_query(f"A related order on '{o.relation}' is not possible: it is to-many"
                                       if not rel.to_one else f"A related order on the computed relationship "
                                       f"'{o.relation}' is not supported", code="PGRST118")
        target = self.catalog.tables[rel.target]
        child_alias = self.alias("o")
        expr = self.col_expr(target, child_alias, o.field)
        join = Join(alias, tuple(zip(rel.source_columns, rel.target_columns, strict=True)),
                    target=rel.target, target_alias=child_alias)
        return OrderTerm(expr, o.direction, o.nulls, via=join)

    # ---- conditions

    def condition(self, table: Table, alias: str, cond: rq.Condition,
                  embeds: Mapping[str, OutEmbed]) -> PredNode:
        if isinstance(cond, rq.BoolExpr):
            if not cond.items:
                raise errors.invalid_query(f"Empty '{cond.op}' condition")
            return BoolPred(cond.op, tuple(self.condition(table, alias, c, embeds) for c in cond.items),
                            cond.negate)
        if isinstance(cond, rq.EmbedNull):
            emb = embeds.get(cond.relation)
            if emb is None:
                raise errors.invalid_query(f"'{cond.relation}' is not an embedded resource in select",
                                           code="PGRST108")
            return EmbedPred(emb.alias, cond.is_null, emb.to_one)
        if isinstance(cond, rq.RelatedFilter):
            return self.related(table, alias, cond)
        return self.filter(table, alias, cond)

    def related(self, table: Table, alias: str, cond: rq.RelatedFilter) -> ExistsPred:
        """A filter through a relationship: EXISTS a related row matching the nested conditions."""
        rel = self.relationship(table, cond.relation, cond.hint)
        if rel.cardinality == "m2m":
            raise errors.invalid_query(f"Filtering through the many-to-many relation '{cond.relation}' is not "
                                       "supported; filter through the junction table")
        target = self.catalog.tables[rel.target]
        child = self.alias("x")
        where = tuple(self.condition(target, child, c, {}) for c in cond.where)
        return ExistsPred(Join(alias, tuple(zip(rel.source_columns, rel.target_columns, strict=True)),
                               target=rel.target, target_alias=child), where)

    def filter(self, table: Table, alias: str, f: rq.Filter) -> Pred:
        col = self.column(table, f.field.name)
        expr = self.col_expr(table, alias, f.field)
        family = _family(col, expr)
        if family == "jsonb" and not expr.json_path and col.udt != "jsonb":
            expr = ColExpr(expr.rel, expr.column, cast="jsonb")  # json has no operators: compare as jsonb
        target_type = expr.value_type or ("jsonb" if family == "jsonb" else col.type)
        op = f.op
        allowed = OPERATOR_FAMILIES.get(op)
        if allowed is not None and family not in allowed:
            raise errors.invalid_query(
                f"Operator '{op}' does not apply to column '{f.field.name}' of type {col.type}",
                hint=f"'{op}' works on {', '.join(allowed)} columns")
        if op == "is":
            return Pred(expr, op, None, "", f.negate, is_value=str(f.value).lower())
        if op in PATTERN_OPS:
            values = f.value if f.modifier else (f.value,)
            arg = self.param(list(values) if f.modifier else values[0])
            return Pred(expr, op, arg, "text[]" if f.modifier else "text", f.negate, f.modifier,
                        text_compare=family != "text", list_arg=bool(f.modifier))
        if op in FTS_OPS:
            lang = self.param(f.language) if f.language else None
            return Pred(expr, op, self.param(str(f.value)), "text", f.negate, language=lang,
                        text_compare=family not in ("text", "tsvector", "jsonb"), tsvector=family == "tsvector")
        if op in KEY_LIST_OPS:
            return Pred(expr, op, self.param([_text(v) for v in f.value]), "text[]", f.negate, list_arg=True)
        if op == "has_key":
            return Pred(expr, op, self.param(_text(f.value)), "text", f.negate)
        if op == "in" or f.modifier:
            values = tuple(f.value)
            for v in values:
                check_filter_value(col if not expr.value_type else None, f.field.name, v)
            return Pred(expr, op, self.param([_text(v) for v in values]), _array_of(target_type), f.negate,
                        f.modifier, list_arg=True)
        value = f.value
        if isinstance(value, tuple | list):  # GraphQL lists arrive as tuples
            value = pg_array_literal(value)
        if op not in OPERATOR_FAMILIES:
            check_filter_value(col if not expr.value_type else None, f.field.name, value)
        return Pred(expr, op, self.param(_text(value)), target_type, f.negate)


def _text(value: Any) -> str | None:
    """A filter value as the text PostgreSQL's input functions read (GraphQL sends typed values)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def unknown_column(table: Table, name: str) -> errors.GatewayError:
    close = difflib.get_close_matches(name, [c.name for c in table.columns], n=1)
    return errors.invalid_query(
        f"Column '{name}' does not exist in '{table.name}'" + (f". Did you mean '{close[0]}'?" if close else ""),
        code="42703", hint=f"Perhaps you meant to reference the column \"{table.name}.{close[0]}\"." if close
        else None)


def _family(col: Column, expr: ColExpr) -> str:
    """What a filter compares: a JSON path's jsonb/text, else the column's array-ness or category."""
    if expr.value_type is not None:
        return "jsonb" if expr.value_type == "jsonb" else "text"
    if col.is_array:
        return "array"
    return "jsonb" if col.category == "json" else col.category


def _is_index(key: str) -> bool:
    return key.lstrip("-").isdigit()


def _array_of(type_: str) -> str:
    return type_ if type_.endswith("[]") else f"{type_}[]"
