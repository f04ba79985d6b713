"""Privileges: what each API role may do with every exposed relation, column and function.

In:  an open connection (the reflection's snapshot) and the exposed schemas.
Out: ``Privileges`` — (role, privilege) pairs per relation oid, per (relation oid, column)
     and per function oid — which ``reflect.py`` stores on the catalog's objects, and
     ``Catalog.visible_to(role)`` reads to build the schema each role is shown.

PostgreSQL decides, not the gateway: ``has_table_privilege``, ``has_column_privilege`` and
``has_function_privilege`` for ``anon``, ``authenticated`` and ``project_admin`` (privileges
through role membership and PUBLIC included), and nothing at all without USAGE on the
schema. One query per object kind, never one per object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from .catalog import Column
from .identity import ROLES

TABLE_GRANTS_SQL = """
select c.oid, r.rolname::text as role, p.privilege
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
cross join pg_roles r
cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p(privilege)
where n.nspname = any($1::text[]) and c.relkind in ('r', 'v', 'm', 'f', 'p') and r.rolname = any($2::text[])
  and has_schema_privilege(r.oid, n.oid, 'USAGE') and has_table_privilege(r.oid, c.oid, p.privilege)
"""

COLUMN_GRANTS_SQL = """
select a.attrelid, a.attname::text as column, r.rolname::text as role, p.privilege
from pg_attribute a
join pg_class c on c.oid = a.attrelid
join pg_namespace n on n.oid = c.relnamespace
cross join pg_roles r
cross join unnest(array['SELECT', 'INSERT', 'UPDATE']) p(privilege)
where a.attnum > 0 and not a.attisdropped and n.nspname = any($1::text[])
  and c.relkind in ('r', 'v', 'm', 'f', 'p') and r.rolname = any($2::text[])
  and has_schema_privilege(r.oid, n.oid, 'USAGE')
  and has_column_privilege(r.oid, a.attrelid, a.attnum, p.privilege)
"""

FUNCTION_GRANTS_SQL = """
select p.oid, r.rolname::text as role
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
cross join pg_roles r
where n.nspname = any($1::text[]) and p.prokind = 'f' and r.rolname = any($2::text[])
  and has_schema_privilege(r.oid, n.oid, 'USAGE') and has_function_privilege(r.oid, p.oid, 'EXECUTE')
"""

Pairs = frozenset[tuple[str, str]]
NONE: Pairs = frozenset()


@dataclass(frozen=True)
class Privileges:
    relations: Mapping[int, Pairs]  # relation oid -> (role, SELECT/INSERT/UPDATE/DELETE)
    columns: Mapping[tuple[int, str], Pairs]  # (relation oid, column) -> (role, SELECT/INSERT/UPDATE)
    functions: Mapping[int, Pairs]  # function oid -> (role, EXECUTE)

    def on_columns(self, relid: int, columns: Iterable[Column]) -> tuple[Column, ...]:
        return tuple(replace(c, privileges=self.columns.get((relid, c.name), NONE)) for c in columns)


def _group(rows: Iterable[asyncpg.Record], key: str | tuple[str, str], privilege: str | None) -> dict[Any, Pairs]:
    """(role, privilege) pairs by ``key`` (a column, or two for a composite key); EXECUTE without ``privilege``.

    Every object with the same grants shares one set, made of shared pairs: most columns of a
    schema carry the same few pairs, and one set per column (each pair's strings fresh from the
    driver) made privileges the largest part of a 200-table catalog."""
    pairs: dict[tuple[str, str], tuple[str, str]] = {}
    out: dict[Any, set[tuple[str, str]]] = defaultdict(set)
    for r in rows:
        k = (r[key[0]], r[key[1]]) if isinstance(key, tuple) else r[key]
        pair = (r["role"], r[privilege] if privilege else "EXECUTE")
        out[k].add(pairs.setdefault(pair, pair))
    shared: dict[Pairs, Pairs] = {}
    return {k: shared.setdefault(frozenset(v), frozenset(v)) for k, v in out.items()}


async def load(conn: asyncpg.Connection, schemas: tuple[str, ...]) -> Privileges:
    """The three API roles' privileges on every object of ``schemas``."""
    args = (list(schemas), list(ROLES))
    return Privileges(
        _group(await conn.fetch(TABLE_GRANTS_SQL, *args), "oid", "privilege"),
        _group(await conn.fetch(COLUMN_GRANTS_SQL, *args), ("attrelid", "column"), "privilege"),
        _group(await conn.fetch(FUNCTION_GRANTS_SQL, *args), "oid", None))
