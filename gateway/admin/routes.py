"""Admin HTTP routes: requests under ``/api/database`` in, the spec's admin responses out.

In:  Starlette requests; the app mounts ``ROUTES`` under ``/api/database``.
Out: JSON responses. Every handler first asks ``gw.auth.identify_admin`` (401/403), then reads
     its body, then does its work through ``gw.executor`` only; every failure is a GatewayError
     that the app renders.

    GET  /functions /indexes /policies /triggers [?schema=]   introspect.py (from the catalog)
    GET  /advisor [?schema=]                                    advisor.py
    GET  /migrations, POST /migrations                          migrations.py
    POST /advance/rawsql                                        rawsql.py, strict
    POST /advance/rawsql/unrestricted                           rawsql.py, relaxed
    POST /advance/export                                        export.py, streamed
    POST /advance/import            (multipart file, truncate)  importer.py
    POST /advance/bulk-upsert       (multipart file, table, upsertKey?)  bulk.py

Every one of them runs as ``project_admin`` (through the executor, like any request): never a
superuser, so PostgreSQL itself refuses server files and programs, role management and writes to
``auth``/``system`` whatever the SQL guard let through.

Migrations, imports and raw SQL with DDL reload the catalog before answering, so the very next
request (REST or GraphQL) sees the new tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from ..errors import GatewayError, table_not_found
from ..execute import RequestContext
from ..identity import Identity
from . import advisor, bulk, export, importer, introspect, migrations, rawsql

if TYPE_CHECKING:
    from ..state import Gateway

JSON = "application/json"


def respond(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


async def admin(request: Request) -> tuple[Gateway, Identity]:
    gw: Gateway = request.app.state.gateway
    return gw, await gw.auth.identify_admin(request.headers)


def context(request: Request, read_only: bool = False) -> RequestContext:
    return RequestContext(method=request.method, path=request.url.path, read_only=read_only)


async def json_body(request: Request, limit: int) -> Any:
    """The parsed JSON body (None when empty); 413 beyond ``limit``, 400 INVALID_INPUT when malformed."""
    raw = await request.body()
    if len(raw) > limit:
        raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"The body is larger than {limit} bytes")
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, "INVALID_INPUT", f"Malformed JSON body: {exc}") from exc


async def upload(request: Request, limit: int) -> tuple[dict[str, str], str, bytes]:
    """(text fields, file name, file bytes) of a multipart form; 400 without a file, 413 beyond ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:  # the form's own framing on top
        raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"The upload is larger than {limit} bytes")
    try:
        form = await request.form(max_files=1, max_fields=20)
    except Exception as exc:  # malformed multipart, too many parts
        raise GatewayError(400, "INVALID_INPUT", f"Malformed multipart body: {exc}") from exc
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise GatewayError(400, "INVALID_INPUT", "file: is required (multipart field 'file')")
        data = await file.read(limit + 1)
        if len(data) > limit:
            raise GatewayError(413, "PAYLOAD_TOO_LARGE", f"The upload is larger than {limit} bytes")
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        return fields, file.filename or "", data
    finally:
        await form.close()


# --------------------------------------------------------------------------- handlers


async def listing(request: Request) -> Response:
    gw, _ = await admin(request)
    schema = introspect.schema_filter(request.query_params, request.query_params.getlist)
    build = introspect.LISTS[request.url.path.rstrip("/").rsplit("/", 1)[-1]]
    return respond(build(gw.catalogs.get(), schema))


async def advisor_endpoint(request: Request) -> Response:
    """Security findings over the exposed schemas (or the one ``?schema=`` names)."""
    gw, identity = await admin(request)
    schema = introspect.schema_filter(request.query_params, request.query_params.getlist)
    async with gw.executor.transaction(identity, context(request, read_only=True), rawsql.USER_SQL_RULES) as tx:
        return respond(await advisor.findings(tx, (schema,) if schema else gw.settings.schemas))


async def migrations_endpoint(request: Request) -> Response:
    gw, identity = await admin(request)
    if request.method == "GET":
        async with gw.executor.transaction(identity, context(request, read_only=True),
                                           rawsql.USER_SQL_RULES) as tx:
            return respond({"migrations": await migrations.list_all(tx.conn)})
    migration = migrations.read_body(await json_body(request, gw.settings.max_body_bytes))
    async with gw.executor.transaction(identity, context(request), rawsql.USER_SQL_RULES) as tx:
        created = await migrations.apply(tx.conn, migration, identity, gw.settings.default_schema)
    await gw.reload_catalog()
    return respond(created, 201)


async def _raw(request: Request, mode: rawsql.sqlguard.Mode) -> Response:
    gw, identity = await admin(request)
    query = rawsql.read_body(await json_body(request, gw.settings.max_body_bytes), mode)
    async with gw.executor.transaction(identity, context(request), rawsql.USER_SQL_RULES) as tx:
        result = await rawsql.run(tx.conn, query)
    if query.changes_schema:
        await gw.reload_catalog()
    return respond(result)


async def raw_strict(request: Request) -> Response:
    return await _raw(request, "strict")


async def raw_relaxed(request: Request) -> Response:
    return await _raw(request, "relaxed")


async def export_endpoint(request: Request) -> Response:
    """Streams ``{"format", "content", "tables"}``; the content comes from a server-side cursor."""
    gw, identity = await admin(request)
    schema = gw.settings.default_schema
    req = export.read_body(await json_body(request, gw.settings.max_body_bytes), gw.catalogs.get(), schema)
    stack = contextlib.AsyncExitStack()
    tx = await stack.enter_async_context(gw.executor.transaction(
        identity, context(request, read_only=True), rawsql.USER_SQL_RULES))
    try:
        meta = await export.describe(tx.conn, req, schema)
    except BaseException as exc:  # hand the error to the transaction: it rolls back and translates
        await stack.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    tables = orjson.dumps([t.name for t in meta.tables]).decode()

    async def stream() -> AsyncIterator[bytes]:
        async with stack:
            if req.format == "sql":
                yield b'{"format":"sql","content":"'
                async for chunk in export.content_chunks(tx.conn, req, meta):
                    yield orjson.dumps(chunk)[1:-1]  # the chunk as the inside of a JSON string
                yield f'","tables":{tables}}}'.encode()
            else:
                yield b'{"format":"json","content":'
                async for chunk in export.content_chunks(tx.conn, req, meta):
                    yield chunk.encode()
                yield f',"tables":{tables}}}'.encode()

    return StreamingResponse(stream(), media_type=JSON)


async def import_endpoint(request: Request) -> Response:
    gw, identity = await admin(request)
    fields, filename, data = await upload(request, gw.settings.max_upload_bytes)
    truncate = fields.get("truncate", "false").strip().lower()
    if truncate not in ("true", "false", "1", "0", ""):
        raise GatewayError(400, "INVALID_INPUT", "truncate: must be true or false")
    parsed = importer.read_file(filename, data)
    async with gw.executor.transaction(identity, context(request), rawsql.USER_SQL_RULES) as tx:
        result = await importer.run(tx.conn, parsed, truncate in ("true", "1"), identity,
                                    gw.settings.default_schema)
    await gw.reload_catalog()
    return respond(result)


async def bulk_endpoint(request: Request) -> Response:
    gw, identity = await admin(request)
    fields, filename, data = await upload(request, gw.settings.max_upload_bytes)
    name, schema = fields.get("table", "").strip(), fields.get("schema", "").strip() or gw.settings.default_schema
    if not name:
        raise GatewayError(400, "INVALID_INPUT", "table: is required")
    table = gw.catalogs.get().table(name, schema)
    if table is None or table.kind not in ("table", "partitioned_table"):
        raise table_not_found(name)
    key = fields.get("upsertKey", "").strip() or None
    plan = bulk.plan(table, bulk.parse_records(filename, data), key, filename)
    async with gw.executor.transaction(identity, context(request), rawsql.USER_SQL_RULES) as tx:
        result = await bulk.run(tx.conn, plan)
    return respond(result)


ROUTES = [
    *(Route(f"/{name}", listing, methods=["GET"]) for name in introspect.LISTS),
    Route("/advisor", advisor_endpoint, methods=["GET"]),
    Route("/migrations", migrations_endpoint, methods=["GET", "POST"]),
    Route("/advance/rawsql", raw_strict, methods=["POST"]),
    Route("/advance/rawsql/unrestricted", raw_relaxed, methods=["POST"]),
    Route("/advance/export", export_endpoint, methods=["POST"]),
    Route("/advance/import", import_endpoint, methods=["POST"]),
    Route("/advance/bulk-upsert", bulk_endpoint, methods=["POST"]),
]
