"""Export definitions: pg_catalog rows in, the SQL text of an export out (no rows; see export.py).

In:  a connection inside the export's transaction, the schema and the tables to export.
Out: ``Schema`` (tables with columns, constraints, indexes, policies, triggers; the sequences,
     enum types, views and functions they need) and the statements that rebuild them, rendered
     by PostgreSQL's own ``pg_get_*def`` functions and quoted here with ``ident``/``literal``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A standard string literal (standard_conforming_strings is on; the guard keeps it on)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: str  # format_type rendering
    not_null: bool
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    generated: str  # '' | 's' (STORED)
    expr: str | None  # DEFAULT expression, or the generation expression
    collation: str | None  # when it differs from the type's


@dataclass(frozen=True)
class TableDef:
    oid: int
    schema: str
    name: str
    columns: tuple[ColumnDef, ...]
    constraints: tuple[tuple[str, str, str], ...]  # (name, contype, definition), foreign keys included
    primary_key: tuple[str, ...]  # column names, key order (rows are exported in this order)
    indexes: tuple[str, ...]  # pg_get_indexdef of the indexes no constraint owns
    rls: bool
    force_rls: bool
    policies: tuple[dict[str, Any], ...]  # name, command, permissive, roles, using, withCheck
    triggers: tuple[tuple[str, str, bool], ...]  # (name, definition, enabled)

    @property
    def qualified(self) -> str:
        return f"{ident(self.schema)}.{ident(self.name)}"

    @property
    def insert_columns(self) -> tuple[ColumnDef, ...]:
        return tuple(c for c in self.columns if not c.generated)



@dataclass(frozen=True)
class SequenceDef:
    schema: str
    name: str
    options: str  # AS type INCREMENT ... CYCLE
    owner: tuple[str, str, str] | None  # (table, column, deptype 'a' serial / 'i' identity)
    value: int | None  # where setval puts it: past the data and its last value; None: untouched
    is_called: bool

    @property
    def qualified(self) -> str:
        return f"{ident(self.schema)}.{ident(self.name)}"


@dataclass(frozen=True)
class ViewDef:
    name: str
    definition: str  # SELECT ... (pg_get_viewdef)


@dataclass(frozen=True)
class Schema:
    name: str
    tables: tuple[TableDef, ...]  # in export order
    sequences: tuple[SequenceDef, ...]
    enums: tuple[tuple[str, str, tuple[str, ...]], ...]  # (schema, name, labels)
    views: tuple[ViewDef, ...]
    functions: tuple[str, ...]  # CREATE OR REPLACE FUNCTION ... (pg_get_functiondef)


TABLES_SQL = """
SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname = ANY($2::text[])"""
COLUMNS_SQL = """
SELECT a.attrelid, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull,
       a.attidentity::text AS identity, a.attgenerated::text AS generated,
       pg_catalog.pg_get_expr(d.adbin, d.adrelid) AS expr,
       CASE WHEN a.attcollation <> t.typcollation THEN co.collname::text END AS collation
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum"""
CONSTRAINTS_SQL = """
SELECT k.conrelid, k.conname, k.contype::text, pg_catalog.pg_get_constraintdef(k.oid, true) AS def,
       array(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY u(num, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i) AS columns
FROM pg_catalog.pg_constraint k
WHERE k.conrelid = ANY($1::oid[]) AND k.contype IN ('p', 'u', 'c', 'x', 'f')
ORDER BY k.conrelid, k.contype <> 'p', k.conname"""
INDEXES_SQL = """
SELECT i.indrelid, pg_catalog.pg_get_indexdef(i.indexrelid) AS def
FROM pg_catalog.pg_index i
WHERE i.indrelid = ANY($1::oid[]) AND NOT EXISTS (
  SELECT 1 FROM pg_catalog.pg_constraint k
  WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid AND k.contype IN ('p', 'u', 'x'))
ORDER BY i.indrelid, i.indexrelid"""
POLICIES_SQL = """
SELECT p.polrelid, p.polname, p.polcmd::text AS cmd, p.polpermissive,
       CASE WHEN p.polroles = '{0}' THEN ARRAY['public']
            ELSE array(SELECT r.rolname::text FROM pg_catalog.pg_roles r WHERE r.oid = ANY(p.polroles)
                       ORDER BY r.rolname) END AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
FROM pg_catalog.pg_policy p WHERE p.polrelid = ANY($1::oid[]) ORDER BY p.polrelid, p.polname"""
TRIGGERS_SQL = """
SELECT t.tgrelid, t.tgname, pg_catalog.pg_get_triggerdef(t.oid) AS def, t.tgenabled <> 'D' AS enabled
FROM pg_catalog.pg_trigger t WHERE t.tgrelid = ANY($1::oid[]) AND NOT t.tgisinternal ORDER BY 1, 2"""
ENUMS_SQL = """
SELECT DISTINCT tn.nspname::text AS schema, t.typname::text AS name,
       array(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid
             ORDER BY e.enumsortorder) AS labels
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t0 ON t0.oid = a.atttypid
JOIN pg_catalog.pg_type t ON t.oid = CASE WHEN t0.typcategory = 'A' THEN t0.typelem ELSE t0.oid END
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped AND t.typtype = 'e'"""
SEQUENCES_SQL = """
SELECT n.nspname::text AS schema, s.relname::text AS name, pg_catalog.format_type(q.seqtypid, NULL) AS type,
       q.seqstart, q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle,
       pg_catalog.pg_sequence_last_value(s.oid) AS last_value,
       o.refobjid AS owner_oid, oa.attname::text AS owner_column, o.deptype::text AS deptype
FROM pg_catalog.pg_class s
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
JOIN pg_catalog.pg_sequence q ON q.seqrelid = s.oid
LEFT JOIN pg_catalog.pg_depend o ON o.classid = 'pg_catalog.pg_class'::regclass AND o.objid = s.oid
     AND o.refclassid = 'pg_catalog.pg_class'::regclass AND o.deptype IN ('a', 'i')
LEFT JOIN pg_catalog.pg_attribute oa ON oa.attrelid = o.refobjid AND oa.attnum = o.refobjsubid
WHERE s.relkind = 'S' AND (
  o.refobjid = ANY($1::oid[])
  OR s.oid IN (SELECT d.refobjid FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_attrdef ad ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
               WHERE ad.adrelid = ANY($1::oid[]) AND d.refclassid = 'pg_catalog.pg_class'::regclass)
  OR ($2 AND n.nspname = $3 AND o.objid IS NULL))
ORDER BY s.oid"""
VIEWS_SQL = """
SELECT c.relname::text AS name, pg_catalog.pg_get_viewdef(c.oid, true) AS def
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind = 'v' ORDER BY c.oid"""
FUNCTIONS_SQL = """
SELECT pg_catalog.pg_get_functiondef(p.oid) AS def
FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = $1 AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = 'pg_catalog.pg_proc'::regclass
                  AND e.objid = p.oid AND e.deptype = 'e')
ORDER BY p.oid"""


async def read_schema(conn: asyncpg.Connection, schema: str, names: tuple[str, ...], all_sequences: bool,
                      views: bool, functions: bool) -> Schema:
    rows = {r["relname"]: r for r in await conn.fetch(TABLES_SQL, schema, list(names))}
    oids = [rows[n]["oid"] for n in names if n in rows]
    by_oid: dict[int, dict[str, list[Any]]] = {o: {"columns": [], "constraints": [], "indexes": [],
                                                   "policies": [], "triggers": [], "pk": []} for o in oids}
    for r in await conn.fetch(COLUMNS_SQL, oids):
        by_oid[r["attrelid"]]["columns"].append(ColumnDef(
            r["attname"], r["type"], r["attnotnull"], r["identity"], r["generated"], r["expr"], r["collation"]))
    for r in await conn.fetch(CONSTRAINTS_SQL, oids):
        by_oid[r["conrelid"]]["constraints"].append((r["conname"], r["contype"], r["def"]))
        if r["contype"] == "p":
            by_oid[r["conrelid"]]["pk"] = list(r["columns"])
    for r in await conn.fetch(INDEXES_SQL, oids):
        by_oid[r["indrelid"]]["indexes"].append(r["def"])
    for r in await conn.fetch(POLICIES_SQL, oids):
        by_oid[r["polrelid"]]["policies"].append({
            "name": r["polname"], "command": COMMANDS[r["cmd"]], "permissive": r["polpermissive"],
            "roles": list(r["roles"]), "using": r["qual"], "withCheck": r["with_check"]})
    for r in await conn.fetch(TRIGGERS_SQL, oids):
        by_oid[r["tgrelid"]]["triggers"].append((r["tgname"], r["def"], r["enabled"]))
    tables = []
    for name in (n for n in names if n in rows):
        r, parts = rows[name], by_oid[rows[name]["oid"]]
        tables.append(TableDef(
            r["oid"], schema, name, tuple(parts["columns"]), tuple(parts["constraints"]), tuple(parts["pk"]),
            tuple(parts["indexes"]), r["relrowsecurity"], r["relforcerowsecurity"], tuple(parts["policies"]),
            tuple(parts["triggers"])))
    names_by_oid = {t.oid: t for t in tables}
    sequences = []
    for r in await conn.fetch(SEQUENCES_SQL, oids, all_sequences, schema):
        owner_table = names_by_oid.get(r["owner_oid"])
        owner = (owner_table.name, r["owner_column"], r["deptype"]) if owner_table else None
        candidates = [r["last_value"]]
        if owner_table is not None:  # past the data too, in case rows were written with explicit ids
            candidates.append(await conn.fetchval(f"SELECT max({ident(r['owner_column'])})::bigint "
                                                  f"FROM {owner_table.qualified}"))
        value = max((v for v in candidates if v is not None), default=None)
        options = (f"AS {r['type']} INCREMENT BY {r['seqincrement']} MINVALUE {r['seqmin']} "
                   f"MAXVALUE {r['seqmax']} START WITH {r['seqstart']} CACHE {r['seqcache']}"
                   f"{' CYCLE' if r['seqcycle'] else ' NO CYCLE'}")
        sequences.append(SequenceDef(r["schema"], r["name"], options, owner, value, value is not None))
    enums = tuple((r["schema"], r["name"], tuple(r["labels"])) for r in await conn.fetch(ENUMS_SQL, oids))
    view_defs = tuple(ViewDef(r["name"], r["def"]) for r in await conn.fetch(VIEWS_SQL, schema)) if views else ()
    function_defs = tuple(r["def"] for r in await conn.fetch(FUNCTIONS_SQL, schema)) if functions else ()
    return Schema(schema, tuple(tables), tuple(sequences), enums, view_defs, function_defs)


COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def header(meta: Schema, with_data: bool) -> str:
    names = ", ".join(t.name for t in meta.tables) or "(none)"
    lines = [f"-- Export of schema {meta.name}: {names}", f"-- data: {'yes' if with_data else 'no'}"]
    if meta.functions:
        lines.append("SET check_function_bodies = false;")  # bodies may use tables created below
    return "\n".join(lines) + "\n\n"


def _dollar_quoted(body: str) -> str:
    tag = "$gw$"
    while tag in body:
        tag = tag[:-1] + "x$"
    return f"{tag}{body}{tag}"


def column_sql(c: ColumnDef) -> str:
    parts = [ident(c.name), c.type]
    if c.collation:
        parts.append(f"COLLATE {ident(c.collation)}")
    if c.identity:
        parts.append(f"GENERATED {'ALWAYS' if c.identity == 'a' else 'BY DEFAULT'} AS IDENTITY")
    elif c.generated:
        parts.append(f"GENERATED ALWAYS AS ({c.expr}) STORED")
    elif c.expr is not None:
        parts.append(f"DEFAULT {c.expr}")
    if c.not_null:
        parts.append("NOT NULL")
    return " ".join(parts)


def create_table(t: TableDef) -> str:
    body = [f"  {column_sql(c)}" for c in t.columns]
    body += [f"  CONSTRAINT {ident(name)} {d}" for name, kind, d in t.constraints if kind != "f"]
    return f"CREATE TABLE IF NOT EXISTS {t.qualified} (\n" + ",\n".join(body) + "\n);\n"


def before_data(meta: Schema) -> list[str]:
    out = []
    for schema, name, labels in meta.enums:
        create = f"CREATE TYPE {ident(schema)}.{ident(name)} AS ENUM ({', '.join(map(literal, labels))});"
        out.append(f"DO {_dollar_quoted(f' BEGIN {create} EXCEPTION WHEN duplicate_object THEN NULL; END ')};\n")
    out += [f"{d.rstrip().rstrip(';')};\n" for d in meta.functions]
    out += [f"CREATE SEQUENCE IF NOT EXISTS {s.qualified} {s.options};\n"
            for s in meta.sequences if s.owner is None or s.owner[2] == "a"]
    out += [create_table(t) for t in meta.tables]
    # foreign keys come back after the data: rows then load in any order, into new or existing tables
    out += [f"ALTER TABLE ONLY {t.qualified} DROP CONSTRAINT IF EXISTS {ident(name)};\n"
            for t in meta.tables for name, kind, _ in t.constraints if kind == "f"]
    by_name = {t.name: t for t in meta.tables}
    out += [f"ALTER SEQUENCE {s.qualified} OWNED BY {by_name[s.owner[0]].qualified}.{ident(s.owner[1])};\n"
            for s in meta.sequences if s.owner is not None and s.owner[2] == "a"]
    return out


def insert_head(t: TableDef) -> str:
    columns = ", ".join(ident(c.name) for c in t.insert_columns)
    overriding = " OVERRIDING SYSTEM VALUE" if any(c.identity == "a" for c in t.columns) else ""
    return f"INSERT INTO {t.qualified} ({columns}){overriding} VALUES\n"


def _order_by(t: TableDef) -> str:
    keys = t.primary_key
    return f" ORDER BY {', '.join(ident(k) for k in keys)}" if keys else ""


def rows_as_sql_query(t: TableDef, limit: int | None) -> str:
    """One text per row: ``('v1', NULL, ...)``, each value PostgreSQL's own quoted literal."""
    values = " || ', ' || ".join(f"pg_catalog.quote_nullable({ident(c.name)})" for c in t.insert_columns)
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    return f"SELECT '(' || {values} || ')' FROM {t.qualified}{_order_by(t)}{tail}"


def rows_as_json_query(t: TableDef, limit: int | None) -> str:
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    return f"SELECT pg_catalog.row_to_json(r)::text FROM {t.qualified} AS r{_order_by(t)}{tail}"


def after_data(meta: Schema) -> list[str]:
    out = []
    for s in meta.sequences:
        if s.owner is not None and s.owner[2] == "i":
            table = next(t for t in meta.tables if t.name == s.owner[0])
            target = f"pg_catalog.pg_get_serial_sequence({literal(table.qualified)}, {literal(s.owner[1])})"
        else:
            target = literal(s.qualified)
        if s.value is not None:
            out.append(f"SELECT pg_catalog.setval({target}, {s.value}, true);\n")
    for t in meta.tables:
        out += [f"{d.replace(' INDEX ', ' INDEX IF NOT EXISTS ', 1)};\n" for d in t.indexes]
    for t in meta.tables:
        out += [f"ALTER TABLE ONLY {t.qualified} ADD CONSTRAINT {ident(name)} {d};\n"
                for name, kind, d in t.constraints if kind == "f"]
    for t in meta.tables:
        if t.rls:
            out.append(f"ALTER TABLE {t.qualified} ENABLE ROW LEVEL SECURITY;\n")
        if t.force_rls:
            out.append(f"ALTER TABLE {t.qualified} FORCE ROW LEVEL SECURITY;\n")
        for p in t.policies:
            roles = ", ".join("PUBLIC" if r == "public" else ident(r) for r in p["roles"])
            using = f" USING ({p['using']})" if p["using"] is not None else ""
            check = f" WITH CHECK ({p['withCheck']})" if p["withCheck"] is not None else ""
            out.append(f"DROP POLICY IF EXISTS {ident(p['name'])} ON {t.qualified};\n"
                       f"CREATE POLICY {ident(p['name'])} ON {t.qualified} AS "
                       f"{'PERMISSIVE' if p['permissive'] else 'RESTRICTIVE'} FOR {p['command']} "
                       f"TO {roles}{using}{check};\n")
        for name, definition, enabled in t.triggers:
            out.append(f"DROP TRIGGER IF EXISTS {ident(name)} ON {t.qualified};\n{definition};\n")
            if not enabled:
                out.append(f"ALTER TABLE {t.qualified} DISABLE TRIGGER {ident(name)};\n")
    out += [f"CREATE OR REPLACE VIEW {ident(meta.name)}.{ident(v.name)} AS\n{v.definition.rstrip(';')};\n"
            for v in meta.views]
    return out


def table_document(t: TableDef) -> dict[str, Any]:
    """The JSON export's description of one table (rows are added by the caller)."""
    return {
        "columns": [{"name": c.name, "type": c.type, "nullable": not c.not_null, "default": c.expr
                     if not c.generated else None, "identity": c.identity or None,
                     "generated": c.expr if c.generated else None} for c in t.columns],
        "primaryKey": t.primary_key,
        "constraints": [{"name": n, "definition": d} for n, k, d in t.constraints if k != "f"],
        "indexes": list(t.indexes),
        "foreignKeys": [{"name": n, "definition": d} for n, k, d in t.constraints if k == "f"],
        "rlsEnabled": t.rls,
        "policies": list(t.policies),
        "triggers": [{"name": n, "definition": d, "enabled": e} for n, d, e in t.triggers],
    }
