"""The Strawberry internals the gateway relies on (gateway/graphql/sbcompat.py).

These fail loudly when a Strawberry upgrade moves a touch point: widen the pin in
pyproject.toml only once this module passes against the new version.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import strawberry
from graphql import GraphQLField, GraphQLObjectType, GraphQLSchema, GraphQLString, parse
from strawberry.extensions import ParserCache, ValidationCache

from gateway.graphql import sbcompat

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


@strawberry.type
class Query:
    @strawberry.field
    def greeting(self, info: strawberry.Info, name: str = "you") -> str:
        assert sbcompat.raw_info(info).field_name == "greeting"
        assert info.schema is sbcompat.strawberry_of(sbcompat.raw_info(info).schema)
        return f"hi {name}"


def merged(extensions: tuple[Any, ...] = (ParserCache, ValidationCache)) -> tuple[strawberry.Schema, strawberry.Schema]:
    """A Strawberry schema and one adopting a graphql-core schema with a foreign field added."""
    base = strawberry.Schema(Query, extensions=list(extensions))
    user_query = sbcompat.graphql_schema(base).query_type
    assert user_query is not None
    query = GraphQLObjectType("Query", {**user_query.fields,
                                        "foreign": GraphQLField(GraphQLString, resolve=lambda *_: "core")})
    return base, sbcompat.adopt(base, GraphQLSchema(query))


def test_the_installed_strawberry_has_every_touch_point() -> None:
    sbcompat.check()


def test_the_pin_in_pyproject_is_the_supported_range() -> None:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(d for d in deps if d.startswith("strawberry-graphql"))
    low, high = (tuple(int(x) for x in v.split(".")) for v in re.findall(r"[<>]=?([\d.]+)", pin))
    assert (low + (0,) * 3)[:3] == sbcompat.SUPPORTED[0] and (high + (0,) * 3)[:3] == sbcompat.SUPPORTED[1]


def test_an_adopted_schema_runs_strawberry_and_graphql_core_fields_through_strawberry_execute() -> None:
    _, schema = merged()
    result = schema.execute_sync('{ greeting(name: "ann") foreign }')
    assert result.errors is None
    assert result.data == {"greeting": "hi ann", "foreign": "core"}
    assert "foreign: String" in str(schema)


async def test_an_adopted_schema_keeps_the_base_schema_extensions() -> None:
    base, schema = merged()
    assert schema.extensions == base.extensions
    result = await schema.execute("{ foreign }")
    assert result.data == {"foreign": "core"}


def test_release_empties_the_caches_that_hold_schema_objects() -> None:
    _, schema = merged()
    schema.execute_sync("{ foreign }")
    schema.get_type_by_name("Query")
    assert strawberry.Schema.get_type_by_name.cache_info().currsize > 0  # type: ignore[attr-defined]
    assert ValidationCache().cached_validate_document.cache_info().currsize > 0
    sbcompat.release(schema)
    assert strawberry.Schema.get_type_by_name.cache_info().currsize == 0  # type: ignore[attr-defined]
    assert ValidationCache().cached_validate_document.cache_info().currsize == 0
    assert ParserCache().cached_parse_document.cache_info().currsize == 0


async def test_a_prepared_document_is_neither_parsed_nor_validated_again() -> None:
    _, schema = merged(extensions=())
    document = parse('{ greeting(name: "pre") }')
    with sbcompat.prepared(document):
        result = await schema.execute("{ this text is not even parsed")
    assert result.errors is None and result.data == {"greeting": "hi pre"}
    plain = await schema.execute("{ this text is not even parsed")
    assert plain.errors  # without it, the text is what runs
