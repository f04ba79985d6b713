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

    @property
    def to_one(self) -> bool:
        return self.cardinality in ("m2o", "o2o")


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
    privileges: Grants = None  # EXECUTE

    @property
    def input_args(self) -> tuple[FunctionArg, ...]:
        return tuple(a for a in self.args if a.mode in ("in", "inout", "variadic"))


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
    # work derived from this snapshot (plans of repeated reads): dropped with the snapshot on reload
    memo: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.relationships:
            object.__setattr__(self, "relationships", derive_relationships(self.tables))

    @property
    def default_schema(self) -> str:
        return self.schemas[0]

    def table(self, name: str, schema: str | None = None) -> Table | None:
        return self.tables.get((schema or self.default_schema, name))

    def function(self, name: str, schema: str | None = None) -> tuple[Function, ...]:
        return self.functions.get((schema or self.default_schema, name), ())

    def relationships_of(self, table: Table) -> tuple[Relationship, ...]:
        return self.relationships.get(table.key, ())

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
        return replace(self, tables=tables, functions=functions, relationships={}, memo={})


def allows(grants: Grants, role: str, privilege: str | None = None) -> bool:
    """Whether ``grants`` give ``role`` the privilege (any privilege when None); unreflected: yes."""
    if grants is None:
        return True
    return any(r == role and (privilege is None or p == privilege) for r, p in grants)


def derive_relationships(tables: Mapping[tuple[str, str], Table]) -> dict[tuple[str, str], tuple[Relationship, ...]]:
    """Every embeddable relationship, keyed by the parent table.

    m2o from each FK, o2m (or o2o when the FK columns are unique) in reverse,
    and m2m through any table whose FKs to two tables are covered by its
    primary key or a unique constraint (PostgREST's junction rule).
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
                                            fk.name, fk.ref_columns, fk.columns))
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
