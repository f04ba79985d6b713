"""``/api/database/tables`` and ``/tables/{t}/schema``: what the Python SDK's list_tables()/get_table_schema() read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest_asyncio
from insforge.database.models import DatabaseTableSchemaResponse
from support import Running, running_app

SCHEMA = "tables_fx"


@pytest_asyncio.fixture(scope="module")
async def gw(pg_url: str) -> AsyncIterator[Running]:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"""
            DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA};
            CREATE TABLE {SCHEMA}.authors (id int PRIMARY KEY, email text UNIQUE NOT NULL);
            CREATE TABLE {SCHEMA}.books (id int PRIMARY KEY, title text DEFAULT 'untitled',
                                         author_id int REFERENCES {SCHEMA}.authors(id));
        """)
    finally:
        await conn.close()
    async with running_app(pg_url, schemas=(SCHEMA,)) as running:
        yield running


async def test_the_table_list_is_a_bare_array_of_names(gw: Running) -> None:
    r = await gw.client.get("/api/database/tables", headers=gw.admin)
    assert r.status_code == 200
    assert r.json() == ["authors", "books"]


async def test_a_table_schema_validates_against_the_python_sdk_model(gw: Running) -> None:
    r = await gw.client.get("/api/database/tables/books/schema", headers=gw.admin)
    assert r.status_code == 200
    parsed = DatabaseTableSchemaResponse.model_validate(r.json())
    columns = {c.name: c for c in parsed.columns}
    assert parsed.table_name == "books"
    assert columns["id"].is_primary_key and not columns["id"].nullable
    assert columns["title"].default_value == "'untitled'::text"
    assert columns["author_id"].foreign_key is not None
    assert columns["author_id"].foreign_key.reference_table == "authors"


async def test_an_unknown_table_schema_is_table_not_found(gw: Running) -> None:
    r = await gw.client.get("/api/database/tables/nope/schema", headers=gw.admin)
    assert r.status_code == 404
    assert r.json()["error"] == "TABLE_NOT_FOUND"


async def test_table_introspection_is_admin_only(gw: Running) -> None:
    assert (await gw.client.get("/api/database/tables", headers=gw.user())).status_code == 403
    assert (await gw.client.get("/api/database/tables")).status_code == 401
