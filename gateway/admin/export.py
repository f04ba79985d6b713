"""Export: an export request in, SQL (or a JSON document) that rebuilds the tables out, in chunks.

In:  ``{tables?, format?, includeData?, includeFunctions?, includeSequences?, includeViews?,
     rowLimit?}`` checked against the catalog (unknown table -> 404), and a read-only transaction
     of ``project_admin`` (which holds every privilege on the exposed tables and sequences).
Out: ``describe`` reads the definitions from ``pg_catalog`` (``pg_get_constraintdef``,
     ``pg_get_indexdef``, ``pg_get_triggerdef``... — PostgreSQL's own renderings, so nothing is
     re-derived); ``sql_chunks``/``json_chunks`` then yield the content piece by piece, reading
     rows through a server-side cursor so a large table never sits in memory.

The SQL round-trips through ``/advance/import`` and is safe to re-run on a database that has the
tables: enum types, sequences, then ``CREATE TABLE IF NOT EXISTS`` (columns, defaults, NOT NULL,
primary key, unique, check) in foreign-key order, the rows as multi-row INSERTs whose values are
``quote_nullable`` literals (PostgreSQL's text form reads back identically: arrays, json,
timestamps, bytea, quotes, newlines), sequences set past the data, then indexes, foreign keys
(dropped before the data and added after it, so self-references, cycles and existing tables
load), RLS, policies and triggers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import orjson

from ..catalog import Catalog
from ..errors import GatewayError, table_not_found
from . import exportsql as q

ROWS_PER_INSERT = 500  # rows per INSERT statement
CURSOR_PREFETCH = 2000  # rows per FETCH from the server-side cursor


@dataclass(frozen=True)
class ExportRequest:
    tables: tuple[str, ...]  # table names in the default schema, in foreign-key order
    format: Literal["sql", "json"]
    include_data: bool
    include_functions: bool
    include_sequences: bool
    include_views: bool
    row_limit: int | None  # most rows per table; None: all


def _shown(value: Any) -> str:
    """A client's value as an error message quotes it (JSON, shortened)."""
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 40 else text[:37] + "..."


def read_body(body: Any, catalog: Catalog, schema: str) -> ExportRequest:
    """Validate the body; 400 INVALID_INPUT for bad fields, 404 TABLE_NOT_FOUND for unknown tables."""
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise GatewayError(400, "INVALID_INPUT", "The body must be a JSON object")
    fmt = body.get("format", "sql")
    if fmt not in ("sql", "json"):
        raise GatewayError(400, "INVALID_INPUT", f"format: must be 'sql' or 'json', not {_shown(fmt)}")
    flags = {}
    for key, default in (("includeData", True), ("includeFunctions", False), ("includeSequences", False),
                         ("includeViews", False)):
        value = body.get(key, default)
        if not isinstance(value, bool):
            raise GatewayError(400, "INVALID_INPUT", f"{key}: must be a boolean, not {_shown(value)}")
        flags[key] = value
    limit = body.get("rowLimit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise GatewayError(400, "INVALID_INPUT", f"rowLimit: must be a non-negative integer, not {_shown(limit)}")
    names = body.get("tables")
    available = {t.name: t for (s, _), t in catalog.tables.items() if s == schema and t.kind == "table"}
    if names is None or names == []:
        chosen = sorted(available)
    elif not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise GatewayError(400, "INVALID_INPUT", "tables: must be an array of table names")
    else:
        for name in names:
            if name not in available:
                raise table_not_found(name)
        chosen = list(dict.fromkeys(names))
    return ExportRequest(tuple(dependency_order(chosen, catalog, schema)), fmt, flags["includeData"],
                         flags["includeFunctions"], flags["includeSequences"], flags["includeViews"], limit)


def dependency_order(names: Sequence[str], catalog: Catalog, schema: str) -> list[str]:
    """Referenced tables before the tables that reference them; cycles keep the given order."""
    wanted = set(names)
    deps = {n: {fk.ref_table for fk in catalog.tables[(schema, n)].foreign_keys
                if fk.ref_schema == schema and fk.ref_table in wanted and fk.ref_table != n} for n in names}
    ordered: list[str] = []
    remaining = list(names)
    while remaining:
        ready = [n for n in remaining if deps[n] <= set(ordered)] or remaining[:1]  # a cycle: break it
        ordered.extend(ready)
        remaining = [n for n in remaining if n not in ready]
    return ordered


async def describe(conn: asyncpg.Connection, req: ExportRequest, schema: str) -> q.Schema:
    """Everything the content needs, read from pg_catalog in the export's transaction."""
    return await q.read_schema(conn, schema, req.tables, req.include_sequences, req.include_views,
                               req.include_functions)


async def sql_chunks(conn: asyncpg.Connection, req: ExportRequest, meta: q.Schema,
                     progress: Callable[[int], None] | None = None) -> AsyncIterator[str]:
    """The SQL script, in pieces (one per statement group or INSERT batch); ``progress`` is told
    the rows of each batch."""
    yield q.header(meta, req.include_data)
    for chunk in q.before_data(meta):
        yield chunk
    if req.include_data:
        for table in meta.tables:
            async for chunk in _inserts(conn, table, req.row_limit, progress):
                yield chunk
    for chunk in q.after_data(meta):
        yield chunk


async def _inserts(conn: asyncpg.Connection, table: q.TableDef, limit: int | None,
                   progress: Callable[[int], None] | None = None) -> AsyncIterator[str]:
    columns = table.insert_columns
    if not columns:
        return
    head = q.insert_head(table)
    batch: list[str] = []
    async for record in conn.cursor(q.rows_as_sql_query(table, limit), prefetch=CURSOR_PREFETCH):
        batch.append(record[0])
        if len(batch) == ROWS_PER_INSERT:
            if progress is not None:
                progress(len(batch))
            yield head + ",\n".join(batch) + ";\n"
            batch = []
    if batch:
        if progress is not None:
            progress(len(batch))
        yield head + ",\n".join(batch) + ";\n"


async def json_chunks(conn: asyncpg.Connection, req: ExportRequest, meta: q.Schema,
                      progress: Callable[[int], None] | None = None) -> AsyncIterator[str]:
    """The JSON document ``{table: {columns, primaryKey, indexes, foreignKeys, ..., rows}}``, in pieces;
    ``progress`` is told each row."""
    yield "{"
    for n, table in enumerate(meta.tables):
        described = orjson.dumps(q.table_document(table)).decode()
        yield ("," if n else "") + orjson.dumps(table.name).decode() + ":" + described[:-1] + ',"rows":['
        if req.include_data:
            first = True
            async for record in conn.cursor(q.rows_as_json_query(table, req.row_limit),
                                            prefetch=CURSOR_PREFETCH):
                if progress is not None:
                    progress(1)
                yield ("" if first else ",") + record[0]
                first = False
        yield "]}"
    if req.include_views:
        yield ("," if meta.tables else "") + '"__views__":' + orjson.dumps(
            {v.name: v.definition for v in meta.views}).decode()
    if req.include_functions:
        yield ("," if meta.tables or req.include_views else "") + '"__functions__":' + orjson.dumps(
            list(meta.functions)).decode()
    yield "}"


async def content_chunks(conn: asyncpg.Connection, req: ExportRequest, meta: q.Schema,
                         progress: Callable[[int], None] | None = None) -> AsyncIterator[str]:
    """The export's content in ``req.format``; ``progress`` (optional) is told how many more rows
    were read each time a batch of them is."""
    source = sql_chunks if req.format == "sql" else json_chunks
    async for chunk in source(conn, req, meta, progress):
        yield chunk
