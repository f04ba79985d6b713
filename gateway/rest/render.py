"""REST rendering: pipeline Result -> HTTP response (status, headers, body bytes).

In:  the parsed request (``rest.parse.ParsedRequest``) and the pipeline ``Result``.
Out: a Starlette ``Response``. The body is PostgreSQL's JSON text, passed
     through unchanged (``Accept: text/csv`` is the one format converted here).

Status and header rules follow postgrest-semantics §5, §7, §8 and the InsForge
decisions (insforge-behavior §7): records reads always carry X-Total-Count and a
numeric Content-Range total (``X-Total-Count-Estimated: true`` when that total is the
planner's estimate); 206/416 only follow an explicit ``Prefer: count``;
a POST with no Prefer at all answers 201 with ``[]`` (``return=minimal``: no body;
PUT: 204).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
from typing import Any

import orjson
from starlette.responses import Response

from .. import errors, jsonbody
from .. import request as rq
from ..errors import GatewayError
from ..pipeline import Result
from .parse import ParsedRequest

JSON = "application/json; charset=utf-8"
OBJECT = "application/vnd.pgrst.object+json; charset=utf-8"
CSV = "text/csv; charset=utf-8"
STRIPPED_ARRAY = "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
STRIPPED_OBJECT = "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8"
VARY = "Accept, Prefer, Range"
ESTIMATED = "X-Total-Count-Estimated"


def content_range(offset: int, rows: int, total: int | None) -> str:
    total_text = "*" if total is None else str(total)
    if rows <= 0:
        return f"*/{total_text}"
    return f"{offset}-{offset + rows - 1}/{total_text}"


@functools.lru_cache(maxsize=1024)
def _applied(parsed: ParsedRequest) -> str:
    """``Preference-Applied`` for ``parsed``; remembered, as reads are parsed once per distinct request."""
    return _honoured(parsed).applied()


def _honoured(parsed: ParsedRequest) -> rq.Prefer:
    """The Prefer tokens this kind of request acts on: only those are echoed in Preference-Applied.

    ``max-affected`` is enforced only with ``handling=strict`` and only on PATCH, DELETE and RPC;
    ``tx=rollback`` ends writes and calls (a read has nothing to keep)."""
    prefer, req = parsed.prefer, parsed.request
    limited = isinstance(req, rq.Update | rq.Delete | rq.Call) and prefer.strict
    prefer = dataclasses.replace(prefer, max_affected=prefer.max_affected if limited else None)
    if isinstance(req, rq.Insert):
        return prefer
    if isinstance(req, rq.Update | rq.Delete):
        return dataclasses.replace(prefer, resolution=None, missing_default=False)
    return dataclasses.replace(prefer, return_=None, resolution=None, missing_default=False,
                               tx_rollback=prefer.tx_rollback and isinstance(req, rq.Call))


def _headers(parsed: ParsedRequest, extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = {"Vary": VARY}
    applied = _applied(parsed) if isinstance(parsed.request, rq.Read) else _honoured(parsed).applied()
    if applied:
        headers["Preference-Applied"] = applied
    if extra:
        headers.update(extra)
    return headers


def _body(parsed: ParsedRequest, text: str | None) -> tuple[bytes, str]:
    if parsed.accept == "csv":
        return csv_body(text or "[]"), CSV
    media = OBJECT if parsed.accept == "object" else JSON
    body = text or ("{}" if parsed.accept == "object" else "[]")
    if parsed.strip_nulls:
        return stripped_body(body), STRIPPED_OBJECT if parsed.accept == "object" else STRIPPED_ARRAY
    return body.encode(), media


def _strip(value: Any) -> Any:
    """PostgreSQL's ``json_strip_nulls``: object fields whose value is null go, at every depth."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def stripped_body(text: str) -> bytes:
    """``;nulls=stripped``: the body without null-valued keys. Like CSV, the one other case where
    the rows are decoded here rather than passed through."""
    return jsonbody.dumps(_strip(jsonbody.loads(text))).encode()  # numbers keep every digit


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return orjson.dumps(value).decode() if isinstance(value, dict | list) else str(value)


def csv_body(text: str) -> bytes:
    """``Accept: text/csv``: a header line and one line per row, from PostgreSQL's JSON array.

    CSV is the one format PostgreSQL does not build for us, so only here the rows are decoded.
    """
    rows = orjson.loads(text)
    rows = [rows] if isinstance(rows, dict) else rows
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(rows[0]) if rows and isinstance(rows[0], dict) else []
    writer.writerow(keys)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in keys] if isinstance(row, dict) else [_cell(row)])
    return out.getvalue().encode()


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
    if result.estimated:  # the total (X-Total-Count and Content-Range) is the planner's estimate
        headers[ESTIMATED] = "true"
    if getattr(parsed.request, "head", False):
        return Response(b"", status, headers=headers, media_type=OBJECT if parsed.accept == "object" else JSON)
    body, media = _body(parsed, result.body)
    return Response(body, status, headers=headers, media_type=media)


def write(parsed: ParsedRequest, result: Result, location: str | None = None) -> Response:
    """POST/PUT/PATCH/DELETE on a table or view (postgrest-semantics §7, insforge-behavior §7)."""
    req = parsed.request
    rows = result.page_rows
    want_rows = bool(getattr(req, "return_rows", False)) or parsed.accept == "object"
    counted = rows if getattr(req, "count", None) else None
    if isinstance(req, rq.Insert):
        headers = _headers(parsed, {"Content-Range": f"*/{'*' if counted is None else counted}"})
        status = 201
        if req.resolution == "merge-duplicates" and rows > 0 and result.inserted == 0:
            status = 200  # every row was an update (PUT: the row was replaced)
        if parsed.prefer.return_ == "headers-only":
            if location:
                headers["Location"] = location
            return Response(b"", 201, headers=headers)
        if want_rows:
            body, media = _body(parsed, result.body)
            return Response(body, status, headers=headers, media_type=media)
        if req.put or parsed.prefer.return_ == "minimal":
            return Response(b"", 204 if req.put else status, headers=headers)
        # no Prefer at all: InsForge answers 201 with an empty array, which both SDKs expect
        return Response(b"[]", status, headers=headers, media_type=JSON)
    # PATCH reports the range of the rows it touched; DELETE, like POST, only a count
    cr = content_range(0, rows, counted) if isinstance(req, rq.Update) else f"*/{'*' if counted is None else counted}"
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
    counted = result.page_rows if getattr(parsed.request, "count", None) else None
    headers = _headers(parsed, {"Content-Range": content_range(0, result.page_rows, counted)})
    media = OBJECT if parsed.accept == "object" else JSON
    if getattr(parsed.request, "head", False):
        return Response(b"", 200, headers=headers, media_type=media)
    if parsed.strip_nulls and result.body:
        return Response(stripped_body(result.body), 200, headers=headers,
                        media_type=STRIPPED_OBJECT if parsed.accept == "object" else STRIPPED_ARRAY)
    return Response((result.body or "null").encode(), 200, headers=headers, media_type=media)


def plan(parsed: ParsedRequest, text: str) -> Response:
    """The EXPLAIN output: ``application/vnd.pgrst.plan+json`` (or ``+text``) naming the explained media."""
    assert parsed.plan is not None
    media = f'application/vnd.pgrst.plan+{parsed.plan.format}; for="{parsed.plan.for_media}"; charset=utf-8'
    return Response(text.encode(), 200, headers={"Vary": VARY}, media_type=media)


def error(exc: GatewayError, front: str = "rest") -> Response:
    return Response(exc.to_json(front), exc.status, headers={"Vary": VARY, **exc.headers}, media_type=JSON)
