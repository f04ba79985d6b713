"""GraphQL selections and arguments -> request model (gateway/graphql/translate.py), no database."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, get_operation_ast
from graphql.execution.values import get_variable_values

from gateway.catalog import Catalog, Column, ForeignKey, Function, FunctionArg, Table
from gateway.errors import GatewayError
from gateway.graphql.resolve import Operation
from gateway.graphql.schema import CatalogSchema, build_schema
from gateway.graphql.translate import RootStep, Walk, operation_steps
from gateway.identity import ANON
from gateway.request import (
    BoolExpr,
    Call,
    Delete,
    FieldRef,
    Filter,
    Insert,
    Order,
    Read,
    SelectColumn,
    SelectEmbed,
    Target,
    Update,
)
from gateway.settings import Settings


def col(name: str, udt: str, category: Any, position: int, **kw: Any) -> Column:
    return Column(name, kw.pop("type", udt), udt, category, position=position, **kw)


USERS = Table("public", "users", "table", (
    col("id", "uuid", "uuid", 1, nullable=False), col("email", "text", "text", 2),
    col("karma", "int8", "bigint", 3), col("balance", "numeric", "numeric", 4),
    col("tags", "text", "text", 5, is_array=True, type="text[]"),
    col("meta", "jsonb", "json", 6)), primary_key=("id",))
POSTS = Table("public", "posts", "table", (
    col("id", "int4", "int", 1, nullable=False), col("title", "text", "text", 2, nullable=False),
    col("author_id", "uuid", "uuid", 3), col("status", "post_status", "enum", 4,
                                              enum_values=("draft", "published")),
    col("published", "bool", "bool", 5)),
    primary_key=("id",), foreign_keys=(ForeignKey("posts_author_id_fkey", ("author_id",), "public", "users",
                                                  ("id",)),))
COMMENTS = Table("public", "comments", "table", (
    col("id", "int4", "int", 1, nullable=False), col("post_id", "int4", "int", 2), col("body", "text", "text", 3)),
    primary_key=("id",), foreign_keys=(ForeignKey("comments_post_id_fkey", ("post_id",), "public", "posts",
                                                  ("id",)),))
EMPLOYEES = Table("public", "employees", "table", (
    col("id", "int4", "int", 1, nullable=False), col("manager_id", "int4", "int", 2)),
    primary_key=("id",), foreign_keys=(ForeignKey("employees_manager_id_fkey", ("manager_id",), "public",
                                                  "employees", ("id",)),))
SEARCH = Function("public", "search_posts", 1, (FunctionArg("q", "text", "text", "text"),), "SETOF posts",
                  True, "composite", "posts", return_table=("public", "posts"), volatility="stable")
BUMP = Function("public", "bump", 2, (FunctionArg("n", "integer", "int4", "int", has_default=True),), "integer",
                False, "scalar", "int4", return_category="int", volatility="volatile")
CATALOG = Catalog(("public",), {t.key: t for t in (USERS, POSTS, COMMENTS, EMPLOYEES)},
                  {("public", "search_posts"): (SEARCH,), ("public", "bump"): (BUMP,)})
SETTINGS = Settings()
SCHEMA: CatalogSchema = build_schema(CATALOG, SETTINGS)


def steps(query: str, variables: dict[str, Any] | None = None, settings: Settings = SETTINGS) -> list[RootStep]:
    document, problems = SCHEMA.documents.get(query)
    assert document is not None, problems
    operation = get_operation_ast(document)
    assert isinstance(operation, OperationDefinitionNode)
    coerced = get_variable_values(SCHEMA.schema, operation.variable_definitions or (), variables or {})
    assert not isinstance(coerced, list), coerced
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    found = operation_steps(SCHEMA.schema, operation, Walk(coerced, fragments, settings))
    assert found is not None
    return found


def one(query: str, variables: dict[str, Any] | None = None, settings: Settings = SETTINGS) -> Any:
    (step,) = steps(query, variables, settings)
    return step.request


def where(filter_text: str) -> tuple[Any, ...]:
    read = one(f"{{ posts(filter: {filter_text}) {{ id }} }}")
    assert isinstance(read, Read)
    return read.where


def test_a_list_field_reads_the_table_with_response_keys_as_output_keys() -> None:
    assert one("{ posts { id heading: title } }") == Read(
        Target("posts", "public"),
        select=(SelectColumn(FieldRef("id"), alias="id"), SelectColumn(FieldRef("title"), alias="heading")),
        want_total=False)


@pytest.mark.parametrize(("filter_text", "expected"), [
    ("{id: {eq: 1}}", (Filter(FieldRef("id"), "eq", "1"),)),
    ("{id: {neq: 1, gt: 2, gte: 3, lt: 4, lte: 5}}", (
        Filter(FieldRef("id"), "neq", "1"), Filter(FieldRef("id"), "gt", "2"), Filter(FieldRef("id"), "gte", "3"),
        Filter(FieldRef("id"), "lt", "4"), Filter(FieldRef("id"), "lte", "5"))),
    ('{title: {like: "*a*"}}', (Filter(FieldRef("title"), "like", "%a%"),)),
    ('{title: {ilike: "%a"}}', (Filter(FieldRef("title"), "ilike", "%a"),)),
    ("{id: {in: [1, 2]}}", (Filter(FieldRef("id"), "in", ("1", "2")),)),
    ("{author_id: {is: NULL}}", (Filter(FieldRef("author_id"), "is", "null"),)),
    ("{published: {is: NOT_NULL}}", (Filter(FieldRef("published"), "is", "not_null"),)),
    ("{published: {eq: true}}", (Filter(FieldRef("published"), "eq", "true"),)),
    ("{status: {eq: draft}}", (Filter(FieldRef("status"), "eq", "draft"),)),
    ("{id: {eq: null}}", ()),
    ("{or: [{id: {eq: 1}}, {title: {eq: \"x\"}}]}", (BoolExpr("or", (
        Filter(FieldRef("id"), "eq", "1"), Filter(FieldRef("title"), "eq", "x"))),)),
    ("{or: [{id: {eq: 1, lt: 3}}, {id: {eq: 5}}]}", (BoolExpr("or", (
        BoolExpr("and", (Filter(FieldRef("id"), "eq", "1"), Filter(FieldRef("id"), "lt", "3"))),
        Filter(FieldRef("id"), "eq", "5"))),)),
    ("{and: [{id: {gt: 1}}, {id: {lt: 9}}]}", (Filter(FieldRef("id"), "gt", "1"), Filter(FieldRef("id"), "lt", "9"))),
    ("{not: {id: {eq: 1}}}", (BoolExpr("and", (Filter(FieldRef("id"), "eq", "1"),), negate=True),)),
    ("{or: []}", ()),
    ("{or: [{id: {eq: 1}}, {}]}", ()),
])
def test_filters_become_the_rest_operators_with_text_values(filter_text: str, expected: tuple[Any, ...]) -> None:
    assert where(filter_text) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ('{karma: {eq: "9007199254740993"}}', Filter(FieldRef("karma"), "eq", "9007199254740993")),
    ("{karma: {eq: 12}}", Filter(FieldRef("karma"), "eq", "12")),
    ('{balance: {gt: "10.50"}}', Filter(FieldRef("balance"), "gt", "10.50")),
    ('{id: {eq: "0b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1"}}',
     Filter(FieldRef("id"), "eq", "0b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1")),
    ('{tags: {eq: ["a", "b,c"]}}', Filter(FieldRef("tags"), "eq", '{"a","b,c"}')),
    ('{meta: {eq: {k: 1}}}', Filter(FieldRef("meta"), "eq", '{"k":1}')),
])
def test_typed_values_are_passed_as_the_text_rest_would_send(value: str, expected: Filter) -> None:
    read = one(f"{{ users(filter: {value}) {{ id }} }}")
    assert read.where == (expected,)


def test_order_by_items_keep_their_order_and_null_placement() -> None:
    read = one("{ posts(orderBy: [{title: DESC_NULLS_LAST}, {id: ASC}]) { id } }")
    assert read.order == (Order(FieldRef("title"), "desc", "last"), Order(FieldRef("id"), "asc", None))


def test_limit_and_offset_pass_to_the_planner_which_applies_the_default() -> None:
    assert (one("{ posts { id } }").limit, one("{ posts { id } }").offset) == (None, 0)
    read = one("{ posts(limit: 5, offset: 10) { id } }")
    assert (read.limit, read.offset) == (5, 10)


def test_relations_become_embeds_named_by_response_key_with_their_fk_as_hint() -> None:
    read = one("{ users { id posts(filter: {published: {eq: true}}, orderBy: [{id: DESC}], limit: 3, offset: 1)"
               " { id writer: author { email } } } }")
    (_, posts) = read.select
    assert posts == SelectEmbed(
        "posts", (SelectColumn(FieldRef("id"), alias="id"),
                  SelectEmbed("users", (SelectColumn(FieldRef("email"), alias="email"),), alias="writer",
                              hint="posts_author_id_fkey")),
        alias="posts", hint="posts_author_id_fkey", where=(Filter(FieldRef("published"), "eq", "true"),),
        order=(Order(FieldRef("id"), "desc", None),), limit=3, offset=1)


def test_a_nested_list_without_limit_gets_the_default_limit() -> None:
    read = one("{ users { posts { id } } }")
    assert read.select[0].limit == SETTINGS.default_limit


def test_a_nested_limit_above_the_maximum_is_refused_as_invalid_query() -> None:
    with pytest.raises(GatewayError) as err:
        one("{ users { posts(limit: 5000) { id } } }")
    assert (err.value.status, err.value.error) == (400, "INVALID_QUERY")


def test_a_self_reference_is_embedded_through_its_fk_name() -> None:
    read = one("{ employees { manager { id } } }")
    assert read.select == (SelectEmbed("employees_manager_id_fkey", (SelectColumn(FieldRef("id"), alias="id"),),
                                       alias="manager", hint=None),)


def test_fragments_skip_include_and_repeated_fields_merge_by_response_key() -> None:
    query = """query ($no: Boolean!) {
      posts { ...P ... on Posts { title } id @skip(if: $no) author @include(if: $no) { id } title }
    }
    fragment P on Posts { id author { email } }"""
    read = one(query, {"no": True})
    assert read.select == (SelectColumn(FieldRef("id"), alias="id"),
                           SelectEmbed("users", (SelectColumn(FieldRef("email"), alias="email"),
                                                 SelectColumn(FieldRef("id"), alias="id")),
                                       alias="author", hint="posts_author_id_fkey"),
                           SelectColumn(FieldRef("title"), alias="title"))


def test_variables_fill_arguments_everywhere_in_the_tree() -> None:
    query = "query ($n: Int, $f: PostsFilter) { users { posts(limit: $n, filter: $f) { id } } }"
    read = one(query, {"n": 2, "f": {"title": {"eq": "x"}}})
    assert (read.select[0].limit, read.select[0].where) == (2, (Filter(FieldRef("title"), "eq", "x"),))


@pytest.mark.parametrize(("query", "exact"), [
    ("{ posts { id title author { email } } }", True),
    ("{ __typename posts { id } }", True),
    ("{ posts { __typename id } }", False),
    ("{ posts { status } }", True),
])
def test_exactness_tells_whether_postgresql_json_is_the_graphql_value(query: str, exact: bool) -> None:
    document, _ = SCHEMA.documents.get(query)
    assert document is not None
    operation = get_operation_ast(document)
    assert operation is not None
    walk = Walk({}, {}, SETTINGS)
    operation_steps(SCHEMA.schema, operation, walk)
    assert walk.exact is exact


def test_bigint_and_numeric_columns_are_cast_to_text_so_no_digit_is_lost() -> None:
    read = one("{ users { karma balance email } }")
    assert [c.cast for c in read.select] == ["text", "text", None]


def test_count_asks_for_the_exact_total_without_rows() -> None:
    read = one("{ posts_count(filter: {id: {gt: 1}}) }")
    assert read == Read(Target("posts", "public"), where=(Filter(FieldRef("id"), "gt", "1"),), limit=0,
                        count="exact", head=True, want_total=True)


def test_by_pk_filters_on_every_primary_key_column() -> None:
    read = one("{ posts_by_pk(id: 7) { title } }")
    assert read.where == (Filter(FieldRef("id"), "eq", "7"),)


@pytest.mark.parametrize(("conflict", "resolution", "update"), [
    ("{columns: [id], update: [title]}", "merge-duplicates", ("title",)),
    ("{columns: [id]}", "ignore-duplicates", None),
    ("{columns: [id], update: []}", "ignore-duplicates", None),
])
def test_on_conflict_with_update_merges_those_columns_and_without_ignores(
        conflict: str, resolution: str, update: tuple[str, ...] | None) -> None:
    insert = one(f'mutation {{ insert_posts(objects: [{{id: 1, title: "t"}}], on_conflict: {conflict}) {{ id }} }}')
    assert isinstance(insert, Insert)
    assert (insert.on_conflict, insert.resolution, insert.update_columns) == (("id",), resolution, update)


def test_insert_rows_carry_decoded_json_values_and_missing_keys_take_defaults() -> None:
    insert = one('mutation { insert_users(objects: [{id: "0b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1", '
                 'karma: "12", balance: 1.5, tags: ["x"], meta: {a: [1]}}, '
                 '{id: "1b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1", email: null}]) { id } }')
    assert insert.rows == ({"id": "0b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1", "karma": 12, "balance": "1.5",
                            "tags": ["x"], "meta": {"a": [1]}},
                           {"id": "1b7e3b28-6f1e-4f9c-9d0a-46e3e1c9a3a1", "email": None})
    assert insert.missing_default and insert.returning == (SelectColumn(FieldRef("id"), alias="id"),)


def test_update_and_delete_carry_filter_and_returning() -> None:
    update = one('mutation { update_posts(filter: {id: {eq: 1}}, set: {title: "new"}) { title } }')
    assert update == Update(Target("posts", "public"), {"title": "new"}, where=(Filter(FieldRef("id"), "eq", "1"),),
                            returning=(SelectColumn(FieldRef("title"), alias="title"),), max_affected=1000)
    delete = one("mutation { delete_posts(filter: {}, atMost: 3) { id } }")
    assert delete == Delete(Target("posts", "public"), returning=(SelectColumn(FieldRef("id"), alias="id"),),
                            max_affected=3)


def test_functions_become_calls_shaped_by_their_row_type() -> None:
    call = one('{ search_posts(q: "x") { id author { email } } }')
    assert isinstance(call, Call)
    assert (call.target, call.args, call.read_only) == (Target("search_posts", "public"), {"q": "x"}, True)
    assert call.select[1] == SelectEmbed("users", (SelectColumn(FieldRef("email"), alias="email"),),
                                         alias="author", hint="posts_author_id_fkey")
    bump = one("mutation { bump(n: 2) }")
    assert (bump.args, bump.read_only) == ({"n": 2}, False)


def test_mutations_of_one_operation_are_translated_in_document_order() -> None:
    found = steps('mutation { a: delete_posts(filter: {}) { id } b: insert_posts(objects: []) { id } }')
    assert [(s.key, s.kind) for s in found] == [("a", "delete"), ("b", "insert")]


def test_a_query_asking_for_more_rows_than_the_cost_limit_is_refused() -> None:
    query = "{ users(limit: 1000) { posts(limit: 1000) { id } } }"
    op = Operation(None, ANON, CATALOG, SETTINGS, read_only=True)
    document, _ = SCHEMA.documents.get(query)
    assert document is not None
    operation = get_operation_ast(document)
    assert operation is not None
    walk = Walk({}, {}, SETTINGS)
    operation_steps(SCHEMA.schema, operation, walk)
    assert walk.cost == 1000 + 1000 * 1000
    with pytest.raises(GatewayError) as err:
        op.charge(walk.cost)
    assert err.value.error == "INVALID_QUERY"


def test_insert_one_is_an_insert_of_one_object() -> None:
    insert = one('mutation { insert_posts_one(object: {id: 9, title: "t"}) { id } }')
    assert isinstance(insert, Insert)
    assert insert.rows == ({"id": 9, "title": "t"},)


def test_by_pk_mutations_filter_on_every_key_column_and_have_no_row_bound() -> None:
    update = one('mutation { update_posts_by_pk(id: 4, set: {title: "x"}) { id } }')
    assert isinstance(update, Update)
    assert (update.where, update.max_affected) == ((Filter(FieldRef("id"), "eq", "4"),), None)
    delete = one("mutation { delete_posts_by_pk(id: 4) { id } }")
    assert isinstance(delete, Delete)
    assert delete.where == (Filter(FieldRef("id"), "eq", "4"),)


def test_inc_marks_its_columns_as_increments_beside_set() -> None:
    update = one('mutation { update_users(filter: {email: {eq: "a"}}, set: {email: "b"}, inc: {karma: 2}) { id } }')
    assert isinstance(update, Update)
    assert (dict(update.values), update.operations) == ({"email": "b", "karma": 2}, (("karma", "inc"),))


@pytest.mark.parametrize(("mutation", "message"), [
    ('update_users(filter: {email: {eq: "a"}}, set: {karma: 1}, inc: {karma: 2})', "changed twice"),
    ('update_users(filter: {email: {eq: "a"}}, append: {meta: {}}, delete_key: {meta: "k"})', "changed twice"),
    ('update_users(filter: {email: {eq: "a"}})', "Nothing to update"),
    ('update_users(filter: {email: {eq: "a"}}, set: {email: "b"}, atMost: -1)', "atMost must not be negative"),
])
def test_contradictory_or_empty_updates_are_refused_before_any_sql(mutation: str, message: str) -> None:
    with pytest.raises(GatewayError, match=message) as caught:
        one(f"mutation {{ {mutation} {{ id }} }}")
    assert caught.value.status == 400


def test_admins_have_no_default_row_bound_and_others_the_setting() -> None:
    document, _ = SCHEMA.documents.get('mutation { delete_posts(filter: {id: {gt: 0}}) { id } }')
    assert document is not None
    operation = get_operation_ast(document)
    assert isinstance(operation, OperationDefinitionNode)
    for admin, bound in ((True, None), (False, 7)):
        walk = Walk({}, {}, Settings(graphql_max_affected=7), admin=admin)
        (step,) = operation_steps(SCHEMA.schema, operation, walk) or []
        assert isinstance(step.request, Delete) and step.request.max_affected == bound
