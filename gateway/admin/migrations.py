"""Migrations: ``{version, name, sql}`` in, an applied and recorded migration out.

In:  the POST body (or nothing, for the list) and a transaction from the executor running as
     ``project_admin``, which may read and insert into ``system.custom_migrations`` and nothing more.
Out: ``{version, name, statements, createdAt}`` rows, newest first by numeric version; for a new
     migration the same plus ``message``.

Applying one, all in the caller's transaction:

  1. ``pg_advisory_xact_lock`` on the table, so concurrent migrations (from any gateway process)
     run one after the other and the ordering check below cannot race;
  2. the version must be numerically greater than the latest applied one (409 otherwise);
  3. with ``search_path`` = the default schema, each statement runs as written, in order, as
     ``project_admin`` (objects belong to it and get the API's default privileges);
  4. the session is cleaned (``rawsql.CLEANUP_SQL``, which also resets the role to the powerless
     login role), the role is set to ``project_admin`` again and the record is inserted. Any
     failure raises, the executor rolls everything back, and nothing is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from .. import execute
from ..errors import GatewayError
from ..identity import Identity
from . import rawsql, sqlguard

VERSION = re.compile(r"[0-9]{1,64}")
NAME = re.compile(r"[A-Za-z0-9_-]+")

LOCK_SQL = "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('system.custom_migrations'))"
LATEST_SQL = "SELECT version FROM system.custom_migrations ORDER BY version::numeric DESC LIMIT 1"
SEARCH_PATH_SQL = "SELECT pg_catalog.set_config('search_path', $1, true)"
AS_ADMIN_SQL = "SELECT pg_catalog.set_config('role', 'project_admin', true)"
LIST_SQL = ("SELECT version, name, statements, created_at FROM system.custom_migrations "
            "ORDER BY version::numeric DESC")
INSERT_SQL = ("INSERT INTO system.custom_migrations (version, name, statements) VALUES ($1, $2, $3) "
              "RETURNING version, name, statements, created_at")


@dataclass(frozen=True)
class NewMigration:
    version: str  # 1-64 digits, compared numerically
    name: str  # letters, digits, _ and -
    statements: tuple[str, ...]  # each as written: what runs and what is recorded


def read_body(body: Any) -> NewMigration:
    """Validate the POST body and guard its SQL; 400 INVALID_INPUT listing every problem."""
    if not isinstance(body, dict):
        raise GatewayError(400, "INVALID_INPUT", "The body must be a JSON object {version, name, sql}")
    version, name, sql = body.get("version"), body.get("name"), body.get("sql")
    problems = []
    if not isinstance(version, str) or not VERSION.fullmatch(version):
        problems.append("version: must be a string of 1 to 64 digits")
    if not isinstance(name, str) or not name.strip():
        problems.append("name: is required")
    elif not NAME.fullmatch(name.strip()):
        problems.append("name: may contain only letters, digits, '_' and '-'")
    if not isinstance(sql, str) or not sql.strip():
        problems.append("sql: is required")
    if problems:
        raise GatewayError(400, "INVALID_INPUT", problems[0] if len(problems) == 1 else ", ".join(problems))
    assert isinstance(version, str) and isinstance(name, str) and isinstance(sql, str)
    statements = sqlguard.check(sql, "migration")
    return NewMigration(version, name.strip(), tuple(recorded_statements(sql, statements)))


def recorded_statements(sql: str, statements: list[str]) -> list[str]:
    """The statements as written: a single statement is kept whole (its ``;`` too), as given."""
    return [sql.strip()] if len(statements) == 1 else statements


def shape(row: asyncpg.Record) -> dict[str, Any]:
    return {"version": row["version"], "name": row["name"], "statements": list(row["statements"]),
            "createdAt": rawsql.iso(row["created_at"])}


async def list_all(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    return [shape(r) for r in await conn.fetch(LIST_SQL)]


async def apply(conn: asyncpg.Connection, migration: NewMigration, identity: Identity,
                schema: str) -> dict[str, Any]:
    """Steps 1-4 above inside the caller's transaction; the new record's shape."""
    await conn.execute(LOCK_SQL)
    latest = await conn.fetchval(LATEST_SQL)
    if latest is not None and int(migration.version) <= int(latest):
        raise GatewayError(409, "DATABASE_MIGRATION_ALREADY_EXISTS",
                           "Migration version must be newer than the latest applied migration.",
                           details=f"latest applied version: {latest}")
    await conn.fetchrow(SEARCH_PATH_SQL, schema)
    for number, text in enumerate(migration.statements, 1):
        try:
            await conn.execute(text)  # no arguments: the simple protocol, exactly as written
        except Exception as exc:
            raise failed_statement(exc, identity, number, text) from exc
    await conn.execute(rawsql.CLEANUP_SQL)
    await conn.execute(AS_ADMIN_SQL)
    try:
        row = await conn.fetchrow(INSERT_SQL, migration.version, migration.name, list(migration.statements))
    except asyncpg.UniqueViolationError as exc:
        raise GatewayError(409, "DATABASE_MIGRATION_ALREADY_EXISTS", "Migration version already exists.",
                           code="23505") from exc
    assert row is not None
    return {**shape(row), "message": "Migration executed successfully"}


def failed_statement(exc: BaseException, identity: Identity, number: int, text: str) -> GatewayError:
    """PostgreSQL's error (user mistakes are 4xx), naming the statement that raised it."""
    err = execute.translate(exc, identity, rawsql.USER_SQL_RULES)
    where = f"statement {number}: {text if len(text) <= 200 else text[:200] + '...'}"
    return replace(err, details=f"{err.details} ({where})" if err.details else where)
