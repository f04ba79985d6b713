"""The catalog: an immutable snapshot of what the database exposes.

In:  built by ``reflect.py`` from SQLAlchemy reflection and ``pg_catalog``.
Out: ``Catalog`` — tables and views with columns, keys and relationships,
     functions, indexes, policies and triggers — read by the planner, the GraphQL
     schema builder and the admin endpoints.

A Catalog is never mutated. On reload a new one is built and swapped in whole
(``CatalogHolder``); a request keeps the snapshot it started with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# (role, privilege) pairs the database grants on an object, e.g. ("anon", "SELECT"); None when the
# catalog was built without privileges (a hand-made catalog): then every role sees the object.
Grants = frozenset[tuple[str, str]] | None

# Coarse type families: how the planner validates values and GraphQL maps scalars.
TypeCategory = Literal[
    "bool", "int", "bigint", "float", "numeric", "text", "uuid", "json", "date", "time",
    "timestamp", "timestamptz", "interval", "bytea", "enum", "tsvector", "range", "other",
]


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # PostgreSQL's rendering, e.g. "timestamp with time zone", "text[]"
    udt: str  # base type name without array brackets, e.g. "timestamptz", "int4", "my_enum"
    category: TypeCategory  # family of the base type
    is_array: bool = False
    nullable: bool = True
    default: str | None = None  # the DEFAULT expression as SQL text
    is_identity: bool = False  # GENERATED ... AS IDENTITY
    is_generated: bool = False  # GENERATED ALWAYS AS (expr) STORED: not writable
    enum_values: tuple[str, ...] = ()  # labels when category == "enum"
    position: int = 0
    comment: str | None = None
    privileges: Grants = None  # SELECT/INSERT/UPDATE on the column (table-wide grants included)

    @property
    def has_default(self) -> bool:
        return self.default is not None or self.is_identity or self.is_generated


@dataclass(frozen=True)
class ForeignKey:
    name: str  # constraint name
    columns: tuple[str, ...]  # referencing columns, in key order
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]  # referenced columns, same order


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: Literal["table", "view", "materialized_view", "foreign_table", "partitioned_table"]
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()  # unique constraints and unique indexes (plain columns)
    foreign_keys: tuple[ForeignKey, ...] = ()  # outgoing
    rls_enabled: bool = False
    row_estimate: int = 0
    insertable: bool = True
    updatable: bool = True
    deletable: bool = True
    comment: str | None = None
    # views: (view column, schema, relation, column) for each column that is a plain reference
    column_sources: tuple[tuple[str, str, str, str], ...] = ()
    privileges: Grants = None  # SELECT/INSERT/UPDATE/DELETE on the whole relation
    column_map: Mapping[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.column_map:
            object.__setattr__(self, "column_map", {c.name: c for c in self.columns})

    def column(self, name: str) -> Column | None:
        return self.column_map.get(name)

    @property
    def key(self) -> tuple[str, str]:
        return (self.schema, self.name)


Cardinality = Literal["m2o", "o2m", "o2o", "m2m"]


@dataclass(frozen=True)
class Relationship:
    """A way to embed ``target`` rows in ``source`` rows.

    For m2o/o2o/o2m, ``source_columns[i]`` joins ``target_columns[i]``.
    For m2m, ``source_columns`` join ``junction_source_columns`` of the junction
    table, and ``junction_target_columns`` join ``target_columns``.
    """

    source: tuple[str, str]  # (schema, table) of the parent
    target: tuple[str, str]  # (schema, table) of the embedded rows
    cardinality: Cardinality
    constraint: str  # the FK constraint name (for m2m: the FK from junction to target)
    source_columns: tuple[str, ...]
    target_columns: tuple[str, ...]
    junction: tuple[str, str] | None = None
    junction_source_columns: tuple[str, ...] = ()
    junction_target_columns: tuple[str, ...] = ()
    junction_constraint: str | None = None  # the FK from junction to source (m2m)
    reverse: bool = False  # built from the target's FK to the source (o2m, or an o2o's referenced side)
    function: tuple[str, str] | None = None  # a computed relationship: (schema, name) of f(source row)

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("m2o", "o2o")

    @property
    def is_self(self) -> bool:
        """A table's FK to itself: one constraint, two relationships (parent and children)."""
        return self.source == self.target and self.cardinality != "m2m"


@dataclass(frozen=True)
class FunctionArg:
    name: str  # "" for an unnamed argument
    type: str  # PostgreSQL type rendering, e.g. "uuid", "integer[]"
    udt: str
    category: TypeCategory
    has_default: bool = False
    mode: Literal["in", "out", "inout", "variadic", "table"] = "in"


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    oid: int
    args: tuple[FunctionArg, ...]  # every argument in order, OUT/TABLE ones too (callers use input_args)
    return_type: str  # pg_get_function_result, e.g. "SETOF posts", "integer", "TABLE(x int)"
    returns_set: bool
    return_kind: Literal["scalar", "composite", "void", "table"]
    return_udt: str  # base return type name (for scalars and composites)
    return_category: TypeCategory = "other"
    return_columns: tuple[Column, ...] = ()  # for composite/table returns
    return_table: tuple[str, str] | None = None  # (schema, table) when it returns a table's row type
    volatility: Literal["immutable", "stable", "volatile"] = "volatile"
    language: str = "sql"
    definition: str = ""
    arguments_text: str = ""  # pg_get_function_arguments
    comment: str | None = None
    rows: float = 0  # ROWS estimate of a set-returning function (ROWS 1: a to-one computed relationship)
    row_argument: tuple[str, str] | None = None  # (schema, table) when the one input is that table's row type
    privileges: Grants = None  # EXECUTE

    @property
    def input_args(self) -> tuple[FunctionArg, ...]:
        return tuple(a for a in self.args if a.mode in ("in", "inout", "variadic"))

    @property
    def api_callable(self) -> bool:
        """Whether RPC and GraphQL offer it: trigger and internal functions cannot be called directly."""
        internal = ("trigger", "event_trigger", "internal")
        return self.return_udt not in internal and all(a.udt not in internal for a in self.input_args)


@dataclass(frozen=True)
class Index:
    schema: str
    name: str
    table: str
    columns: tuple[str, ...]
    is_unique: bool
    is_primary: bool
    definition: str


@dataclass(frozen=True)
class Policy:
    schema: str
    name: str
    table: str
    command: str  # SELECT|INSERT|UPDATE|DELETE|ALL
    roles: tuple[str, ...]
    using: str | None
    with_check: str | None
    permissive: bool = True


@dataclass(frozen=True)
class Trigger:
    schema: str
    name: str
    table: str
    timing: str  # BEFORE|AFTER|INSTEAD OF
    events: tuple[str, ...]
    function_name: str
    enabled: bool
    definition: str = ""


@dataclass(frozen=True)
class Catalog:
    """Everything reflected, plus derived indexes for fast lookup."""

    schemas: tuple[str, ...]  # exposed schemas; the first is the default
    tables: Mapping[tuple[str, str], Table]
    functions: Mapping[tuple[str, str], tuple[Function, ...]]  # overloads share a name
    indexes: tuple[Index, ...] = ()
    policies: tuple[Policy, ...] = ()
    triggers: tuple[Trigger, ...] = ()
    version: int = 0  # increases with every reload (caches key on it)
    relationships: Mapping[tuple[str, str], tuple[Relationship, ...]] = field(
        default_factory=dict, compare=False, repr=False)
    # the same FKs seen through views (kept apart: GraphQL relation fields come from FKs only)
    view_relationships: Mapping[tuple[str, str], tuple[Relationship, ...]] = field(
        default_factory=dict, compare=False, repr=False)
    # base tables in unexposed schemas that exposed views show: their FKs relate the views; never exposed
    hidden_tables: Mapping[tuple[str, str], Table] = field(default_factory=dict, compare=False, repr=False)
    # work derived from this snapshot (plans of repeated reads): dropped with the snapshot on reload
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.relationships:
            object.__setattr__(self, "relationships", derive_relationships(self.tables))
        if not self.view_relationships:
            object.__setattr__(self, "view_relationships",
                               derive_view_relationships(self.tables, self.hidden_tables))

    @property
    def default_schema(self) -> str:
        return self.schemas[0]

    def table(self, name: str, schema: str | None = None) -> Table | None:
        return self.tables.get((schema or self.default_schema, name))

    def function(self, name: str, schema: str | None = None) -> tuple[Function, ...]:
        return self.functions.get((schema or self.default_schema, name), ())

    def relationships_of(self, table: Table) -> tuple[Relationship, ...]:
        return self.relationships.get(table.key, ())

    def view_relationships_of(self, table: Table) -> tuple[Relationship, ...]:
        """FK relationships of (or to) views over the FK's tables (PostgREST's embedding of views)."""
        return self.view_relationships.get(table.key, ())

    def row_functions(self, table: Table) -> tuple[Function, ...]:
        """Functions whose one input is ``table``'s row type: computed fields and relationships."""
        found = self.memo.get(("row_functions", table.key))
        if found is None:
            found = self.memo[("row_functions", table.key)] = tuple(
                fn for overloads in self.functions.values() for fn in overloads
                if fn.row_argument == table.key and fn.api_callable)
        return found

    def computed_field(self, table: Table, name: str) -> Function | None:
        """``f(table) RETURNS scalar``, selectable, filterable and orderable like a column."""
        return next((fn for fn in self.row_functions(table) if fn.name == name and not fn.returns_set
                     and fn.return_kind == "scalar"), None)

    def computed_relationships_of(self, table: Table) -> tuple[Relationship, ...]:
        """``f(table) RETURNS SETOF u`` (to-many; to-one with ROWS 1) or ``RETURNS u`` (to-one)."""
        return tuple(
            Relationship(table.key, fn.return_table, "o2m" if fn.returns_set and fn.rows != 1 else "m2o",
                         fn.name, (), (), function=(fn.schema, fn.name))
            for fn in self.row_functions(table)
            if fn.return_table is not None and fn.return_table in self.tables)

    def visible_to(self, role: str) -> Catalog:
        """What ``role`` may touch (PostgREST's and pg_graphql's rule), for the schema it is shown.

        Relations on which it holds any privilege, table-wide or on a column, with only the
        columns it holds a privilege on; insert/update/delete only where it may; foreign keys
        only when both sides' key columns stay; functions it may execute. Objects without
        reflected privileges stay whole.
        """
        tables: dict[tuple[str, str], Table] = {}
        for key, table in self.tables.items():
            columns = tuple(c for c in table.columns if allows(c.privileges, role))
            if not columns and not allows(table.privileges, role):
                continue
            may = {p for p in ("INSERT", "UPDATE", "DELETE") if allows(table.privileges, role, p)
                   or (p != "DELETE" and any(allows(c.privileges, role, p) for c in columns))}
            tables[key] = replace(table, columns=columns, column_map={},
                                  insertable=table.insertable and "INSERT" in may,
                                  updatable=table.updatable and "UPDATE" in may,
                                  deletable=table.deletable and "DELETE" in may)
        for key, table in tables.items():
            fks = tuple(fk for fk in table.foreign_keys if set(fk.columns) <= set(table.column_map)
                        and (fk.ref_schema, fk.ref_table) in tables
                        and set(fk.ref_columns) <= set(tables[(fk.ref_schema, fk.ref_table)].column_map))
            if fks != table.foreign_keys:
                tables[key] = replace(table, foreign_keys=fks, column_map={})
        functions = {k: v for k, v in ((k, tuple(f for f in fs if allows(f.privileges, role)))
                                       for k, fs in self.functions.items()) if v}
        # a relation the role cannot see still lends its FKs to the views over it that it can
        hidden = {**self.hidden_tables, **{k: t for k, t in self.tables.items() if k not in tables}}
        return replace(self, tables=tables, functions=functions, relationships={}, view_relationships={},
                       hidden_tables=hidden, memo={})



Key = tuple[str, str]


def view_projections(tables: Mapping[Key, Table]) -> dict[Key, list[tuple[Key, dict[str, str]]]]:
    """For each base table: the views over it, each with {base column: view column}.

    A view column naming a column of another view is followed down to a table (chains of views).
    """
    def origin(key: Key, column: str, depth: int = 0) -> tuple[Key, str] | None:
        rel = tables.get(key)
        if rel is None or depth > 16:
            return None
        if not rel.column_sources:
            return (key, column) if rel.kind in ("table", "partitioned_table", "foreign_table") else None
        for name, schema, table, base in rel.column_sources:
            if name == column:
                return origin((schema, table), base, depth + 1)
        return None

    out: dict[Key, list[tuple[Key, dict[str, str]]]] = {}
    for view in tables.values():
        by_base: dict[Key, dict[str, str]] = {}
        for name, *_ in view.column_sources:
            found = origin(view.key, name)
            if found is not None:
                by_base.setdefault(found[0], {}).setdefault(found[1], name)
        for base, mapping in by_base.items():
            out.setdefault(base, []).append((view.key, mapping))
    return out


def derive_view_relationships(exposed: Mapping[Key, Table], hidden: Mapping[Key, Table] | None = None,
                              ) -> dict[Key, tuple[Relationship, ...]]:
    """PostgREST's embedding through views: each FK also joins every view (or chain of views) that
    shows its columns to every view that shows the referenced ones, in both directions. ``hidden``
    base tables (unexposed schemas) lend their FKs but are never an end of a relationship."""
    tables = {**(hidden or {}), **exposed}
    out: dict[Key, list[Relationship]] = {}
    projections = view_projections(tables)
    for t in tables.values():
        uniques = {frozenset(u) for u in t.unique} | ({frozenset(t.primary_key)} if t.primary_key else set())
        for fk in t.foreign_keys:
            target = (fk.ref_schema, fk.ref_table)
            if target not in tables:
                continue
            one_to_one = frozenset(fk.columns) in uniques
            sources = [(t.key, {c: c for c in fk.columns}), *projections.get(t.key, [])]
            targets = [(target, {c: c for c in fk.ref_columns}), *projections.get(target, [])]
            for skey, smap in sources:
                for tkey, tmap in targets:
                    if (skey, tkey) == (t.key, target) or skey not in exposed or tkey not in exposed:
                        continue  # the FK's own tables are related already; hidden ones never are
                    if not (set(fk.columns) <= smap.keys() and set(fk.ref_columns) <= tmap.keys()):
                        continue
                    scols = tuple(smap[c] for c in fk.columns)
                    tcols = tuple(tmap[c] for c in fk.ref_columns)
                    out.setdefault(skey, []).append(Relationship(
                        skey, tkey, "o2o" if one_to_one else "m2o", fk.name, scols, tcols))
                    out.setdefault(tkey, []).append(Relationship(
                        tkey, skey, "o2o" if one_to_one else "o2m", fk.name, tcols, scols, reverse=True))
        if t.key in exposed:
            _junction_views(t, uniques, tables, projections, exposed, out)
    return {k: tuple(v) for k, v in out.items()}


def _junction_views(t: Table, uniques: set[frozenset[str]], tables: Mapping[Key, Table],
                    projections: Mapping[Key, list[tuple[Key, dict[str, str]]]], exposed: Mapping[Key, Table],
                    out: dict[Key, list[Relationship]]) -> None:
    """Many-to-many through the junction table ``t`` between views over its two ends."""
    fks = [fk for fk in t.foreign_keys if (fk.ref_schema, fk.ref_table) in tables]
    for a in fks:
        for b in fks:
            if a is b or not any(frozenset(a.columns) | frozenset(b.columns) <= u for u in uniques):
                continue
            src, dst = (a.ref_schema, a.ref_table), (b.ref_schema, b.ref_table)
            for skey, smap in [(src, {c: c for c in a.ref_columns}), *projections.get(src, [])]:
                for dkey, dmap in [(dst, {c: c for c in b.ref_columns}), *projections.get(dst, [])]:
                    if (skey, dkey) == (src, dst) or skey not in exposed or dkey not in exposed \
                            or not (set(a.ref_columns) <= smap.keys() and set(b.ref_columns) <= dmap.keys()):
                        continue
                    out.setdefault(skey, []).append(Relationship(
                        skey, dkey, "m2m", b.name, tuple(smap[c] for c in a.ref_columns),
                        tuple(dmap[c] for c in b.ref_columns), junction=t.key, junction_source_columns=a.columns,
                        junction_target_columns=b.columns, junction_constraint=a.name))


def allows(grants: Grants, role: str, privilege: str | None = None) -> bool:
    """Whether ``grants`` give ``role`` the privilege (any privilege when None); unreflected: yes."""
    if grants is None:
        return True
    return any(r == role and (privilege is None or p == privilege) for r, p in grants)


def derive_relationships(tables: Mapping[tuple[str, str], Table]) -> dict[tuple[str, str], tuple[Relationship, ...]]:
    """Every embeddable relationship, keyed by the parent table.

    m2o from each FK, o2m (or o2o when the FK columns are unique) in reverse,
    and m2m through any table whose FKs to two tables are covered by its
    primary key or a unique constraint (PostgREST's junction rule). The same FKs
    seen through views are ``derive_view_relationships``'.
    """
    out: dict[tuple[str, str], list[Relationship]] = {k: [] for k in tables}
    for t in tables.values():
        uniques = {frozenset(u) for u in t.unique}
        if t.primary_key:
            uniques.add(frozenset(t.primary_key))
        for fk in t.foreign_keys:
            target = (fk.ref_schema, fk.ref_table)
            if target not in tables:
                continue
            one_to_one = frozenset(fk.columns) in uniques
            out[t.key].append(Relationship(t.key, target, "o2o" if one_to_one else "m2o",
                                           fk.name, fk.columns, fk.ref_columns))
            out[target].append(Relationship(target, t.key, "o2o" if one_to_one else "o2m",
                                            fk.name, fk.ref_columns, fk.columns, reverse=True))
        # junction: two FKs whose columns together sit inside a unique key
        fks = [fk for fk in t.foreign_keys if (fk.ref_schema, fk.ref_table) in tables]
        for a in fks:
            for b in fks:
                if a is b:
                    continue
                cols = frozenset(a.columns) | frozenset(b.columns)
                if not any(cols <= u for u in uniques):
                    continue
                src, dst = (a.ref_schema, a.ref_table), (b.ref_schema, b.ref_table)
                out[src].append(Relationship(
                    src, dst, "m2m", b.name, a.ref_columns, b.ref_columns, junction=t.key,
                    junction_source_columns=a.columns, junction_target_columns=b.columns,
                    junction_constraint=a.name))
    return {k: tuple(v) for k, v in out.items()}


class CatalogHolder:
    """The current catalog, swapped whole on reload."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._catalog = catalog

    @property
    def ready(self) -> bool:
        return self._catalog is not None

    def get(self) -> Catalog:
        if self._catalog is None:
            raise RuntimeError("catalog not loaded yet")
        return self._catalog

    def swap(self, catalog: Catalog) -> None:
        self._catalog = catalog
