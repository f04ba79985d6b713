"""The GraphQL schema generated from one catalog snapshot.

In:  a ``Catalog`` and the ``Settings``.
Out: ``CatalogSchema`` — the graphql-core schema plus its document cache — built by
     ``build_schema``. Every generated field carries its kind (``translate.py``) in
     ``extensions["gateway"]``, which is all the resolvers need.

Per table or view ``posts`` (type ``Posts``; naming rules in ``names.py``):

    type Posts { <columns>  <to-one relations>: Users
                 <to-many relations>(filter, orderBy, limit, offset): [Comments!]! }
    input PostsFilter { <column>: <Scalar>Comparison  and: [PostsFilter!]  or: [PostsFilter!]  not: PostsFilter }
    input PostsOrderBy { <column>: OrderDirection }         enum PostsColumn { <columns> }
    input PostsInsertInput / PostsSetInput { <writable columns> }
    input PostsOnConflict { columns: [PostsColumn!]!  update: [PostsColumn!] }
    Query:    posts(filter, orderBy, limit, offset): [Posts!]!   posts_count(filter): Int!   posts_by_pk(<pk>): Posts
    Mutation: insert_posts(objects: [PostsInsertInput!]!, on_conflict: PostsOnConflict): [Posts!]!
              insert_posts_one(object: PostsInsertInput!, on_conflict: PostsOnConflict): Posts
              update_posts(filter: PostsFilter!, set: PostsSetInput, inc: PostsIncInput, atMost: Int): [Posts!]!
              update_posts_by_pk(<pk>, set: PostsSetInput, inc: PostsIncInput): Posts
              delete_posts(filter: PostsFilter!, atMost: Int): [Posts!]!
              delete_posts_by_pk(<pk>): Posts

``inc`` adds to numeric columns (``views = views + n``); ``atMost`` bounds the rows an update or
delete may change (default: unlimited for admins, ``GATEWAY_GRAPHQL_MAX_AFFECTED`` for everyone
else): more fails the whole operation and changes nothing. The ``*_by_pk`` and ``*_one`` fields
answer the row, or null when none matched (or an ``on_conflict`` skipped it).

One schema per role (``roles.build_schemas``): each shows only the tables, columns and functions
that role holds privileges on, as pg_graphql does.

Always present: ``admin { ... }`` on Query and ``migrate(version, name, sql)`` on
Mutation, for admins (``admin.py``).

Functions: STABLE/IMMUTABLE ones are Query fields, VOLATILE ones Mutation fields;
arguments keep their names and are required unless they have a default; overloads
take ``_2``, ``_3``... in argument-count order. ``on_conflict`` without ``update`` means
ignore the conflicting rows; with ``update`` those columns are overwritten (Hasura).

Objects are built with graphql-core directly, not as Strawberry types, for build time
(200 tables of 9-10 columns and 1-2 FKs, median of 9 builds on the 2-core machine):
graphql-core 0.26 s; ``strawberry.type``/``strawberry.input`` classes made with ``type()``
(explicit StrawberryFields, resolved annotations, shared comparison inputs) 5.3 s, 2.7 s
with the cyclic GC paused; StrawberryObjectDefinitions built directly with pre-resolved
annotations 3.0 s, 1.1 s with the GC paused, but with 7x the GC-tracked objects (322k vs
46k; 42 vs 9 MB), so each full collection takes ~350 ms instead of ~80 ms while it lives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLEnumValue,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInt,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    validate_schema,
)

from ..catalog import Catalog, Column, Function, Relationship, Table, TypeCategory
from ..plan.write import NUMERIC
from ..settings import Settings
from . import admin, aggregate, limits, merge, names, resolve
from .scalars import ENUM_OPERATORS, KEY_OPERATORS, LIST_OPERATORS, OPERATORS, OUTPUT_CAST, SCALARS, JSONScalar
from .translate import GATEWAY, ColumnField, RelationAggregate, RelationField, RootField, RootKind, TableShape

log = logging.getLogger("gateway.graphql")


@dataclass(frozen=True)
class CatalogSchema:
    """A catalog snapshot's GraphQL schema; swapped whole with the catalog."""

    catalog: Catalog  # the snapshot every request on this schema plans against
    settings: Settings
    schema: GraphQLSchema
    documents: limits.Documents = field(compare=False)  # parsed + validated documents, per query text
    # fast-path queries already translated: (operation, variables, admin) -> their root steps
    steps: dict[Any, Any] = field(default_factory=dict, compare=False)


ORDER_DIRECTION = GraphQLEnumType("OrderDirection", {
    "ASC": GraphQLEnumValue(("asc", None)), "DESC": GraphQLEnumValue(("desc", None)),
    "ASC_NULLS_FIRST": GraphQLEnumValue(("asc", "first")), "ASC_NULLS_LAST": GraphQLEnumValue(("asc", "last")),
    "DESC_NULLS_FIRST": GraphQLEnumValue(("desc", "first")),
    "DESC_NULLS_LAST": GraphQLEnumValue(("desc", "last")),
})
IS_VALUE = GraphQLEnumType("IsValue", {
    "NULL": GraphQLEnumValue("null"), "NOT_NULL": GraphQLEnumValue("not_null"),
    "TRUE": GraphQLEnumValue("true"), "FALSE": GraphQLEnumValue("false"),
    "UNKNOWN": GraphQLEnumValue("unknown"),
})


PAGE_INFO = GraphQLObjectType("PageInfo", {
    "hasNextPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "hasPreviousPage": GraphQLField(GraphQLNonNull(GraphQLBoolean)),
    "startCursor": GraphQLField(GraphQLString), "endCursor": GraphQLField(GraphQLString)})


def key_resolver(source: Mapping[str, Any], info: Any, **_args: Any) -> Any:
    """Rows come from PostgreSQL keyed by response key (alias or field name)."""
    return source.get(info.path.key)


def relation_aggregate_resolver(source: Mapping[str, Any], info: Any, **_args: Any) -> Any:
    """A to-many relation's aggregate arrives as an embed of one aggregated row: unwrap and nest it."""
    rows = source.get(info.path.key) or [{}]
    return aggregate.nest(rows[0] if isinstance(rows, list) else rows)


@dataclass
class _Table:
    """A table while its types are being built."""

    table: Table
    type_name: str  # ``Posts``; the family ``PostsFilter``... is claimed with it
    field_name: str  # ``posts``; the family ``posts_count``... is claimed with it
    shape: TableShape
    relations: list[tuple[str, Relationship, bool]] = field(default_factory=list)  # (name, rel, to_one)
    obj: GraphQLObjectType | None = None
    filter: GraphQLInputObjectType | None = None
    order: GraphQLInputObjectType | None = None
    column_enum: GraphQLEnumType | None = None  # ``PostsColumn``: conflict targets, distinctOn
    insert_input: GraphQLInputObjectType | None = None  # ``PostsInsertInput``, when rows can be inserted
    aggregate: GraphQLObjectType | None = None  # ``PostsAggregate``: count, sum, avg, min, max
    aggregate_names: dict[str, str] = field(default_factory=dict)  # to-many relation -> its ``*_aggregate`` field


class _Builder:
    def __init__(self, catalog: Catalog, settings: Settings) -> None:
        self.catalog = catalog
        self.settings = settings
        self.types = names.Namespace(names.RESERVED_TYPES | {
            f"{s}{suffix}" for s in OPERATORS for suffix in ("Comparison", "ListComparison")})
        self.root = names.Namespace(names.RESERVED_ROOT)
        self.tables: dict[tuple[str, str], _Table] = {}
        self.enums: dict[str, tuple[GraphQLEnumType, bool]] = {}  # udt -> (type, labels unchanged)
        self.comparisons: dict[tuple[str, bool], GraphQLInputObjectType] = {}
        self.query: dict[str, GraphQLField] = {}
        self.nested_inputs: dict[str, GraphQLInputObjectType] = {}  # ``UsersObjRelInsertInput``... by name
        self.mutation: dict[str, GraphQLField] = {}

    # ---------------------------------------------------------------- names first, in a fixed order

    def claim_names(self) -> None:
        default = self.catalog.default_schema
        for key in sorted(self.catalog.tables):
            table = self.catalog.tables[key]
            if not table.columns:  # GraphQL has no empty object types
                continue
            base = table.name if table.schema == default else f"{table.schema}_{table.name}"
            cols = names.Namespace(names.RESERVED_COLUMNS)
            columns = {cols.claim(c.name): c for c in sorted(table.columns, key=lambda c: c.position)}
            self.tables[key] = _Table(table, self.types.claim(names.pascal(base), names.TYPE_FAMILY),
                                      self.root.claim(base, names.ROOT_FAMILY), TableShape(table, columns))
            self.tables[key].relations = [(cols.claim(n), r, one) for n, r, one in self._relations(table)]
            self.tables[key].aggregate_names = {n: cols.claim(f"{n}_aggregate")
                                                for n, r, one in self.tables[key].relations
                                                if not one and r.function is None}
            for fn in self.catalog.row_functions(table):  # computed fields: f(this row) RETURNS scalar
                if not fn.returns_set and fn.return_kind == "scalar" and fn.volatility != "volatile":
                    self.tables[key].shape.computed[cols.claim(fn.name)] = Column(
                        fn.name, fn.return_udt, fn.return_udt, fn.return_category, comment=fn.comment)
        enum_columns = {c.udt: c for t in self.tables.values() for c in t.table.columns
                        if c.category == "enum" and c.enum_values}  # no labels known: String
        for udt in sorted(enum_columns):
            labels = names.Namespace(names.RESERVED_ENUM_VALUES)
            values = {labels.claim(v): GraphQLEnumValue(v) for v in enum_columns[udt].enum_values}
            name = self.types.claim(names.pascal(udt), ("{}", "{}Comparison", "{}ListComparison"))
            self.enums[udt] = (GraphQLEnumType(name, values),
                               all(k == v.value for k, v in values.items()))

    def _relations(self, table: Table) -> list[tuple[str, Relationship, bool]]:
        """(wanted name, relationship, to_one) for each FK relationship, in constraint order."""
        # a view's relationships come from its base tables' foreign keys, through its columns
        rels = [r for r in (*self.catalog.relationships_of(table), *self.catalog.view_relationships_of(table))
                if r.cardinality != "m2m" and r.target in self.catalog.tables
                and self.catalog.tables[r.target].columns]
        out: list[tuple[str, Relationship, bool]] = []
        for rel in sorted(rels, key=lambda r: (r.constraint, r.target, r.source_columns)):
            target = self.catalog.tables[rel.target]
            if not rel.reverse:
                col = rel.source_columns[0]
                wanted = col[:-3] if len(rel.source_columns) == 1 and col.endswith("_id") and len(col) > 3 \
                    else target.name
                out.append((wanted, rel, True))
            elif rel.target != table.key:  # a self-reference's reverse side cannot be told apart by hint
                twins = sum(1 for r in rels if r.target == rel.target and r.reverse)
                wanted = target.name if twins == 1 else f"{target.name}_by_{'_'.join(rel.target_columns)}"
                out.append((wanted, rel, rel.cardinality == "o2o"))
        # computed relationships: f(this row) RETURNS SETOF u (or u), named after the function
        out += [(rel.constraint, rel, rel.to_one) for rel in self.catalog.computed_relationships_of(table)
                if rel.target in self.catalog.tables and self.catalog.tables[rel.target].columns]
        return out

    # ---------------------------------------------------------------- column types

    def _base(self, category: TypeCategory, udt: str) -> GraphQLNamedType:
        if category == "enum" and udt in self.enums:
            return self.enums[udt][0]
        return SCALARS[category]

    def output_type(self, column: Column, table: Table) -> GraphQLOutputType:
        base: GraphQLOutputType = self._base(column.category, column.udt)  # type: ignore[assignment]
        out: Any = GraphQLList(base) if column.is_array else base
        return GraphQLNonNull(out) if not column.nullable and table.kind == "table" else out

    def input_type(self, category: TypeCategory, udt: str, is_array: bool) -> GraphQLInputType:
        base: GraphQLInputType = self._base(category, udt)  # type: ignore[assignment]
        return GraphQLList(base) if is_array else base

    def comparison(self, column: Column) -> GraphQLInputObjectType:
        base = self._base(column.category, column.udt)
        key = (base.name, column.is_array)
        if key not in self.comparisons:
            element: Any = base
            if column.is_array:
                ops: dict[str, GraphQLInputField] = {op: GraphQLInputField(GraphQLList(element))
                                                     for op in LIST_OPERATORS}
            else:
                allowed = OPERATORS.get(base.name, ENUM_OPERATORS)
                key_list = GraphQLList(GraphQLNonNull(GraphQLString))
                ops = {op: GraphQLInputField(
                    GraphQLList(GraphQLNonNull(element)) if op == "in" else GraphQLString if op == "has_key"
                    else key_list if op in KEY_OPERATORS else element) for op in allowed}
            ops["is"] = GraphQLInputField(IS_VALUE)
            suffix = "ListComparison" if column.is_array else "Comparison"
            self.comparisons[key] = GraphQLInputObjectType(
                f"{base.name}{suffix}", ops, description=f"Filter operators for {base.name} values (as REST).")
        return self.comparisons[key]

    # ---------------------------------------------------------------- per table

    def relation_fields(self, t: _Table) -> None:
        """``t.shape.relations``: how each relation field embeds or filters through its relationship."""
        for name, rel, to_one in t.relations:
            target = self.tables[rel.target]
            # PostgREST's hint cannot choose between the two sides of a self-reference; the FK's
            # name used as the relation name means its to-one side
            self_ref = rel.target == t.table.key
            if rel.function is not None:  # embedded by the function's name, like REST
                t.shape.relations[name] = RelationField(target.shape, rel.constraint, None, to_one, False, (),
                                                        computed=True)
                continue
            t.shape.relations[name] = RelationField(
                target.shape, rel.constraint if self_ref else target.table.name, None if self_ref else rel.constraint,
                to_one, not rel.reverse, tuple(zip(rel.source_columns, rel.target_columns, strict=True)))

    def build_table(self, t: _Table) -> None:
        tn, table, cols = t.type_name, t.table, t.shape.columns
        t.obj = GraphQLObjectType(tn, lambda: self._object_fields(t), description=table.comment)
        t.filter = GraphQLInputObjectType(f"{tn}Filter", lambda: {
            **{n: GraphQLInputField(self.comparison(c)) for n, c in cols.items()},
            **{n: GraphQLInputField(self.comparison(c)) for n, c in t.shape.computed.items()},
            # a related row matches (to-one), at least one related row matches (to-many)
            **{n: GraphQLInputField(_req(self.tables[rel.target].filter)) for n, rel, _ in t.relations
               if rel.function is None},
            "and": GraphQLInputField(GraphQLList(GraphQLNonNull(_req(t.filter)))),
            "or": GraphQLInputField(GraphQLList(GraphQLNonNull(_req(t.filter)))),
            "not": GraphQLInputField(_req(t.filter)),
        })
        t.column_enum = GraphQLEnumType(f"{tn}Column", {n: GraphQLEnumValue(c.name) for n, c in cols.items()})
        t.order = GraphQLInputObjectType(f"{tn}OrderBy", lambda: {
            **{n: GraphQLInputField(ORDER_DIRECTION) for n in (*cols, *t.shape.computed)},
            **{n: GraphQLInputField(_req(self.tables[rel.target].order)) for n, rel, one in t.relations
               if one and rel.function is None}})
        list_type = GraphQLNonNull(GraphQLList(GraphQLNonNull(t.obj)))
        root = RootField("list", t.shape)
        self.query[t.field_name] = GraphQLField(list_type, self._list_args(t), resolve.resolve_root,
                                                extensions={GATEWAY: root}, description=table.comment)
        group_key = GraphQLObjectType(f"{tn}GroupKey", {  # every column nullable: only the grouped ones are set
            n: GraphQLField(_nullable(self.output_type(c, table)), resolve=key_resolver) for n, c in cols.items()})
        t.aggregate, group = aggregate.object_types(tn, t.shape, key_resolver, group_key)
        self.query[f"{t.field_name}_aggregate"] = GraphQLField(
            GraphQLNonNull(t.aggregate), {"filter": GraphQLArgument(t.filter)}, resolve.resolve_root,
            extensions={GATEWAY: RootField("aggregate", t.shape)})
        self.query[f"{t.field_name}_groups"] = GraphQLField(
            GraphQLNonNull(GraphQLList(GraphQLNonNull(group))),
            {"by": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(t.column_enum)))),
             "filter": GraphQLArgument(t.filter), "limit": GraphQLArgument(GraphQLInt),
             "offset": GraphQLArgument(GraphQLInt)}, resolve.resolve_root,
            extensions={GATEWAY: RootField("groups", t.shape)})
        self.query[f"{t.field_name}_count"] = GraphQLField(
            GraphQLNonNull(GraphQLInt), {"filter": GraphQLArgument(t.filter)}, resolve.resolve_root,
            extensions={GATEWAY: RootField("count", t.shape)})
        if self._pk_args(t):
            self.query[f"{t.field_name}_connection"] = self._connection_field(t)
            self.query[f"{t.field_name}_by_pk"] = GraphQLField(
                t.obj, self._pk_args(t), resolve.resolve_root,
                extensions={GATEWAY: RootField("by_pk", t.shape, args=self._pk_columns(t))})
        self._mutations(t, list_type)

    def _connection_field(self, t: _Table) -> GraphQLField:
        """``<t>_connection``: keyset pages (``connection.py``); only where a primary key makes the order total."""
        obj = _req(t.obj)
        edge = GraphQLObjectType(f"{t.type_name}Edge", {
            "cursor": GraphQLField(GraphQLNonNull(GraphQLString)), "node": GraphQLField(GraphQLNonNull(obj))})
        conn = GraphQLObjectType(f"{t.type_name}Connection", {
            "nodes": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(obj)))),
            "edges": GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(edge)))),
            "pageInfo": GraphQLField(GraphQLNonNull(PAGE_INFO)),
            "totalCount": GraphQLField(GraphQLNonNull(GraphQLInt), description="Counted only when selected.")})
        args = {"filter": GraphQLArgument(_req(t.filter)),
                "orderBy": GraphQLArgument(GraphQLList(GraphQLNonNull(_req(t.order)))),
                **{name: GraphQLArgument(GraphQLInt) for name in ("first", "last")},
                **{name: GraphQLArgument(GraphQLString) for name in ("after", "before")}}
        return GraphQLField(GraphQLNonNull(conn), args, resolve.resolve_root,
                            extensions={GATEWAY: RootField("connection", t.shape)})

    def _pk_columns(self, t: _Table) -> dict[str, str]:
        """GraphQL argument -> primary key column; empty unless every key column is exposed."""
        pk = {n: c.name for n, c in t.shape.columns.items() if c.name in t.table.primary_key}
        return pk if pk and len(pk) == len(t.table.primary_key) else {}

    def _pk_args(self, t: _Table) -> dict[str, GraphQLArgument]:
        cols = t.shape.columns
        return {n: GraphQLArgument(_required(self.input_type(cols[n].category, cols[n].udt, cols[n].is_array), True))
                for n in self._pk_columns(t)}

    def _object_fields(self, t: _Table) -> dict[str, GraphQLField]:
        fields = {n: GraphQLField(self.output_type(c, t.table), resolve=key_resolver, description=c.comment,
                                  extensions={GATEWAY: self._column_field(c)})
                  for n, c in (*t.shape.columns.items(), *t.shape.computed.items())}
        for name, rel, to_one in t.relations:
            target = self.tables[rel.target]
            kind = t.shape.relations[name]
            assert target.obj is not None
            if to_one:
                fields[name] = GraphQLField(self._to_one_type(t.table, rel, target), resolve=key_resolver,
                                            extensions={GATEWAY: kind})
            else:
                fields[name] = GraphQLField(GraphQLNonNull(GraphQLList(GraphQLNonNull(target.obj))),
                                            self._list_args(target), key_resolver, extensions={GATEWAY: kind})
                if name not in t.aggregate_names:  # a computed relationship: no aggregate beside it
                    continue
                fields[t.aggregate_names[name]] = GraphQLField(
                    GraphQLNonNull(_req(target.aggregate)), {"filter": GraphQLArgument(_req(target.filter))},
                    relation_aggregate_resolver, extensions={GATEWAY: RelationAggregate(kind)})
        return fields

    @staticmethod
    def _to_one_type(table: Table, rel: Relationship, target: _Table) -> GraphQLOutputType:
        """Non-null only when a row must exist and the caller must see it: the FK side's columns are
        all NOT NULL in a table, and the target has no RLS (a policy may hide the row)."""
        assert target.obj is not None
        own = {fk.columns for fk in table.foreign_keys if fk.name == rel.constraint}
        required = table.kind in ("table", "partitioned_table") and rel.source_columns in own and all(
            not table.column_map[c].nullable for c in rel.source_columns)
        return GraphQLNonNull(target.obj) if required and not target.table.rls_enabled else target.obj

    def _column_field(self, column: Column) -> ColumnField:
        cast = OUTPUT_CAST.get(column.category)
        exact = column.category != "enum" or self.enums.get(column.udt, (None, False))[1]
        return ColumnField(column, f"{cast}[]" if cast and column.is_array else cast, exact)

    def _list_args(self, t: _Table) -> dict[str, GraphQLArgument]:
        return {"filter": GraphQLArgument(_req(t.filter)), "orderBy": GraphQLArgument(
            GraphQLList(GraphQLNonNull(_req(t.order)))),
            "limit": GraphQLArgument(GraphQLInt), "offset": GraphQLArgument(GraphQLInt),
            "distinctOn": GraphQLArgument(GraphQLList(GraphQLNonNull(_req(t.column_enum))), description=(
                "Keep the first row for each distinct value of these columns (they must lead orderBy)."))}

    def insert_input(self, t: _Table) -> None:
        """``<T>InsertInput``: the writable columns, plus a field per relation whose rows can be inserted
        with it (``author: {data: {...}}``, ``comments: {data: [...]}``, nested.py). A NOT NULL column
        without a default, identity or generation is required, unless a to-one relation can fill it."""
        table = t.table
        if not table.insertable or table.kind not in ("table", "view", "partitioned_table", "foreign_table"):
            return
        writable = {n: c for n, c in t.shape.columns.items() if not c.is_generated}
        if not writable:
            return

        def fields() -> dict[str, GraphQLInputField]:  # a thunk: every table's input exists by now
            nested = {n: r for n, r in t.shape.relations.items()
                      if not r.computed and self.tables[r.target.table.key].insert_input is not None}
            filled = {mine for r in nested.values() if r.forward for mine, _ in r.pairs}
            out = {n: GraphQLInputField(_required(self.input_type(c.category, c.udt, c.is_array),
                                                  table.kind == "table" and not c.nullable and not c.has_default
                                                  and c.name not in filled))
                   for n, c in writable.items()}
            for n, r in nested.items():
                target = self.tables[r.target.table.key]
                data = _req(target.insert_input)
                kind = "ObjRel" if r.to_one else "ArrRel"
                wrapper = f"{target.type_name}{kind}InsertInput"
                if wrapper not in self.nested_inputs:
                    self.nested_inputs[wrapper] = GraphQLInputObjectType(wrapper, {"data": GraphQLInputField(
                        GraphQLNonNull(data) if r.to_one else GraphQLNonNull(GraphQLList(GraphQLNonNull(data))))})
                out[n] = GraphQLInputField(self.nested_inputs[wrapper])
            return out
        t.insert_input = GraphQLInputObjectType(f"{t.type_name}InsertInput", fields)

    def _mutations(self, t: _Table, list_type: GraphQLOutputType) -> None:
        tn, table = t.type_name, t.table
        writable = {n: c for n, c in t.shape.columns.items() if not c.is_generated}
        if not writable or table.kind not in ("table", "view", "partitioned_table", "foreign_table"):
            return

        def row_input(name: str) -> GraphQLInputObjectType:
            return GraphQLInputObjectType(name, {
                n: GraphQLInputField(self.input_type(c.category, c.udt, c.is_array)) for n, c in writable.items()})
        column_enum = _req(t.column_enum)
        pk_args, pk_columns = self._pk_args(t), self._pk_columns(t)

        def field(kind: RootKind, out: GraphQLOutputType, args: dict[str, GraphQLArgument]) -> GraphQLField:
            return GraphQLField(out, args, resolve.resolve_root,
                                extensions={GATEWAY: RootField(kind, t.shape, args=pk_columns)})
        if table.insertable:
            conflict = GraphQLInputObjectType(f"{tn}OnConflict", {
                "columns": GraphQLInputField(GraphQLNonNull(GraphQLList(GraphQLNonNull(column_enum)))),
                "update": GraphQLInputField(GraphQLList(GraphQLNonNull(column_enum)))})
            insert_input = _req(t.insert_input)
            # a view has no unique index of its own for ON CONFLICT to name
            upsert = {"on_conflict": GraphQLArgument(conflict)} if table.kind in ("table", "partitioned_table") \
                else {}
            self.mutation[f"insert_{t.field_name}"] = field("insert", list_type, {
                "objects": GraphQLArgument(GraphQLNonNull(GraphQLList(GraphQLNonNull(insert_input)))), **upsert})
            self.mutation[f"insert_{t.field_name}_one"] = field("insert_one", _req(t.obj), {
                "object": GraphQLArgument(GraphQLNonNull(insert_input)), **upsert})
        at_most = {"atMost": GraphQLArgument(GraphQLInt, description=(
            "Most rows this may change; more fails the operation and changes nothing."))}
        if table.updatable:
            numeric = {n: c for n, c in writable.items() if c.category in NUMERIC and not c.is_array}
            jsonb = {n: c for n, c in writable.items() if c.udt == "jsonb" and not c.is_array}
            changes = {"set": GraphQLArgument(row_input(f"{tn}SetInput"))}
            for arg, suffix, cols, field_type, doc in (
                    ("inc", "IncInput", numeric, None, "Amounts added to numeric columns (column = column + amount)."),
                    ("append", "AppendInput", jsonb, JSONScalar, "JSON merged into jsonb columns (column || value)."),
                    ("delete_key", "DeleteKeyInput", jsonb, GraphQLString,
                     "A key removed from jsonb columns (column - key).")):
                if cols:
                    changes[arg] = GraphQLArgument(GraphQLInputObjectType(f"{tn}{suffix}", {
                        n: GraphQLInputField(field_type or self.input_type(c.category, c.udt, False))
                        for n, c in cols.items()}, description=doc))
            self.mutation[f"update_{t.field_name}"] = field("update", list_type, {
                "filter": GraphQLArgument(GraphQLNonNull(_req(t.filter))), **changes, **at_most})
            if pk_args:
                self.mutation[f"update_{t.field_name}_by_pk"] = field("update_by_pk", _req(t.obj),
                                                                       {**pk_args, **changes})
        if table.deletable:
            self.mutation[f"delete_{t.field_name}"] = field("delete", list_type, {
                "filter": GraphQLArgument(GraphQLNonNull(_req(t.filter))), **at_most})
            if pk_args:
                self.mutation[f"delete_{t.field_name}_by_pk"] = field("delete_by_pk", _req(t.obj), pk_args)

    # ---------------------------------------------------------------- functions

    def build_functions(self) -> None:
        for key in sorted(self.catalog.functions):
            for fn in sorted(self.catalog.functions[key], key=lambda f: (len(f.input_args), f.oid)):
                if not fn.api_callable or any(not a.name for a in fn.input_args):  # GraphQL arguments need names
                    continue
                if fn.row_argument is not None and fn.volatility != "volatile":  # a computed field or relation
                    continue
                out, shape = self._function_output(fn)
                args = names.Namespace()
                arg_map = {args.claim(a.name): a for a in fn.input_args}
                gql_args = {n: GraphQLArgument(_required(self.input_type(a.category, a.udt, a.type.endswith("[]")),
                                                         not a.has_default))
                            for n, a in arg_map.items()}
                if fn.returns_set and fn.return_table in self.tables:  # rows of a table: its arguments too
                    listed = self._list_args(self.tables[fn.return_table])
                    gql_args.update({n: a for n, a in listed.items() if n != "distinctOn" and n not in gql_args})
                name = self.root.claim(fn.name if fn.schema == self.catalog.default_schema
                                       else f"{fn.schema}_{fn.name}")
                target = self.mutation if fn.volatility == "volatile" else self.query
                target[name] = GraphQLField(out, gql_args, resolve.resolve_root, description=fn.comment,
                                            extensions={GATEWAY: RootField("call", shape, fn,
                                                                           {n: a.name for n, a in arg_map.items()})})

    def _function_output(self, fn: Function) -> tuple[GraphQLOutputType, TableShape | None]:
        def many(t: GraphQLOutputType) -> GraphQLOutputType:
            return GraphQLNonNull(GraphQLList(GraphQLNonNull(t))) if fn.returns_set else t
        if fn.return_table in self.tables:
            t = self.tables[fn.return_table]
            assert t.obj is not None
            return many(t.obj), t.shape
        if fn.return_kind in ("composite", "table") and fn.return_columns:
            cols = names.Namespace(names.RESERVED_COLUMNS)
            table = Table(fn.schema, fn.name, "view", fn.return_columns)
            shape = TableShape(table, {cols.claim(c.name): c for c in fn.return_columns})
            obj = GraphQLObjectType(self.types.claim(names.pascal(fn.name) + "Result"), {
                n: GraphQLField(self.output_type(c, table), resolve=key_resolver,
                                extensions={GATEWAY: self._column_field(c)}) for n, c in shape.columns.items()})
            return many(obj), shape
        if fn.return_kind == "scalar":
            base = self._base(fn.return_category, fn.return_udt)
            return (GraphQLList(base) if fn.returns_set else base), None  # type: ignore[return-value]
        return JSONScalar, None  # void, record, anything without a known shape

    def build(self) -> GraphQLSchema:
        self.claim_names()
        for t in self.tables.values():
            self.relation_fields(t)
        for t in self.tables.values():
            self.insert_input(t)
        for t in self.tables.values():
            self.build_table(t)
        self.build_functions()
        self.query["admin"] = admin.ADMIN_FIELD
        self.mutation["migrate"] = admin.MIGRATE_FIELD
        generated = GraphQLSchema(GraphQLObjectType("Query", self.query), GraphQLObjectType("Mutation", self.mutation))
        return merge.serve(generated, self.settings)  # plus the user's Strawberry fields; a strawberry.Schema


def _nullable(t: GraphQLOutputType) -> GraphQLOutputType:
    return t.of_type if isinstance(t, GraphQLNonNull) else t


def _req(t: GraphQLNamedType | None) -> Any:
    assert t is not None
    return t


def _required(t: GraphQLInputType, required: bool) -> GraphQLInputType:
    return GraphQLNonNull(t) if required else t  # type: ignore[arg-type]


def build_schema(catalog: Catalog, settings: Settings, role: str | None = None) -> CatalogSchema:
    """The GraphQL schema (and its document cache) for one catalog snapshot, as ``role`` sees it.

    With a role, only the tables, columns and functions it holds privileges on
    (``Catalog.visible_to``); requests still plan against the whole snapshot, so a name the
    role cannot see fails validation here and never reaches the planner. The schema is
    validated here, once, rather than by the first request that uses it. Pure CPU work
    (about 0.3 s for 200 tables): a caller on the event loop may run it in a thread.
    """
    return build_shown(catalog, catalog.visible_to(role) if role else catalog, settings)


def build_shown(catalog: Catalog, shown: Catalog, settings: Settings) -> CatalogSchema:
    """The schema of ``shown`` (a role's view of ``catalog``), planning against ``catalog``."""
    schema = _Builder(shown, settings).build()
    for problem in validate_schema(schema):  # a naming bug: the documents report it per request too
        log.error("generated GraphQL schema is invalid: %s", problem.message)
    return CatalogSchema(catalog, settings, schema, limits.Documents(schema, settings))

