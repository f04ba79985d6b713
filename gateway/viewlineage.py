"""View column lineage: a view's stored query tree in, the base column behind each view column out.

In:  ``pg_rewrite.ev_action`` as text — PostgreSQL's node-tree serialization of the view's
     ``_RETURN`` rule — read on the reflection's connection (``reflect_lineage``).
Out: ``column_origins``: ``{view column: (relation oid, attribute number)}`` for the columns that
     are a plain reference to a column of a table or view in the view's FROM (PostgreSQL records
     it on each output as ``resorigtbl``/``resorigcol``); computed columns are left out.
     ``reflect_lineage``: each exposed view's ``Table.column_sources``, and the base tables in
     unexposed schemas those views show, with their foreign keys (never exposed themselves).

This is how PostgREST infers the relationships of views (resource embedding, "Embedding Views"):
a view column that is a base table's FK column carries that FK. The serialization is read with the
tokenizer rules of PostgreSQL's ``read.c`` (``pg_strtok``): tokens are split at whitespace and at
``(``, ``)``, ``{``, ``}``, and a backslash makes the next character part of the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from .catalog import Column, ForeignKey, Table

Key = tuple[str, str]

# The stored query of each exposed view: its output columns name the columns they come from.
VIEW_RULES_SQL = """
select r.ev_class as oid, r.ev_action::text as action
from pg_rewrite r
join pg_class c on c.oid = r.ev_class
join pg_namespace n on n.oid = c.relnamespace
where r.rulename = '_RETURN' and c.relkind in ('v', 'm') and n.nspname = any($1::text[])
"""

# Base tables of exposed views that live in unexposed schemas: names, columns and outgoing FKs.
HIDDEN_TABLES_SQL = """
select c.oid, n.nspname as schema, c.relname as name,
       array(select a.attname::text from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
             and not a.attisdropped order by a.attnum) as names,
       array(select a.attnum::int from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
             and not a.attisdropped order by a.attnum) as nums,
       array(select k.conname::text from pg_constraint k where k.conrelid = c.oid and k.contype = 'f'
             order by k.conname) as fk_names
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.oid = any($1::oid[]) and c.relkind in ('r', 'p')
"""

HIDDEN_FOREIGN_KEYS_SQL = """
select k.conrelid as oid, k.conname as name, rn.nspname as ref_schema, rc.relname as ref_table,
       array(select a.attname::text from unnest(k.conkey) with ordinality u(num, i)
             join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.num order by u.i) as columns,
       array(select a.attname::text from unnest(k.confkey) with ordinality u(num, i)
             join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.num order by u.i) as ref_columns
from pg_constraint k
join pg_class rc on rc.oid = k.confrelid
join pg_namespace rn on rn.oid = rc.relnamespace
where k.contype = 'f' and k.conrelid = any($1::oid[])
order by k.conrelid, k.conname
"""

_DELIMITERS = frozenset("(){}")
_BLANK = frozenset(" \t\n\r")


def tokens(text: str) -> list[str]:
    """``pg_strtok``'s tokens (backslashes removed; ``<>`` stays the null token)."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _BLANK:
            i += 1
            continue
        if ch in _DELIMITERS:
            out.append(ch)
            i += 1
            continue
        chars: list[str] = []
        while i < n and text[i] not in _BLANK and text[i] not in _DELIMITERS:
            if text[i] == "\\" and i + 1 < n:
                i += 1
            chars.append(text[i])
            i += 1
        out.append("".join(chars))
    return out


def _value(toks: list[str], pos: int) -> tuple[Any, int]:
    """One value at ``pos``: a node (dict with its type under ``""``), a list, or scalar tokens."""
    tok = toks[pos]
    if tok == "{":
        node: dict[str, Any] = {"": toks[pos + 1]}
        pos += 2
        while toks[pos] != "}":
            field = toks[pos][1:]
            pos += 1
            if toks[pos] in ("{", "("):
                node[field], pos = _value(toks, pos)
            else:  # a scalar, or several tokens (``:constvalue 4 [ 1 0 0 0 ]``) up to the next field
                start = pos
                while not toks[pos].startswith(":") and toks[pos] != "}":
                    pos += 1
                node[field] = toks[start] if pos - start == 1 else toks[start:pos]
        return node, pos + 1
    if tok == "(":
        items: list[Any] = []
        pos += 1
        while toks[pos] != ")":
            item, pos = _value(toks, pos)
            items.append(item)
        return items, pos + 1
    return tok, pos + 1


def parse_node_tree(text: str) -> Any:
    toks = tokens(text)
    value, _ = _value(toks, 0)
    return value


def column_origins(ev_action: str) -> dict[str, tuple[int, int]]:
    """View column name -> (relation oid, attnum) for the view's plain column references."""
    tree = parse_node_tree(ev_action)
    query = tree[0] if isinstance(tree, list) and tree else tree
    if not isinstance(query, dict):
        return {}
    out: dict[str, tuple[int, int]] = {}
    for entry in query.get("targetList") or ():
        if not isinstance(entry, dict) or entry.get("resjunk") == "true":
            continue
        name, table, column = entry.get("resname"), entry.get("resorigtbl"), entry.get("resorigcol")
        if isinstance(name, str) and isinstance(table, str) and isinstance(column, str) \
                and table.isdigit() and column.isdigit() and int(table) and int(column):
            out.setdefault(name, (int(table), int(column)))
    return out


@dataclass(frozen=True)
class Lineage:
    sources: dict[Key, tuple[tuple[str, str, str, str], ...]]  # exposed view -> Table.column_sources
    hidden: dict[Key, Table]  # unexposed base tables the views show (columns by name, FKs)


async def reflect_lineage(conn: asyncpg.Connection, schemas: tuple[str, ...], table_by_relid: Mapping[int, Key],
                          columns: Mapping[int, tuple[Column, ...]]) -> Lineage:
    """Where each exposed view's columns come from, and the unexposed tables among those sources."""
    origins = {r["oid"]: column_origins(r["action"]) for r in await conn.fetch(VIEW_RULES_SQL, list(schemas))}
    unknown = {relid for found in origins.values() for relid, _ in found.values()} - set(table_by_relid)
    names: dict[int, Key] = dict(table_by_relid)
    attnames: dict[int, dict[int, str]] = {oid: {c.position: c.name for c in cols} for oid, cols in columns.items()}
    hidden: dict[Key, Table] = {}
    if unknown:
        fks: dict[int, list[ForeignKey]] = {}
        for r in await conn.fetch(HIDDEN_FOREIGN_KEYS_SQL, list(unknown)):
            fks.setdefault(r["oid"], []).append(ForeignKey(r["name"], tuple(r["columns"]), r["ref_schema"],
                                                           r["ref_table"], tuple(r["ref_columns"])))
        for r in await conn.fetch(HIDDEN_TABLES_SQL, list(unknown)):
            key = (r["schema"], r["name"])
            names[r["oid"]] = key
            attnames[r["oid"]] = dict(zip(r["nums"], r["names"], strict=True))
            hidden[key] = Table(key[0], key[1], "table", tuple(
                Column(n, "", "", "other", position=num) for num, n in zip(r["nums"], r["names"], strict=True)),
                foreign_keys=tuple(fks.get(r["oid"], ())))
    sources: dict[Key, tuple[tuple[str, str, str, str], ...]] = {}
    for oid, found in origins.items():
        view = table_by_relid.get(oid)
        if view is None:
            continue
        sources[view] = tuple((name, *names[relid], attnames[relid][attnum])
                              for name, (relid, attnum) in found.items()
                              if relid in names and attnum in attnames.get(relid, {}))
    return Lineage(sources, hidden)
