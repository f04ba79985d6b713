"""The bootstrap: the SQL in ``schema/`` applied at every start.

In:  an asyncpg connection as the ``DATABASE_URL`` role (a superuser, or an owner that may
     create roles), the login role requests will arrive through (its name, and the SCRAM
     verifier of its password when the gateway manages it), and the directory of numbered
     ``*.sql`` files (default: the first of ``SCHEMA_DIRS`` that has any; in the source tree
     that is the repository's top-level ``schema/``).
Out: roles (the login role included), the ``auth`` and ``system`` schemas, grants and the
     reload event trigger exist.

All files run in one transaction that first takes an advisory lock, so several processes
starting at once queue up instead of racing on CREATE ROLE or CREATE SCHEMA; the files are
written to change nothing when everything is already in place, so a start against a set-up
database costs one short transaction. ``gateway.bootstrap = 'on'`` (transaction-local) tells
the reload trigger that this DDL is the bootstrap's own and needs no NOTIFY;
``gateway.authenticator`` and ``gateway.authenticator_verifier`` (transaction-local as well) tell
``00_roles.sql`` which login role to create or check.
"""

from __future__ import annotations

import logging
import sys
from functools import lru_cache
from pathlib import Path

import asyncpg

log = logging.getLogger("gateway.bootstrap")

_PACKAGE = Path(__file__).resolve().parent
# Where the files are looked for, in order: shipped inside the package (package data), installed
# as data files under the environment's prefix, then the source tree (an editable install).
SCHEMA_DIRS: tuple[Path, ...] = (
    _PACKAGE / "schema",
    Path(sys.prefix) / "share" / "gateway" / "schema",
    _PACKAGE.parent / "schema",
)

# One lock for every gateway process on a database; hashtext keeps it readable in pg_locks.
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('gateway.bootstrap'))"
MARK_SQL = ("SELECT set_config('gateway.bootstrap', 'on', true), set_config('gateway.authenticator', $1, true), "
            "set_config('gateway.authenticator_verifier', $2, true)")

# Messages the schema files raise for operators start with this; PostgreSQL's own
# "already exists, skipping" notices do not, and are not worth a log line.
NOTICE_PREFIX = "gateway: "


def schema_dir(directory: Path | str | None = None) -> Path:
    """The directory whose ``*.sql`` files are the bootstrap (the argument wins when given)."""
    if directory is not None:
        return Path(directory)
    for candidate in SCHEMA_DIRS:
        if any(candidate.glob("*.sql")):
            return candidate
    raise FileNotFoundError(f"no bootstrap SQL found in {', '.join(map(str, SCHEMA_DIRS))}")


@lru_cache(maxsize=8)
def _scripts(directory: Path) -> tuple[tuple[str, str], ...]:
    """(file name, SQL text) in file-name order; read once per process."""
    return tuple((path.name, path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.sql")))


def scripts(directory: Path | str | None = None) -> tuple[tuple[str, str], ...]:
    found = _scripts(schema_dir(directory).resolve())
    if not found:
        raise FileNotFoundError(f"no *.sql files in {directory}")
    return found


def _log_notice(_conn: object, message: asyncpg.PostgresLogMessage) -> None:
    text = getattr(message, "message", "") or ""
    if text.startswith(NOTICE_PREFIX):
        log.warning("%s", text[len(NOTICE_PREFIX):])


async def apply(conn: asyncpg.Connection, directory: Path | str | None = None, *,
                authenticator: str | None = None, verifier: str | None = None) -> None:
    """Run every bootstrap file, in order, in one transaction under the bootstrap lock.

    ``authenticator`` names the login role to create (with ``verifier``, a SCRAM-SHA-256 verifier)
    or, without a verifier, to check and grant the request roles to; None leaves login roles alone.
    """
    files = scripts(directory)
    conn.add_log_listener(_log_notice)
    try:
        async with conn.transaction():
            await conn.execute(LOCK_SQL)
            await conn.execute(MARK_SQL, authenticator or "", verifier or "")
            for name, sql in files:
                try:
                    await conn.execute(sql)
                except asyncpg.PostgresError as exc:
                    exc.add_note(f"while applying bootstrap file {name}")
                    raise
    finally:
        conn.remove_log_listener(_log_notice)
