"""Bulk upsert: a CSV or JSON file in, its rows written to one table out.

In:  the multipart fields ``file`` (``.csv`` with a header row, or ``.json``: an array of objects
     or one object), ``table`` and ``upsertKey?``; the table from the catalog; a transaction.
Out: ``{rowsAffected, totalRecords, table}`` (plus ``success``, ``message``, ``filename``).

PostgreSQL does the coercion, with the column types the catalog gives, in three statements:

  1. the records go, as text, into a temporary staging table with binary COPY;
  2. one query checks every value with ``pg_input_is_valid(value, column type)`` — the column's
     own input function — and NULLs against NOT NULL columns; the first bad value (by row) is a
     400 naming the row number (1-based, in file order) and the column, and nothing is written;
  3. per set of columns, ``INSERT ... SELECT value::type ...`` (with ``upsertKey``: an UPDATE of the
     rows whose key exists, then the INSERT of the rest; see ``write_sql``).

Records are grouped by the columns they name, so a record that leaves a column out never
overwrites it with NULL (and gets the default on insert). In CSV an empty cell is NULL, except in
a column with a default, where it counts as left out (the default on insert, the stored value
kept on update). With ``upsertKey``, a key that repeats keeps its last record.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from ..catalog import Column, Table
from ..errors import GatewayError
from . import rawsql
from .exportsql import ident

STAGING = "gateway_bulk_upload"
PROGRESS_ROWS = 1000  # records per progress report while they are copied to the staging table


@dataclass(frozen=True)
class Upload:
    table: Table
    columns: tuple[Column, ...]  # every column any record names, in first-seen order
    rows: list[tuple[Any, ...]]  # (row number, group, text value per column); None: NULL or absent
    groups: tuple[tuple[int, ...], ...]  # per group: indexes into ``columns`` its records name
    upsert_key: str | None
    filename: str


@dataclass(frozen=True)
class Records:
    names: tuple[str, ...]  # every column any record names, in first-seen order
    rows: list[list[Any]]  # values by position in ``names``; ABSENT where a record leaves one out
    text: bool  # CSV: every value is text or None already, and every record names every column


ABSENT = object()  # a JSON record without the key: the column keeps its value (or gets its default)


def parse_records(filename: str, data: bytes) -> Records:
    """CSV (header row, BOM allowed, blank lines skipped, "" = NULL) or JSON records."""
    name = filename.lower()
    if name.endswith(".csv"):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise GatewayError(400, "INVALID_INPUT", "file: is not UTF-8 text") from exc
        lines = csv.reader(io.StringIO(text, newline=""))
        header = next((row for row in lines if any(cell.strip() for cell in row)), None)
        if header is None:
            raise GatewayError(400, "INVALID_INPUT", "file: the CSV has no header row")
        if len(set(header)) != len(header):
            raise GatewayError(400, "INVALID_INPUT", "file: the CSV header names a column twice")
        width = len(header)
        rows: list[list[Any]] = []
        for row in lines:
            if len(row) != width:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > width:
                    raise GatewayError(400, "INVALID_INPUT",
                                       f"Row {len(rows) + 1}: {len(row)} cells but {width} header columns")
                row += [""] * (width - len(row))
            rows.append([cell if cell != "" else None for cell in row])
        return Records(tuple(header), rows, text=True)
    if name.endswith(".json"):
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise GatewayError(400, "INVALID_INPUT", f"file: is not valid JSON ({exc})") from exc
        parsed = [parsed] if isinstance(parsed, dict) else parsed
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise GatewayError(400, "INVALID_INPUT", "file: must hold an array of objects or one object")
        names = tuple(dict.fromkeys(k for r in parsed for k in r))
        return Records(names, [[r.get(n, ABSENT) for n in names] for r in parsed], text=False)
    raise GatewayError(400, "INVALID_INPUT", "file: must be a .csv or .json file")


def plan(table: Table, records: Records, upsert_key: str | None, filename: str) -> Upload:
    """Columns, groups and text values; 400 for unknown or generated columns and a missing key."""
    if not records.rows:
        raise GatewayError(400, "INVALID_INPUT", "file: contains no records")
    columns = []
    for name in records.names:
        column = table.column(name)
        if column is None:
            raise GatewayError(400, "INVALID_INPUT", f"Unknown column '{name}' in table '{table.name}'")
        if column.is_generated:
            raise GatewayError(400, "INVALID_INPUT", f"Column '{name}' is generated and cannot be written")
        columns.append(column)
    if upsert_key is not None and table.column(upsert_key) is None:
        raise GatewayError(400, "INVALID_INPUT", f"upsertKey: unknown column '{upsert_key}' in '{table.name}'")
    if upsert_key is not None and upsert_key not in records.names:
        raise GatewayError(400, "INVALID_INPUT", f"Row 1: the upsertKey column '{upsert_key}' is missing")
    given = records.rows
    if records.text:
        # an empty cell is NULL, but where the column has a default it is left out, as a JSON record
        # leaves out a key: an insert gets the default, an update keeps the stored value
        defaulted = [c.has_default for c in columns]
        if not any(defaulted):  # one group, values already text
            staged = [(number, 0, *row) for number, row in enumerate(records.rows, 1)]
            return Upload(table, tuple(columns), staged, (tuple(range(len(columns))),), upsert_key, filename)
        given = [[ABSENT if v is None and d else v for v, d in zip(row, defaulted, strict=True)]
                 for row in records.rows]
    types = ["json" if c.category == "json" else c.type for c in columns]
    key_at = records.names.index(upsert_key) if upsert_key is not None else None
    group_ids: dict[tuple[int, ...], int] = {}
    rows: list[tuple[Any, ...]] = []
    for number, row in enumerate(given, 1):
        if key_at is not None and row[key_at] is ABSENT:
            raise GatewayError(400, "INVALID_INPUT", f"Row {number}: the upsertKey column '{upsert_key}' is missing")
        present = tuple(i for i, v in enumerate(row) if v is not ABSENT)
        group = group_ids.setdefault(present, len(group_ids))
        rows.append((number, group, *(v if v is None or type(v) is str else
                                      None if v is ABSENT else rawsql.text_param(v, t)
                                      for v, t in zip(row, types, strict=True))))
    return Upload(table, tuple(columns), rows, tuple(group_ids), upsert_key, filename)


def _check_sql(upload: Upload) -> tuple[str, list[Any]]:
    """The query finding the first bad value: (row number, column index) or no row."""
    params: list[Any] = []
    cases = []
    for i, column in enumerate(upload.columns):
        params.append(column.type)
        cases.append(f"WHEN c{i} IS NOT NULL AND NOT pg_catalog.pg_input_is_valid(c{i}, ${len(params)}) THEN {i}")
        if not column.nullable:
            params.append([g for g, cols in enumerate(upload.groups) if i in cols])
            cases.append(f"WHEN c{i} IS NULL AND grp = ANY(${len(params)}::int[]) THEN {i}")
    sql = (f"SELECT rn, bad FROM (SELECT rn, CASE {' '.join(cases)} END AS bad FROM {STAGING}) AS s "
           "WHERE bad IS NOT NULL ORDER BY rn LIMIT 1")
    return sql, params


def write_sql(upload: Upload, group: int) -> list[str]:
    """The statements writing one group: an INSERT; with ``upsertKey`` an INSERT ... ON CONFLICT DO
    UPDATE, or — when the records leave out a NOT NULL column that has no default — an UPDATE of
    the rows that exist, then an INSERT of the others. (ON CONFLICT checks NOT NULL on the whole
    new row before it finds the conflict, so such records could never update an existing row.)"""
    table = f"{ident(upload.table.schema)}.{ident(upload.table.name)}"
    cols = [upload.columns[i] for i in upload.groups[group]]
    names = ", ".join(ident(c.name) for c in cols)
    values = ", ".join(f"CAST(c{upload.columns.index(c)} AS {c.type})" for c in cols)
    overriding = " OVERRIDING SYSTEM VALUE" if any(c.is_identity for c in cols) else ""
    if upload.upsert_key is None:
        return [f"INSERT INTO {table} ({names}){overriding} SELECT {names} FROM "
                f"(SELECT rn, {values} FROM {STAGING} WHERE grp = {int(group)}) AS s (rn, {names}) ORDER BY rn"]
    key = ident(upload.upsert_key)
    key_column = next(c for c in upload.columns if c.name == upload.upsert_key)
    key_value = f"CAST(c{upload.columns.index(key_column)} AS {key_column.type})"
    latest = (f"(SELECT DISTINCT ON ({key_value}) rn, {values} FROM {STAGING} WHERE grp = {int(group)} "
              f"ORDER BY {key_value}, rn DESC) AS s (rn, {names})")  # a repeated key: its last record wins
    others = [ident(c.name) for c in cols if c.name != upload.upsert_key]
    on_conflict = f"ON CONFLICT ({key}) " + (
        f"DO UPDATE SET {', '.join(f'{c} = EXCLUDED.{c}' for c in others)}" if others else "DO NOTHING")
    given = {c.name for c in cols}
    partial = any(not c.nullable and not c.has_default and c.name not in given for c in upload.table.columns)
    if not partial or not others:
        return [f"INSERT INTO {table} ({names}){overriding} SELECT {names} FROM {latest} ORDER BY rn {on_conflict}"]
    return [f"UPDATE {table} AS t SET {', '.join(f'{c} = s.{c}' for c in others)} FROM {latest} "
            f"WHERE t.{key} = s.{key}",
            f"INSERT INTO {table} ({names}){overriding} SELECT {names} FROM {latest} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE t.{key} = s.{key}) ORDER BY rn {on_conflict}"]


def _reported(rows: list[tuple[Any, ...]], progress: Callable[[int], None]) -> Iterator[tuple[Any, ...]]:
    """``rows`` as COPY consumes them, telling ``progress`` every ``PROGRESS_ROWS`` records."""
    for start in range(0, len(rows), PROGRESS_ROWS):
        chunk = rows[start:start + PROGRESS_ROWS]
        yield from chunk
        progress(len(chunk))


async def run(conn: asyncpg.Connection, upload: Upload,
              progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Steps 1-3 above; call inside an executor transaction. ``progress`` (optional) is told the
    records copied to the staging table (step 1), in steps."""
    staged = ", ".join(f"c{i} text" for i in range(len(upload.columns)))
    await conn.execute(f"CREATE TEMP TABLE {STAGING} (rn int, grp int, {staged}) ON COMMIT DROP")
    # explicit columns: asyncpg caches the shape it reads per column list, and the staging table's
    # shape differs between uploads
    records = upload.rows if progress is None else _reported(upload.rows, progress)
    await conn.copy_records_to_table(STAGING, records=records,
                                     columns=["rn", "grp", *(f"c{i}" for i in range(len(upload.columns)))])
    sql, params = _check_sql(upload)
    bad = await conn.fetchrow(sql, *params)
    if bad is not None:
        column = upload.columns[bad["bad"]]
        row = upload.rows[bad["rn"] - 1]
        value = row[2 + bad["bad"]]
        reason = "a value is required (the column is NOT NULL)" if value is None else await conn.fetchval(
            "SELECT (pg_catalog.pg_input_error_info($1, $2)).message", value, column.type)
        raise GatewayError(400, "INVALID_INPUT", f"Row {bad['rn']}, column '{column.name}': {reason}",
                           next_actions="Fix the value in the file and upload it again; nothing was written")
    affected = 0
    for group in range(len(upload.groups)):
        for sql in write_sql(upload, group):
            status = await conn.execute(sql)
            affected += int(status.rsplit(" ", 1)[-1])
    return {"rowsAffected": affected, "totalRecords": len(upload.rows), "table": upload.table.name,
            "success": True, "filename": upload.filename,
            "message": f"{affected} of {len(upload.rows)} records written to {upload.table.name}"}
