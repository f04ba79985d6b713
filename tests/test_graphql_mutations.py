"""GraphQL mutations beyond insert/update/delete by filter, over HTTP against the real database:
``insert_<t>_one``, ``update_<t>_by_pk``, ``delete_<t>_by_pk``, ``inc`` and ``atMost`` (Hasura's names
and meanings), each checked in the database, with RLS and the all-or-nothing rule.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_mut"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.counters (id int PRIMARY KEY, label text NOT NULL, hits int NOT NULL DEFAULT 0,
                                 score numeric, meta jsonb NOT NULL DEFAULT '{{}}');
CREATE TABLE {SCHEMA}.notes (id int PRIMARY KEY, owner uuid NOT NULL DEFAULT auth.uid(), body text NOT NULL);
ALTER TABLE {SCHEMA}.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY notes_mine ON {SCHEMA}.notes FOR ALL TO authenticated
    USING (owner = auth.uid()) WITH CHECK (owner = auth.uid());
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO authenticated, project_admin;
"""

DATA = f"""
TRUNCATE {SCHEMA}.counters, {SCHEMA}.notes;
INSERT INTO {SCHEMA}.counters VALUES (1, 'a', 10, 1.5, '{{"keep": 1, "drop": 2}}'), (2, 'b', 20, NULL, '{{}}'),
    (3, 'c', 30, 0, '{{}}'), (4, 'd', 40, 0, '{{}}');
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), graphql_max_affected=3) as running:
        yield running


@pytest_asyncio.fixture
async def data(gw: Running, pg: asyncpg.Connection) -> None:
    await pg.execute(DATA)


async def gql(gw: Running, query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = await gw.client.post("/graphql", json={"query": query}, headers=headers or gw.admin)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def hits(pg: asyncpg.Connection) -> dict[int, int]:
    return {r["id"]: r["hits"] for r in await pg.fetch(f"SELECT id, hits FROM {SCHEMA}.counters")}


async def test_insert_one_answers_the_row_as_an_object(gw: Running, data: None, pg: asyncpg.Connection) -> None:
    body = await gql(gw, 'mutation { insert_counters_one(object: {id: 9, label: "z"}) { id label hits meta } }')
    assert body == {"data": {"insert_counters_one": {"id": 9, "label": "z", "hits": 0, "meta": {}}}}
    assert await pg.fetchval(f"SELECT label FROM {SCHEMA}.counters WHERE id = 9") == "z"


async def test_insert_one_skipped_by_on_conflict_answers_null(gw: Running, data: None, pg: asyncpg.Connection) -> None:
    body = await gql(gw, 'mutation { insert_counters_one(object: {id: 1, label: "new"}, '
                         'on_conflict: {columns: [id]}) { id } }')
    assert body == {"data": {"insert_counters_one": None}}
    assert await pg.fetchval(f"SELECT label FROM {SCHEMA}.counters WHERE id = 1") == "a"


async def test_update_by_pk_sets_and_increments_in_one_statement(gw: Running, data: None,
                                                                 pg: asyncpg.Connection) -> None:
    body = await gql(gw, 'mutation { update_counters_by_pk(id: 1, set: {label: "A"}, inc: {hits: 5, score: 0.25}) '
                         '{ id label hits score } }')
    assert body == {"data": {"update_counters_by_pk": {"id": 1, "label": "A", "hits": 15, "score": "1.75"}}}
    assert (await hits(pg))[1] == 15


async def test_a_by_pk_mutation_of_a_missing_row_answers_null(gw: Running, data: None) -> None:
    body = await gql(gw, "mutation { update_counters_by_pk(id: 99, inc: {hits: 1}) { id } "
                         "delete_counters_by_pk(id: 99) { id } }")
    assert body == {"data": {"update_counters_by_pk": None, "delete_counters_by_pk": None}}


async def test_delete_by_pk_answers_the_deleted_row(gw: Running, data: None, pg: asyncpg.Connection) -> None:
    body = await gql(gw, "mutation { delete_counters_by_pk(id: 2) { id label } }")
    assert body == {"data": {"delete_counters_by_pk": {"id": 2, "label": "b"}}}
    assert 2 not in await hits(pg)


async def test_inc_on_update_by_filter_adds_to_every_matching_row(gw: Running, data: None,
                                                                  pg: asyncpg.Connection) -> None:
    body = await gql(gw, "mutation { update_counters(filter: {id: {lte: 2}}, inc: {hits: -1}) { id hits } }")
    assert sorted(body["data"]["update_counters"], key=lambda r: r["id"]) == [{"id": 1, "hits": 9},
                                                                             {"id": 2, "hits": 19}]
    assert await hits(pg) == {1: 9, 2: 19, 3: 30, 4: 40}


async def test_more_rows_than_at_most_fails_the_whole_operation_and_changes_nothing(
        gw: Running, data: None, pg: asyncpg.Connection) -> None:
    body = await gql(gw, 'mutation { insert_counters_one(object: {id: 8, label: "x"}) { id } '
                         "update_counters(filter: {id: {gt: 0}}, inc: {hits: 1}, atMost: 2) { id } }")
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["statusCode"] == 400 and "affects 5 rows" in str(error["extensions"])
    assert error["message"] == "update_counters would change more rows than atMost allows (2); nothing was changed"
    assert await hits(pg) == {1: 10, 2: 20, 3: 30, 4: 40}  # the insert before it was rolled back too


async def test_at_most_equal_to_the_rows_changed_succeeds(gw: Running, data: None) -> None:
    body = await gql(gw, "mutation { delete_counters(filter: {id: {gte: 3}}, atMost: 2) { id } }")
    assert sorted(r["id"] for r in body["data"]["delete_counters"]) == [3, 4]


async def test_users_are_bound_by_the_setting_and_admins_are_not(gw: Running, data: None,
                                                                pg: asyncpg.Connection) -> None:
    await pg.execute(f"GRANT SELECT, UPDATE ON {SCHEMA}.counters TO authenticated")
    user = await gql(gw, "mutation { update_counters(filter: {id: {gt: 0}}, inc: {hits: 1}) { id } }", gw.user())
    assert user["data"] is None and "affects 4 rows" in str(user["errors"][0]["extensions"])
    admin = await gql(gw, "mutation { update_counters(filter: {id: {gt: 0}}, inc: {hits: 1}) { id } }")
    assert len(admin["data"]["update_counters"]) == 4


async def test_by_pk_mutations_see_only_what_rls_lets_the_caller_see(gw: Running, data: None,
                                                                   pg: asyncpg.Connection) -> None:
    alice, bob = gw.user("alice"), gw.user("bob")
    made = await gql(gw, 'mutation { insert_notes_one(object: {id: 1, body: "mine"}) { id owner } }', alice)
    assert made["data"]["insert_notes_one"]["owner"] == gw.uid("alice")
    taken = await gql(gw, 'mutation { update_notes_by_pk(id: 1, set: {body: "stolen"}) { id } '
                          "delete_notes_by_pk(id: 1) { id } }", bob)
    assert taken == {"data": {"update_notes_by_pk": None, "delete_notes_by_pk": None}}
    assert await pg.fetchval(f"SELECT body FROM {SCHEMA}.notes WHERE id = 1") == "mine"


async def test_incrementing_a_text_column_is_refused(gw: Running, data: None) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": 'mutation { update_counters_by_pk(id: 1, inc: {label: "x"}) { id } }'})
    body = response.json()
    assert response.status_code in (200, 400) and body.get("data") is None  # a validation error
    assert "label" in body["errors"][0]["message"]  # not a field of CountersIncInput


async def test_append_merges_json_and_delete_key_removes_a_key(gw: Running, data: None) -> None:
    appended = await gql(gw, 'mutation { update_counters_by_pk(id: 1, append: {meta: {added: [1, 2]}}) { meta } }')
    assert appended["data"]["update_counters_by_pk"]["meta"] == {"keep": 1, "drop": 2, "added": [1, 2]}
    removed = await gql(gw, 'mutation { update_counters(filter: {id: {eq: 1}}, delete_key: {meta: "drop"}) { meta } }')
    assert removed["data"]["update_counters"] == [{"meta": {"keep": 1, "added": [1, 2]}}]
