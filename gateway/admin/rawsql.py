"""Raw SQL: ``{query, params?}`` in, ``{rows, rowCount, command, fields}`` out.

In:  the request body of ``/advance/rawsql`` (strict) or ``/advance/rawsql/unrestricted``
     (relaxed), already admitted by ``sqlguard.check``, and a transaction from the executor.
Out: the last statement's rows, made JSON-safe the way node-pg (the real server's driver) does:
     int8 and numeric as strings, timestamps as ISO ``...sssZ``, bytea as ``\\x`` hex, uuids as
     strings, json parsed.

Statements run one by one, in order, on the extended protocol (``prepare``), which gives each
statement's rows and its command tag. Parameters are sent as text and cast by PostgreSQL
(``$1`` becomes ``($1::text::<type>)`` after a first prepare tells the types), so every type is
read by its own input function exactly as node-pg's text parameters are.

Session state the SQL may leave behind (a session-level ``SET timezone``, temp tables, LISTEN,
WITH HOLD cursors) would leak into the pooled connection's next request, so ``CLEANUP_SQL``
runs inside the same transaction before it commits; on failure the rollback undoes it all.
"""

from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
from pglast import ast, parse_sql

from ..errors import ADMIN_SQLSTATE_RULES, GatewayError, SqlstateRule
from . import sqlguard

# The admin SQLSTATE table, widened so the user's own SQL mistakes are 4xx, never 500:
# feature not supported, cardinality, transaction state (VACUUM in a transaction), cursor and
# statement names, dependent objects, routine exceptions, object state, plpgsql RAISE.
USER_SQL_RULES: tuple[SqlstateRule, ...] = (
    *(SqlstateRule(prefix, 400, "DATABASE_VALIDATION_ERROR")
      for prefix in ("0A", "21", "25", "26", "2B", "2F", "34", "38", "39", "3D", "3F", "44", "55", "P0")),
    *ADMIN_SQLSTATE_RULES,
)

# Run before COMMIT: everything a statement can leave on the session, reset to the connection's
# start-up values (RESET ALL returns timezone to the pool's UTC, the start-up parameter).
CLEANUP_SQL = ("RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; CLOSE ALL; UNLISTEN *; "
               "SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES")

AS_STRINGS = frozenset({"int8", "numeric", "money"})  # node-pg returns these as strings
JSON_TYPES = frozenset({"json", "jsonb"})


@dataclass(frozen=True)
class RawQuery:
    statements: tuple[str, ...]  # as written, in order, admitted by the guard
    params: tuple[Any, ...]  # JSON values for $1..$n (only with a single statement)
    changes_schema: bool  # DDL among the statements: the catalog must reload afterwards


def read_body(body: Any, mode: sqlguard.Mode) -> RawQuery:
    """Validate ``{query, params?}`` and run the guard; 400 INVALID_INPUT / 403 FORBIDDEN."""
    if not isinstance(body, dict):
        raise GatewayError(400, "INVALID_INPUT", "The body must be a JSON object {query, params?}")
    query, params = body.get("query"), body.get("params")
    if not isinstance(query, str) or not query.strip():
        raise GatewayError(400, "INVALID_INPUT", "query: must be a non-empty string")
    if params is not None and not isinstance(params, list):
        raise GatewayError(400, "INVALID_INPUT", "params: must be an array")
    checked = sqlguard.admit(query, mode)
    if params and len(checked.statements) > 1:
        raise GatewayError(400, "INVALID_INPUT", "params: only a single statement may take parameters")
    return RawQuery(checked.statements, tuple(params or ()), checked.changes_schema)


async def run(conn: asyncpg.Connection, query: RawQuery) -> dict[str, Any]:
    """Every statement in order; the last one's result. Call inside an executor transaction."""
    result: dict[str, Any] = {"rows": [], "rowCount": 0, "command": "", "fields": []}
    for text in query.statements:
        stmt = await conn.prepare(text)
        types = stmt.get_parameters()
        if query.params or types:
            stmt = await _with_text_params(conn, text, types, len(query.params))
        try:
            records = await stmt.fetch(*(text_param(v, t.name) for v, t in
                                         zip(query.params, types, strict=True)))
        except asyncpg.DataError as exc:
            raise GatewayError(400, "INVALID_INPUT", f"params: {exc}") from exc
        result = _result(stmt, records)
    await conn.execute(CLEANUP_SQL)
    return result


async def _with_text_params(conn: asyncpg.Connection, text: str, types: Sequence[Any], given: int) -> Any:
    """The statement re-prepared with every ``$n`` read from text: ``($n::text::type)``."""
    if len(types) != given:
        raise GatewayError(400, "INVALID_INPUT",
                           f"params: the statement takes {len(types)} parameter(s), {given} given")
    refs: list[ast.ParamRef] = []
    for raw in parse_sql(text):
        _collect_params(raw.stmt, refs)
    rewritten = text
    for ref in sorted(refs, key=lambda r: r.location or 0, reverse=True):
        at, token = ref.location or 0, f"${ref.number}"
        if rewritten[at:at + len(token)] == token:
            typ = types[(ref.number or 1) - 1]
            rewritten = f"{rewritten[:at]}({token}::text::{_type_sql(typ)}){rewritten[at + len(token):]}"
    return await conn.prepare(rewritten)


def _collect_params(node: Any, out: list[ast.ParamRef]) -> None:
    if isinstance(node, ast.ParamRef):
        out.append(node)
    elif isinstance(node, tuple):
        for item in node:
            _collect_params(item, out)
    elif isinstance(node, ast.Node):
        for attr in node:
            _collect_params(getattr(node, attr), out)


def _type_sql(typ: Any) -> str:
    """asyncpg's Type as SQL: ``"pg_catalog"."int8"[]``."""
    name, suffix = (typ.name[:-2], "[]") if typ.name.endswith("[]") else (typ.name, "")
    quoted = '"' + name.replace('"', '""') + '"'
    return f'"{typ.schema}".{quoted}{suffix}' if typ.schema else f"{quoted}{suffix}"


def text_param(value: Any, type_name: str) -> str | None:
    """A JSON value as PostgreSQL text input, the way node-pg prepares parameters."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return str(int(value))
    if isinstance(value, list) and type_name.removesuffix("[]") not in JSON_TYPES:
        return array_literal(value)
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


def array_literal(items: Sequence[Any]) -> str:
    """``{a,"b c",NULL,{1,2}}``: node-pg's arrayString."""
    parts = []
    for item in items:
        if item is None:
            parts.append("NULL")
        elif isinstance(item, list):
            parts.append(array_literal(item))
        else:
            text = text_param(item, "json" if isinstance(item, dict) else "text") or ""
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def _result(stmt: Any, records: Sequence[asyncpg.Record]) -> dict[str, Any]:
    tag = stmt.get_statusmsg() or ""
    attrs = stmt.get_attributes()
    types = [a.type.name for a in attrs]
    rows = [{a.name: json_value(v, t) for a, v, t in zip(attrs, r.values(), types, strict=True)}
            for r in records]
    count = tag.rsplit(" ", 1)[-1]
    return {
        "rows": rows,
        "rowCount": int(count) if count.isdigit() else len(rows),
        "command": tag.split(" ", 1)[0],
        "fields": [{"name": a.name, "dataTypeID": a.type.oid} for a in attrs],
    }


def iso(value: dt.datetime) -> str:
    """``2025-07-18T05:37:24.338Z``: UTC with milliseconds (naive values are UTC already)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _interval(value: dt.timedelta) -> str:
    seconds = value.seconds + value.microseconds / 1e6
    clock = f"{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}:{seconds % 60:09.6f}"
    clock = clock.rstrip("0").rstrip(".")
    return f"{value.days} days {clock}" if value.days else clock


def json_value(value: Any, type_name: str = "") -> Any:
    """One decoded column value as JSON (``type_name`` is asyncpg's, e.g. ``int8[]``)."""
    base = type_name.removesuffix("[]")
    if value is None or (isinstance(value, bool | str) and base not in JSON_TYPES):
        return value
    if isinstance(value, str):  # json / jsonb text
        return orjson.loads(value)
    if isinstance(value, int):
        return str(value) if base in AS_STRINGS else value
    if isinstance(value, float):  # JSON has no NaN or infinities: PostgreSQL's spelling, as text
        return value if math.isfinite(value) else {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}[str(value)]
    if isinstance(value, list | tuple) and not isinstance(value, asyncpg.Record):
        return [json_value(v, base) for v in value]
    if isinstance(value, asyncpg.Record):
        return {k: json_value(v) for k, v in value.items()}
    return _scalar(value)


def _scalar(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return _interval(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()
    if isinstance(value, decimal.Decimal | uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address
                  | ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, asyncpg.Range):
        if value.isempty:
            return "empty"
        lower = "" if value.lower is None else _scalar_text(value.lower)
        upper = "" if value.upper is None else _scalar_text(value.upper)
        return f"{'[' if value.lower_inc else '('}{lower},{upper}{']' if value.upper_inc else ')'}"
    if isinstance(value, asyncpg.BitString):
        return value.as_string()
    return str(value)


def _scalar_text(value: Any) -> str:
    converted = json_value(value)
    return converted if isinstance(converted, str) else str(converted)
