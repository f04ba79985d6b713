"""REST rendering: pipeline Result -> HTTP response (status, headers, body bytes).

In:  the parsed request (``rest.parse.ParsedRequest``) and the pipeline ``Result``.
Out: a Starlette ``Response``. The body is PostgreSQL's JSON text, passed
     through unchanged.

Status and header rules follow postgrest-semantics §5, §7, §8 and the InsForge
decisions (insforge-behavior §7): records reads always carry X-Total-Count and a
numeric Content-Range total; 206/416 only follow an explicit ``Prefer: count``;
POST without ``return=representation`` answers 201 with ``[]``.
"""

from __future__ import annotations

from starlette.responses import Response

from .. import errors
from .. import request as rq
from ..errors import GatewayError
from ..pipeline import Result
from .parse import ParsedRequest

JSON = "application/json; charset=utf-8"
OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
VARY = "Accept, Prefer, Range"


def content_range(offset: int, rows: int, total: int | None) -> str:
    total_text = "*" if total is None else str(total)
    if rows <= 0:
        return f"*/{total_text}"
    return f"{offset}-{offset + rows - 1}/{total_text}"


def _headers(parsed: ParsedRequest, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Vary": VARY}
    applied = parsed.prefer.applied()
    if applied:
        headers["Preference-Applied"] = applied
    if extra:
        headers.update(extra)
    return headers


def _body(parsed: ParsedRequest, text: str | None) -> tuple[bytes, str]:
    media = OBJECT if parsed.accept == "object" else JSON
    return (text or ("{}" if parsed.accept == "object" else "[]")).encode(), media


def read(parsed: ParsedRequest, result: Result) -> Response:
    """GET/HEAD on a table or view, and row-returning RPC."""
    req = parsed.request
    explicit_count = bool(getattr(req, "count", None))
    total = result.total
    status = 200
    if explicit_count and total is not None:
        if result.offset > total:
            raise errors.postgrest(416, "PGRST103", "Requested range not satisfiable",
                                   details=f"An offset of {result.offset} was requested, but there are only "
                                   f"{total} rows.", headers={"Content-Range": f"*/{total}"})
        if result.page_rows < total:
            status = 206
    headers = _headers(parsed, {"Content-Range": content_range(result.offset, result.page_rows, total)})
    if isinstance(req, rq.Read):
        headers["X-Total-Count"] = str(total if total is not None else result.offset + result.page_rows)
    if getattr(parsed.request, "head", False):
        return Response(b"", status, headers=headers, media_type=OBJECT if parsed.accept == "object" else JSON)
    body, media = _body(parsed, result.body)
    return Response(body, status, headers=headers, media_type=media)


def write(parsed: ParsedRequest, result: Result, location: str | None = None) -> Response:
    """POST/PATCH/DELETE on a table or view."""
    req = parsed.request
    rows = result.page_rows
    want_rows = bool(getattr(req, "return_rows", False)) or parsed.accept == "object"
    counted = rows if getattr(req, "count", None) else None
    if isinstance(req, rq.Insert):
        status = 201
        if req.resolution == "merge-duplicates" and rows > 0 and result.inserted == 0:
            status = 200  # every row was an update
        headers = _headers(parsed, {"Content-Range": f"*/{'*' if counted is None else counted}"})
        if parsed.prefer.return_ == "headers-only":
            if location:
                headers["Location"] = location
            return Response(b"", 201, headers=headers)
        if want_rows:
            body, media = _body(parsed, result.body)
            return Response(body, status, headers=headers, media_type=media)
        return Response(b"[]", status, headers=headers, media_type=JSON)
    if isinstance(req, rq.Update):
        cr = content_range(0, rows, counted)
    else:
        cr = f"*/{'*' if counted is None else counted}"
    headers = _headers(parsed, {"Content-Range": cr})
    if not want_rows:
        return Response(b"", 204, headers=headers)
    body, media = _body(parsed, result.body)
    return Response(body, 200, headers=headers, media_type=media)


def call(parsed: ParsedRequest, result: Result) -> Response:
    """RPC: scalar -> JSON value, set -> array, composite -> object, void -> 204."""
    if result.kind == "void":
        return Response(b"", 204, headers=_headers(parsed))
    if result.kind == "rows":
        return read(parsed, result)
    headers = _headers(parsed, {"Content-Range": content_range(0, 1, 1 if getattr(parsed.request, "count", None)
                                                               else None)})
    if getattr(parsed.request, "head", False):
        return Response(b"", 200, headers=headers, media_type=JSON)
    media = OBJECT if parsed.accept == "object" else JSON
    return Response((result.body or "null").encode(), 200, headers=headers, media_type=media)


def error(exc: GatewayError) -> Response:
    return Response(exc.to_json(), exc.status, headers=exc.headers or None, media_type=JSON)
