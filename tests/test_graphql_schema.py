"""The schema generated from a catalog (gateway/graphql/schema.py, scalars.py), no database."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
    graphql_sync,
    print_type,
)

from gateway.catalog import Catalog, Column, ForeignKey, Function, FunctionArg, Table, TypeCategory
from gateway.graphql.scalars import SCALARS, filter_text
from gateway.graphql.schema import build_schema
from gateway.settings import Settings


def col(name: str, udt: str, category: Any, position: int, **kw: Any) -> Column:
    return Column(name, kw.pop("type", udt), udt, category, position=position, **kw)


def schema_of(*tables: Table, functions: tuple[Function, ...] = ()) -> GraphQLSchema:
    catalog = Catalog(("public",), {t.key: t for t in tables},
                      {(f.schema, f.name): tuple(g for g in functions if g.name == f.name) for f in functions})
    return build_schema(catalog, Settings()).schema

def roots(schema: GraphQLSchema, mutation: bool = False) -> GraphQLObjectType:
    root = schema.mutation_type if mutation else schema.query_type
    assert root is not None
    return root



def obj(schema: GraphQLSchema, name: str) -> GraphQLObjectType:
    t = schema.type_map[name]
    assert isinstance(t, GraphQLObjectType)
    return t


SCALAR_NAMES: dict[TypeCategory, str] = {
    "bool": "Boolean", "int": "Int", "bigint": "BigInt", "float": "Float", "numeric": "Decimal", "text": "String",
    "uuid": "UUID", "json": "JSON", "date": "Date", "time": "Time", "timestamp": "DateTime",
    "timestamptz": "DateTime", "interval": "String", "bytea": "String", "tsvector": "String", "range": "String",
    "enum": "String", "other": "String",
}


@pytest.mark.parametrize(("category", "scalar"), sorted(SCALAR_NAMES.items()))
def test_every_catalog_category_maps_to_a_scalar(category: TypeCategory, scalar: str) -> None:
    assert SCALARS[category].name == scalar
    schema = schema_of(Table("public", "t", "table", (col("v", "x", category, 1),
                                                      col("vs", "x", category, 2, is_array=True))))
    fields = obj(schema, "T").fields
    assert str(fields["v"].type) == scalar
    assert str(fields["vs"].type) == f"[{scalar}]"


def test_enum_columns_get_a_graphql_enum_of_their_labels() -> None:
    schema = schema_of(Table("public", "t", "table", (col("mood", "mood", "enum", 1, enum_values=("sad", "ok")),)))
    mood = schema.type_map["Mood"]
    assert isinstance(mood, GraphQLEnumType) and list(mood.values) == ["sad", "ok"]
    assert str(obj(schema, "T").fields["mood"].type) == "Mood"


def test_not_null_table_columns_are_non_null_but_view_columns_are_not() -> None:
    cols = (col("id", "int4", "int", 1, nullable=False),)
    schema = schema_of(Table("public", "t", "table", cols), Table("public", "v", "view", cols))
    assert (str(obj(schema, "T").fields["id"].type), str(obj(schema, "V").fields["id"].type)) == ("Int!", "Int")


def test_query_fields_follow_the_naming_contract() -> None:
    schema = schema_of(Table("public", "user_settings", "table", (col("user_id", "uuid", "uuid", 1),
                                                               col("theme", "text", "text", 2)),
                             primary_key=("user_id",)))
    fields = roots(schema).fields
    assert str(fields["user_settings"].type) == "[UserSettings!]!"
    assert list(fields["user_settings"].args) == ["filter", "orderBy", "limit", "offset", "distinctOn"]
    assert str(fields["user_settings"].args["orderBy"].type) == "[UserSettingsOrderBy!]"
    assert str(fields["user_settings_count"].type) == "Int!"
    assert {k: str(a.type) for k, a in fields["user_settings_by_pk"].args.items()} == {"user_id": "UUID!"}
    mutations = roots(schema, mutation=True).fields
    assert str(mutations["insert_user_settings"].args["objects"].type) == "[UserSettingsInsertInput!]!"
    conflict = schema.type_map["UserSettingsOnConflict"]
    assert isinstance(conflict, GraphQLInputObjectType)
    assert {k: str(f.type) for k, f in conflict.fields.items()} == {
        "columns": "[UserSettingsColumn!]!", "update": "[UserSettingsColumn!]"}
    assert {k: str(a.type) for k, a in mutations["update_user_settings"].args.items()} == {
        "filter": "UserSettingsFilter!", "set": "UserSettingsSetInput", "atMost": "Int"}
    assert str(mutations["delete_user_settings"].type) == "[UserSettings!]!"
    assert {k: str(a.type) for k, a in mutations["delete_user_settings"].args.items()} == {
        "filter": "UserSettingsFilter!", "atMost": "Int"}
    assert str(mutations["insert_user_settings_one"].type) == "UserSettings"
    assert {k: str(a.type) for k, a in mutations["insert_user_settings_one"].args.items()} == {
        "object": "UserSettingsInsertInput!", "on_conflict": "UserSettingsOnConflict"}
    assert {k: str(a.type) for k, a in mutations["update_user_settings_by_pk"].args.items()} == {
        "user_id": "UUID!", "set": "UserSettingsSetInput"}
    assert {k: str(a.type) for k, a in mutations["delete_user_settings_by_pk"].args.items()} == {"user_id": "UUID!"}


def test_comparison_inputs_offer_the_rest_operators_for_the_column_type() -> None:
    schema = schema_of(Table("public", "t", "table", (col("a", "text", "text", 1), col("b", "bool", "bool", 2))))
    assert print_type(schema.type_map["StringComparison"]).split("\n")[2:-1] == [
        "  eq: String", "  neq: String", "  gt: String", "  gte: String", "  lt: String", "  lte: String",
        "  in: [String!]", "  is: IsValue", "  isdistinct: String", "  like: String", "  ilike: String",
        "  match: String", "  imatch: String", "  fts: String", "  plfts: String", "  phfts: String",
        "  wfts: String"]
    assert list(schema.type_map["BooleanComparison"].fields) == ["eq", "neq", "is", "isdistinct"]  # type: ignore[attr-defined]
    assert list(schema.type_map["IsValue"].values) == ["NULL", "NOT_NULL", "TRUE", "FALSE", "UNKNOWN"]  # type: ignore[attr-defined]
    assert list(schema.type_map["OrderDirection"].values) == [  # type: ignore[attr-defined]
        "ASC", "DESC", "ASC_NULLS_FIRST", "ASC_NULLS_LAST", "DESC_NULLS_FIRST", "DESC_NULLS_LAST"]


def test_views_that_cannot_be_written_have_no_mutations_and_generated_columns_are_not_inputs() -> None:
    schema = schema_of(
        Table("public", "report", "view", (col("n", "int4", "int", 1),), insertable=False, updatable=False,
              deletable=False),
        Table("public", "items", "table", (col("id", "int4", "int", 1), col("total", "int4", "int", 2,
                                                                             is_generated=True))))
    assert sorted(roots(schema, mutation=True).fields) == ["delete_items", "insert_items", "insert_items_one",
                                                          "migrate", "update_items"]  # no key: no *_by_pk
    assert list(schema.type_map["ItemsInsertInput"].fields) == ["id"]  # type: ignore[attr-defined]
    assert list(schema.type_map["ItemsIncInput"].fields) == ["id"]  # type: ignore[attr-defined]


def test_relations_are_to_one_objects_and_to_many_lists_with_list_arguments() -> None:
    users = Table("public", "users", "table", (col("id", "int4", "int", 1),), primary_key=("id",))
    posts = Table("public", "posts", "table", (col("id", "int4", "int", 1), col("author_id", "int4", "int", 2)),
                  foreign_keys=(ForeignKey("posts_author_id_fkey", ("author_id",), "public", "users", ("id",)),))
    schema = schema_of(users, posts)
    assert str(obj(schema, "Posts").fields["author"].type) == "Users"
    many = obj(schema, "Users").fields["posts"]
    assert (str(many.type), list(many.args)) == ("[Posts!]!", ["filter", "orderBy", "limit", "offset", "distinctOn"])


def test_stable_functions_are_queries_and_volatile_ones_mutations() -> None:
    t = Table("public", "t", "table", (col("id", "int4", "int", 1),))
    stable = Function("public", "total", 1, (FunctionArg("since", "date", "date", "date"),
                                             FunctionArg("cap", "numeric", "numeric", "numeric", has_default=True)),
                      "numeric", False, "scalar", "numeric", return_category="numeric", volatility="stable")
    rows = Function("public", "recent", 2, (), "SETOF t", True, "composite", "t", return_table=("public", "t"),
                    volatility="immutable")
    record = Function("public", "pair", 3, (), "TABLE(a integer, b text)", True, "table", "record",
                      return_columns=(col("a", "int4", "int", 1), col("b", "text", "text", 2)), volatility="stable")
    touch = Function("public", "touch", 4, (), "void", False, "void", "void", volatility="volatile")
    unnamed = Function("public", "anon_arg", 5, (FunctionArg("", "int4", "int4", "int"),), "integer", False,
                       "scalar", "int4", return_category="int", volatility="stable")
    schema = schema_of(t, functions=(stable, rows, record, touch, unnamed))
    q = roots(schema).fields
    assert {k: str(a.type) for k, a in q["total"].args.items()} == {"since": "Date!", "cap": "Decimal"}
    assert str(q["total"].type) == "Decimal"
    assert str(q["recent"].type) == "[T!]!"
    assert str(q["pair"].type) == "[PairResult!]!"
    assert list(obj(schema, "PairResult").fields) == ["a", "b"]
    assert str(roots(schema, mutation=True).fields["touch"].type) == "JSON"
    assert "anon_arg" not in q


def test_tables_without_columns_are_left_out() -> None:
    schema = schema_of(Table("public", "empty", "table", ()),
                       Table("public", "t", "table", (col("a", "text", "text", 1),)))
    assert "empty" not in roots(schema).fields


def test_introspection_of_a_generated_schema_works() -> None:
    users = Table("public", "users", "table", (col("id", "int4", "int", 1),), primary_key=("id",))
    result = graphql_sync(schema_of(users), "{ __schema { queryType { name } } __type(name: \"Users\") { name } }")
    assert result.errors is None
    assert result.data == {"__schema": {"queryType": {"name": "Query"}}, "__type": {"name": "Users"}}


def test_two_hundred_tables_build_one_schema() -> None:
    tables = []
    for i in range(200):
        cols = tuple(col(f"c{j}", "text", "text", j + 2) for j in range(8))
        fks = (ForeignKey(f"t{i}_parent_fkey", ("parent_id",), "public", f"t{i - 1}", ("id",)),) if i else ()
        tables.append(Table("public", f"t{i}", "table", (col("id", "int4", "int", 1), *cols,
                                                          col("parent_id", "int4", "int", 10)),
                            primary_key=("id",), foreign_keys=fks))
    schema = schema_of(*tables)
    assert len([n for n in roots(schema).fields if n.endswith("_by_pk")]) == 200
    assert get_named_type(obj(schema, "T5").fields["parent"].type).name == "T4"


@pytest.mark.parametrize(("value", "text"), [
    (True, "true"), (False, "false"), (3, "3"), (2.5, "2.5"), ("x", "x"), ([1, None, 'a"b'], '{"1",NULL,"a\\"b"}'),
    ({"a": 1}, '{"a":1}'),
])
def test_graphql_values_become_the_filter_text_rest_would_send(value: Any, text: str) -> None:
    assert filter_text(value) == text


def test_nullability_tells_the_truth_about_relations_and_required_insert_columns() -> None:
    people = Table("public", "people", "table", (col("id", "int4", "int", 1, nullable=False),),
                   primary_key=("id",))
    guarded = Table("public", "guarded", "table", (col("id", "int4", "int", 1, nullable=False),),
                    primary_key=("id",), rls_enabled=True)
    pets = Table("public", "pets", "table", (
        col("id", "int4", "int", 1, nullable=False, default="nextval('pets_id_seq')"),
        col("name", "text", "text", 2, nullable=False),
        col("nick", "text", "text", 3),
        col("owner_id", "int4", "int", 4, nullable=False),
        col("sitter_id", "int4", "int", 5),
        col("guard_id", "int4", "int", 6, nullable=False)), primary_key=("id",), foreign_keys=(
        ForeignKey("pets_owner_id_fkey", ("owner_id",), "public", "people", ("id",)),
        ForeignKey("pets_sitter_id_fkey", ("sitter_id",), "public", "people", ("id",)),
        ForeignKey("pets_guard_id_fkey", ("guard_id",), "public", "guarded", ("id",))))
    schema = schema_of(people, guarded, pets)
    fields = obj(schema, "Pets").fields
    assert str(fields["owner"].type) == "People!"  # NOT NULL key, no RLS: the row is always there
    assert str(fields["sitter"].type) == "People"  # nullable key
    assert str(fields["guard"].type) == "Guarded"  # RLS may hide the row
    insert = schema.type_map["PetsInsertInput"]
    # a key a nested insert of the related row can fill is not required
    assert {k: str(f.type) for k, f in insert.fields.items()} == {  # type: ignore[attr-defined]
        "id": "Int", "name": "String!", "nick": "String", "owner_id": "Int", "sitter_id": "Int",
        "guard_id": "Int", "owner": "PeopleObjRelInsertInput", "sitter": "PeopleObjRelInsertInput",
        "guard": "GuardedObjRelInsertInput"}
    assert str(schema.type_map["PeopleInsertInput"].fields["pets_by_owner_id"].type) == (  # type: ignore[attr-defined]
        "PetsArrRelInsertInput")
    assert all(not str(f.type).endswith("!") for f in schema.type_map["PetsSetInput"].fields.values())  # type: ignore[attr-defined]


def test_an_insertable_view_offers_inserts_without_on_conflict() -> None:
    schema = schema_of(Table("public", "open_view", "view", (col("n", "int4", "int", 1),), insertable=True,
                             updatable=True, deletable=False))
    mutations = roots(schema, mutation=True).fields
    assert list(mutations["insert_open_view"].args) == ["objects"]
    assert list(mutations["insert_open_view_one"].args) == ["object"]
    assert "delete_open_view" not in mutations and "update_open_view" in mutations
