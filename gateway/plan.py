"""The planner: request model + catalog -> plan. Pure: no I/O, no SQL text.

In:  a ``request.Request`` (from either front end), the current ``Catalog`` and
     the ``Settings`` (limits).
Out: ``Planned(shape, params)``. ``shape`` is a hashable plan tree in which every
     caller-supplied value is a ``P`` slot; ``params`` holds the values, in slot
     order, already converted to what the SQL expects (text, text[], JSON text,
     int). Two requests that differ only in values have equal shapes, so
     ``sql.py`` compiles each shape once.

Names are resolved here (unknown table -> 404 TABLE_NOT_FOUND, unknown column ->
400 INVALID_QUERY with a "did you mean"), relationships are chosen for embeds,
body values are checked against column types (-> 400 VALIDATION_ERROR naming the
field) and limits are enforced. Filter values stay text and are cast to the
column type by PostgreSQL, as PostgREST does; obviously malformed values for
numeric, boolean and uuid columns are refused here with a clearer message.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from . import errors
from . import request as rq
from .catalog import Catalog, Column, Function, Relationship, Table
from .planvalues import check_body_value, check_filter_value, pg_array_literal
from .settings import Settings

# --------------------------------------------------------------------------- plan nodes


@dataclass(frozen=True)
class P:
    """A parameter slot: ``params[index]`` at execution."""

    index: int


@dataclass(frozen=True)
class JsonKey:
    key: P  # the key (text) or index (digits) as a parameter
    as_text: bool  # ->> rather than ->
    is_index: bool  # bind as integer


@dataclass(frozen=True)
class ColExpr:
    """A column of a relation alias, optionally a JSON path into it and a cast."""

    rel: str  # SQL alias of the relation ("t0")
    column: str
    json_path: tuple[JsonKey, ...] = ()
    wrap_jsonb: bool = False  # non-json column under a JSON path: to_jsonb(col) first
    cast: str | None = None  # ``::type`` in select (type text checked by the parser's grammar)

    @property
    def value_type(self) -> str | None:
        """The SQL type a compared value must be cast to; None: keep the column's."""
        if not self.json_path:
            return None
        return "text" if self.json_path[-1].as_text else "jsonb"


@dataclass(frozen=True)
class Pred:
    expr: ColExpr
    op: str  # operator name from request.FilterOp
    arg: P | None  # None for ``is``
    arg_type: str  # SQL type the text parameter is cast to
    negate: bool = False
    modifier: Literal["any", "all"] | None = None
    is_value: str | None = None  # for ``is``: null/not_null/true/false/unknown
    language: P | None = None  # fts configuration
    text_compare: bool = False  # like/match on a non-text column: compare its text form
    tsvector: bool = True  # fts on a tsvector column; False: to_tsvector(column) first


@dataclass(frozen=True)
class BoolPred:
    op: Literal["and", "or"]
    items: tuple[PredNode, ...]
    negate: bool = False


@dataclass(frozen=True)
class EmbedPred:
    embed: str  # SQL alias of the embed's lateral
    is_null: bool
    to_one: bool


PredNode = Pred | BoolPred | EmbedPred


@dataclass(frozen=True)
class OrderTerm:
    expr: ColExpr
    direction: Literal["asc", "desc"] | None
    nulls: Literal["first", "last"] | None
    via: Join | None = None  # ordering by a to-one embed's column: a correlated subquery


@dataclass(frozen=True)
class Join:
    """How an embedded relation correlates with its parent."""

    parent: str  # parent's SQL alias
    pairs: tuple[tuple[str, str], ...]  # (parent column, child column) — or junction columns for m2m
    junction: tuple[str, str] | None = None  # (schema, table) for m2m
    junction_alias: str | None = None
    junction_pairs: tuple[tuple[str, str], ...] = ()  # (junction column, child column)
    target: tuple[str, str] | None = None  # child (schema, table), for order-by subqueries
    target_alias: str | None = None


@dataclass(frozen=True)
class OutColumn:
    key: str  # output JSON key
    expr: ColExpr


@dataclass(frozen=True)
class OutEmbed:
    key: str | None  # output key; None: the embed adds no key (``clients()``)
    rel: Rel
    join: Join
    to_one: bool
    spread: bool = False
    inner: bool = False
    alias: str = ""  # SQL alias of the lateral subquery ("e1")


@dataclass(frozen=True)
class Rel:
    """A relation to read rows from, with its outputs, filters, order and page."""

    schema: str
    name: str
    alias: str  # SQL alias ("t0")
    outputs: tuple[OutColumn | OutEmbed, ...]
    where: tuple[PredNode, ...] = ()
    order: tuple[OrderTerm, ...] = ()
    limit: P | None = None
    offset: P | None = None
    source: Literal["table", "cte"] = "table"  # "cte": rows come from the write's RETURNING


TotalMode = Literal["none", "exact", "auto"]


@dataclass(frozen=True)
class ReadPlan:
    rel: Rel
    total: TotalMode  # "auto": exact, but skipped when the page itself proves the total
    body: bool  # False for HEAD: no JSON aggregation
    single: bool
    limit_value: P | None  # the page size and offset again, for the total shortcut
    offset_value: P | None
    estimate: bool = False  # planned/estimated count: the pipeline asks EXPLAIN afterwards


@dataclass(frozen=True)
class WritePlan:
    kind: Literal["insert", "update", "delete"]
    schema: str
    name: str
    columns: tuple[str, ...]  # payload columns written
    payload: P | None  # JSON text of the row(s)
    where: tuple[PredNode, ...] = ()  # update/delete filters, on alias "t0"
    on_conflict: tuple[str, ...] | None = None
    conflict_action: Literal["update", "nothing"] | None = None
    update_columns: tuple[str, ...] = ()
    defaults: tuple[tuple[str, str], ...] = ()  # (column, DEFAULT expression) for missing=default
    returning: Rel | None = None  # shape of the returned rows (source="cte")
    single: bool = False
    count_inserted: bool = False  # report how many rows were inserted (upsert 201 vs 200)


@dataclass(frozen=True)
class CallPlan:
    schema: str
    name: str
    args: tuple[tuple[str, str, bool], ...]  # (name, SQL type, variadic)
    payload: P  # JSON object of the arguments
    kind: Literal["scalar", "setof_scalar", "row", "setof_row", "void"]
    returning: Rel | None  # shaping of row results (source="cte")
    scalar_type: str = "text"
    single: bool = False
    total: TotalMode = "none"
    limit_value: P | None = None
    offset_value: P | None = None


Shape = ReadPlan | WritePlan | CallPlan


@dataclass
class Planned:
    shape: Shape
    params: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point


def plan(req: rq.Request, catalog: Catalog, settings: Settings) -> Planned:
    """Resolve ``req`` against ``catalog``; raise GatewayError for anything invalid."""
    return _Planner(catalog, settings).plan(req)


class _Planner:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.params: list[Any] = []
        self._aliases = 0

    # ---- small tools

    def param(self, value: Any) -> P:
        self.params.append(value)
        return P(len(self.params) - 1)

    def alias(self, prefix: str) -> str:
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    def table(self, target: rq.Target) -> Table:
        schema = target.schema or self.catalog.default_schema
        if schema not in self.catalog.schemas:
            raise errors.GatewayError(406, "PGRST106", f"The schema '{schema}' is not exposed",
                                      code="PGRST106",
                                      details=f"Exposed schemas: {', '.join(self.catalog.schemas)}")
        t = self.catalog.table(target.name, schema)
        if t is None:
            raise errors.table_not_found(target.name)
        return t

    def column(self, table: Table, name: str) -> Column:
        col = table.column(name)
        if col is None:
            raise unknown_column(table, name)
        return col

    def plan(self, req: rq.Request) -> Planned:
        if isinstance(req, rq.Read):
            shape: Shape = self.read(req)
        elif isinstance(req, rq.Insert):
            shape = self.insert(req)
        elif isinstance(req, rq.Update):
            shape = self.update(req)
        elif isinstance(req, rq.Delete):
            shape = self.delete(req)
        else:
            shape = self.call(req)
        return Planned(shape, self.params)

    # ---- reads

    def page(self, limit: int | None, offset: int, default: bool) -> tuple[int | None, int]:
        """Apply the default and the 1..max rule to a root page."""
        if limit is None:
            limit = self.settings.default_limit if default else None
        elif limit > self.settings.max_rows:
            raise errors.invalid_query(f"limit must be between 1 and {self.settings.max_rows}, got {limit}")
        elif limit < 0:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable")
        if offset < 0:
            offset = 0
        return limit, offset

    def read(self, req: rq.Read) -> ReadPlan:
        table = self.table(req.target)
        limit, offset = self.page(req.limit, req.offset, req.default_limit)
        lim_p = self.param(limit) if limit is not None else None
        off_p = self.param(offset)
        rel = self.rel(table, "t0", req.select, req.where, req.order, lim_p, off_p)
        total: TotalMode = "auto" if (req.want_total or req.count == "exact") else "none"
        estimate = req.count in ("planned", "estimated")
        if estimate:
            total = "none"
        return ReadPlan(rel, total, body=not req.head, single=req.single,
                        limit_value=lim_p, offset_value=off_p, estimate=estimate)

    def rel(self, table: Table, alias: str, select: Sequence[rq.SelectItem], where: Sequence[rq.Condition],
            order: Sequence[rq.Order], limit: P | None, offset: P | None,
            source: Literal["table", "cte"] = "table") -> Rel:
        outputs: list[OutColumn | OutEmbed] = []
        embeds: dict[str, OutEmbed] = {}
        for item in select:
            if isinstance(item, rq.SelectStar):
                outputs.extend(OutColumn(c.name, ColExpr(alias, c.name)) for c in table.columns)
            elif isinstance(item, rq.SelectColumn):
                expr = self.col_expr(table, alias, item.field, item.cast)
                outputs.append(OutColumn(item.alias or item.field.output_name, expr))
            else:
                emb = self.embed(table, alias, item)
                embeds[item.key] = emb
                outputs.append(emb)
        preds = tuple(self.condition(table, alias, c, embeds) for c in where)
        preds += tuple(EmbedPred(e.alias, False, e.to_one) for e in embeds.values() if e.inner)
        terms = tuple(self.order_term(table, alias, o) for o in order)
        return Rel(table.schema, table.name, alias, tuple(outputs), preds, terms, limit, offset, source)

    def embed(self, parent: Table, parent_alias: str, item: rq.SelectEmbed) -> OutEmbed:
        rel = self.relationship(parent, item.relation, item.hint)
        target = self.catalog.tables[rel.target]
        alias = self.alias("t")
        if item.limit is not None and item.limit < 0:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable")
        lim = self.param(item.limit) if item.limit is not None else None
        off = self.param(item.offset) if item.offset else None
        child = self.rel(target, alias, item.select, item.where, item.order, lim, off)
        if rel.cardinality == "m2m":
            assert rel.junction is not None
            join = Join(parent_alias, tuple(zip(rel.source_columns, rel.junction_source_columns, strict=True)),
                        junction=rel.junction, junction_alias=self.alias("j"),
                        junction_pairs=tuple(zip(rel.junction_target_columns, rel.target_columns, strict=True)))
        else:
            join = Join(parent_alias, tuple(zip(rel.source_columns, rel.target_columns, strict=True)),
                        target=rel.target, target_alias=alias)
        if item.spread and not rel.to_one:
            raise errors.invalid_query(f"A spread embed must be to-one; '{item.relation}' is to-many",
                                       code="PGRST119")
        key = item.key if item.select else None
        return OutEmbed(key, child, join, rel.to_one, item.spread, item.inner, self.alias("e"))

    def relationship(self, parent: Table, name: str, hint: str | None) -> Relationship:
        """Pick the one relationship ``name`` (+ ``hint``) means, PostgREST's way."""
        rels = self.catalog.relationships_of(parent)
        by_table = [r for r in rels if r.target[1] == name and r.target[0] in self.catalog.schemas]
        # a FK column or constraint name used as the relation name (``author_id(...)``, ``fk_author(...)``)
        by_fk = [r for r in rels if r.cardinality in ("m2o", "o2o") and name in (
            r.constraint, *(r.source_columns if len(r.source_columns) == 1 else ()))]
        candidates = by_table or by_fk
        if hint:
            candidates = [r for r in candidates if hint in (
                r.constraint, r.junction_constraint,
                r.junction[1] if r.junction else None,
                *(r.source_columns if len(r.source_columns) == 1 else ()),
                *(r.target_columns if len(r.target_columns) == 1 else ()))]
        if not candidates:
            names = sorted({r.target[1] for r in rels})
            close = difflib.get_close_matches(name, names, n=1)
            raise errors.invalid_query(
                f"Could not find a relationship between '{parent.name}' and '{name}' in the schema cache",
                code="PGRST200", hint=f"Perhaps you meant '{close[0]}'" if close else None)
        if len(candidates) > 1:
            # a direct FK beats a junction route when both exist (PostgREST prefers non-m2m)
            direct = [r for r in candidates if r.cardinality != "m2m"]
            if len(direct) == 1:
                return direct[0]
            details = "; ".join(f"{r.cardinality} via {r.constraint}" for r in candidates)
            raise errors.postgrest(
                300, "PGRST201",
                f"Could not embed because more than one relationship was found for '{parent.name}' and '{name}'",
                details=details, hint=f"Try changing '{name}' to one of: "
                + ", ".join(f"{name}!{r.constraint}" for r in candidates))
        return candidates[0]

    def col_expr(self, table: Table, alias: str, ref: rq.FieldRef, cast: str | None = None) -> ColExpr:
        col = self.column(table, ref.name)
        path = tuple(JsonKey(self.param(s.key), s.as_text, _is_index(s.key)) for s in ref.json_path)
        return ColExpr(alias, col.name, path, wrap_jsonb=bool(path) and col.category != "json", cast=cast)

    def order_term(self, table: Table, alias: str, o: rq.Order) -> OrderTerm:
        if o.relation is None:
            return OrderTerm(self.col_expr(table, alias, o.field), o.direction, o.nulls)
        rel = self.relationship(table, o.relation, None)
        if not rel.to_one:
            raise errors.invalid_query(f"A related order on '{o.relation}' is not possible: it is to-many",
                                       code="PGRST118")
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
        return self.filter(table, alias, cond)

    def filter(self, table: Table, alias: str, f: rq.Filter) -> Pred:
        col = self.column(table, f.field.name)
        expr = self.col_expr(table, alias, f.field)
        target_type = expr.value_type or col.type
        category = "text" if expr.value_type == "text" else ("json" if expr.value_type else col.category)
        op = f.op
        if op == "is":
            return Pred(expr, op, None, "", f.negate, is_value=str(f.value).lower())
        if op in ("like", "ilike", "match", "imatch"):
            text_compare = category != "text"
            values = f.value if f.modifier else (f.value,)
            arg = self.param(list(values) if f.modifier else values[0])
            return Pred(expr, op, arg, "text[]" if f.modifier else "text", f.negate, f.modifier,
                        text_compare=text_compare)
        if op in ("fts", "plfts", "phfts", "wfts"):
            lang = self.param(f.language) if f.language else None
            return Pred(expr, op, self.param(str(f.value)), "text", f.negate, language=lang,
                        tsvector=category == "tsvector")
        if op == "in" or f.modifier:
            values = tuple(f.value)
            for v in values:
                check_filter_value(col if not expr.value_type else None, f.field.name, v)
            elem_type = target_type if not col.is_array or expr.value_type else col.type
            return Pred(expr, op, self.param(list(values)), _array_of(elem_type), f.negate, f.modifier)
        if op in ("cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj"):
            value = f.value
            if isinstance(value, tuple | list):  # GraphQL lists arrive as tuples
                value = pg_array_literal(value)
            return Pred(expr, op, self.param(str(value)), target_type, f.negate)
        check_filter_value(col if not expr.value_type else None, f.field.name, f.value)
        return Pred(expr, op, self.param(str(f.value)), target_type, f.negate)

    # ---- writes

    def returning(self, table: Table, select: Sequence[rq.SelectItem], wanted: bool) -> Rel | None:
        if not wanted:
            return None
        return self.rel(table, "t0", select, (), (), None, None, source="cte")

    def writable(self, table: Table, verb: str) -> None:
        allowed = {"insert": table.insertable, "update": table.updatable, "delete": table.deletable}[verb]
        if not allowed:
            raise errors.postgrest(405, "PGRST117", f"Cannot {verb} into '{table.name}': it is not {verb}able")

    def body_columns(self, table: Table, keys: Sequence[str]) -> tuple[str, ...]:
        for k in keys:
            if table.column(k) is None:
                close = difflib.get_close_matches(k, [c.name for c in table.columns], n=1)
                hint = f" Did you mean '{close[0]}'?" if close else ""
                raise errors.validation_error(
                    f"Column '{k}' of table '{table.name}' does not exist.{hint}", code="PGRST204")
        return tuple(keys)

    def clean_row(self, table: Table, row: Mapping[str, Any], columns: Sequence[str]) -> dict[str, Any]:
        """Check each value against its column type; drop "" for non-text columns (InsForge rule)."""
        out: dict[str, Any] = {}
        for name in columns:
            if name not in row:
                continue
            value = row[name]
            col = table.column_map[name]
            if value == "" and col.category not in ("text", "enum", "other") and not col.is_array:
                continue
            check_body_value(col, value)
            out[name] = value
        return out

    def insert(self, req: rq.Insert) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "insert")
        if req.columns is not None:
            columns = self.body_columns(table, req.columns)
        else:
            keys: dict[str, None] = {}
            for row in req.rows:
                keys.update(dict.fromkeys(row))
            columns = self.body_columns(table, list(keys))
        rows = [self.clean_row(table, r, columns) for r in req.rows]
        # "" values dropped for non-text columns leave those columns to their defaults
        present: dict[str, None] = {}
        for r in rows:
            present.update(dict.fromkeys(r))
        columns = tuple(c for c in columns if c in present)
        generated = [c for c in columns if table.column_map[c].is_generated]
        if generated:
            raise errors.validation_error(f"Column '{generated[0]}' is generated and cannot be written",
                                          code="428C9")
        on_conflict: tuple[str, ...] | None = None
        action: Literal["update", "nothing"] | None = None
        update_cols: tuple[str, ...] = ()
        if req.resolution or req.put:
            on_conflict = self.conflict_target(table, req.on_conflict, columns)
            action = "nothing" if req.resolution == "ignore-duplicates" else "update"
            chosen = req.update_columns if req.update_columns is not None else columns
            update_cols = tuple(c for c in self.body_columns(table, chosen) if c not in on_conflict)
            if action == "update" and not update_cols:
                action = "nothing"  # nothing to overwrite: keep the existing row
        if req.put:
            self.check_put(table, req, rows)
        defaults: tuple[tuple[str, str], ...] = ()
        if req.missing_default:
            # an absent key takes the column DEFAULT; without missing=default it is NULL (PostgREST)
            defaults = tuple((c, table.column_map[c].default or "NULL") for c in columns
                             if table.column_map[c].default is not None)
        payload = self.param(orjson.dumps(rows).decode())
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("insert", table.schema, table.name, columns, payload, (), on_conflict, action,
                         update_cols, defaults, returning, req.single, count_inserted=bool(req.resolution))

    def conflict_target(self, table: Table, named: Sequence[str] | None, columns: Sequence[str]) -> tuple[str, ...]:
        """``on_conflict`` as given, else the PK when the body carries it, else a unique key it carries."""
        if named:
            for c in named:
                self.column(table, c)
            return tuple(named)
        keys = [table.primary_key, *table.unique] if table.primary_key else list(table.unique)
        cols = set(columns)
        for key in keys:
            if key and set(key) <= cols:
                return tuple(key)
        if table.primary_key:
            return table.primary_key
        raise errors.invalid_query(
            f"Upsert needs a unique key: '{table.name}' has no primary key or unique constraint the body covers",
            code="PGRST100")

    def check_put(self, table: Table, req: rq.Insert, rows: Sequence[Mapping[str, Any]]) -> None:
        pk = set(table.primary_key)
        eqs = {f.field.name: f.value for f in req.put_filters
               if isinstance(f, rq.Filter) and f.op == "eq" and not f.negate}
        if not pk or set(eqs) != pk or len(req.put_filters) != len(pk):
            raise errors.postgrest(405, "PGRST105",
                                   "Filters must include all and only primary key columns with 'eq' operators")
        if len(rows) != 1 or any(str(rows[0].get(k)) != str(v) for k, v in eqs.items()):
            raise errors.postgrest(400, "PGRST115", "Payload values do not match URL in primary key column(s)")

    def update(self, req: rq.Update) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "update")
        columns = self.body_columns(table, list(req.values))
        row = self.clean_row(table, req.values, columns)
        columns = tuple(c for c in columns if c in row)
        payload = self.param(orjson.dumps(row).decode())
        where = tuple(self.condition(table, "t0", c, {}) for c in req.where)
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("update", table.schema, table.name, columns, payload, where,
                         returning=returning, single=req.single)

    def delete(self, req: rq.Delete) -> WritePlan:
        table = self.table(req.target)
        self.writable(table, "delete")
        where = tuple(self.condition(table, "t0", c, {}) for c in req.where)
        returning = self.returning(table, req.returning, req.return_rows or req.single)
        return WritePlan("delete", table.schema, table.name, (), None, where, returning=returning,
                         single=req.single)

    # ---- functions

    def call(self, req: rq.Call) -> CallPlan:
        schema = req.target.schema or self.catalog.default_schema
        if schema not in self.catalog.schemas:
            raise errors.GatewayError(406, "PGRST106", f"The schema '{schema}' is not exposed", code="PGRST106")
        fn, args = self.resolve_function(req, schema)
        if req.read_only and fn.volatility == "volatile" and not req.args_from_query:
            pass  # HEAD/GET of a volatile function runs READ ONLY; a write fails with 25006 -> 405
        arg_specs = tuple((a.name, a.type, a.mode == "variadic") for a in fn.input_args if a.name in args)
        payload = self.param(orjson.dumps(args).decode())
        if fn.return_kind == "void":
            kind: Literal["scalar", "setof_scalar", "row", "setof_row", "void"] = "void"
        elif fn.return_kind == "scalar":
            kind = "setof_scalar" if fn.returns_set else "scalar"
        else:
            kind = "setof_row" if fn.returns_set else "row"
        returning = None
        lim_p = off_p = None
        total: TotalMode = "none"
        if kind in ("row", "setof_row"):
            rtable = self.function_row_table(fn)
            limit, offset = self.page(req.limit, req.offset, default=False)
            lim_p = self.param(limit) if limit is not None else None
            off_p = self.param(offset)
            returning = self.rel(rtable, "t0", req.select, req.where, req.order, lim_p, off_p, source="cte")
            total = "auto" if req.count else "none"
        elif req.where or req.order:
            raise errors.invalid_query(f"Function '{fn.name}' returns a scalar: filters and order do not apply")
        return CallPlan(fn.schema, fn.name, arg_specs, payload, kind, returning,
                        scalar_type=fn.return_type.removeprefix("SETOF "), single=req.single or kind == "row",
                        total=total,
                        limit_value=lim_p, offset_value=off_p)

    def function_row_table(self, fn: Function) -> Table:
        """The row type of a row-returning function as a Table (for select/filter/order/embeds)."""
        if fn.return_table and fn.return_table in self.catalog.tables:
            return self.catalog.tables[fn.return_table]
        return Table(fn.schema, fn.name, "view", fn.return_columns)

    def resolve_function(self, req: rq.Call, schema: str) -> tuple[Function, dict[str, Any]]:
        """Overload resolution by argument names (PostgREST §10)."""
        overloads = self.catalog.function(req.target.name, schema)
        if not overloads:
            close = difflib.get_close_matches(req.target.name, [n for (s, n) in self.catalog.functions
                                                                 if s == schema], n=1)
            raise errors.function_not_found(req.target.name, details=f"Did you mean '{close[0]}'?" if close else None)
        given = dict(req.args)
        matches: list[Function] = []
        for fn in overloads:
            names = {a.name for a in fn.input_args}
            required = {a.name for a in fn.input_args if not a.has_default}
            if set(given) <= names and required <= set(given):
                matches.append(fn)
        if not matches and req.raw_body is not None:
            for fn in overloads:  # one unnamed json/jsonb parameter takes the whole body
                ins = fn.input_args
                if len(ins) == 1 and ins[0].name == "" and ins[0].category == "json":
                    return fn, {"": req.raw_body}
        if not matches:
            raise errors.function_not_found(
                req.target.name, details=f"No function matches the arguments ({', '.join(sorted(given))})")
        if len(matches) > 1:
            # prefer the overload whose parameters are exactly the given names
            exact = [fn for fn in matches if {a.name for a in fn.input_args} == set(given)]
            if len(exact) != 1:
                raise errors.postgrest(300, "PGRST203", f"Could not choose the best candidate function for "
                                       f"'{req.target.name}'", details=", ".join(
                                           f"{f.name}({f.arguments_text})" for f in matches))
            matches = exact
        fn = matches[0]
        for a in fn.input_args:  # check JSON body values against argument types
            if a.name in given and not req.args_from_query:
                check_body_value(Column(a.name, a.type, a.udt, a.category, a.type.endswith("[]")), given[a.name])
        return fn, given


# --------------------------------------------------------------------------- helpers


def unknown_column(table: Table, name: str) -> errors.GatewayError:
    close = difflib.get_close_matches(name, [c.name for c in table.columns], n=1)
    return errors.invalid_query(
        f"Column '{name}' does not exist in '{table.name}'" + (f". Did you mean '{close[0]}'?" if close else ""),
        code="42703", hint=f"Perhaps you meant to reference the column \"{table.name}.{close[0]}\"." if close
        else None)


def _is_index(key: str) -> bool:
    return key.lstrip("-").isdigit()


def _array_of(type_: str) -> str:
    return type_ if type_.endswith("[]") else f"{type_}[]"
