"""Batched operations, automatic persisted queries and the allow-list, over HTTP against the real database."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest_asyncio
from support import Running, app_with, running_app

SCHEMA = "gql_ops"
FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.notes (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO {SCHEMA}.notes VALUES (1, 'a'), (2, 'b');
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
"""
LISTED = "{ notes(orderBy: [{id: ASC}]) { id } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_max_batch=3) as running:
        yield running


async def test_a_batch_answers_each_operation_in_order_each_in_its_own_transaction(
        gw: Running, pg: asyncpg.Connection) -> None:
    response = await gw.client.post("/graphql", headers=gw.user(), json=[
        {"query": "{ notes_count }"},
        {"query": 'mutation { insert_notes_one(object: {id: 1, body: "dup"}) { id } }'},
        {"query": 'mutation { insert_notes_one(object: {id: 3, body: "c"}) { id } }'}])
    assert response.status_code == 200
    first, failed, third = response.json()
    assert first == {"data": {"notes_count": 2}}
    assert failed["data"] == {"insert_notes_one": None} and failed["errors"][0]["extensions"]["statusCode"] == 409
    assert third == {"data": {"insert_notes_one": {"id": 3}}}  # not rolled back with the failed one
    assert await pg.fetchval(f"SELECT body FROM {SCHEMA}.notes WHERE id = 3") == "c"
    await pg.execute(f"DELETE FROM {SCHEMA}.notes WHERE id = 3")


async def test_a_batch_over_the_limit_or_empty_is_refused(gw: Running) -> None:
    for batch in ([{"query": "{ notes_count }"}] * 4, []):
        response = await gw.client.post("/graphql", headers=gw.user(), json=batch)
        assert response.status_code == 400 and "batch holds 1 to 3" in response.text


async def test_a_persisted_query_runs_by_hash_after_one_registration(gw: Running) -> None:
    query = "{ notes(filter: {id: {eq: 2}}) { body } }"
    miss = await gw.client.post("/graphql", headers=gw.user(), json={"extensions": apq(query)})
    error = miss.json()["errors"][0]
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    first = await gw.client.post("/graphql", headers=gw.user(), json={"query": query, "extensions": apq(query)})
    assert first.json() == {"data": {"notes": [{"body": "b"}]}}
    by_hash = await gw.client.get("/graphql", headers=gw.user(), params={
        "extensions": orjson.dumps(apq(query)).decode()})
    assert by_hash.json() == {"data": {"notes": [{"body": "b"}]}}


async def test_a_persisted_query_whose_hash_does_not_match_is_refused(gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.user(), json={
        "query": "{ notes_count }", "extensions": apq("{ something else }")})
    assert "does not match" in response.json()["errors"][0]["message"]


async def test_the_allow_list_runs_listed_documents_only_for_non_admins(pg_url: str, tmp_path: Path) -> None:
    allow = tmp_path / "allow.json"
    allow.write_bytes(orjson.dumps({"ListNotes": LISTED}))
    async with running_app(pg_url, (SCHEMA,), graphql_allowlist=str(allow)) as gw:
        listed = await gw.client.post("/graphql", headers=gw.user(), json={"query": LISTED})
        assert listed.json() == {"data": {"notes": [{"id": 1}, {"id": 2}]}}
        by_hash = await gw.client.post("/graphql", headers=gw.user(), json={"extensions": apq(LISTED)})
        assert by_hash.json() == listed.json()
        other = await gw.client.post("/graphql", headers=gw.user(), json={"query": "{ notes { body } }"})
        assert other.status_code == 403 and "allow-list" in other.text
        admin = await gw.client.post("/graphql", headers=gw.admin, json={"query": "{ notes { body } }"})
        assert admin.status_code == 200 and "errors" not in admin.json()
