"""Value conversions of the admin endpoints, without a database: JSON <-> PostgreSQL text."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import asyncpg
import pytest

from gateway.admin import bulk, rawsql
from gateway.admin.exportsql import ColumnDef, column_sql, ident, literal
from gateway.catalog import Column, Table


@pytest.mark.parametrize(("value", "type_name", "expected"), [
    (None, "int4", None),
    (True, "bool", "true"),
    (False, "bool", "false"),
    (41, "int4", "41"),
    (2.0, "int4", "2"),
    (2.5, "numeric", "2.5"),
    ("it's", "text", "it's"),
    ({"a": [1, None]}, "jsonb", '{"a":[1,null]}'),
    ([1, 2], "jsonb", "[1,2]"),
    ([1, 2], "int4[]", '{"1","2"}'),
    (["a b", 'q"uote', "back\\slash", None, ["n"]], "text[]", '{"a b","q\\"uote","back\\\\slash",NULL,{"n"}}'),
])
def test_parameters_are_sent_as_node_pg_text(value: Any, type_name: str, expected: str | None) -> None:
    assert rawsql.text_param(value, type_name) == expected


@pytest.mark.parametrize(("value", "type_name", "expected"), [
    (9007199254740993, "int8", "9007199254740993"),
    (7, "int4", 7),
    (decimal.Decimal("1.50"), "numeric", "1.50"),
    (float("nan"), "float8", "NaN"),
    (float("-inf"), "float8", "-Infinity"),
    (1.25, "float8", 1.25),
    (dt.datetime(2025, 7, 18, 5, 37, 24, 338999, tzinfo=dt.UTC), "timestamptz", "2025-07-18T05:37:24.338Z"),
    (dt.datetime(2025, 7, 18, 7, 37, 24, tzinfo=dt.timezone(dt.timedelta(hours=2))), "timestamptz",
     "2025-07-18T05:37:24.000Z"),
    (dt.datetime(2025, 7, 18, 5, 37, 24), "timestamp", "2025-07-18T05:37:24.000Z"),
    (dt.date(2025, 1, 2), "date", "2025-01-02"),
    (dt.timedelta(days=1, hours=2, microseconds=500000), "interval", "1 days 02:00:00.5"),
    (b"\x00\xff", "bytea", "\\x00ff"),
    (uuid.UUID("248373e1-0aea-45ce-8844-5ef259203749"), "uuid", "248373e1-0aea-45ce-8844-5ef259203749"),
    ('{"a": 1}', "jsonb", {"a": 1}),
    ("plain", "text", "plain"),
    ([1, None, 3], "int8[]", ["1", None, "3"]),
    (asyncpg.Range(1, 5), "int4range", "[1,5)"),
    (asyncpg.Range(empty=True), "int4range", "empty"),
])
def test_result_values_follow_node_pg_conventions(value: Any, type_name: str, expected: Any) -> None:
    assert rawsql.json_value(value, type_name) == expected


def test_quoting_doubles_the_quote_characters() -> None:
    assert ident('we"ird') == '"we""ird"'
    assert literal("it's \\ fine") == "'it''s \\ fine'"


@pytest.mark.parametrize(("column", "sql"), [
    (ColumnDef("id", "bigint", True, "a", "", None, None), '"id" bigint GENERATED ALWAYS AS IDENTITY NOT NULL'),
    (ColumnDef("up", "text", False, "", "s", "upper(body)", None),
     '"up" text GENERATED ALWAYS AS (upper(body)) STORED'),
    (ColumnDef("n", "text", True, "", "", "'x'::text", "C"), '"n" text COLLATE "C" DEFAULT \'x\'::text NOT NULL'),
])
def test_column_definitions_keep_identity_generation_defaults_and_collation(column: ColumnDef, sql: str) -> None:
    assert column_sql(column) == sql


def people() -> Table:
    columns = (Column("id", "integer", "int4", "int", nullable=False), Column("name", "text", "text", "text"),
               Column("tags", "text[]", "text", "text", is_array=True), Column("meta", "jsonb", "jsonb", "json"),
               Column("up", "text", "text", "text", is_generated=True))
    return Table("public", "people", "table", columns, ("id",))


def test_json_records_are_grouped_by_the_columns_they_name() -> None:
    records = bulk.parse_records("p.json", b'[{"id": 1, "name": "a"}, {"id": 2, "tags": ["x"]},'
                                           b' {"id": 3, "name": null, "meta": {"k": 1}}, {"name": "b", "id": 4}]')
    upload = bulk.plan(people(), records, "id", "p.json")
    assert [c.name for c in upload.columns] == ["id", "name", "tags", "meta"]
    assert upload.groups == ((0, 1), (0, 2), (0, 1, 3))
    assert upload.rows == [(1, 0, "1", "a", None, None), (2, 1, "2", None, '{"x"}', None),
                           (3, 2, "3", None, None, '{"k":1}'), (4, 0, "4", "b", None, None)]


@pytest.mark.parametrize(("name", "content", "key", "message"), [
    ("p.json", b'[{"id": 1, "up": "x"}]', None, "generated"),
    ("p.json", b'[{"id": 1, "nope": 1}]', None, "Unknown column 'nope'"),
    ("p.json", b'[{"id": 1}, {"name": "x"}]', "id", "Row 2: the upsertKey column 'id' is missing"),
    ("p.csv", b"id,id\n1,2\n", None, "twice"),
    ("p.csv", b"id,name\n", None, "no records"),
    ("p.xml", b"<x/>", None, ".csv or .json"),
    ("p.json", b"{", None, "not valid JSON"),
])
def test_bulk_uploads_are_checked_before_any_database_work(name: str, content: bytes, key: str | None,
                                                           message: str) -> None:
    with pytest.raises(Exception) as info:
        bulk.plan(people(), bulk.parse_records(name, content), key, name)
    assert message in str(info.value)


def test_an_upsert_of_records_missing_a_required_column_updates_then_inserts() -> None:
    records = bulk.parse_records("p.json", b'[{"id": 1, "name": "a"}]')
    table = Table("public", "people", "table", (*people().columns,
                                                Column("must", "text", "text", "text", nullable=False)), ("id",))
    statements = bulk.write_sql(bulk.plan(table, records, "id", "p.json"), 0)
    assert [s.split(" ", 1)[0] for s in statements] == ["UPDATE", "INSERT"]
    complete = bulk.write_sql(bulk.plan(people(), records, "id", "p.json"), 0)
    assert len(complete) == 1 and 'ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name"' in complete[0]
