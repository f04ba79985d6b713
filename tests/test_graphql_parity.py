"""The same reads through REST and GraphQL give the same rows (one planner, one SQL builder).

Every case runs a REST query string and the GraphQL query that means the same thing
against the real database and compares the results. Columns are chosen whose JSON
is the same in both front ends (BigInt and Decimal are text in GraphQL by design).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_parity"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.teams (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE {SCHEMA}.players (
    id int PRIMARY KEY, name text NOT NULL, team_id int REFERENCES {SCHEMA}.teams(id), score int,
    active boolean, born date, tags text[], meta jsonb);
CREATE TABLE {SCHEMA}.goals (id int PRIMARY KEY, player_id int REFERENCES {SCHEMA}.players(id), minute int);
INSERT INTO {SCHEMA}.teams VALUES (1, 'Reds'), (2, 'Blues'), (3, 'Empty');
INSERT INTO {SCHEMA}.players VALUES
    (1, 'Ada', 1, 30, true, '1990-01-02', '{{fast,left}}', '{{"pos": "fw"}}'),
    (2, 'bob', 1, NULL, false, '1991-03-04', '{{}}', NULL),
    (3, 'Cleo', 2, 10, NULL, NULL, '{{tall}}', '{{"pos": "gk"}}'),
    (4, 'dan', NULL, 20, true, '1988-12-31', NULL, '[]'),
    (5, 'Eve*', 2, 10, false, '2000-02-29', '{{a,b}}', '{{}}');
INSERT INTO {SCHEMA}.goals VALUES (1, 1, 3), (2, 1, 50), (3, 3, 89), (4, 1, 90), (5, 5, 12);
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,)) as running:
        yield running


async def both(gw: Running, rest: str, graphql: str, field: str) -> tuple[Any, Any]:
    """(REST rows, GraphQL rows) for the same read."""
    response = await gw.client.get(f"/api/database/records/{rest}", headers=gw.anon)
    assert response.status_code in (200, 206), response.text
    body = await gw.client.post("/graphql", json={"query": graphql}, headers=gw.anon)
    assert "errors" not in body.json(), body.text
    return response.json(), body.json()["data"][field]


COLUMNS = "id,name,team_id,score,active,born,tags,meta"
FIELDS = "id name team_id score active born tags meta"

# (REST filters/order/page, GraphQL arguments): every operator, logic, order and page case
READS = [
    ("", ""),
    ("score=eq.10", "filter: {score: {eq: 10}}"),
    ("score=neq.10", "filter: {score: {neq: 10}}"),
    ("score=gt.10", "filter: {score: {gt: 10}}"),
    ("score=gte.20", "filter: {score: {gte: 20}}"),
    ("score=lt.30", "filter: {score: {lt: 30}}"),
    ("score=lte.20", "filter: {score: {lte: 20}}"),
    ("name=like.*a*", 'filter: {name: {like: "*a*"}}'),
    ("name=like.%25a%25", 'filter: {name: {like: "%a%"}}'),
    ("name=ilike.a*", 'filter: {name: {ilike: "a*"}}'),
    ("id=in.(1,3,5)", "filter: {id: {in: [1, 3, 5]}}"),
    ("name=in.(Ada,dan)", 'filter: {name: {in: ["Ada", "dan"]}}'),
    ("score=is.null", "filter: {score: {is: NULL}}"),
    ("score=not.is.null", "filter: {score: {is: NOT_NULL}}"),
    ("active=is.true", "filter: {active: {is: TRUE}}"),
    ("active=is.false", "filter: {active: {is: FALSE}}"),
    ("active=is.unknown", "filter: {active: {is: UNKNOWN}}"),
    ("active=eq.true", "filter: {active: {eq: true}}"),
    ("born=gt.1990-06-01", 'filter: {born: {gt: "1990-06-01"}}'),
    ("tags=eq.{tall}", 'filter: {tags: {eq: ["tall"]}}'),
    ("meta=eq.{}", "filter: {meta: {eq: {}}}"),
    ("or=(score.eq.10,name.eq.Ada)", 'filter: {or: [{score: {eq: 10}}, {name: {eq: "Ada"}}]}'),
    ("and=(score.gte.10,score.lte.20)", "filter: {and: [{score: {gte: 10}}, {score: {lte: 20}}]}"),
    ("score=gte.10&score=lte.20", "filter: {score: {gte: 10, lte: 20}}"),
    ("not.or=(score.eq.10,score.is.null)", "filter: {not: {or: [{score: {eq: 10}}, {score: {is: NULL}}]}}"),
    ("or=(and(score.gt.5,active.is.true),id.eq.2)",
     "filter: {or: [{score: {gt: 5}, active: {is: TRUE}}, {id: {eq: 2}}]}"),
    ("order=score.asc", "orderBy: [{score: ASC}]"),
    ("order=score.desc", "orderBy: [{score: DESC}]"),
    ("order=score.asc.nullsfirst,id.desc", "orderBy: [{score: ASC_NULLS_FIRST}, {id: DESC}]"),
    ("order=score.desc.nullslast,id.asc", "orderBy: [{score: DESC_NULLS_LAST}, {id: ASC}]"),
    ("order=name.asc&limit=2", "orderBy: [{name: ASC}], limit: 2"),
    ("order=id.asc&limit=2&offset=2", "orderBy: [{id: ASC}], limit: 2, offset: 2"),
    ("order=id.asc&offset=4", "orderBy: [{id: ASC}], offset: 4"),
    ("order=id.asc&offset=10", "orderBy: [{id: ASC}], offset: 10"),
    ("limit=0", "limit: 0"),
]


@pytest.mark.parametrize(("rest", "args"), READS)
async def test_a_filtered_ordered_paged_read_is_the_same_through_both(gw: Running, rest: str, args: str) -> None:
    graphql = f"{{ players{f'({args})' if args else ''} {{ {FIELDS} }} }}"
    rows, data = await both(gw, f"players?select={COLUMNS}&{rest}", graphql, "players")
    if "order=" not in rest:  # neither promises an order without one
        rows, data = sorted(rows, key=lambda r: r["id"]), sorted(data, key=lambda r: r["id"])
    assert data == rows


# (REST query, GraphQL query): relations, with their own filters, order and pages
RELATIONS = [
    ("players?select=id,team:teams(name)&order=id",
     "{ players(orderBy: [{id: ASC}]) { id team { name } } }"),
    ("teams?select=id,players(id,name)&order=id&players.order=id.desc",
     "{ teams(orderBy: [{id: ASC}]) { id players(orderBy: [{id: DESC}]) { id name } } }"),
    ("teams?select=id,players(id)&order=id&players.score=gte.20&players.order=id",
     "{ teams(orderBy: [{id: ASC}]) { id players(filter: {score: {gte: 20}}, orderBy: [{id: ASC}]) { id } } }"),
    ("teams?select=id,players(id)&order=id&players.order=id&players.limit=1&players.offset=1",
     "{ teams(orderBy: [{id: ASC}]) { id players(orderBy: [{id: ASC}], limit: 1, offset: 1) { id } } }"),
    ("players?select=id,goals(minute),team:teams(name,players(name))&order=id&goals.order=minute.desc"
     "&team.players.order=id",
     "{ players(orderBy: [{id: ASC}]) { id goals(orderBy: [{minute: DESC}]) { minute } "
     "team { name players(orderBy: [{id: ASC}]) { name } } } }"),
    ("goals?select=minute,player:players(name,team:teams(name))&order=minute&limit=3",
     "{ goals(orderBy: [{minute: ASC}], limit: 3) { minute player { name team { name } } } }"),
]


@pytest.mark.parametrize(("rest", "graphql"), RELATIONS)
async def test_relations_are_the_same_through_both(gw: Running, rest: str, graphql: str) -> None:
    rows, data = await both(gw, rest, graphql, rest.split("?")[0])
    assert data == rows


async def test_counts_and_single_rows_match_rest(gw: Running) -> None:
    response = await gw.client.get("/api/database/records/players?select=id&score=gte.10",
                                   headers={**gw.anon, "Prefer": "count=exact"})
    body = await gw.client.post("/graphql", json={"query": "{ players_count(filter: {score: {gte: 10}}) "
                                                           "players_by_pk(id: 3) { id name } }"}, headers=gw.anon)
    assert body.json()["data"]["players_count"] == int(response.headers["X-Total-Count"]) == 4
    one = await gw.client.get("/api/database/records/players?select=id,name&id=eq.3",
                              headers={**gw.anon, "Accept": "application/vnd.pgrst.object+json"})
    assert body.json()["data"]["players_by_pk"] == one.json()
