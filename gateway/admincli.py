"""The admin commands: ``gateway export``, ``gateway import`` and ``gateway bulk-upsert``.

In:  the subcommand's flags and file, and the environment (``settings.load``): ``DATABASE_URL``,
     or the embedded PostgreSQL of the running gateway (``running.for_command``: ``--url``,
     ``--data-dir``, or the only one running), joined (or started) for the command and stopped
     after it unless ``gateway serve`` still uses it; a data directory without a database is
     refused, never initialised.
Out: the export on stdout (UTF-8, whatever the locale); the result of an import or bulk upsert
     on stdout as the endpoint's JSON body; a tqdm progress bar (rate, time left) on stderr when
     it is a terminal; on failure the spec's error body (JSON) as the last line of stderr and
     exit status 1, or one line and ``startup.Exit.NO_SERVER`` when there is nothing to work on.

Each command is its HTTP endpoint (``admin/routes.py``) without the HTTP: the same functions of
``admin/export.py``, ``importer.py`` and ``bulk.py``, the same guard, run as the admin identity
through ``Executor.transaction`` with the same role, rules and request path, after the bootstrap.
What stays HTTP-only: the authentication (the command line is trusted as the server's operator
is) and the upload size limit (a local file is read whole). An import ends with
``NOTIFY pgrst, 'reload schema'``, sent at its commit, so every running gateway reloads its
catalog as the one serving the import endpoint does; a bulk upsert writes rows only, and its
endpoint reloads nothing either.

The modules doing the work (asyncpg, SQLAlchemy, pglast) are imported when a command runs, so
``gateway serve`` and ``gateway token`` do not pay for them at start-up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from . import running
from . import settings as settings_module
from .errors import GatewayError
from .identity import ADMIN
from .settings import Settings

if TYPE_CHECKING:
    import asyncpg

    from .admin.exportsql import Schema
    from .catalog import Catalog
    from .execute import Executor, RequestContext

EXIT_FAILED = 1  # any failure the error body describes
EXIT_INTERRUPTED = 130  # Ctrl+C: the transaction is rolled back
ENDPOINTS = "/api/database/advance"  # request.path of the endpoint each command mirrors, for triggers
RELOAD_SQL = "NOTIFY pgrst, 'reload schema'"  # delivered when the import's transaction commits


@dataclass(frozen=True)
class Session:
    settings: Settings  # from the environment; database_url is the embedded server's when unset
    executor: Executor  # over a one-connection pool of the command's own

    async def catalog(self) -> Catalog:
        """The catalog of the exposed schemas, as ``gateway serve`` loads it."""
        from .reflect import load_catalog

        assert self.settings.database_url is not None
        return await load_catalog(self.settings.database_url, self.settings.schemas)


Work = Callable[[Session, argparse.Namespace], Awaitable[int]]


def context(endpoint: str, read_only: bool = False) -> RequestContext:
    from .execute import RequestContext

    return RequestContext(method="POST", path=f"{ENDPOINTS}/{endpoint}", read_only=read_only)


def progress_bar(total: int, unit: str, desc: str) -> Any:
    """A tqdm bar on stderr with the rate and the time left, drawn only when stderr is a terminal
    (a pipe or a log file stays quiet); none for nothing to do (an export without rows)."""
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, dynamic_ncols=True,
                disable=True if total == 0 else None)


def read_input(path: str) -> tuple[str, bytes]:
    """(file name, bytes); the name carries the extension the endpoint checks."""
    try:
        return Path(path).name, Path(path).read_bytes()
    except OSError as exc:
        raise GatewayError(400, "INVALID_INPUT", f"file: cannot read {path}: {exc.strerror or exc}",
                           next_actions="Check the file's path and permissions") from exc


def fail(err: GatewayError) -> int:
    sys.stderr.write(orjson.dumps(err.body("admin")).decode() + "\n")
    sys.stderr.flush()
    return EXIT_FAILED


def print_result(result: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- running a command


@contextlib.asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[Session]:
    """A session on the database through the login role, after the bootstrap, as ``gateway serve`` has."""
    from . import login
    from .execute import Executor, create_pool

    dsn = await login.prepare(settings)
    pool = await create_pool(dsn, settings, min_size=1, max_size=1)
    try:
        yield Session(replace(settings, database_url=dsn), Executor(settings, pool))
    finally:
        await pool.close()


async def _main(work: Work, args: argparse.Namespace, settings: Settings) -> int:
    from .admin.rawsql import USER_SQL_RULES
    from .execute import translate

    try:
        async with connected(settings) as session:
            return await work(session, args)
    except Exception as exc:  # GatewayError as it is; driver errors (a refused connection) as the executor maps them
        return fail(translate(exc, ADMIN, USER_SQL_RULES))


def database_settings(args: argparse.Namespace) -> Settings:
    """The settings for the database a command works on: ``DATABASE_URL``, else the embedded
    PostgreSQL of the running gateway (``running.for_command``), with the keys of its data dir;
    ``Failure`` when there is none."""
    from .keys import ensure_keys
    from .startup import Exit, Failure

    try:
        settings = settings_module.load()
    except ValueError as exc:  # a malformed setting (GATEWAY_POOL_MAX=many)
        raise Failure(Exit.CONFIG, str(exc)) from exc
    if not settings.database_url:
        try:
            server = running.for_command(args, settings)
        except running.NotFound as exc:
            raise Failure(Exit.NO_SERVER, str(exc)) from exc
        if server.database != running.EMBEDDED:
            raise Failure(Exit.NO_SERVER, f"the gateway at {server.url} serves {server.database}, "
                                          "not an embedded database; set DATABASE_URL to that database")
        if not (server.data_dir / "pgdata" / "PG_VERSION").exists():  # never start an empty database
            raise Failure(Exit.NO_SERVER, f"no database in {server.data_dir} (no gateway has run there); "
                                          "check --data-dir, or start `gateway serve` there first")
        settings = replace(settings, data_dir=str(server.data_dir))
    try:
        return ensure_keys(settings)
    except (ValueError, OSError) as exc:  # a damaged keys file, API_KEY=nope, a data dir it cannot write
        raise Failure(Exit.CONFIG, str(exc)) from exc


def run(work: Work, args: argparse.Namespace) -> int:
    """Run ``work`` against the configured database, starting the embedded one when it is not running."""
    settings = database_settings(args)
    embedded = None
    try:
        if not settings.database_url:
            from . import embedded as embedded_module

            embedded = embedded_module.start(settings.data_dir)
            settings = replace(settings, database_url=embedded.url)
        return asyncio.run(_main(work, args, settings))
    except KeyboardInterrupt:  # the connection closes with the loop, so PostgreSQL rolls back
        return EXIT_INTERRUPTED
    finally:
        if embedded is not None:
            embedded.stop()


# --------------------------------------------------------------------------- export


def export_body(args: argparse.Namespace) -> dict[str, Any]:
    """The export endpoint's JSON body for these flags; ``export.read_body`` checks it as it checks a request."""
    body: dict[str, Any] = {"format": args.format, "includeData": not args.no_data,
                            "includeFunctions": args.functions, "includeSequences": args.sequences,
                            "includeViews": args.views}
    if args.tables is not None:
        body["tables"] = [name.strip() for name in args.tables.split(",") if name.strip()]
    if args.row_limit is not None:
        body["rowLimit"] = args.row_limit
    return body


async def rows_to_export(conn: asyncpg.Connection, meta: Schema, fmt: str, limit: int | None) -> int:
    """How many rows the export will write: the progress bar's total."""
    # a table without insertable columns has no INSERTs in SQL (its rows still show in JSON)
    tables = [t for t in meta.tables if fmt == "json" or t.insert_columns]
    if not tables:
        return 0
    tail = "" if limit is None else f" LIMIT {int(limit)}"
    counts = " + ".join(f"(SELECT count(*) FROM (SELECT FROM {t.qualified}{tail}) AS r)" for t in tables)
    return int(await conn.fetchval(f"SELECT {counts}"))


async def _export(session: Session, args: argparse.Namespace) -> int:
    from .admin import export
    from .admin.rawsql import USER_SQL_RULES

    schema = session.settings.default_schema
    req = export.read_body(export_body(args), await session.catalog(), schema)
    out = sys.stdout.buffer  # the dump is UTF-8 whatever the locale says: import reads UTF-8
    async with session.executor.transaction(ADMIN, context("export", read_only=True), USER_SQL_RULES) as tx:
        meta = await export.describe(tx.conn, req, schema)
        total = await rows_to_export(tx.conn, meta, req.format, req.row_limit) if req.include_data else 0
        with progress_bar(total, "row", "export") as bar:
            async for chunk in export.content_chunks(tx.conn, req, meta, bar.update):
                out.write(chunk.encode())
        out.flush()
    return 0


def export_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tables", metavar="A,B", help="tables to export, comma-separated (default: every table)")
    p.add_argument("--format", default="sql", metavar="sql|json",
                   help="a SQL script that rebuilds the tables (default) or a JSON document")
    p.add_argument("--no-data", action="store_true", help="definitions only, no rows")
    p.add_argument("--functions", action="store_true", help="include the schema's functions")
    p.add_argument("--sequences", action="store_true", help="include every sequence of the schema")
    p.add_argument("--views", action="store_true", help="include the schema's views")
    p.add_argument("--row-limit", type=int, metavar="N", help="at most N rows per table")


def export(args: argparse.Namespace) -> int:
    return run(_export, args)


# --------------------------------------------------------------------------- import


async def _import(session: Session, args: argparse.Namespace) -> int:
    from .admin import importer
    from .admin.rawsql import USER_SQL_RULES

    parsed = importer.read_file(*read_input(args.file))
    async with session.executor.transaction(ADMIN, context("import"), USER_SQL_RULES) as tx:
        with progress_bar(len(parsed.statements), "stmt", "import") as bar:
            result = await importer.run(tx.conn, parsed, args.truncate, ADMIN, session.settings.default_schema,
                                        bar.update)
        await tx.execute(RELOAD_SQL)
    print_result(result)
    return 0


def import_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .sql (or .txt) file, such as one written by `gateway export`")
    p.add_argument("--truncate", action="store_true",
                   help="empty the existing tables the file creates or inserts into first")


def import_(args: argparse.Namespace) -> int:
    return run(_import, args)


# --------------------------------------------------------------------------- bulk upsert


async def _bulk_upsert(session: Session, args: argparse.Namespace) -> int:
    from .admin import bulk
    from .admin.rawsql import USER_SQL_RULES
    from .errors import table_not_found

    filename, data = read_input(args.file)
    schema = args.schema or session.settings.default_schema
    table = (await session.catalog()).table(args.table, schema)
    if table is None or table.kind not in ("table", "partitioned_table"):
        raise table_not_found(args.table)
    upload = bulk.plan(table, bulk.parse_records(filename, data), args.upsert_key or None, filename)
    async with session.executor.transaction(ADMIN, context("bulk-upsert"), USER_SQL_RULES) as tx:
        with progress_bar(len(upload.rows), "row", f"bulk-upsert {table.name}") as bar:
            result = await bulk.run(tx.conn, upload, bar.update)
    print_result(result)
    return 0


def bulk_upsert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a .csv file with a header row, or a .json array of objects")
    p.add_argument("--table", required=True, help="the table to write to")
    p.add_argument("--upsert-key", metavar="COLUMN",
                   help="update the rows whose COLUMN (unique) matches a record; insert the others")
    p.add_argument("--schema", help="the table's schema (default: the first of GATEWAY_SCHEMAS)")


def bulk_upsert(args: argparse.Namespace) -> int:
    return run(_bulk_upsert, args)
