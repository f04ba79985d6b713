"""GraphQL naming: PascalCase types, exact fields, deterministic mangling (gateway/graphql/names.py)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, GraphQLSchema

from gateway.catalog import Catalog, Column, ForeignKey, Table
from gateway.graphql.names import Namespace, pascal, sanitize
from gateway.graphql.schema import build_schema
from gateway.settings import Settings


@pytest.mark.parametrize(("name", "expected"), [
    ("title", "title"),
    ("createdAt", "createdAt"),
    ("first name", "first_name"),
    ("e-mail", "e_mail"),
    ("2fa", "_2fa"),
    ("", "_"),
    ("__secret", "x__secret"),
    ("naïve", "na_ve"),
])
def test_invalid_characters_leading_digits_and_double_underscores_are_mangled(name: str, expected: str) -> None:
    assert sanitize(name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("posts", "Posts"),
    ("user_settings", "UserSettings"),
    ("userSettings", "UserSettings"),
    ("_private", "Private"),
    ("2024_sales", "_2024Sales"),
    ("order items", "OrderItems"),
])
def test_type_names_are_pascal_case(name: str, expected: str) -> None:
    assert pascal(name) == expected


def test_a_taken_name_gets_the_first_free_number() -> None:
    ns = Namespace({"and"})
    assert [ns.claim(n) for n in ("a", "a", "and", "a")] == ["a", "a_2", "and_2", "a_3"]


def test_a_family_is_claimed_whole_so_derived_names_never_collide() -> None:
    ns = Namespace()
    family = ("{}", "{}Filter")
    assert ns.claim("Posts", family) == "Posts"
    assert ns.claim("PostsFilter", family) == "PostsFilter_2"


def col(name: str, position: int, udt: str = "text", category: Any = "text", **kw: Any) -> Column:
    return Column(name, udt, udt, category, position=position, **kw)


def schema_of(*tables: Table) -> Any:
    return build_schema(Catalog(("public",), {t.key: t for t in tables}, {}), Settings()).schema

def roots(schema: GraphQLSchema, mutation: bool = False) -> GraphQLObjectType:
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None
    return root



def test_columns_keep_their_names_and_awkward_ones_are_mangled_the_same_in_every_type() -> None:
    schema = schema_of(Table("public", "odd things", "table", (
        col("id", 1, "int4", "int"), col("first name", 2), col("2fa", 3), col("and", 4), col("first_name", 5),
        col("true", 6)), primary_key=("id",)))
    obj = schema.type_map["OddThings"]
    assert isinstance(obj, GraphQLObjectType)
    expected = ["id", "first_name", "_2fa", "and_2", "first_name_2", "true_2"]
    assert list(obj.fields) == expected
    filter_type = schema.type_map["OddThingsFilter"]
    assert isinstance(filter_type, GraphQLInputObjectType)
    assert list(filter_type.fields) == [*expected, "and", "or", "not"]
    column_enum = schema.type_map["OddThingsColumn"]
    assert isinstance(column_enum, GraphQLEnumType)
    assert {k: v.value for k, v in column_enum.values.items()} == {
        "id": "id", "first_name": "first name", "_2fa": "2fa", "and_2": "and", "first_name_2": "first_name",
        "true_2": "true"}
    assert "odd_things" in roots(schema).fields


def test_a_table_whose_name_equals_a_derived_name_is_numbered_not_the_original() -> None:
    schema = schema_of(Table("public", "posts", "table", (col("id", 1),)),
                       Table("public", "posts_filter", "table", (col("id", 1),)),
                       Table("public", "posts_count", "table", (col("id", 1),)))
    assert {"Posts", "PostsFilter", "PostsFilter_2", "PostsCount"} <= set(schema.type_map)
    fields = set(roots(schema).fields)
    assert {"posts", "posts_count", "posts_filter", "posts_count_2", "posts_count_2_count"} <= fields


def test_a_table_named_like_a_builtin_type_is_numbered() -> None:
    schema = schema_of(Table("public", "query", "table", (col("id", 1),)),
                       Table("public", "string", "table", (col("id", 1),)))
    assert {"Query_2", "String_2"} <= set(schema.type_map)
    assert schema.query_type.name == "Query"


def test_enum_labels_that_are_not_names_are_mangled_and_keep_their_postgresql_value() -> None:
    schema = schema_of(Table("public", "tasks", "table", (
        col("state", 1, "task state", "enum", enum_values=("in progress", "done", "null")),)))
    enum = schema.type_map["TaskState"]
    assert isinstance(enum, GraphQLEnumType)
    assert {k: v.value for k, v in enum.values.items()} == {
        "in_progress": "in progress", "done": "done", "null_2": "null"}


def test_two_foreign_keys_to_one_table_name_the_reverse_fields_by_their_columns() -> None:
    users = Table("public", "users", "table", (col("id", 1),), primary_key=("id",))
    messages = Table("public", "messages", "table", (col("id", 1), col("sender_id", 2), col("recipient_id", 3)),
                     foreign_keys=(ForeignKey("m_sender", ("sender_id",), "public", "users", ("id",)),
                                   ForeignKey("m_recipient", ("recipient_id",), "public", "users", ("id",))))
    schema = schema_of(users, messages)
    assert list(schema.type_map["Messages"].fields) == ["id", "sender_id", "recipient_id", "recipient", "sender"]
    assert list(schema.type_map["Users"].fields) == [
        "id", "messages_by_recipient_id", "messages_by_recipient_id_aggregate", "messages_by_sender_id",
        "messages_by_sender_id_aggregate"]


def test_a_relation_whose_name_is_taken_by_a_column_is_numbered() -> None:
    users = Table("public", "users", "table", (col("id", 1),), primary_key=("id",))
    posts = Table("public", "posts", "table", (col("id", 1), col("author_id", 2), col("author", 3)),
                  foreign_keys=(ForeignKey("p_author", ("author_id",), "public", "users", ("id",)),))
    assert list(schema_of(users, posts).type_map["Posts"].fields) == ["id", "author_id", "author", "author_2"]


def test_tables_of_other_exposed_schemas_are_prefixed_with_their_schema() -> None:
    tables = (Table("public", "events", "table", (col("id", 1),)),
              Table("analytics", "events", "table", (col("id", 1),)))
    schema = build_schema(Catalog(("public", "analytics"), {t.key: t for t in tables}, {}), Settings()).schema
    assert {"Events", "AnalyticsEvents"} <= set(schema.type_map)
    assert {"events", "analytics_events", "analytics_events_count"} <= set(roots(schema).fields)
