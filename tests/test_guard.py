"""Request limits: header fields and bytes (431), path plus query string (414), body (413).

Most tests put ``guard.Guard`` in front of a small recording app with tiny limits, so what the
handler saw (was it called, how many body bytes did it read) can be asserted; the last ones go
through the gateway itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from support import Running, running_app, settings_for

from gateway import errors
from gateway.guard import BodyTooLarge, Guard, Limits

LIMITS = Limits(max_body_bytes=1000, max_upload_bytes=5000, max_headers=20, max_header_bytes=2000,
                max_target_bytes=500)
ERROR_KEYS = {"error", "message", "statusCode", "nextActions", "code", "details", "hint"}


class Recorder:
    """A handler that reads the body chunk by chunk and remembers how far it got."""

    def __init__(self) -> None:
        self.calls = 0
        self.read = 0  # body bytes the handler received

    async def echo(self, request: Request) -> Response:
        self.calls += 1
        self.read = 0
        async for chunk in request.stream():
            self.read += len(chunk)
        return JSONResponse({"read": self.read})

    async def swallow(self, request: Request) -> Response:
        """A handler that catches the failed read and answers something else."""
        try:
            await request.body()
        except Exception:
            return JSONResponse({"oops": True}, 400)
        return JSONResponse({"fine": True})


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest_asyncio.fixture
async def client(recorder: Recorder) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[Route("/echo", recorder.echo, methods=["GET", "POST"]),
                            Route("/swallow", recorder.swallow, methods=["POST"])])
    app.add_middleware(Guard, limits=LIMITS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://guard.test") as c:
        yield c


def assert_refused(r: httpx.Response, status: int, error: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body.keys() >= ERROR_KEYS
    assert (body["statusCode"], body["error"]) == (status, error)
    assert body["message"] and body["nextActions"]


async def chunks(total: int, size: int = 100) -> AsyncIterator[bytes]:
    """A streamed (chunked, no Content-Length) body of ``total`` bytes."""
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


# --------------------------------------------------------------------------- headers and target


@pytest.mark.parametrize(("headers", "status"), [
    ({f"x-h{i}": "v" for i in range(10)}, 200),
    ({f"x-h{i}": "v" for i in range(25)}, 431),  # more fields than max_headers
    ({"x-big": "v" * 1500}, 200),
    ({"x-big": "v" * 2500}, 431),  # more bytes than max_header_bytes
    ({"x-a": "v" * 1000, "x-b": "v" * 1000}, 431),  # each fits, together they do not
])
async def test_too_many_or_too_large_headers_get_431(
        client: httpx.AsyncClient, recorder: Recorder, headers: dict[str, str], status: int) -> None:
    r = await client.get("/echo", headers=headers)
    if status == 431:
        assert_refused(r, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE")
        assert recorder.calls == 0
    else:
        assert r.status_code == 200


@pytest.mark.parametrize(("query", "status"), [
    ("a=" + "x" * 400, 200),
    ("a=" + "x" * 600, 414),
    ("in=in.(" + ",".join(str(i) for i in range(200)) + ")", 414),
])
async def test_a_long_query_string_gets_414(
        client: httpx.AsyncClient, recorder: Recorder, query: str, status: int) -> None:
    r = await client.get(f"/echo?{query}")
    if status == 414:
        assert_refused(r, 414, "URI_TOO_LONG")
        assert recorder.calls == 0
    else:
        assert r.status_code == 200


# --------------------------------------------------------------------------- bodies


@pytest.mark.parametrize(("size", "content_type", "status"), [
    (1000, "application/json", 200),
    (1001, "application/json", 413),
    (3000, "text/csv", 413),  # everything that is not multipart has the JSON limit
    (3000, "multipart/form-data; boundary=x", 200),
    (5001, "multipart/form-data; boundary=x", 413),
])
async def test_a_declared_length_over_the_limit_is_refused_before_the_handler_runs(
        client: httpx.AsyncClient, recorder: Recorder, size: int, content_type: str, status: int) -> None:
    r = await client.post("/echo", content=b"x" * size, headers={"Content-Type": content_type})
    if status == 413:
        assert_refused(r, 413, "PAYLOAD_TOO_LARGE")
        assert recorder.calls == 0
    else:
        assert r.json() == {"read": size}


@pytest.mark.parametrize(("size", "content_type", "limit"), [
    (50_000, "application/json", 1000),
    (50_000, "multipart/form-data; boundary=x", 5000),
])
async def test_a_streamed_body_is_cut_off_at_the_limit_not_read_whole(
        client: httpx.AsyncClient, recorder: Recorder, size: int, content_type: str, limit: int) -> None:
    r = await client.post("/echo", content=chunks(size), headers={"Content-Type": content_type})
    assert "content-length" not in r.request.headers
    assert_refused(r, 413, "PAYLOAD_TOO_LARGE")
    assert recorder.calls == 1
    assert recorder.read <= limit  # the chunk that crossed the limit never reached the handler


async def test_a_streamed_body_within_the_limit_reaches_the_handler_whole(
        client: httpx.AsyncClient, recorder: Recorder) -> None:
    r = await client.post("/echo", content=chunks(1000), headers={"Content-Type": "application/json"})
    assert r.json() == {"read": 1000}


async def test_a_handler_that_swallows_the_failed_read_still_answers_413(client: httpx.AsyncClient) -> None:
    r = await client.post("/swallow", content=chunks(5000), headers={"Content-Type": "application/json"})
    assert_refused(r, 413, "PAYLOAD_TOO_LARGE")


def test_limits_come_from_the_settings() -> None:
    limits = Limits.from_settings(settings_for("postgresql://unused", max_body_bytes=123, max_upload_bytes=456))
    assert (limits.max_body_bytes, limits.max_upload_bytes) == (123, 456)
    assert limits.max_headers == Limits().max_headers


def test_body_too_large_is_a_gateway_error_the_app_renders_the_same_way() -> None:
    exc = BodyTooLarge(10)
    assert isinstance(exc, errors.GatewayError)
    assert exc.body()["error"] == "PAYLOAD_TOO_LARGE" and exc.status == 413


# --------------------------------------------------------------------------- through the gateway

SCHEMA = "guard_s"


@pytest_asyncio.fixture(scope="module")
async def gateway_app(pg_url: str) -> AsyncIterator[Running]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"""
            drop schema if exists {SCHEMA} cascade; create schema {SCHEMA};
            create table {SCHEMA}.docs(id int primary key, body text);
            grant usage on schema {SCHEMA} to authenticated;
            grant all on {SCHEMA}.docs to authenticated;""")
        async with running_app(pg_url, (SCHEMA,), max_body_bytes=10_000) as running:
            yield running
        await conn.execute(f"drop schema {SCHEMA} cascade")
    finally:
        await conn.close()


@pytest.mark.parametrize(("kwargs", "status", "error"), [
    ({"json": [{"id": 1, "body": "x" * 20_000}]}, 413, "PAYLOAD_TOO_LARGE"),
    ({"content": chunks(20_000, 1000), "headers": {"Content-Type": "application/json"}}, 413, "PAYLOAD_TOO_LARGE"),
    ({"params": {"body": "eq." + "x" * 20_000}}, 414, "URI_TOO_LONG"),
    ({"headers": {"X-Padding": "x" * 40_000}}, 431, "REQUEST_HEADER_FIELDS_TOO_LARGE"),
])
async def test_the_gateway_refuses_oversized_requests_with_the_spec_body_and_stays_healthy(
        gateway_app: Running, kwargs: dict[str, Any], status: int, error: str) -> None:
    headers = {**gateway_app.user(), **kwargs.pop("headers", {})}
    r = await gateway_app.client.post("/api/database/records/docs", headers=headers, **kwargs)
    assert_refused(r, status, error)
    assert r.headers["x-request-id"]
    assert (await gateway_app.client.get("/health")).status_code == 200
    ok = await gateway_app.client.post("/api/database/records/docs?on_conflict=id", json=[{"id": 2, "body": "small"}],
                                       headers={**gateway_app.user(), "Prefer": "resolution=merge-duplicates"})
    assert ok.status_code in (200, 201), ok.text
