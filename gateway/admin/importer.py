"""Import: an uploaded SQL file in, its statements applied all or nothing out.

In:  the multipart fields ``file`` (``.sql`` or ``.txt``) and ``truncate``, and a transaction of
     ``project_admin`` (objects it creates get the default privileges ``schema/`` sets for it).
Out: ``{filename, fileSize, tables, rowsImported}`` (plus the real server's ``success`` and
     ``message``); on the first failing statement a 400 naming it, and nothing is kept.

The whole file passes the guard in ``import`` mode first (relaxed rules; transaction control is a
400, since the import is one transaction already). With ``truncate`` the tables the file creates
or inserts into that exist already are emptied first — exactly those, never with ``CASCADE``:
when a table outside the file has a foreign key to one of them, the import is refused with 409
naming each such table and nothing changes (the real server cascades, silently emptying tables
the file never mentions). Tables in protected schemas are never truncated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from .. import execute
from ..errors import GatewayError
from ..identity import Identity
from . import rawsql, sqlguard
from .exportsql import ident

EXTENSIONS = (".sql", ".txt")
EXISTING_SQL = "SELECT t FROM unnest($1::text[]) AS t WHERE pg_catalog.to_regclass(t) IS NOT NULL"
SEARCH_PATH_SQL = "SELECT pg_catalog.set_config('search_path', $1, true)"
# foreign keys from tables outside the truncated set into it (a partition's copy of its parent's key
# is not counted twice: conparentid is 0 only for the key as declared)
DEPENDENTS_SQL = """
SELECT pg_catalog.format('%I.%I', dn.nspname, d.relname) AS dependent,
       pg_catalog.format('%I.%I', tn.nspname, t.relname) AS target, c.conname AS name
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class d ON d.oid = c.conrelid JOIN pg_catalog.pg_namespace dn ON dn.oid = d.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = c.confrelid JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE c.contype = 'f' AND c.conparentid = 0
  AND c.confrelid = ANY($1::pg_catalog.regclass[]) AND NOT c.conrelid = ANY($1::pg_catalog.regclass[])
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class ImportFile:
    filename: str
    size: int  # bytes, as uploaded
    statements: tuple[str, ...]  # as written, admitted by the guard
    tables: tuple[tuple[str | None, str], ...]  # (schema, name) created or inserted into, first seen first


def read_file(filename: str, data: bytes) -> ImportFile:
    """Check the upload's name and text and guard its SQL."""
    if not filename.lower().endswith(EXTENSIONS):
        raise GatewayError(400, "INVALID_INPUT", "file: must be a .sql or .txt file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise GatewayError(400, "INVALID_INPUT", "file: is not UTF-8 text") from exc
    if not text.strip():
        raise GatewayError(400, "INVALID_INPUT", "file: is empty")
    checked = sqlguard.admit(text, "import")
    return ImportFile(filename, len(data), checked.statements, checked.tables)


async def run(conn: asyncpg.Connection, upload: ImportFile, truncate: bool, identity: Identity,
              schema: str, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Truncate (optionally), then every statement in order; call inside an executor transaction.
    ``progress`` (optional) is told each statement done."""
    await conn.fetchrow(SEARCH_PATH_SQL, schema)
    if truncate:
        candidates = [f"{ident(s or schema)}.{ident(n)}" for s, n in upload.tables if not sqlguard.protected(s)]
        existing = [r["t"] for r in await conn.fetch(EXISTING_SQL, candidates)]
        if existing:
            await refuse_dependents(conn, existing)
            await conn.execute(f"TRUNCATE {', '.join(existing)}")
    rows = 0
    for number, text in enumerate(upload.statements, 1):
        try:
            status = await conn.execute(text)
        except Exception as exc:
            raise failed(exc, identity, number, text) from exc
        if status.startswith("INSERT "):
            rows += int(status.rsplit(" ", 1)[-1])
        if progress is not None:
            progress(1)
    await conn.execute(rawsql.CLEANUP_SQL)
    names = list(dict.fromkeys(name for _, name in upload.tables))
    return {"filename": upload.filename, "fileSize": upload.size, "tables": names, "rowsImported": rows,
            "success": True, "message": f"Imported {rows} rows from {len(upload.statements)} statements"}


async def refuse_dependents(conn: asyncpg.Connection, tables: list[str]) -> None:
    """409 naming every table outside ``tables`` whose foreign key references one of them: truncating
    would need CASCADE, which would empty tables the file does not mention."""
    found = await conn.fetch(DEPENDENTS_SQL, tables)
    if not found:
        return
    dependents = list(dict.fromkeys(r["dependent"] for r in found))
    links = "; ".join(f"{r['dependent']} references {r['target']} ({r['name']})" for r in found)
    raise GatewayError(
        409, "DATABASE_CONSTRAINT_VIOLATION",
        f"Cannot truncate the file's tables: {', '.join(dependents)} "
        f"{'references' if len(dependents) == 1 else 'reference'} them and would have to be emptied too "
        "(the import never cascades); nothing was imported",
        code="23503", details=links,
        next_actions="Add the referencing tables to the file, empty them yourself first, "
                     "or import without truncate")


def failed(exc: BaseException, identity: Identity, number: int, text: str) -> GatewayError:
    """400 "Import failed ..." naming the statement; an unavailable database stays a 503."""
    err = execute.translate(exc, identity, rawsql.USER_SQL_RULES)
    if err.status == 503:
        return err
    snippet = " ".join(text.split())
    snippet = snippet if len(snippet) <= 200 else snippet[:200] + "..."
    return GatewayError(400, "INVALID_INPUT", f"Import failed at statement {number} ({snippet}): {err.message}",
                        code=err.code, details=err.details, hint=err.hint,
                        next_actions="Fix the statement in the file and import it again; nothing was imported")
