"""The REST front end: Starlette endpoints for records and RPC.

In:  an HTTP request under ``/api/database/records/{table}`` or ``/api/database/rpc/{fn}``.
Out: the response built by ``render`` from the pipeline's Result.

Thin by design: credentials -> ``auth``, URL/headers/body -> ``parse``, then the
shared ``pipeline.run``. Nothing here knows SQL.
"""

from __future__ import annotations

import dataclasses
import functools
from urllib.parse import quote

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .. import errors, pipeline
from .. import request as rq
from ..catalog import Catalog
from ..execute import RequestContext
from ..identity import Identity
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


def _with_schema(parsed: ParsedRequest) -> ParsedRequest:
    """The profile (``?schema=``, Accept-/Content-Profile) becomes the request target's schema."""
    req = parsed.request
    if parsed.schema and req.target.schema != parsed.schema:
        req = dataclasses.replace(req, target=rq.Target(req.target.name, parsed.schema))
    return dataclasses.replace(parsed, request=req)


def _headers_only(parsed: ParsedRequest, catalog: Catalog) -> rq.Request:
    """``return=headers-only`` on POST: ask for the new rows' primary key, to build ``Location``."""
    req = parsed.request
    if not isinstance(req, rq.Insert) or parsed.prefer.return_ != "headers-only":
        return req
    table = catalog.table(req.target.name, req.target.schema)
    if table is None or not table.primary_key:
        return req
    pk = tuple(rq.SelectColumn(rq.FieldRef(name)) for name in table.primary_key)
    return dataclasses.replace(req, returning=pk, return_rows=True)


def _location(parsed: ParsedRequest, result: pipeline.Result) -> str | None:
    """``Location: /table?pk=eq.v`` when exactly one row went into a table with a primary key."""
    req = parsed.request
    if parsed.prefer.return_ != "headers-only" or result.page_rows != 1 or not result.body:
        return None
    rows = orjson.loads(result.body)  # one row of key columns: cheap to decode
    if not isinstance(rows, list) or len(rows) != 1 or not isinstance(rows[0], dict):
        return None
    query = "&".join(f"{quote(k)}=eq.{quote(str(v))}" for k, v in rows[0].items())
    return f"/{quote(req.target.name)}?{query}"


def _options(request: Request, catalog: Catalog, name: str) -> Response:
    """``Allow``: the methods the table or view permits; answered from the catalog, no transaction."""
    wanted = request.query_params.get("schema") or request.headers.get("accept-profile")
    table = catalog.table(name, wanted if wanted in catalog.schemas else None)
    if table is None:
        raise errors.table_not_found(name)
    allowed = ["OPTIONS", "GET", "HEAD"]
    allowed += [m for m, ok in (("POST", table.insertable), ("PUT", table.insertable and table.updatable),
                                ("PATCH", table.updatable), ("DELETE", table.deletable)) if ok]
    return Response(b"", 200, headers={"Allow": ",".join(allowed), "Vary": render.VARY})


# the headers the parser reads for a read; everything else cannot change a GET's parse
_READ_HEADERS = frozenset({b"accept", b"prefer", b"range", b"range-unit", b"accept-profile"})


@functools.lru_cache(maxsize=2048)
def _parse_read(method: str, name: str, query: str, headers: tuple[tuple[bytes, bytes], ...]) -> ParsedRequest:
    """A GET/HEAD parse, remembered: the same URL and headers always parse the same (values included)."""
    return _with_schema(parse_records(method, name, query, Headers(raw=list(headers)), b""))


def query_text(request: Request) -> str:
    """The raw query string, as ``request.url.query`` gives it, without building the whole URL."""
    return request.scope.get("query_string", b"").decode()


def parse_read(request: Request, name: str) -> ParsedRequest:
    raw = tuple((k, v) for k, v in request.headers.raw if k in _READ_HEADERS)
    return _parse_read(request.method, name, query_text(request), raw)


async def _plan(request: Request, identity: Identity, parsed: ParsedRequest, ctx: RequestContext) -> Response:
    """``Accept: application/vnd.pgrst.plan``: EXPLAIN instead of the body, for the roles allowed."""
    gw = request.app.state.gateway
    assert parsed.plan is not None
    if identity.role not in gw.settings.plan_roles:
        raise errors.forbidden("The execution plan is available to admins only (GATEWAY_PLAN_ROLES)")
    text = await pipeline.explain(gw, identity, _headers_only(parsed, gw.catalogs.get()), ctx,
                                  parsed.plan.format, parsed.plan.options)
    return render.plan(parsed, text)


async def records(request: Request) -> Response:
    gw = request.app.state.gateway
    method = request.method
    name = request.path_params["table"]
    if method == "OPTIONS":
        return _options(request, gw.catalogs.get(), name)
    identity = await gw.auth.identify(request.headers)
    if method in READ_METHODS:
        parsed = parse_read(request, name)
    else:
        body = await read_body(request, gw.settings.max_body_bytes)
        parsed = _with_schema(parse_records(method, name, query_text(request), request.headers, body))
    ctx = RequestContext(method, request.scope["path"], read_only=method in READ_METHODS,
                         timezone=parsed.prefer.timezone)
    if parsed.plan is not None:
        return await _plan(request, identity, parsed, ctx)
    result = await pipeline.run(gw, identity, _headers_only(parsed, gw.catalogs.get()), ctx)
    if method in READ_METHODS:
        return render.read(parsed, result)
    return render.write(parsed, result, _location(parsed, result))


async def rpc(request: Request) -> Response:
    gw = request.app.state.gateway
    method = request.method
    identity = await gw.auth.identify(request.headers)
    body = b"" if method in READ_METHODS else await read_body(request, gw.settings.max_body_bytes)
    parsed = _with_schema(parse_rpc(method, request.path_params["function"], query_text(request), request.headers,
                                    body))
    ctx = RequestContext(method, request.scope["path"], read_only=method in READ_METHODS,
                         timezone=parsed.prefer.timezone)
    if parsed.plan is not None:
        return await _plan(request, identity, parsed, ctx)
    result = await pipeline.run(gw, identity, parsed.request, ctx)
    return render.call(parsed, result)


ROUTES = [
    Route("/api/database/records/{table}", records, methods=RECORD_METHODS),
    Route("/api/database/rpc/{function}", rpc, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]),
]
