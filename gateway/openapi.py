"""The OpenAPI 3.1 description of the API, generated from the catalog.

In:  the current ``Catalog`` and the ``Settings`` (exposed schemas, row limits).
Out: the document served at ``GET /api/database/openapi.json``: one path per table and view
     of the exposed schemas (``/api/database/records/<name>``: GET with a filter parameter per
     column plus select/order/limit/offset, ``Prefer`` and ``Range``; POST/PATCH/DELETE where
     the relation allows them), one per callable function (``/api/database/rpc/<name>``, the
     arguments as body properties, and as query parameters for STABLE/IMMUTABLE ones), the
     admin endpoints with the spec's request and response shapes, and the spec's error body.

Tables of a schema other than the first are reached with the ``Accept-Profile`` /
``Content-Profile`` headers; a name already taken by the default schema keeps its default-schema
table (a path can only describe one). The document is rebuilt when the catalog object changes
(every reload swaps in a new one), so it never drifts from what the planner accepts.

Each role gets its own document (PostgREST's rule): only the tables, columns and functions
it holds privileges on (``Catalog.visible_to``), and write operations only where it may write.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import __version__
from .catalog import Catalog, Column, Function, FunctionArg, Table, TypeCategory
from .rest.grammar import OPERATORS
from .settings import Settings

PATH = "/api/database/openapi.json"
Schema = dict[str, Any]

# JSON Schema of one value, by type family (what PostgreSQL's to_json produces for it)
CATEGORY_SCHEMAS: dict[TypeCategory, Schema] = {
    "bool": {"type": "boolean"},
    "int": {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
    "bigint": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
    "float": {"type": "number"},
    "numeric": {"type": "number"},
    "text": {"type": "string"},
    "uuid": {"type": "string", "format": "uuid"},
    "json": {},
    "date": {"type": "string", "format": "date"},
    "time": {"type": "string"},
    "timestamp": {"type": "string"},  # no UTC offset, so not RFC 3339 date-time
    "timestamptz": {"type": "string", "format": "date-time"},
    "interval": {"type": "string"},
    "bytea": {"type": "string"},
    "enum": {"type": "string"},
    "tsvector": {"type": "string"},
    "range": {"type": "string"},
    "other": {},
}
SMALLINT = {"type": "integer", "minimum": -(2**15), "maximum": 2**15 - 1}
# query keys the query language keeps for itself: a column with one of these names cannot be filtered by it
RESERVED_KEYS = frozenset({"select", "order", "limit", "offset", "or", "and", "not.or", "not.and", "columns",
                           "on_conflict", "schema"})
# operator, its (any)/(all) or (language), then the value after a dot; longest names first for the alternation
FILTER_PATTERN = (r"^(not\.)?(" + "|".join(sorted(OPERATORS, key=lambda o: (-len(o), o)))
                  + r")(\((any|all|[A-Za-z0-9_]+)\))?\.")

ERROR_BODY: Schema = {
    "type": "object",
    "required": ["error", "message", "statusCode", "nextActions"],
    "properties": {
        "error": {"type": "string", "examples": ["TABLE_NOT_FOUND"]},
        "message": {"type": "string"},
        "statusCode": {"type": "integer"},
        "nextActions": {"type": "string"},
        "code": {"type": ["string", "null"], "description": "PostgREST code or SQLSTATE"},
        "details": {"type": ["string", "null"]},
        "hint": {"type": ["string", "null"]},
    },
}


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def json_content(schema: Schema, *more_media: str) -> Schema:
    return {media: {"schema": schema} for media in ("application/json", *more_media)}


def responses(ok: dict[str, Schema]) -> Schema:
    """``ok`` plus the error statuses every endpoint can answer."""
    errors = {status: ref("Error", "responses") for status in ("400", "401", "403", "404", "413", "503")}
    return {**ok, **errors, "default": ref("Error", "responses")}


# --------------------------------------------------------------------------- values


def value_schema(category: TypeCategory, udt: str, is_array: bool, enum: tuple[str, ...] = ()) -> Schema:
    base: Schema = dict(SMALLINT) if udt == "int2" else dict(CATEGORY_SCHEMAS.get(category, {}))
    if enum:
        base["enum"] = list(enum)
    return {"type": "array", "items": base} if is_array else base


def nullable(schema: Schema) -> Schema:
    if not schema:
        return schema  # any JSON value already includes null
    if "type" in schema:
        out = dict(schema)
        out["type"] = [schema["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [schema, {"type": "null"}]}


def column_schema(column: Column) -> Schema:
    schema = value_schema(column.category, column.udt, column.is_array, column.enum_values)
    schema = nullable(schema) if column.nullable else schema
    return {**schema, "description": column.comment} if column.comment else schema


def row_schema(table: Table) -> Schema:
    out: Schema = {"type": "object", "properties": {c.name: column_schema(c) for c in table.columns}}
    if table.comment:
        out["description"] = table.comment
    return out


def write_schema(table: Table, insert: bool) -> Schema:
    """The writable columns; for inserts, the NOT NULL ones without a default are required."""
    writable = [c for c in table.columns if not c.is_generated]
    out: Schema = {"type": "object", "properties": {c.name: column_schema(c) for c in writable},
                   "additionalProperties": False}
    required = [c.name for c in writable if insert and not c.nullable and not c.has_default]
    if required:
        out["required"] = required
    return out


# --------------------------------------------------------------------------- records


def query(name: str, schema: Schema, description: str, **extra: Any) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description, **extra}


def header(name: str, schema: Schema, description: str, required: bool = False) -> Schema:
    return {"name": name, "in": "header", "required": required, "schema": schema, "description": description}


def filter_parameters(table: Table) -> list[Schema]:
    return [query(c.name, {"type": "string", "pattern": FILTER_PATTERN},
                  f"Filter on {c.name} ({c.type}): operator.value, e.g. eq.1, in.(1,2), is.null",
                  example="eq.1" if c.category in ("int", "bigint") else "is.null")
            for c in table.columns if c.name not in RESERVED_KEYS]


def page_parameters(settings: Settings) -> list[Schema]:
    return [
        query("select", {"type": "string"}, "Columns and embedded relations, e.g. id,title,author(name)"),
        query("order", {"type": "string"}, "Sort order, e.g. created_at.desc.nullslast,id"),
        query("limit", {"type": "integer", "minimum": 0, "maximum": settings.max_rows},
              f"Most rows to return (default {settings.default_limit})"),
        query("offset", {"type": "integer", "minimum": 0}, "Rows to skip"),
    ]


PREFER = header("Prefer", {"type": "string"},
                "return=minimal|headers-only|representation, count=exact|planned|estimated, "
                "resolution=merge-duplicates|ignore-duplicates, missing=default, tx=commit|rollback, "
                "handling=lenient|strict, max-affected=N")
RANGE = header("Range", {"type": "string", "pattern": r"^[0-9]+-[0-9]*$"}, "Rows to return, e.g. 0-24")
PAGE_HEADERS: Schema = {
    "X-Total-Count": {"schema": {"type": "integer"}, "description": "Rows matching the filters"},
    "X-Total-Count-Estimated": {"schema": {"type": "string", "enum": ["true"]},
                                "description": "Present when the total is the planner's estimate"},
    "Content-Range": {"schema": {"type": "string"}, "description": "e.g. 0-99/1234"},
}


def profile(table_schema: str, default_schema: str, name: str) -> list[Schema]:
    if table_schema == default_schema:
        return []
    return [header(name, {"type": "string", "enum": [table_schema]}, f"Schema {table_schema}", required=True)]


def table_path(table: Table, settings: Settings, component: str) -> Schema:
    filters = filter_parameters(table)
    rows = {"type": "array", "items": ref(component)}
    read_profile = profile(table.schema, settings.default_schema, "Accept-Profile")
    write_profile = profile(table.schema, settings.default_schema, "Content-Profile")
    written: dict[str, Schema] = {
        "200": {"description": "Affected rows (return=representation)", "content": json_content(rows)},
        "204": {"description": "Done (no representation asked for)"}}
    tag = [table.name]
    item: Schema = {"get": {
        "operationId": f"read_{table.schema}_{table.name}", "tags": tag,
        "summary": f"Read rows of {table.schema}.{table.name}",
        "parameters": [*filters, *page_parameters(settings), PREFER, RANGE, *read_profile],
        "responses": responses({
            "200": {"description": "Rows", "headers": PAGE_HEADERS,
                    "content": json_content(rows) | {"application/vnd.pgrst.object+json": {"schema": ref(component)}}},
            "206": {"description": "A page of the rows (Prefer: count=...)", "headers": PAGE_HEADERS,
                    "content": json_content(rows)},
            "416": ref("Error", "responses")}),
    }}
    if table.insertable:
        body = write_schema(table, insert=True)
        item["post"] = {
            "operationId": f"insert_{table.schema}_{table.name}", "tags": tag,
            "summary": f"Insert (or upsert) rows into {table.schema}.{table.name}",
            "parameters": [query("on_conflict", {"type": "string"}, "Columns of the unique key to upsert on"),
                           query("columns", {"type": "string"}, "Columns to take from the body"),
                           query("select", {"type": "string"}, "Columns to return"), PREFER, *write_profile],
            "requestBody": {"required": True, "content": json_content(
                {"oneOf": [{"type": "array", "items": body}, body]})},
            "responses": responses({
                "201": {"description": "Created", "content": json_content(rows)},
                "200": {"description": "Upserted, every row an update", "content": json_content(rows)},
                "409": ref("Error", "responses")}),
        }
    if table.updatable:
        item["patch"] = {
            "operationId": f"update_{table.schema}_{table.name}", "tags": tag,
            "summary": f"Update the rows of {table.schema}.{table.name} that match the filters",
            "parameters": [*filters, query("select", {"type": "string"}, "Columns to return"), PREFER,
                           *write_profile],
            "requestBody": {"required": True, "content": json_content(write_schema(table, insert=False))},
            "responses": responses({**written, "409": ref("Error", "responses")}),
        }
    if table.deletable:
        item["delete"] = {
            "operationId": f"delete_{table.schema}_{table.name}", "tags": tag,
            "summary": f"Delete the rows of {table.schema}.{table.name} that match the filters",
            "parameters": [*filters, query("select", {"type": "string"}, "Columns to return"), PREFER,
                           *write_profile],
            "responses": responses(written),
        }
    return item


# --------------------------------------------------------------------------- functions


def arg_schema(arg: FunctionArg) -> Schema:
    return value_schema(arg.category, arg.udt, arg.type.endswith("[]"))


def result_schema(fn: Function, catalog: Catalog) -> Schema | None:
    """What a call returns; None for void (204)."""
    if fn.return_kind == "void":
        return None
    if fn.return_table is not None and fn.return_table in catalog.tables:
        one = ref(component_name(*fn.return_table))
    elif fn.return_columns:
        one = {"type": "object", "properties": {c.name: column_schema(c) for c in fn.return_columns}}
    else:
        one = nullable(value_schema(fn.return_category, fn.return_udt, fn.return_type.endswith("[]")))
    return {"type": "array", "items": one} if fn.returns_set else one


def function_path(overloads: tuple[Function, ...], catalog: Catalog, settings: Settings) -> Schema | None:
    """The path of a function (overloads merged: arguments of all, required by none); None: not callable by name."""
    if any(not a.name for fn in overloads for a in fn.input_args):
        return None
    first = overloads[0]
    args: dict[str, FunctionArg] = {}
    for fn in overloads:
        for a in fn.input_args:
            args.setdefault(a.name, a)
    required = [a.name for a in first.input_args if not a.has_default] if len(overloads) == 1 else []
    body: Schema = {"type": "object", "properties": {n: arg_schema(a) for n, a in args.items()}}
    if required:
        body["required"] = required
    result = result_schema(first, catalog)
    ok: dict[str, Schema] = ({"204": {"description": "Done (the function returns void)"}} if result is None
          else {"200": {"description": f"The result ({first.return_type})", "content": json_content(result)}})
    tag = ["rpc"]
    read_profile = profile(first.schema, settings.default_schema, "Accept-Profile")
    item: Schema = {"post": {
        "operationId": f"call_{first.schema}_{first.name}", "tags": tag,
        "summary": f"Call {first.schema}.{first.name}({first.arguments_text})",
        "parameters": [PREFER, *profile(first.schema, settings.default_schema, "Content-Profile")],
        "requestBody": {"required": bool(required), "content": json_content(body)},
        "responses": responses(ok),
    }}
    if first.comment:
        item["post"]["description"] = first.comment
    if all(fn.volatility != "volatile" for fn in overloads):
        item["get"] = {
            "operationId": f"call_{first.schema}_{first.name}_get", "tags": tag,
            "summary": f"Call {first.schema}.{first.name} with the arguments in the query string",
            "parameters": [*(query(n, arg_schema(a), f"Argument {n} ({a.type})", required=n in required)
                             for n, a in args.items()), *read_profile],
            "responses": responses(ok),
        }
    return item


# --------------------------------------------------------------------------- admin (the spec's shapes)

STRINGS: Schema = {"type": "array", "items": {"type": "string"}}


def obj(properties: dict[str, Schema], required: Iterable[str] = ()) -> Schema:
    out: Schema = {"type": "object", "properties": properties}
    if required:
        out["required"] = list(required)
    return out


S: Schema = {"type": "string"}
B: Schema = {"type": "boolean"}
INT: Schema = {"type": "integer"}
N: Schema = {"type": ["string", "null"]}
MIGRATION = obj({"version": S, "name": S, "statements": STRINGS, "createdAt": S})
RAW_SQL_BODY = obj({"query": S, "params": {"type": "array"}}, ["query"])
RAW_SQL_RESULT = obj({"rows": {"type": "array", "items": {"type": "object"}}, "rowCount": INT, "command": S})
SCHEMA_FILTER = query("schema", {"type": "string"}, "Only this schema")
ADMIN_LISTS: dict[str, Schema] = {
    "functions": obj({"name": S, "schema": S, "language": S, "returnType": S, "arguments": S, "definition": S}),
    "indexes": obj({"name": S, "tableName": S, "columns": STRINGS, "isUnique": B, "isPrimary": B, "definition": S}),
    "policies": obj({"name": S, "tableName": S, "command": S, "roles": STRINGS, "using": N, "withCheck": N}),
    "triggers": obj({"name": S, "tableName": S, "timing": S, "events": STRINGS, "functionName": S, "enabled": B}),
}

ADVISOR_FINDING = obj({"check": S, "level": {"type": "string", "enum": ["ERROR", "WARN", "INFO"]}, "title": S,
                       "object": obj({"schema": S, "name": S, "kind": S}, ["schema", "name", "kind"]),
                       "detail": S, "why": S, "fix": S},
                      ["check", "level", "title", "object", "detail", "why", "fix"])


def admin_op(op_id: str, summary: str, ok: Schema, body: Schema | None = None, media: str = "application/json",
             parameters: list[Schema] | None = None, status: str = "200") -> Schema:
    out: Schema = {"operationId": op_id, "tags": ["admin"], "summary": summary + " (admin)",
                   "security": [{"apiKey": []}, {"bearer": []}], "parameters": parameters or [],
                   "responses": responses({status: {"description": "OK", "content": json_content(ok)}})}
    if body is not None:
        out["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    return out


def admin_paths() -> dict[str, Schema]:
    paths = {f"/api/database/{name}": {"get": admin_op(f"admin_list_{name}", f"List {name}", {
        "type": "array", "items": row}, parameters=[SCHEMA_FILTER])} for name, row in ADMIN_LISTS.items()}
    paths["/api/database/advisor"] = {"get": admin_op(
        "admin_advisor", "Security findings with the SQL that fixes each", {"type": "array", "items": ADVISOR_FINDING},
        parameters=[SCHEMA_FILTER])}
    paths["/api/database/migrations"] = {
        "get": admin_op("admin_list_migrations", "Applied custom migrations",
                        obj({"migrations": {"type": "array", "items": MIGRATION}}, ["migrations"])),
        "post": admin_op("admin_create_migration", "Run and record a migration",
                         obj({**MIGRATION["properties"], "message": S}),
                         obj({"version": {"type": "string", "pattern": r"^[0-9]{1,64}$"}, "name": S, "sql": S},
                             ["version", "name", "sql"]), status="201"),
    }
    paths["/api/database/advance/rawsql"] = {"post": admin_op(
        "admin_rawsql", "Run SQL (strict: no system tables)", RAW_SQL_RESULT, RAW_SQL_BODY)}
    paths["/api/database/advance/rawsql/unrestricted"] = {"post": admin_op(
        "admin_rawsql_unrestricted", "Run SQL (relaxed)", RAW_SQL_RESULT, RAW_SQL_BODY)}
    paths["/api/database/advance/export"] = {"post": admin_op(
        "admin_export", "Export schema and data", obj({"format": S, "content": {}, "tables": STRINGS}),
        obj({"tables": STRINGS, "format": {"type": "string", "enum": ["sql", "json"]}, "includeData": B,
             "includeFunctions": B, "includeSequences": B, "includeViews": B,
             "rowLimit": {"type": "integer", "minimum": 1}}))}
    file = {"type": "string", "contentMediaType": "application/octet-stream"}
    paths["/api/database/advance/import"] = {"post": admin_op(
        "admin_import", "Import a SQL file",
        obj({"filename": S, "fileSize": INT, "tables": STRINGS, "rowsImported": INT}),
        obj({"file": file, "truncate": B}, ["file"]), media="multipart/form-data")}
    paths["/api/database/advance/bulk-upsert"] = {"post": admin_op(
        "admin_bulk_upsert", "Insert or update rows from a CSV or JSON file",
        obj({"rowsAffected": INT, "totalRecords": INT, "table": S}),
        obj({"file": file, "table": S, "upsertKey": S}, ["file", "table"]), media="multipart/form-data")}
    return paths


# --------------------------------------------------------------------------- document


def component_name(schema: str, table: str) -> str:
    """A component key (``^[a-zA-Z0-9._-]+$``) for a relation: ``schema.table``, other characters as ``-XX``."""
    return ".".join("".join(ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"-{ord(ch):02X}"
                            for ch in part) for part in (schema, table))


def document(catalog: Catalog, settings: Settings) -> Schema:
    """The whole OpenAPI 3.1 document for ``catalog``."""
    components: Schema = {"Error": ERROR_BODY}
    paths: dict[str, Schema] = {}
    ordered = sorted(catalog.tables.values(), key=lambda t: (t.schema != catalog.default_schema, t.schema, t.name))
    for table in ordered:
        if table.schema not in catalog.schemas:
            continue
        key = f"/api/database/records/{quote(table.name, safe='')}"
        name = component_name(table.schema, table.name)
        components[name] = row_schema(table)
        if key not in paths:
            paths[key] = table_path(table, settings, name)
    functions = sorted(catalog.functions.items(), key=lambda kv: (kv[0][0] != catalog.default_schema, kv[0]))
    for (schema, fname), every in functions:
        overloads = tuple(f for f in every if f.api_callable)  # trigger functions are no RPC
        key = f"/api/database/rpc/{quote(fname, safe='')}"
        if schema in catalog.schemas and overloads and key not in paths:
            item = function_path(overloads, catalog, settings)
            if item is not None:
                paths[key] = item
    paths.update(admin_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "Database API", "version": __version__,
                 "description": "PostgREST-style REST over the exposed schemas: "
                                + ", ".join(catalog.schemas) + f". Catalog version {catalog.version}."},
        "paths": paths,
        "components": {
            "schemas": components,
            "responses": {"Error": {"description": "Error", "content": json_content(ref("Error"))}},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT, anon key or API key"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
        "x-catalog-version": catalog.version,
    }


class OpenApiEndpoint:
    """Serves each role its document, rebuilt only when the catalog object changes."""

    def __init__(self) -> None:
        self._texts: dict[str, tuple[Catalog, bytes]] = {}  # role -> (catalog described, document)

    def render(self, catalog: Catalog, settings: Settings, role: str) -> bytes:
        cached = self._texts.get(role)
        if cached is None or cached[0] is not catalog:
            cached = self._texts[role] = (catalog, orjson.dumps(document(catalog.visible_to(role), settings)))
        return cached[1]

    async def serve(self, request: Request) -> Response:
        gw = request.app.state.gateway
        identity = await gw.auth.identify(request.headers)  # like every other Database API path
        return Response(self.render(gw.catalogs.get(), gw.settings, identity.role), media_type="application/json")


def routes() -> list[Route]:
    """The route for one app (each app gets its own cache)."""
    return [Route(PATH, OpenApiEndpoint().serve, methods=["GET"])]
