"""The REST front end: Starlette endpoints for records and RPC.

In:  an HTTP request under ``/api/database/records/{table}`` or ``/api/database/rpc/{fn}``.
Out: the response built by ``render`` from the pipeline's Result.

Thin by design: credentials -> ``auth``, URL/headers/body -> ``parse``, then the
shared ``pipeline.run``. Nothing here knows SQL.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors, pipeline
from .. import request as rq
from ..execute import RequestContext
from . import render
from .parse import ParsedRequest, parse_records, parse_rpc

READ_METHODS = ("GET", "HEAD")
RECORD_METHODS = ["GET", "HEAD", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"]


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.GatewayError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.GatewayError(413, "PAYLOAD_TOO_LARGE", f"Request body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _with_schema(parsed: ParsedRequest) -> rq.Request:
    req = parsed.request
    if parsed.schema and req.target.schema != parsed.schema:
        req = dataclasses.replace(req, target=rq.Target(req.target.name, parsed.schema))
    return req


def _location(request: Request, parsed: ParsedRequest, result: pipeline.Result) -> str | None:
    """``Location: /table?pk=eq.v`` for return=headers-only, when one row went into a table with a PK."""
    gw = request.app.state.gateway
    req = parsed.request
    if not isinstance(req, rq.Insert) or result.page_rows != 1 or len(req.rows) != 1:
        return None
    table = gw.catalogs.get().table(req.target.name, req.target.schema)
    if table is None or not table.primary_key or any(k not in req.rows[0] for k in table.primary_key):
        return None
    query = "&".join(f"{quote(k)}=eq.{quote(str(req.rows[0][k]))}" for k in table.primary_key)
    return f"/{req.target.name}?{query}"


async def records(request: Request) -> Response:
    gw = request.app.state.gateway
    method = request.method
    name = request.path_params["table"]
    if method == "OPTIONS":
        return Response(b"", 200, headers={"Allow": "OPTIONS,GET,HEAD,POST,PUT,PATCH,DELETE"})
    identity = await gw.auth.identify(request.headers)
    body = b"" if method in READ_METHODS else await read_body(request, gw.settings.max_body_bytes)
    parsed = parse_records(method, name, request.url.query, request.headers, body)
    ctx = RequestContext(method, request.url.path, read_only=method in READ_METHODS)
    result = await pipeline.run(gw, identity, _with_schema(parsed), ctx)
    if method in READ_METHODS:
        return render.read(parsed, result)
    return render.write(parsed, result, _location(request, parsed, result))


async def rpc(request: Request) -> Response:
    gw = request.app.state.gateway
    method = request.method
    identity = await gw.auth.identify(request.headers)
    body = b"" if method in READ_METHODS else await read_body(request, gw.settings.max_body_bytes)
    parsed = parse_rpc(method, request.path_params["function"], request.url.query, request.headers, body)
    ctx = RequestContext(method, request.url.path, read_only=method in READ_METHODS)
    result = await pipeline.run(gw, identity, _with_schema(parsed), ctx)
    return render.call(parsed, result)


ROUTES = [
    Route("/api/database/records/{table}", records, methods=RECORD_METHODS),
    Route("/api/database/rpc/{function}", rpc, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
]
