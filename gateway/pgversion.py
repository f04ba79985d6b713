"""Which PostgreSQL the gateway talks to, and what that version can do.

In:  a connection (``read``, ``require_supported``, ``of``) or a ``server_version_num``.
Out: ``ServerVersion`` (``num`` as in ``server_version_num``, e.g. 150014, and the version text);
     ``supports(num, feature)`` from ``FEATURES``; ``UnsupportedServer`` (a one-line message) for a
     server older than ``MINIMUM``.

Every piece of SQL that only some supported majors understand is chosen here, by a row of
``FEATURES``; the rest of the gateway's SQL works on every major from 14 to 18 as it is (catalog
columns it reads exist since PostgreSQL 12, ``gen_random_uuid`` is core since 13, and the
gateway writes no ``MERGE``, SQL/JSON constructors or ``RETURNING OLD/NEW``).

``of(conn)`` costs no round trip: asyncpg keeps the ``server_version`` the server reports when
the connection is made (which it splits, since PostgreSQL 10, as major.0.minor), and
``major * 10000 + minor`` is exactly ``server_version_num``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

MINIMUM = 140000  # PostgreSQL 14: the oldest major still supported upstream
NEWEST_TESTED = 18

# feature -> the first server_version_num that has it
FEATURES: dict[str, int] = {
    # pg_input_is_valid / pg_input_error_info: check a value against a type without an error
    # (bulk upsert's validation); before 16 a temporary PL/pgSQL function calls the type's input
    # function inside an exception block instead (admin/bulk.py), with the same results
    "pg_input_is_valid": 160000,
}


class UnsupportedServer(RuntimeError):
    """The server is older than ``MINIMUM``; the message is one line."""


@dataclass(frozen=True)
class ServerVersion:
    num: int  # server_version_num, e.g. 180006
    text: str  # the version as PostgreSQL names it, e.g. "18.6" (a distributor's suffix dropped)

    @property
    def major(self) -> int:
        return self.num // 10000


def supports(num: int, feature: str) -> bool:
    """Does a server of ``server_version_num`` ``num`` have ``feature`` (a key of ``FEATURES``)?"""
    return num >= FEATURES[feature]


def of(conn: Any) -> int:
    """``server_version_num`` of an open asyncpg connection (or pool proxy), from connect time."""
    v = conn.get_server_version()
    return v.major * 10000 + v.micro if v.major >= 10 else v.major * 10000 + v.minor * 100 + v.micro


async def read(conn: asyncpg.Connection) -> ServerVersion:
    """The server's version, asked of the server."""
    row = await conn.fetchrow("SELECT current_setting('server_version_num')::int AS num, "
                              "current_setting('server_version') AS text")
    assert row is not None
    return ServerVersion(row["num"], row["text"].split(" ", 1)[0])


def check(version: ServerVersion) -> ServerVersion:
    """``version`` itself, or ``UnsupportedServer`` when it is older than ``MINIMUM``."""
    if version.num < MINIMUM:
        raise UnsupportedServer(f"PostgreSQL {version.text} is not supported: the gateway needs PostgreSQL "
                                f"{MINIMUM // 10000} or newer (tested on {MINIMUM // 10000} to {NEWEST_TESTED})")
    return version


async def require_supported(conn: asyncpg.Connection) -> ServerVersion:
    """The server's version; ``UnsupportedServer`` when the gateway cannot run on it."""
    return check(await read(conn))


async def require_supported_url(dsn: str) -> ServerVersion | None:
    """``require_supported`` over a connection of its own; None when the server cannot be reached
    (the start-up that follows reports that in its own words)."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return await require_supported(conn)
    finally:
        await conn.close()
