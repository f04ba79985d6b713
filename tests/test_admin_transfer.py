"""Export, import and bulk upsert over HTTP against the real PostgreSQL.

Tables live in ``public`` under names starting with ``adx_`` and are dropped at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio
from test_admin_api import ADMIN, Api, admin_app

# made as project_admin, as a migration makes them: export, import and truncate need ownership
SCHEMA_SQL = r'''
DROP TABLE IF EXISTS adx_child, adx_parent CASCADE;
SET ROLE project_admin;
DROP TYPE IF EXISTS adx_mood;
CREATE TYPE adx_mood AS ENUM ('happy', 'it''s sad');
CREATE TABLE adx_parent (
  id serial PRIMARY KEY, name text NOT NULL UNIQUE, mood adx_mood, tags text[], doc jsonb DEFAULT '{}'::jsonb,
  at timestamptz DEFAULT now(), day date, blob bytea, price numeric(10,2) CHECK (price >= 0), f float8,
  uid uuid DEFAULT gen_random_uuid(), "Weird ""col""" text);
CREATE TABLE adx_child (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  parent_id int REFERENCES adx_parent (id) ON DELETE CASCADE,
  sibling bigint REFERENCES adx_child (id),
  body text, up text GENERATED ALWAYS AS (upper(body)) STORED);
CREATE INDEX adx_child_body ON adx_child (lower(body));
ALTER TABLE adx_parent ENABLE ROW LEVEL SECURITY;
CREATE POLICY adx_read ON adx_parent FOR SELECT TO anon USING (price IS NOT NULL);
INSERT INTO adx_parent (name, mood, tags, doc, at, day, blob, price, f, "Weird ""col""") VALUES
  ('a', 'it''s sad', '{x,"y z",NULL}', '{"k": [1, "two", {"n": null}]}', '2024-02-29 23:59:59.123456+00',
   '2024-01-01', '\x00ff0a', 1.5, 0.1, E'line\nbreak \\ ''quoted'' "double" ;'),
  ('b', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  ('c', 'happy', '{}', '[]', '-infinity', '0001-01-01', '', 0, 'NaN', '');
INSERT INTO adx_child (parent_id, body) SELECT 1 + g % 3, 'row ' || g FROM generate_series(1, 2500) g;
UPDATE adx_child SET sibling = id + 1 WHERE id < 2500;
RESET ROLE;
'''

STRUCTURE_SQL = """
SELECT array(SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint
             WHERE conrelid = ANY(ARRAY['adx_parent'::regclass, 'adx_child'::regclass]) ORDER BY 1) AS constraints,
       array(SELECT pg_get_indexdef(indexrelid) FROM pg_index
             WHERE indrelid = ANY(ARRAY['adx_parent'::regclass, 'adx_child'::regclass]) ORDER BY 1) AS indexes,
       array(SELECT policyname || ' ' || qual FROM pg_policies WHERE tablename LIKE 'adx%' ORDER BY 1) AS policies,
       array(SELECT attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod) || ' '
                    || attnotnull || ' ' || coalesce(pg_get_expr(adbin, adrelid), '')
                    || attidentity::text || attgenerated::text
             FROM pg_attribute LEFT JOIN pg_attrdef ON adrelid = attrelid AND adnum = attnum
             WHERE attrelid = ANY(ARRAY['adx_parent'::regclass, 'adx_child'::regclass]) AND attnum > 0
             ORDER BY 1) AS columns,
       (SELECT relrowsecurity FROM pg_class WHERE oid = 'adx_parent'::regclass) AS rls
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api(pg_url: str) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(pg_url)
    try:
        async with admin_app(pg_url) as running:
            yield running
    finally:
        for t in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                  "AND tablename LIKE 'adx\\_%'"):
            await conn.execute(f'DROP TABLE IF EXISTS public."{t["tablename"]}" CASCADE')
        await conn.execute("DROP TYPE IF EXISTS adx_mood")
        await conn.close()


async def snapshot(pg: asyncpg.Connection) -> tuple[Any, ...]:
    """Every row in PostgreSQL's text form (exact for every type, NaN and infinities included) and the structure."""
    parents = await pg.fetch("SELECT r::text FROM adx_parent AS r ORDER BY id")
    children = await pg.fetch("SELECT r::text FROM adx_child AS r ORDER BY id")
    return [r[0] for r in parents], [r[0] for r in children], tuple(await pg.fetchrow(STRUCTURE_SQL))


async def import_sql(api: Api, content: str, truncate: bool = False, name: str = "backup.sql") -> Any:
    return await api.client.post("/api/database/advance/import", headers=ADMIN,
                                 files={"file": (name, content.encode(), "application/sql")},
                                 data={"truncate": "true" if truncate else "false"})


async def upsert(api: Api, name: str, content: bytes | str, table: str, key: str | None = None) -> Any:
    data = {"table": table} | ({"upsertKey": key} if key else {})
    raw = content.encode() if isinstance(content, str) else content
    return await api.client.post("/api/database/advance/bulk-upsert", headers=ADMIN,
                                 files={"file": (name, raw, "text/plain")}, data=data)


# --------------------------------------------------------------------------- export and import


async def test_export_drop_import_restores_every_row_and_the_structure(api: Api, pg: Any) -> None:
    await pg.execute(SCHEMA_SQL)
    await api.gateway.reload_catalog()
    before = await snapshot(pg)

    exported = await api.post("/advance/export", {"tables": ["adx_child", "adx_parent"]})
    assert exported.status_code == 200, exported.text
    body = exported.json()
    assert body["format"] == "sql" and body["tables"] == ["adx_parent", "adx_child"]  # dependency order

    await pg.execute("DROP TABLE adx_child, adx_parent CASCADE; DROP TYPE adx_mood")
    imported = await import_sql(api, body["content"])
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert result["tables"] == ["adx_parent", "adx_child"]
    assert result["rowsImported"] == 2503
    assert result["fileSize"] == len(body["content"].encode())
    assert await snapshot(pg) == before

    # sequences continue past the data; the new table is in the catalog at once
    assert await pg.fetchval("INSERT INTO adx_parent (name) VALUES ('d') RETURNING id") == 4
    assert await pg.fetchval("INSERT INTO adx_child (body) VALUES ('new') RETURNING id") == 2501
    assert api.gateway.catalogs.get().table("adx_child") is not None


async def test_importing_over_existing_tables_with_truncate_restores_the_export(api: Api, pg: Any) -> None:
    await pg.execute(SCHEMA_SQL)
    await api.gateway.reload_catalog()
    before = await snapshot(pg)
    exported = await api.post("/advance/export", {"tables": ["adx_parent", "adx_child"]})
    assert exported.status_code == 200, exported.text
    content = exported.json()["content"]
    await pg.execute("UPDATE adx_child SET sibling = NULL, body = 'changed' WHERE id < 5; "
                     "INSERT INTO adx_parent (name) VALUES ('extra')")
    imported = await import_sql(api, content, truncate=True)
    assert imported.status_code == 200, imported.text
    assert await snapshot(pg) == before


async def test_export_honours_row_limit_include_data_and_json_format(api: Api, pg: Any) -> None:
    await pg.execute(SCHEMA_SQL)
    await api.gateway.reload_catalog()
    limited = (await api.post("/advance/export", {"tables": ["adx_child"], "rowLimit": 3})).json()["content"]
    assert limited.count("\n('") == 3  # one line per row
    schema_only = (await api.post("/advance/export", {"tables": ["adx_parent"], "includeData": False})).json()
    assert "INSERT INTO" not in schema_only["content"] and "CREATE TABLE IF NOT EXISTS" in schema_only["content"]

    doc = (await api.post("/advance/export", {"tables": ["adx_parent"], "format": "json"})).json()
    assert doc["format"] == "json" and doc["tables"] == ["adx_parent"]
    parent = doc["content"]["adx_parent"]
    assert parent["primaryKey"] == ["id"] and parent["rlsEnabled"] is True
    assert [p["name"] for p in parent["policies"]] == ["adx_read"]
    assert [r["name"] for r in parent["rows"]] == ["a", "b", "c"]
    assert parent["rows"][0]["doc"] == {"k": [1, "two", {"n": None}]}


async def test_export_of_an_unknown_table_is_404(api: Api) -> None:
    response = await api.post("/advance/export", {"tables": ["adx_nowhere"]})
    assert response.status_code == 404 and response.json()["error"] == "TABLE_NOT_FOUND"


@pytest.mark.parametrize(("body", "field"), [({"format": "xml"}, "format"), ({"rowLimit": -1}, "rowLimit"),
                                             ({"includeData": "yes"}, "includeData"), ({"tables": "x"}, "tables")])
async def test_export_rejects_bad_fields(api: Api, body: dict[str, Any], field: str) -> None:
    response = await api.post("/advance/export", body)
    assert response.status_code == 400 and response.json()["message"].startswith(field)


async def test_a_failing_import_names_the_statement_and_keeps_nothing(api: Api, pg: Any) -> None:
    content = ("CREATE TABLE adx_partial (id int PRIMARY KEY);\nINSERT INTO adx_partial VALUES (1);\n"
               "INSERT INTO adx_partial VALUES (1);\n")
    response = await import_sql(api, content)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "INVALID_INPUT" and body["code"] == "23505"
    assert body["message"].startswith("Import failed at statement 3 (INSERT INTO adx_partial VALUES (1))")
    assert await pg.fetchval("SELECT to_regclass('public.adx_partial')") is None


@pytest.mark.parametrize(("content", "name", "status"), [
    ("SELECT pg_catalog.set_config('search_path', '', false);", "dump.sql", 403),
    ("SET search_path = auth;", "dump.sql", 403),
    ("UPDATE auth.users SET email = 'x';", "dump.sql", 403),
    ("BEGIN; CREATE TABLE adx_tx (); COMMIT;", "dump.sql", 400),
    ("COPY adx_parent FROM stdin;", "dump.sql", 400),
    ("CREATE TABLE adx_csv ();", "dump.csv", 400),
    ("", "empty.sql", 400),
])
async def test_imports_are_guarded(api: Api, content: str, name: str, status: int) -> None:
    response = await import_sql(api, content, name=name)
    assert response.status_code == status, response.text


# --------------------------------------------------------------------------- bulk upsert

BULK_TABLE = """
DROP TABLE IF EXISTS adx_bulk;
CREATE TABLE adx_bulk (id int PRIMARY KEY, name text NOT NULL, score numeric, tags text[], active bool,
                       at timestamptz, meta jsonb DEFAULT '{"fresh": true}', note text DEFAULT 'none');
"""


@pytest_asyncio.fixture(loop_scope="session")
async def bulk_table(api: Api, pg: Any) -> str:
    await pg.execute(BULK_TABLE)
    await api.gateway.reload_catalog()
    return "adx_bulk"


async def test_a_csv_file_is_inserted_with_empty_cells_as_null(api: Api, pg: Any, bulk_table: str) -> None:
    csv = ("\ufeffid,name,score,tags,active,at\n1,Ann,12.5,\"{a,b}\",true,2025-01-02T03:04:05Z\n\n"
           "2,\"Bob, Jr.\",,,false,\n3,\"multi\nline\",0,{},t,2025-01-02 00:00:00+02\n")
    response = await upsert(api, "people.csv", csv, bulk_table)
    assert response.status_code == 200, response.text
    assert response.json() | {"message": None} == {"rowsAffected": 3, "totalRecords": 3, "table": "adx_bulk",
                                                   "success": True, "filename": "people.csv", "message": None}
    rows = await pg.fetch("SELECT id, name, score::text, tags, active, at::text, meta::text, note "
                          "FROM adx_bulk ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "Ann", "12.5", ["a", "b"], True, "2025-01-02 03:04:05+00", '{"fresh": true}', "none"),
        (2, "Bob, Jr.", None, None, False, None, '{"fresh": true}', "none"),
        (3, "multi\nline", "0", [], True, "2025-01-01 22:00:00+00", '{"fresh": true}', "none"),
    ]


async def test_empty_csv_cells_take_the_column_default_on_insert_and_keep_the_stored_value_on_update(
        api: Api, pg: Any, bulk_table: str) -> None:
    await pg.execute("INSERT INTO adx_bulk (id, name, note) VALUES (1, 'old', 'kept')")
    csv = "id,name,score,note,meta\n1,new,,,\n2,fresh,,,\n3,given,1,set,{}\n"
    response = await upsert(api, "defaults.csv", csv, bulk_table, key="id")
    assert response.status_code == 200, response.text
    rows = await pg.fetch("SELECT id, name, score::text, note, meta::text FROM adx_bulk ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "new", None, "kept", '{"fresh": true}'),  # score has no default: NULL; note is kept
        (2, "fresh", None, "none", '{"fresh": true}'),  # inserted: the defaults
        (3, "given", "1", "set", "{}"),
    ]


@pytest.mark.parametrize(("csv", "message"), [
    ("id,name,score\n1,a,1\n2,b,2\n3,c,abc\n", "Row 3, column 'score': invalid input syntax for type numeric"),
    ("id,name,active\n1,a,true\n2,b,maybe\n", "Row 2, column 'active': invalid input syntax for type boolean"),
    ("id,name\n1,a\n2,\n", "Row 2, column 'name': a value is required"),
    ("id,name,tags\n1,a,not-an-array\n", "Row 1, column 'tags': malformed array literal"),
    ("id,name,nope\n1,a,b\n", "Unknown column 'nope'"),
    ("id,name\n1,a,extra\n", "Row 1: 3 cells"),
    ("", "no header"),
])
async def test_a_bad_value_is_a_400_naming_row_and_column_and_nothing_is_written(
        api: Api, pg: Any, bulk_table: str, csv: str, message: str) -> None:
    response = await upsert(api, "bad.csv", csv, bulk_table)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert await pg.fetchval("SELECT count(*) FROM adx_bulk") == 0


async def test_json_records_upsert_on_the_key_without_touching_columns_they_leave_out(
        api: Api, pg: Any, bulk_table: str) -> None:
    await pg.execute("INSERT INTO adx_bulk (id, name, score, note) VALUES (1, 'old', 1, 'kept'), (2, 'two', 2, 'x')")
    records = [{"id": 1, "name": "new", "tags": ["x", "y z"], "meta": {"a": [1, 2]}},
               {"id": 2, "score": 20.5},
               {"id": 3, "name": "three", "active": True},
               {"id": 3, "name": "three again", "active": False}]
    response = await upsert(api, "data.json", orjson.dumps(records), bulk_table, key="id")
    assert response.status_code == 200, response.text
    assert response.json()["rowsAffected"] == 3 and response.json()["totalRecords"] == 4
    rows = await pg.fetch("SELECT id, name, score::text, tags, active, meta::text, note FROM adx_bulk ORDER BY id")
    assert [tuple(r) for r in rows] == [
        (1, "new", "1", ["x", "y z"], None, '{"a": [1, 2]}', "kept"),
        (2, "two", "20.5", None, None, '{"fresh": true}', "x"),
        (3, "three again", None, None, False, '{"fresh": true}', "none"),
    ]


async def test_one_json_object_is_one_record(api: Api, pg: Any, bulk_table: str) -> None:
    response = await upsert(api, "one.json", b'{"id": 7, "name": "solo"}', bulk_table)
    assert response.status_code == 200 and response.json()["rowsAffected"] == 1


@pytest.mark.parametrize(("name", "content", "table", "key", "status"), [
    ("x.json", b'[{"id": 1}]', "adx_nowhere", None, 404),
    ("x.txt", b"id\n1\n", "adx_bulk", None, 400),
    ("x.json", b"[]", "adx_bulk", None, 400),
    ("x.json", b"[1, 2]", "adx_bulk", None, 400),
    ("x.json", b'[{"id": 1, "name": "a"}]', "adx_bulk", "nope", 400),
    ("x.json", b'[{"name": "a"}]', "adx_bulk", "id", 400),
    ("x.json", b'[{"id": 1, "name": "a"}]', "adx_bulk", "name", 400),  # no unique constraint on name
])
async def test_bulk_upsert_rejects_bad_requests(api: Api, bulk_table: str, name: str, content: bytes, table: str,
                                                key: str | None, status: int) -> None:
    response = await upsert(api, name, content, table, key)
    assert response.status_code == status, response.text
