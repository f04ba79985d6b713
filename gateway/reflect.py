"""Reflection: a live database in, an immutable ``Catalog`` out.

In:  a DSN and the exposed schemas.
Out: ``catalog.Catalog`` — tables and views with typed columns, keys and
     relationships, functions, indexes, policies and triggers of those schemas.

Two sources, one connection, one REPEATABLE READ snapshot:

* SQLAlchemy's Inspector (multi-object API, ``ObjectKind.ANY`` so views and
  materialized views are included) gives primary keys and unique constraints,
  one query per key kind per schema.
* ``pg_catalog`` queries give everything else, again one query per object kind
  (never one per table): relations, columns, types, enum labels, foreign keys,
  unique indexes, functions, policies and triggers.

Why not more of the Inspector: ``get_multi_columns`` costs about as much as all
the key reflection together, turns ``format_type`` renderings into SQLAlchemy
types we would have to render back, and lacks base type names, array-ness and
positions; ``get_multi_foreign_keys`` parses ``pg_get_constraintdef`` text with
regular expressions and splits a quoted column name containing ", " in two,
where ``pg_constraint.conkey`` is exact.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, cast

import asyncpg
from sqlalchemy import inspect
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.engine.reflection import ObjectKind
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from . import grants
from .catalog import (
    Catalog,
    Column,
    ForeignKey,
    Function,
    FunctionArg,
    Index,
    Policy,
    Table,
    Trigger,
    TypeCategory,
)
from .viewlineage import reflect_lineage

Key = tuple[str, str]

# Base types (by name) -> category. Enums, ranges and domains are decided by typtype in _describe.
CATEGORIES: Mapping[str, TypeCategory] = {
    "bool": "bool", "int2": "int", "int4": "int", "int8": "bigint", "float4": "float", "float8": "float",
    "numeric": "numeric", "money": "numeric", "uuid": "uuid", "json": "json", "jsonb": "json",
    "text": "text", "varchar": "text", "bpchar": "text", "char": "text", "name": "text", "citext": "text",
    "date": "date", "time": "time", "timetz": "time", "timestamp": "timestamp", "timestamptz": "timestamptz",
    "interval": "interval", "bytea": "bytea", "tsvector": "tsvector",
}

# pg_class.relkind -> Table.kind (the relations the API can expose).
KINDS: Mapping[str, Any] = {
    "r": "table", "v": "view", "m": "materialized_view", "f": "foreign_table", "p": "partitioned_table",
}

# pg_trigger.tgtype bits (PostgreSQL's TRIGGER_TYPE_*); events in the order the catalog lists them.
TRIGGER_BEFORE, TRIGGER_INSTEAD = 1 << 1, 1 << 6
TRIGGER_EVENTS: tuple[tuple[int, str], ...] = (
    (1 << 2, "INSERT"), (1 << 4, "UPDATE"), (1 << 3, "DELETE"), (1 << 5, "TRUNCATE"),
)

# pg_proc.proargmodes -> FunctionArg.mode; an absent proargmodes means all "in".
ARG_MODES: Mapping[str, Any] = {"i": "in", "o": "out", "b": "inout", "v": "variadic", "t": "table"}
VOLATILITY: Mapping[str, Any] = {"i": "immutable", "s": "stable", "v": "volatile"}

# pg_relation_is_updatable bits: 1 << CMD_UPDATE, 1 << CMD_INSERT, 1 << CMD_DELETE.
CAN_UPDATE, CAN_INSERT, CAN_DELETE = 4, 8, 16

TYPES_SQL = """
select t.oid, t.typname, t.typtype::text as typtype, t.typbasetype, t.typrelid,
       case when t.typlen = -1 and t.typelem <> 0 and t.typcategory = 'A' then t.typelem else 0 end as elem
from pg_type t
"""

ENUMS_SQL = """
select enumtypid, array_agg(enumlabel::text order by enumsortorder) as labels from pg_enum group by 1
"""

RELATIONS_SQL = """
select c.oid, n.nspname as schema, c.relname as name, c.relkind::text as relkind, c.relrowsecurity,
       -- never analyzed (-1 since PostgreSQL 14): guess from the size, about 100 bytes a row
       case when c.reltuples < 0 then pg_relation_size(c.oid) / 100 else c.reltuples end::float8 as reltuples,
       ds.description as comment,
       case when c.relkind in ('r', 'p') then 28
            when c.relkind in ('v', 'f') then pg_relation_is_updatable(c.oid, true)
            else 0 end as updatable
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_description ds on ds.objoid = c.oid and ds.classoid = 'pg_class'::regclass and ds.objsubid = 0
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_COLUMNS_SELECT = """
select a.attrelid, a.attname, a.attnum, a.atttypid, format_type(a.atttypid, a.atttypmod) as type,
       not a.attnotnull as nullable, a.attidentity <> '' as is_identity, a.attgenerated <> '' as is_generated,
       case when a.attgenerated = '' then pg_get_expr(d.adbin, d.adrelid) end as "default",
       ds.description as comment
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
left join pg_description ds on ds.objoid = a.attrelid and ds.classoid = 'pg_class'::regclass
                             and ds.objsubid = a.attnum
where a.attnum > 0 and not a.attisdropped and {where}
order by a.attrelid, a.attnum
"""
COLUMNS_SQL = _COLUMNS_SELECT.format(
    where="n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p')")
# Row types that functions return but that are not exposed relations (composite types, other schemas).
ROWTYPE_COLUMNS_SQL = _COLUMNS_SELECT.format(where="a.attrelid = any($1::oid[])")

FUNCTIONS_SQL = """
select p.oid, n.nspname as schema, p.proname as name, p.prorettype, p.proretset, p.prorows,
       p.provolatile::text as volatility, l.lanname as language, p.prosrc as definition,
       pg_get_function_arguments(p.oid) as arguments_text, pg_get_function_result(p.oid) as result,
       coalesce(p.proallargtypes, p.proargtypes::oid[]) as arg_types,
       array(select format_type(u.t, null)
             from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality u(t, i)
             order by u.i) as arg_renderings,
       p.proargmodes::text[] as arg_modes, p.proargnames as arg_names, p.pronargdefaults,
       format_type(p.prorettype, null) as return_rendering, ds.description as comment
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_language l on l.oid = p.prolang
left join pg_description ds on ds.objoid = p.oid and ds.classoid = 'pg_proc'::regclass and ds.objsubid = 0
where n.nspname = any($1::text[]) and p.prokind = 'f'
  and not exists (select 1 from pg_depend e
                  where e.classid = 'pg_proc'::regclass and e.objid = p.oid and e.deptype = 'e')
order by n.nspname, p.proname, p.oid
"""

# Key columns in key order, by attribute number, so no name is ever parsed out of SQL text.
FOREIGN_KEYS_SQL = """
select n.nspname as schema, c.relname as table_name, k.conname as name,
       rn.nspname as ref_schema, rc.relname as ref_table,
       array(select a.attname::text from unnest(k.conkey) with ordinality u(num, i)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num order by u.i) as columns,
       array(select a.attname::text from unnest(k.confkey) with ordinality u(num, i)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.num order by u.i) as ref_columns
from pg_constraint k
join pg_class c on c.oid = k.conrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_class rc on rc.oid = k.confrelid
join pg_namespace rn on rn.oid = rc.relnamespace
where k.contype = 'f' and n.nspname = any($1::text[])
order by n.nspname, c.relname, k.conname
"""

INDEXES_SQL = """
select n.nspname as schema, ic.relname as name, tc.relname as table_name, i.indisunique, i.indisprimary,
       i.indpred is not null as partial, i.indnkeyatts, i.indkey::int2[] as attnums,
       pg_get_indexdef(i.indexrelid) as definition,
       array(select coalesce(a.attname::text, pg_get_indexdef(i.indexrelid, k + 1, true))
             from generate_series(0, i.indnkeyatts - 1) k
             left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[k]
             order by k) as columns
from pg_index i
join pg_class ic on ic.oid = i.indexrelid
join pg_class tc on tc.oid = i.indrelid
join pg_namespace n on n.oid = tc.relnamespace
where n.nspname = any($1::text[])
order by n.nspname, tc.relname, ic.relname
"""

POLICIES_SQL = """
select schemaname, tablename, policyname, permissive, roles::text[] as roles, cmd, qual, with_check
from pg_policies where schemaname = any($1::text[])
order by schemaname, tablename, policyname
"""

TRIGGERS_SQL = """
select n.nspname as schema, c.relname as table_name, t.tgname as name, t.tgtype::int as tgtype,
       t.tgenabled::text as enabled, p.proname as function_name, pg_get_triggerdef(t.oid) as definition
from pg_trigger t
join pg_class c on c.oid = t.tgrelid
join pg_namespace n on n.oid = c.relnamespace
join pg_proc p on p.oid = t.tgfoid
where not t.tgisinternal and n.nspname = any($1::text[])
order by n.nspname, c.relname, t.tgname
"""


@dataclass(frozen=True)
class PgType:
    oid: int
    name: str  # pg_type.typname
    typtype: str  # b(ase) c(omposite) d(omain) e(num) p(seudo) r(ange) m(ultirange)
    base: int  # the domain's base type oid, else 0
    relid: int  # the composite type's relation oid, else 0
    elem: int  # the element type oid when this is an array type, else 0


@dataclass(frozen=True)
class TypeInfo:
    udt: str  # the type's own name, array brackets removed (a domain keeps its name)
    category: TypeCategory  # family of the underlying base type
    is_array: bool  # an array (or a domain over one) of that base type
    enum_values: tuple[str, ...]  # the labels, in order, when category == "enum"
    relid: int  # composite types: the relation holding their columns


@dataclass(frozen=True)
class Keys:
    primary_key: tuple[str, ...]  # in key order
    unique: tuple[tuple[str, ...], ...]  # unique constraints


class TypeMap:
    """Resolves a type oid to its name, category and array-ness, memoized per reflection."""

    def __init__(self, types: Mapping[int, PgType], enums: Mapping[int, tuple[str, ...]]) -> None:
        self._types, self._enums = types, enums
        self._cache: dict[int, TypeInfo] = {}

    def __getitem__(self, oid: int) -> TypeInfo:
        info = self._cache.get(oid)
        if info is None:
            info = self._cache[oid] = self._describe(oid)
        return info

    def _describe(self, oid: int) -> TypeInfo:
        t = self._types.get(oid)
        udt: str | None = None
        is_array = False
        # peel arrays and domains (a domain over an array, an array of a domain) down to the base type
        while t is not None:
            if t.elem:
                is_array, t = True, self._types.get(t.elem)
                continue
            udt = udt or t.name
            if t.typtype == "d":
                t = self._types.get(t.base)
                continue
            break
        if t is None:
            return TypeInfo(udt or "unknown", "other", is_array, (), 0)
        category: TypeCategory = (
            "enum" if t.typtype == "e" else "range" if t.typtype in ("r", "m")
            else CATEGORIES.get(t.name, "other") if t.typtype == "b" else "other")
        return TypeInfo(udt or t.name, category, is_array, self._enums.get(t.oid, ()), t.relid)


async def load_catalog(dsn: str, schemas: tuple[str, ...], version: int = 0) -> Catalog:
    """Reflect ``schemas`` of the database at ``dsn`` on a connection of its own."""
    engine = create_async_engine(
        "postgresql+asyncpg://", poolclass=NullPool,
        async_creator=functools.partial(asyncpg.connect, dsn,
                                        server_settings={"application_name": "gateway reflect"}))
    try:
        async with engine.connect() as conn:
            # one snapshot for the Inspector's queries and ours, so keys and columns agree
            conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            keys = await conn.run_sync(reflect_keys, schemas)
            raw = (await conn.get_raw_connection()).driver_connection
            catalog = await reflect_catalog(cast(asyncpg.Connection, raw), schemas, keys, version)
            await conn.rollback()
            return catalog
    finally:
        await engine.dispose()


def reflect_keys(conn: SyncConnection, schemas: Iterable[str]) -> dict[Key, Keys]:
    """Primary keys and unique constraints of every relation, from the Inspector."""
    insp = inspect(conn)
    out: dict[Key, Keys] = {}
    for schema in schemas:
        pks = insp.get_multi_pk_constraint(schema=schema, kind=ObjectKind.ANY)
        uniques = insp.get_multi_unique_constraints(schema=schema, kind=ObjectKind.ANY)
        for (_, name), pk in pks.items():
            out[(schema, name)] = Keys(
                tuple(pk.get("constrained_columns") or ()),
                tuple(tuple(u["column_names"]) for u in uniques.get((schema, name), ())))
    return out


async def reflect_catalog(conn: asyncpg.Connection, schemas: tuple[str, ...], keys: Mapping[Key, Keys],
                          version: int = 0) -> Catalog:
    """The rest, from ``pg_catalog`` on an open connection, assembled with ``keys`` into a Catalog."""
    types = TypeMap(
        {r["oid"]: PgType(r["oid"], r["typname"], r["typtype"], r["typbasetype"], r["typrelid"], r["elem"])
         for r in await conn.fetch(TYPES_SQL)},
        {r["enumtypid"]: tuple(r["labels"]) for r in await conn.fetch(ENUMS_SQL)})
    relations = await conn.fetch(RELATIONS_SQL, list(schemas))
    columns = _columns_by_relation(await conn.fetch(COLUMNS_SQL, list(schemas)), types)
    index_rows = await conn.fetch(INDEXES_SQL, list(schemas))
    foreign_keys: dict[Key, list[ForeignKey]] = defaultdict(list)
    for r in await conn.fetch(FOREIGN_KEYS_SQL, list(schemas)):
        foreign_keys[(r["schema"], r["table_name"])].append(ForeignKey(
            r["name"], tuple(r["columns"]), r["ref_schema"], r["ref_table"], tuple(r["ref_columns"])))
    function_rows = await conn.fetch(FUNCTIONS_SQL, list(schemas))
    rowtypes = {types[r["prorettype"]].relid for r in function_rows} - set(columns) - {0}
    if rowtypes:
        columns.update(_columns_by_relation(await conn.fetch(ROWTYPE_COLUMNS_SQL, list(rowtypes)), types))
    policy_rows = await conn.fetch(POLICIES_SQL, list(schemas))
    privileges = await grants.load(conn, schemas)
    trigger_rows = await conn.fetch(TRIGGERS_SQL, list(schemas))

    unique_indexes: dict[Key, list[tuple[str, ...]]] = defaultdict(list)
    for r in index_rows:
        key_attnums = r["attnums"][: r["indnkeyatts"]]
        # only plain-column, non-partial unique indexes can identify a row (and arbitrate an upsert)
        if r["indisunique"] and not r["indisprimary"] and not r["partial"] and 0 not in key_attnums:
            unique_indexes[(r["schema"], r["table_name"])].append(tuple(r["columns"]))

    tables: dict[Key, Table] = {}
    table_by_relid: dict[int, Key] = {}
    for r in relations:
        key = (r["schema"], r["name"])
        k = keys.get(key) or Keys((), ())
        unique = tuple(dict.fromkeys((*k.unique, *unique_indexes.get(key, ()))))
        can = r["updatable"] or 0
        tables[key] = Table(
            schema=key[0], name=key[1], kind=KINDS[r["relkind"]],
            columns=privileges.on_columns(r["oid"], columns.get(r["oid"], ())),
            privileges=privileges.relations.get(r["oid"], grants.NONE),
            primary_key=k.primary_key, unique=unique, foreign_keys=tuple(foreign_keys.get(key, ())),
            rls_enabled=r["relrowsecurity"], row_estimate=max(0, int(r["reltuples"] or 0)),
            insertable=bool(can & CAN_INSERT), updatable=bool(can & CAN_UPDATE),
            deletable=bool(can & CAN_DELETE), comment=r["comment"])
        table_by_relid[r["oid"]] = key
    lineage = await reflect_lineage(conn, schemas, table_by_relid, columns)  # views name each other
    for key, sources in lineage.sources.items():
        tables[key] = replace(tables[key], column_sources=sources)

    functions: dict[Key, list[Function]] = defaultdict(list)
    for r in function_rows:
        fn = _function(r, types, columns, table_by_relid)
        functions[(r["schema"], r["name"])].append(
            replace(fn, privileges=privileges.functions.get(fn.oid, grants.NONE)))

    return Catalog(
        schemas=schemas, tables=tables,
        functions={k: tuple(v) for k, v in functions.items()},
        indexes=tuple(Index(r["schema"], r["name"], r["table_name"], tuple(r["columns"]), r["indisunique"],
                            r["indisprimary"], r["definition"]) for r in index_rows),
        policies=tuple(Policy(r["schemaname"], r["policyname"], r["tablename"], r["cmd"], tuple(r["roles"]),
                              r["qual"], r["with_check"], r["permissive"] == "PERMISSIVE")
                       for r in policy_rows),
        triggers=tuple(_trigger(r) for r in trigger_rows),
        version=version, hidden_tables=lineage.hidden)


def _columns_by_relation(rows: Sequence[asyncpg.Record], types: TypeMap) -> dict[int, tuple[Column, ...]]:
    out: dict[int, list[Column]] = defaultdict(list)
    for r in rows:
        t = types[r["atttypid"]]
        out[r["attrelid"]].append(Column(
            name=r["attname"], type=r["type"], udt=t.udt, category=t.category, is_array=t.is_array,
            nullable=r["nullable"], default=r["default"], is_identity=r["is_identity"],
            is_generated=r["is_generated"], enum_values=t.enum_values if t.category == "enum" else (),
            position=r["attnum"], comment=r["comment"]))
    return {k: tuple(v) for k, v in out.items()}


def _function(r: asyncpg.Record, types: TypeMap, columns: Mapping[int, tuple[Column, ...]],
              table_by_relid: Mapping[int, Key]) -> Function:
    type_oids: list[int] = r["arg_types"] or []
    modes = [ARG_MODES[m] for m in (r["arg_modes"] or ["i"] * len(type_oids))]
    names: list[str] = r["arg_names"] or [""] * len(type_oids)
    # pronargdefaults counts the trailing input arguments that have defaults
    inputs = [i for i, m in enumerate(modes) if m in ("in", "inout", "variadic")]
    defaulted = set(inputs[len(inputs) - r["pronargdefaults"]:]) if r["pronargdefaults"] else set()
    args = tuple(FunctionArg(names[i], r["arg_renderings"][i], types[oid].udt, types[oid].category,
                             i in defaulted, modes[i])
                 for i, oid in enumerate(type_oids))
    ret = types[r["prorettype"]]
    return_columns: tuple[Column, ...] = ()
    return_table: Key | None = None
    kind: Literal["scalar", "composite", "void", "table"] = "scalar"
    if "table" in modes:
        kind = "table"
    elif r["return_rendering"] == "void":
        kind = "void"
    elif ret.relid:  # a row type: a table's, a view's or a CREATE TYPE ... AS (...)
        kind = "composite"
        return_columns = columns.get(ret.relid, ())
        return_table = table_by_relid.get(ret.relid)
    elif r["return_rendering"] == "record":
        kind = "composite"  # several OUT parameters (or an untyped record)
    if kind in ("table", "composite") and not return_columns:
        return_columns = tuple(
            Column(name=a.name, type=a.type, udt=a.udt, category=a.category,
                   is_array=types[type_oids[i]].is_array, position=i + 1)
            for i, a in enumerate(args) if a.mode in ("out", "inout", "table"))
    return Function(
        schema=r["schema"], name=r["name"], oid=r["oid"], args=args, return_type=r["result"] or "",
        returns_set=r["proretset"], return_kind=kind, return_udt=ret.udt, return_category=ret.category,
        return_columns=return_columns, return_table=return_table, volatility=VOLATILITY[r["volatility"]],
        language=r["language"], definition=r["definition"] or "", arguments_text=r["arguments_text"] or "",
        comment=r["comment"], rows=float(r["prorows"] or 0),
        row_argument=table_by_relid.get(types[type_oids[inputs[0]]].relid) if len(inputs) == 1 else None)


def _trigger(r: asyncpg.Record) -> Trigger:
    tgtype: int = r["tgtype"]
    timing = "INSTEAD OF" if tgtype & TRIGGER_INSTEAD else "BEFORE" if tgtype & TRIGGER_BEFORE else "AFTER"
    return Trigger(r["schema"], r["name"], r["table_name"], timing,
                   tuple(event for bit, event in TRIGGER_EVENTS if tgtype & bit), r["function_name"],
                   r["enabled"] != "D", r["definition"])
