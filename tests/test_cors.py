"""CORS: the gateway's middleware answers exactly as Starlette's CORSMiddleware, whatever the request."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cors import Cors


async def endpoint(request: Request) -> Response:
    vary = request.query_params.getlist("vary")
    response = Response(b"{}", media_type="application/json")
    for value in vary:
        response.headers.append("Vary", value)
    return response


def app(middleware: type, origins: list[str]) -> Starlette:
    return Starlette(routes=[Route("/r", endpoint, methods=["GET", "POST", "OPTIONS"])], middleware=[
        Middleware(middleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"],
                   expose_headers=["X-Total-Count"], max_age=600)])


REQUESTS = [  # (method, query, headers)
    ("GET", "", {}),
    ("GET", "?vary=Accept", {}),
    ("GET", "?vary=Accept&vary=Prefer", {}),
    ("GET", "?vary=Accept", {"Origin": "https://app.example"}),
    ("GET", "", {"Origin": "https://other.example"}),
    ("POST", "?vary=Accept", {"Origin": "https://app.example", "Cookie": "a=b"}),
    ("OPTIONS", "", {"Origin": "https://app.example", "Access-Control-Request-Method": "PATCH",
                     "Access-Control-Request-Headers": "authorization, prefer"}),
    ("OPTIONS", "", {"Origin": "https://other.example", "Access-Control-Request-Method": "GET"}),
    ("OPTIONS", "", {}),
]


@pytest.mark.parametrize("origins", [["*"], ["https://app.example"]])
@pytest.mark.parametrize(("method", "query", "headers"), REQUESTS)
async def test_every_request_gets_the_same_status_and_headers_as_from_starlettes_middleware(
        origins: list[str], method: str, query: str, headers: dict[str, str]) -> None:
    answers = []
    for middleware in (CORSMiddleware, Cors):
        transport = httpx.ASGITransport(app=app(middleware, origins))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.request(method, "/r" + query, headers=headers)
        answers.append((response.status_code, sorted(response.headers.multi_items()), response.content))
    assert answers[1] == answers[0]
