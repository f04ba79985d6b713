"""Generated subscriptions (gateway/graphql/subscriptions.py, feed.py) with a real WebSocket client.

Change streams re-read as the subscriber under an owner-only RLS policy, filters, DELETE keys,
live queries, two gateway processes, a PostgreSQL restart, a slow consumer disconnected, a burst
delivered once and in order to grouped subscribers, RLS within one batch, the trigger installed
for project_admin's tables, and a subscriber without SELECT.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from liveserver import LiveServer, live_server
from support import API_KEY, run_sql
from test_faults import Cluster, cluster  # noqa: F401 - a PostgreSQL of its own, restartable
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SCHEMA = "gql_sub"
DELIVERY = 1.0  # seconds: "reaches its subscriber within a second"
QUIET = 0.5  # seconds a test waits to see that nothing else arrives

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
GRANT CREATE ON SCHEMA {SCHEMA} TO project_admin;
CREATE TABLE {SCHEMA}.posts (id serial PRIMARY KEY, title text NOT NULL, owner uuid NOT NULL DEFAULT auth.uid());
ALTER TABLE {SCHEMA}.posts ENABLE ROW LEVEL SECURITY;
CREATE POLICY posts_mine ON {SCHEMA}.posts FOR ALL TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON {SCHEMA}.posts TO authenticated, project_admin;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
SELECT system.publish_changes('{SCHEMA}.posts');
SET ROLE project_admin;
CREATE TABLE {SCHEMA}.notes (id int PRIMARY KEY, body text);
RESET ROLE;
GRANT SELECT ON {SCHEMA}.notes TO authenticated;
CREATE TABLE {SCHEMA}.shared (id int PRIMARY KEY, body text);
GRANT SELECT ON {SCHEMA}.shared TO authenticated, project_admin;
SELECT system.publish_changes('{SCHEMA}.shared');
"""


@pytest_asyncio.fixture(scope="module")
async def server(pg_url: str) -> AsyncIterator[LiveServer]:
    await run_sql(pg_url, FIXTURE)
    with live_server(pg_url, (SCHEMA,)) as running:
        yield running


@pytest.fixture
def pg_sql(pg_url: str) -> Iterator[Any]:
    async def run(sql: str) -> None:
        await run_sql(pg_url, sql)
    yield run


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


class Client:
    """One graphql-transport-ws connection with one subscription."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def next(self, timeout: float = DELIVERY) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] not in ("ping", "pong", "ka"):  # keep-alives of both protocols
                return message

    async def data(self, timeout: float = DELIVERY) -> Any:
        message = await self.next(timeout)
        assert message["type"] == "next" and "errors" not in message["payload"], message
        return message["payload"]["data"]

    async def nothing_more(self) -> None:
        with pytest.raises(TimeoutError):
            await self.next(QUIET)


async def subscribe(server: LiveServer, query: str, credentials: dict[str, str]) -> Client:
    ws = await connect(ws_url(server), subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": credentials}))
    client = Client(ws)
    assert (await client.next())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
    if "_changes" in query:  # a stream sends nothing until a change: let the server finish opening it
        await asyncio.sleep(0.3)
    return client


def bearer(server: LiveServer, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(name)}"}


async def insert(server: LiveServer, name: str, title: str) -> int:
    async with httpx.AsyncClient(base_url=server.url) as http:
        r = await http.post("/api/database/records/posts", json=[{"title": title}],
                            headers={**bearer(server, name), "Prefer": "return=representation"})
    assert r.status_code == 201, r.text
    row_id: int = r.json()[0]["id"]
    return row_id


CHANGES = "subscription { posts_changes { op pk row { id title } } }"


async def test_an_insert_reaches_its_subscriber_within_a_second_and_never_another_users(server: LiveServer) -> None:
    alice = await subscribe(server, CHANGES, bearer(server, "alice"))
    bob = await subscribe(server, CHANGES, bearer(server, "bob"))
    async with alice.ws, bob.ws:
        mine = await insert(server, "alice", "alice's")
        assert await alice.data() == {"posts_changes": {"op": "INSERT", "pk": {"id": mine},
                                                        "row": {"id": mine, "title": "alice's"}}}
        theirs = await insert(server, "bob", "bob's")
        # bob's first event is his own insert: alice's row never reached him (RLS, re-read as bob)
        assert await bob.data() == {"posts_changes": {"op": "INSERT", "pk": {"id": theirs},
                                                      "row": {"id": theirs, "title": "bob's"}}}
        await alice.nothing_more()


async def test_the_filter_applies_to_changes(server: LiveServer) -> None:
    query = 'subscription { posts_changes(filter: {title: {like: "keep*"}}) { op row { title } } }'
    client = await subscribe(server, query, bearer(server, "alice"))
    async with client.ws:
        await insert(server, "alice", "drop me")
        await insert(server, "alice", "keep me")
        assert await client.data() == {"posts_changes": {"op": "INSERT", "row": {"title": "keep me"}}}


async def test_a_delete_carries_only_the_key(server: LiveServer, pg_sql: Any) -> None:
    row_id = await insert(server, "alice", "short-lived")
    client = await subscribe(server, CHANGES, bearer(server, "alice"))
    async with client.ws:
        await pg_sql(f"DELETE FROM {SCHEMA}.posts WHERE id = {row_id}")
        assert await client.data() == {"posts_changes": {"op": "DELETE", "pk": {"id": row_id}, "row": None}}


async def test_a_live_query_sends_at_once_and_again_only_when_its_result_changes(server: LiveServer) -> None:
    client = await subscribe(server, "subscription { posts_count }", bearer(server, "alice"))
    async with client.ws:
        first = (await client.data())["posts_count"]
        await insert(server, "bob", "not alice's")  # the table changed; alice's result did not
        await client.nothing_more()
        await insert(server, "alice", "alice again")
        assert await client.data() == {"posts_count": first + 1}


async def test_a_live_query_on_a_project_admin_table_installs_its_trigger(server: LiveServer, pg_sql: Any) -> None:
    client = await subscribe(server, "subscription { notes(orderBy: [{id: ASC}]) { id body } }",
                             bearer(server, "alice"))
    async with client.ws:
        assert await client.data() == {"notes": []}
        await pg_sql(f"INSERT INTO {SCHEMA}.notes VALUES (1, 'hello')")
        assert await client.data() == {"notes": [{"id": 1, "body": "hello"}]}


async def test_a_subscriber_without_select_privilege_gets_an_error_and_no_stream(server: LiveServer) -> None:
    client = await subscribe(server, CHANGES, {"Authorization": f"Bearer {server.anon_key}"})
    async with client.ws:
        refused = await client.next()  # anon's schema has no posts at all
        assert (refused["id"], refused["type"]) == ("1", "error"), refused
        assert refused["payload"][0]["extensions"]["code"] == "INVALID_QUERY", refused  # as over HTTP
        await insert(server, "alice", "not for anon")
        await client.nothing_more()


async def test_a_change_made_through_one_gateway_process_reaches_a_subscriber_of_another(
        server: LiveServer, pg_url: str) -> None:
    with live_server(pg_url, (SCHEMA,)) as other:
        client = await subscribe(other, CHANGES, bearer(other, "alice"))
        async with client.ws:
            row_id = await insert(server, "alice", "across processes")
            assert (await client.data())["posts_changes"]["pk"] == {"id": row_id}


@pytest.mark.parametrize("protocol, subscribe_type, next_type", [
    ("graphql-transport-ws", "subscribe", "next"),
    ("graphql-ws", "start", "data"),  # the legacy protocol
])
async def test_a_slow_consumer_that_stops_reading_is_disconnected_and_its_subscription_freed(
        server: LiveServer, pg_url: str, pg_sql: Any, protocol: str, subscribe_type: str, next_type: str) -> None:
    with live_server(pg_url, (SCHEMA,), graphql_subscription_buffer=3) as small:
        # a small receive buffer and no compression: the server's writes block after a few rows
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.connect(("127.0.0.1", int(small.url.rsplit(":", 1)[1])))
        ws = await connect(ws_url(small), sock=raw, compression=None, max_queue=1,
                           subprotocols=[protocol])  # type: ignore[list-item]
        client = Client(ws)
        async with ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": API_KEY}}))
            assert (await client.next())["type"] == "connection_ack"
            await ws.send(json.dumps({"id": "1", "type": subscribe_type, "payload": {"query": CHANGES}}))
            await asyncio.sleep(0.3)  # the server opens the subscription asynchronously
            await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) VALUES ('first', gen_random_uuid())")
            first = await client.next(timeout=10)
            assert first["type"] == next_type and first["payload"]["data"]["posts_changes"]["op"] == "INSERT", first
            # the client stops reading while 2 MB of changes are committed
            await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) SELECT (SELECT string_agg(md5(random()::text), "
                         "'') FROM generate_series(1, 600 + i % 2)), gen_random_uuid() FROM generate_series(1, 100) i")
            await asyncio.sleep(2)
            seen: list[dict[str, Any]] = []
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    seen.append(await client.next(timeout=30))
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013, closed.value
            assert "Slow consumer" in closed.value.rcvd.reason
            assert len(seen) < 100  # it was not sent everything
            ended = next(m for m in seen if m["type"] != next_type or m["payload"].get("errors"))  # says why
            assert ended["type"] == next_type and ended["payload"]["errors"][0]["extensions"]["code"] == \
                "SERVICE_UNAVAILABLE", ended
            assert "Slow consumer" in ended["payload"]["errors"][0]["message"]
        # the process serves new subscribers as before
        fresh = await subscribe(small, CHANGES, {"X-API-Key": API_KEY})
        async with fresh.ws:
            await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) VALUES ('later', gen_random_uuid())")
            assert (await fresh.data(timeout=10))["posts_changes"]["op"] == "INSERT"


async def test_a_burst_of_inserts_reaches_every_subscriber_exactly_once_and_in_order(
        server: LiveServer, pg_sql: Any) -> None:
    admin = {"X-API-Key": API_KEY}
    clients = [await subscribe(server, CHANGES, admin), await subscribe(server, CHANGES, admin),  # one group
               await subscribe(server, "subscription { posts_changes { pk row { title } } }", admin),
               await subscribe(server, "subscription { posts_changes { op pk } }", admin)]
    try:
        await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) SELECT 'burst ' || i, gen_random_uuid() "
                     "FROM generate_series(1, 150) i")
        for i in range(30):  # and many small transactions, as fast as they come
            await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) VALUES ('single {i}', gen_random_uuid())")
        await pg_sql(f"UPDATE {SCHEMA}.posts SET title = 'changed' WHERE title = 'single 29'")
        expected: list[Any] = []
        for client in clients:
            got = [(await client.data(timeout=10))["posts_changes"] for _ in range(181)]
            await client.nothing_more()
            ids = [event["pk"]["id"] for event in got]
            assert ids[:-1] == sorted(ids[:-1]) and len(set(ids[:-1])) == 180, ids  # serial ids: commit order
            assert ids[-1] == ids[-2]  # the update of the last insert comes last
            expected = expected or ids
            assert ids == expected  # every subscriber saw the same events
            if "row" in got[0]:
                assert got[0]["row"]["title"] == "burst 1" and got[-1]["row"]["title"] == "changed"
    finally:
        for client in clients:
            await client.ws.close()


async def test_owner_only_rls_holds_when_two_users_rows_are_read_in_the_same_batch(
        server: LiveServer, pg_sql: Any) -> None:
    alice = await subscribe(server, CHANGES, bearer(server, "alice"))
    bob = await subscribe(server, CHANGES, bearer(server, "bob"))
    async with alice.ws, bob.ws:
        # one transaction: alice's and bob's rows interleaved, announced together
        await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) SELECT 'batch ' || i, "
                     f"CASE WHEN i % 2 = 0 THEN '{server.uid('alice')}'::uuid ELSE '{server.uid('bob')}'::uuid END "
                     "FROM generate_series(1, 20) i")
        for client, mine in ((alice, [f"batch {i}" for i in range(2, 21, 2)]),
                             (bob, [f"batch {i}" for i in range(1, 20, 2)])):
            got = [(await client.data())["posts_changes"]["row"]["title"] for _ in range(10)]
            assert got == mine
            await client.nothing_more()


async def test_a_caller_whose_re_read_is_refused_loses_only_its_own_stream(server: LiveServer, pg_sql: Any) -> None:
    query = "subscription { shared_changes { op pk row { id body } } }"
    alice = await subscribe(server, query, bearer(server, "alice"))
    admin = await subscribe(server, query, {"X-API-Key": API_KEY})
    async with alice.ws, admin.ws:
        try:
            await pg_sql(f"INSERT INTO {SCHEMA}.shared VALUES (1, 'both')")
            for client in (alice, admin):
                assert (await client.data())["shared_changes"]["row"] == {"id": 1, "body": "both"}
            await pg_sql(f"REVOKE SELECT ON {SCHEMA}.shared FROM authenticated; "
                         f"INSERT INTO {SCHEMA}.shared VALUES (2, 'admin only')")
            ended = await alice.next()
            assert ended["type"] == "next" and ended["payload"]["errors"], ended
            assert (await admin.data())["shared_changes"]["row"] == {"id": 2, "body": "admin only"}
            await pg_sql(f"INSERT INTO {SCHEMA}.shared VALUES (3, 'still served')")
            assert (await admin.data())["shared_changes"]["row"] == {"id": 3, "body": "still served"}
        finally:
            await pg_sql(f"GRANT SELECT ON {SCHEMA}.shared TO authenticated")


async def test_every_change_stream_subscriber_counts_toward_the_process_limit(
        server: LiveServer, pg_url: str, pg_sql: Any) -> None:
    with live_server(pg_url, (SCHEMA,), graphql_max_subscriptions=2) as small:
        first = await subscribe(small, CHANGES, {"X-API-Key": API_KEY})
        second = await subscribe(small, CHANGES, {"X-API-Key": API_KEY})  # same caller: same group
        async with first.ws, second.ws:
            third = await subscribe(small, CHANGES, {"X-API-Key": API_KEY})
            async with third.ws:
                refused = await third.next()
                assert refused["type"] == "error", refused
                assert refused["payload"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", refused
        await asyncio.sleep(0.3)  # the server ends the closed connections' subscriptions
        again = await subscribe(small, CHANGES, {"X-API-Key": API_KEY})
        async with again.ws:
            await pg_sql(f"INSERT INTO {SCHEMA}.posts (title, owner) VALUES ('after', gen_random_uuid())")
            assert (await again.data(timeout=10))["posts_changes"]["row"]["title"] == "after"


async def test_live_queries_resume_and_resend_after_a_postgresql_restart(cluster: Cluster) -> None:  # noqa: F811
    conn = await asyncpg.connect(cluster.url)
    try:
        from gateway import bootstrap

        await bootstrap.apply(conn)
        await conn.execute(FIXTURE)
    finally:
        await conn.close()
    with live_server(cluster.url, (SCHEMA,)) as running:
        client = await subscribe(running, "subscription { posts_count }", {"X-API-Key": API_KEY})
        async with client.ws:
            assert await client.data() == {"posts_count": 0}
            await asyncio.to_thread(cluster.restart)
            assert await client.data(timeout=30) == {"posts_count": 0}  # re-sent once the feed is back
            conn = await asyncpg.connect(cluster.url)
            try:
                await conn.execute(f"INSERT INTO {SCHEMA}.posts (title, owner) VALUES ('after', gen_random_uuid())")
            finally:
                await conn.close()
            assert await client.data(timeout=5) == {"posts_count": 1}
