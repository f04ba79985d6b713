"""Depth, alias and token limits, and the parsed + validated document cache (gateway/graphql/limits.py)."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import get_introspection_query

from gateway.catalog import Catalog, Column, ForeignKey, Table
from gateway.graphql.schema import build_schema
from gateway.settings import Settings


def col(name: str, position: int) -> Column:
    return Column(name, "int4", "int4", "int", position=position)


NODES = Table("public", "nodes", "table", (col("id", 1), col("parent_id", 2)), primary_key=("id",),
              foreign_keys=(ForeignKey("nodes_parent_fkey", ("parent_id",), "public", "nodes", ("id",)),))
CATALOG = Catalog(("public",), {NODES.key: NODES}, {})


def documents(**limits: Any) -> Any:
    return build_schema(CATALOG, Settings(**limits)).documents


def nested(depth: int) -> str:
    """``{ nodes { parent { parent { ... id } } } }`` with ``depth`` fields on the deepest path."""
    return "{ nodes { " + "parent { " * (depth - 2) + "id" + " }" * (depth - 2) + " } }"


@pytest.mark.parametrize(("depth", "accepted"), [(3, True), (4, True), (5, False)])
def test_a_document_deeper_than_the_limit_is_refused(depth: int, accepted: bool) -> None:
    document, problems = documents(graphql_max_depth=4).get(nested(depth))
    assert (document is not None) is accepted
    if not accepted:
        assert problems[0].message == f"Query depth {depth} exceeds the maximum of 4."


def test_fragments_count_towards_the_depth() -> None:
    query = "{ nodes { ...A } } fragment A on Nodes { parent { parent { id } } }"
    assert documents(graphql_max_depth=3).get(query)[0] is None
    assert documents(graphql_max_depth=4).get(query)[0] is not None


def test_introspection_does_not_count_towards_the_depth() -> None:
    document, problems = documents(graphql_max_depth=2).get(get_introspection_query())
    assert document is not None, problems


def test_more_aliases_than_the_limit_are_refused() -> None:
    query = "{ " + " ".join(f"a{i}: nodes_count" for i in range(4)) + " }"
    assert documents(graphql_max_aliases=4).get(query)[0] is not None
    document, problems = documents(graphql_max_aliases=3).get(query)
    assert document is None and problems[0].message == "4 aliases exceed the maximum of 3."


def test_more_tokens_than_the_limit_are_refused_before_parsing_finishes() -> None:
    query = "{ " + " ".join(["nodes_count"] * 50) + " }"
    document, problems = documents(graphql_max_tokens=20).get(query)
    assert document is None and "tokens" in problems[0].message


def test_a_syntax_error_is_reported_not_raised() -> None:
    document, problems = documents().get("{ nodes { id }")
    assert document is None and "Syntax Error" in problems[0].message


def test_a_validated_document_is_served_from_the_cache_with_the_limits_on() -> None:
    docs = documents(graphql_max_depth=5, graphql_max_aliases=2, graphql_max_tokens=100)
    first, _ = docs.get("{ nodes { id } }")
    again, _ = docs.get("{ nodes { id } }")
    assert first is not None and again is first and len(docs) == 1


def test_the_cache_forgets_the_least_recently_used_text() -> None:
    docs = documents()
    docs.size = 2
    for text in ("{ a: nodes_count }", "{ b: nodes_count }", "{ a: nodes_count }", "{ c: nodes_count }"):
        docs.get(text)
    assert set(docs._cache) == {"{ a: nodes_count }", "{ c: nodes_count }"}
