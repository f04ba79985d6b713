"""GraphQL filter operators beyond comparison, with REST's names, over HTTP against the real database:
arrays ``cs cd ov``; JSON ``cs cd has_key has_any_keys has_all_keys``; text ``match imatch fts plfts
phfts wfts``; ``isdistinct`` on every type. Where REST has the operator, both front ends must
return the same rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_ops"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.docs (id int PRIMARY KEY, body text, tags text[], meta jsonb, rank int);
INSERT INTO {SCHEMA}.docs VALUES
  (1, 'The quick brown fox', '{{a,b}}', '{{"lang": "en", "draft": true}}', 1),
  (2, 'Lazy dogs sleep all day', '{{b,c}}', '{{"lang": "de"}}', NULL),
  (3, 'A fox and a dog', '{{c}}', '{{"pages": 3}}', 3),
  (4, NULL, '{{}}', NULL, 4);
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        yield running


async def graphql_ids(gw: Running, where: str) -> list[int]:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": f"{{ docs(filter: {where}, orderBy: [{{id: ASC}}]) {{ id }} }}"})
    body: dict[str, Any] = response.json()
    assert response.status_code == 200 and "errors" not in body, body
    return [row["id"] for row in body["data"]["docs"]]


async def rest_ids(gw: Running, query: str) -> list[int]:
    response = await gw.client.get(f"/api/database/records/docs?select=id&order=id&{query}",
                                   headers={**gw.admin, "Accept-Profile": SCHEMA})
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()]


@pytest.mark.parametrize(("graphql_filter", "rest_filter", "expected"), [
    ('{tags: {cs: ["b"]}}', "tags=cs.{b}", [1, 2]),
    ('{tags: {cd: ["a", "b", "c"]}}', "tags=cd.{a,b,c}", [1, 2, 3, 4]),
    ('{tags: {ov: ["a", "c"]}}', "tags=ov.{a,c}", [1, 2, 3]),
    ('{meta: {cs: {lang: "en"}}}', 'meta=cs.{"lang":"en"}', [1]),
    ('{meta: {cd: {lang: "de", pages: 1}}}', 'meta=cd.{"lang":"de","pages":1}', [2]),
    ('{body: {match: "^[AL]"}}', "body=match.^[AL]", [2, 3]),
    ('{body: {imatch: "FOX"}}', "body=imatch.FOX", [1, 3]),
    ('{body: {fts: "fox & dog"}}', "body=fts.fox %26 dog", [3]),
    ('{body: {plfts: "lazy dogs"}}', "body=plfts.lazy dogs", [2]),
    ('{body: {phfts: "quick brown"}}', "body=phfts.quick brown", [1]),
    ('{body: {wfts: "fox -quick"}}', "body=wfts.fox -quick", [3]),
    ("{rank: {isdistinct: 1}}", "rank=isdistinct.1", [2, 3, 4]),
    ('{body: {isdistinct: "A fox and a dog"}}', "body=isdistinct.A fox and a dog", [1, 2, 4]),
])
async def test_an_operator_selects_the_same_rows_as_its_rest_twin(
        gw: Running, graphql_filter: str, rest_filter: str, expected: list[int]) -> None:
    assert await graphql_ids(gw, graphql_filter) == expected
    assert await rest_ids(gw, rest_filter) == expected


@pytest.mark.parametrize(("graphql_filter", "expected"), [
    ('{meta: {has_key: "lang"}}', [1, 2]),
    ('{meta: {has_any_keys: ["draft", "pages"]}}', [1, 3]),
    ('{meta: {has_all_keys: ["lang", "draft"]}}', [1]),
    ('{meta: {has_any_keys: []}}', []),
    ('{not: {meta: {has_key: "lang"}}}', [3]),  # NULL meta: neither has nor lacks the key
])
async def test_json_key_operators_test_top_level_keys(gw: Running, graphql_filter: str,
                                                      expected: list[int]) -> None:
    assert await graphql_ids(gw, graphql_filter) == expected


async def test_a_key_operator_on_a_text_column_is_not_offered(gw: Running) -> None:
    response = await gw.client.post("/graphql", headers=gw.admin, json={
        "query": '{ docs(filter: {body: {has_key: "x"}}) { id } }'})
    assert "has_key" in response.json()["errors"][0]["message"]
