"""The GraphQL ``admin`` fields a dashboard needs beyond the REST lists: table kind, views,
unique keys and foreign keys in both directions.

In:  a schema with users, posts (FK to users), a unique column and a view, served in process.
Out: ``admin { tables views }`` answered from the catalog, over HTTP.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from support import Running, app_with

SCHEMA = "gql_admin"

FIXTURE = f"""
DROP SCHEMA IF EXISTS {SCHEMA} CASCADE;
CREATE SCHEMA {SCHEMA};
GRANT USAGE ON SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
CREATE TABLE {SCHEMA}.users (id int PRIMARY KEY, email text UNIQUE);
CREATE TABLE {SCHEMA}.posts (id int PRIMARY KEY, author_id int CONSTRAINT posts_author REFERENCES {SCHEMA}.users(id));
CREATE VIEW {SCHEMA}.user_emails AS SELECT id, email FROM {SCHEMA}.users;
GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO anon, authenticated, project_admin;
"""

QUERY = """{ admin {
  tables { name kind uniqueKeys foreignKeys { name referencedTable } referencedBy { name schema table columns
           referencedColumns } }
  views { name kind columns { name } referencedBy { name } }
} }"""


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    async with app_with(pg_url, FIXTURE, (SCHEMA,), f"DROP SCHEMA {SCHEMA} CASCADE") as running:
        yield running


async def admin(gw: Running) -> dict[str, Any]:
    response = await gw.client.post("/graphql", json={"query": QUERY}, headers=gw.admin)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]["admin"]
    return data


async def test_a_referenced_table_lists_the_foreign_keys_pointing_at_it(gw: Running) -> None:
    tables = {t["name"]: t for t in (await admin(gw))["tables"]}
    assert tables["users"]["referencedBy"] == [{"name": "posts_author", "schema": SCHEMA, "table": "posts",
                                                "columns": ["author_id"], "referencedColumns": ["id"]}]
    assert tables["posts"]["referencedBy"] == []
    assert tables["posts"]["foreignKeys"] == [{"name": "posts_author", "referencedTable": "users"}]


async def test_tables_carry_their_kind_and_unique_keys_and_views_are_listed_apart(gw: Running) -> None:
    body = await admin(gw)
    tables = {t["name"]: t for t in body["tables"]}
    assert set(tables) == {"users", "posts"}
    assert tables["users"]["kind"] == "table"
    assert ["email"] in tables["users"]["uniqueKeys"]
    assert body["views"] == [{"name": "user_emails", "kind": "view", "columns": [{"name": "id"}, {"name": "email"}],
                              "referencedBy": []}]
