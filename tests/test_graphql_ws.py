"""GraphQL over WebSocket at /graphql (gateway/graphql/ws.py), with a real client over real HTTP.

Both protocols (graphql-transport-ws and the legacy graphql-ws), credentials in
connection_init, a subscription from the extensions module, and a generated query run as the
caller under an owner-only RLS policy.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from liveserver import LiveServer, live_server
from support import API_KEY, run_sql
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SCHEMA = "gql_ws"
MODULE = "gql_ws_extensions"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, title text NOT NULL, owner uuid NOT NULL DEFAULT auth.uid());
ALTER TABLE {SCHEMA}.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_mine ON {SCHEMA}.posts FOR ALL TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
"""

EXTENSIONS = """
import asyncio
from collections.abc import AsyncGenerator

import strawberry


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def countdown(self, info: strawberry.Info, start: int = 3) -> AsyncGenerator[str, None]:
        for n in range(start, 0, -1):
            yield f"{info.context.identity.role}:{n}"

    @strawberry.subscription
    async def forever(self) -> AsyncGenerator[int, None]:
        yield 1
        await asyncio.sleep(3600)
"""

TRANSPORT, LEGACY = "graphql-transport-ws", "graphql-ws"


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    import sys

    directory = tmp_path_factory.mktemp("ws_extensions")
    (directory / f"{MODULE}.py").write_text(textwrap.dedent(EXTENSIONS))
    sys.path.insert(0, str(directory))
    yield directory
    sys.path.remove(str(directory))


@pytest_asyncio.fixture(scope="module")
async def server(pg_url: str, module_dir: Path) -> AsyncIterator[LiveServer]:
    await run_sql(pg_url, FIXTURE)
    with live_server(pg_url, (SCHEMA,), graphql_extensions=MODULE) as running:
        await run_sql(pg_url, f"""INSERT INTO {SCHEMA}.posts VALUES
            (1, 'mine', '{running.uid("alice")}'), (2, 'theirs', '{running.uid("bob")}')""")
        yield running


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def recv(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = json.loads(await ws.recv(decode=True))
        if message["type"] not in ("ping", "pong", "ka"):  # keep-alives
            return message


async def open_session(server: LiveServer, payload: dict[str, Any], protocol: str = TRANSPORT) -> ClientConnection:
    ws = await connect(ws_url(server), subprotocols=[protocol])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    return ws


async def results(ws: ClientConnection, query: str, protocol: str = TRANSPORT) -> list[Any]:
    """Every result of one operation, until it completes."""
    await ws.send(json.dumps({"id": "1", "type": "subscribe" if protocol == TRANSPORT else "start",
                              "payload": {"query": query}}))
    out = []
    while True:
        message = await recv(ws)
        if message["type"] == "complete":
            return out
        assert message["type"] in ("next", "data"), message
        out.append(message["payload"])


async def test_a_subscription_from_the_module_streams_over_graphql_transport_ws_as_the_caller(
        server: LiveServer) -> None:
    async with await open_session(server, {"Authorization": f"Bearer {server.token('alice')}"}) as ws:
        assert (await recv(ws))["type"] == "connection_ack"
        got = await results(ws, "subscription { countdown(start: 2) }")
    assert got == [{"data": {"countdown": "authenticated:2"}}, {"data": {"countdown": "authenticated:1"}}]


async def test_a_generated_query_over_websocket_runs_as_the_caller_under_rls(server: LiveServer) -> None:
    async with await open_session(server, {"headers": {"Authorization": f"Bearer {server.token('alice')}"}}) as ws:
        assert (await recv(ws))["type"] == "connection_ack"
        got = await results(ws, "{ posts { id title } ping }")
    assert got == [{"data": {"posts": [{"id": 1, "title": "mine"}], "ping": "pong"}}]


async def test_the_api_key_in_connection_init_is_the_admin(server: LiveServer) -> None:
    async with await open_session(server, {"X-API-Key": API_KEY}) as ws:
        assert (await recv(ws))["type"] == "connection_ack"
        got = await results(ws, "{ posts(orderBy: [{id: ASC}]) { id } }")
    assert got == [{"data": {"posts": [{"id": 1}, {"id": 2}]}}]


@pytest.mark.parametrize("payload", [{}, {"Authorization": "Bearer not-a-token"}, {"X-API-Key": "ik_wrong"}])
async def test_connection_init_without_a_valid_credential_is_closed_with_4403(
        server: LiveServer, payload: dict[str, Any]) -> None:
    async with await open_session(server, payload) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_the_legacy_graphql_ws_protocol_streams_the_same_subscription(server: LiveServer) -> None:
    async with await open_session(server, {"Authorization": f"Bearer {server.anon_key}"}, LEGACY) as ws:
        assert (await recv(ws))["type"] == "connection_ack"
        got = await results(ws, "subscription { countdown(start: 1) }", LEGACY)
    assert got == [{"data": {"countdown": "anon:1"}}]


async def test_operations_beyond_the_per_connection_limit_are_refused(pg_url: str, module_dir: Path) -> None:
    with live_server(pg_url, (SCHEMA,), graphql_extensions=MODULE, graphql_ws_max_operations=1) as limited:
        async with await open_session(limited, {"X-API-Key": API_KEY}) as ws:
            assert (await recv(ws))["type"] == "connection_ack"
            forever = {"query": "subscription { forever }"}
            await ws.send(json.dumps({"id": "a", "type": "subscribe", "payload": forever}))
            assert await recv(ws) == {"id": "a", "type": "next", "payload": {"data": {"forever": 1}}}
            await ws.send(json.dumps({"id": "b", "type": "subscribe", "payload": forever}))
            refused = await recv(ws)
            assert (refused["id"], refused["type"]) == ("b", "error"), refused
            assert refused["payload"][0]["message"] == "Subscription limit reached"
