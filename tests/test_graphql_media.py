"""GraphQL over HTTP media types (gateway/graphql/media.py), in-process against the real database.

The graphql-http audit (test_graphql_http_audit.py) checks the same rules with node; these run
everywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from support import Running, running_app

from gateway.graphql.media import GRAPHQL_RESPONSE, negotiate


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with running_app(pg_url) as running:
        yield running


@pytest.mark.parametrize(("accept", "content_type", "request_error"), [
    (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE, 400),
    (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE, 400),
    ("application/json", "application/json", 200),
    ("*/*", "application/json", 400),
    (None, "application/json", 400),
])
async def test_the_accepted_type_decides_content_type_and_the_status_of_request_errors(
        gw: Running, accept: str | None, content_type: str, request_error: int) -> None:
    headers = {**gw.anon, **({"Accept": accept} if accept else {})}
    assert negotiate(accept).request_error_status == request_error
    for query, status in (("{ __typename }", 200), ("{ __typename", request_error), ("{ nope }", request_error)):
        r = await gw.client.post("/graphql", json={"query": query}, headers=headers)
        assert (r.status_code, r.headers["content-type"].split(";")[0]) == (status, content_type), r.text


async def test_a_post_without_a_supported_content_type_is_refused_with_400(gw: Running) -> None:
    for content_type in (None, "text/plain"):
        headers = {**gw.anon, **({"Content-Type": content_type} if content_type else {})}
        r = await gw.client.post("/graphql", content=b'{"query": "{ __typename }"}', headers=headers)
        assert r.status_code == 400, r.text
        assert r.json()["errors"][0]["extensions"]["error"] == "INVALID_QUERY"


@pytest.mark.parametrize("extensions", ["x", 1, True, [1]])
async def test_extensions_that_are_not_an_object_are_a_400(gw: Running, extensions: object) -> None:
    r = await gw.client.post("/graphql", json={"query": "{ __typename }", "extensions": extensions},
                             headers=gw.anon)
    assert r.status_code == 400, r.text
    ok = await gw.client.get("/graphql", params={"query": "{ __typename }", "extensions": '{"a": 1}'},
                             headers=gw.anon)
    assert ok.json() == {"data": {"__typename": "Query"}}
