"""GraphQL scalars for PostgreSQL types, and how their values travel.

In:  a catalog ``TypeCategory`` (plus whether the column is an array).
Out: the GraphQL scalar that carries it (``SCALARS``), the comparison operators its
     filter input offers (``OPERATORS``), the cast that makes PostgreSQL's JSON already
     hold the GraphQL value (``OUTPUT_CAST``), and the conversions of GraphQL input
     values into what the planner takes: filter values as text, exactly as REST passes
     them (``filter_text``), and body values as decoded JSON (``body_value``).

Scalar mapping (every category the catalog can hold):

    bool -> Boolean    int -> Int          bigint -> BigInt    float -> Float
    numeric -> Decimal uuid -> UUID        json -> JSON        text -> String
    date -> Date       time -> Time        timestamp, timestamptz -> DateTime
    enum -> a GraphQL enum per PostgreSQL enum type
    interval, bytea, tsvector, range, other -> String (PostgreSQL's text rendering)
    arrays -> [scalar]

``BigInt`` and ``Decimal`` are strings on output ("9007199254740993", "12.50"): a
JSON number loses digits in JavaScript clients, so the SQL casts these columns to
text and PostgreSQL's JSON already carries the string. As input they accept a
string or a number. ``DateTime``, ``Date`` and ``Time`` are PostgreSQL's ISO
renderings; ``JSON`` is any JSON value.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from graphql import (
    GraphQLBoolean,
    GraphQLError,
    GraphQLFloat,
    GraphQLInt,
    GraphQLScalarType,
    GraphQLString,
    StringValueNode,
    ValueNode,
)
from graphql.language import FloatValueNode, IntValueNode
from graphql.utilities import value_from_ast_untyped

from ..catalog import TypeCategory


def _text_output(value: Any) -> str:
    """PostgreSQL already sent text (cast in SQL); numbers from function results become text."""
    if isinstance(value, bool):
        raise GraphQLError(f"Cannot represent a boolean as text: {value!r}")
    return value if isinstance(value, str) else str(value)


def _literal_text(node: ValueNode, kinds: tuple[type, ...] = (StringValueNode,)) -> str:
    if not isinstance(node, kinds):
        raise GraphQLError(f"Expected a string literal, found {type(node).__name__}", node)
    return str(node.value)  # type: ignore[attr-defined]


def _parse_uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else _bad("UUID", value)
    except ValueError:
        return _bad("UUID", value)


def _parse_bigint(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    return _bad("BigInt", value)


def _parse_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        return _bad("Decimal", value)
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return _bad("Decimal", value)


def _parse_text(name: str) -> Any:
    def parse(value: Any) -> str:
        return value if isinstance(value, str) else _bad(name, value)
    return parse


def _bad(name: str, value: Any) -> Any:
    raise GraphQLError(f"{name} cannot represent value: {value!r}")


def _number_literal(parse: Any) -> Any:
    def literal(node: ValueNode, _variables: Any = None) -> Any:
        return parse(_literal_text(node, (StringValueNode, IntValueNode, FloatValueNode)))
    return literal


def _string_literal(parse: Any) -> Any:
    def literal(node: ValueNode, _variables: Any = None) -> Any:
        return parse(_literal_text(node))
    return literal


UUIDScalar = GraphQLScalarType(
    "UUID", serialize=_text_output, parse_value=_parse_uuid, parse_literal=_string_literal(_parse_uuid),
    description="A UUID, as text (PostgreSQL uuid).")
BigIntScalar = GraphQLScalarType(
    "BigInt", serialize=_text_output, parse_value=_parse_bigint,
    parse_literal=_number_literal(_parse_bigint),
    description="A 64-bit integer, as text on output; a number or text on input (PostgreSQL int8).")
DecimalScalar = GraphQLScalarType(
    "Decimal", serialize=_text_output, parse_value=_parse_decimal,
    parse_literal=_number_literal(_parse_decimal),
    description="An exact decimal, as text on output; a number or text on input (PostgreSQL numeric).")
def _same(value: Any) -> Any:
    return value


def _json_literal(node: ValueNode, variables: Any = None) -> Any:
    return value_from_ast_untyped(node, variables)


JSONScalar = GraphQLScalarType(
    "JSON", serialize=_same, parse_value=_same, parse_literal=_json_literal,
    description="Any JSON value (PostgreSQL json/jsonb).")
DateTimeScalar = GraphQLScalarType(
    "DateTime", serialize=_text_output, parse_value=_parse_text("DateTime"),
    parse_literal=_string_literal(_parse_text("DateTime")),
    description="An ISO 8601 timestamp as PostgreSQL renders it (with offset for timestamptz).")
DateScalar = GraphQLScalarType(
    "Date", serialize=_text_output, parse_value=_parse_text("Date"),
    parse_literal=_string_literal(_parse_text("Date")), description="An ISO 8601 date.")
TimeScalar = GraphQLScalarType(
    "Time", serialize=_text_output, parse_value=_parse_text("Time"),
    parse_literal=_string_literal(_parse_text("Time")), description="An ISO 8601 time of day.")

# category -> scalar (enums get their own GraphQL enum type, built by the schema)
SCALARS: dict[TypeCategory, GraphQLScalarType] = {
    "bool": GraphQLBoolean, "int": GraphQLInt, "bigint": BigIntScalar, "float": GraphQLFloat,
    "numeric": DecimalScalar, "text": GraphQLString, "uuid": UUIDScalar, "json": JSONScalar,
    "date": DateScalar, "time": TimeScalar, "timestamp": DateTimeScalar, "timestamptz": DateTimeScalar,
    "interval": GraphQLString, "bytea": GraphQLString, "tsvector": GraphQLString, "range": GraphQLString,
    "enum": GraphQLString, "other": GraphQLString,
}

# Categories whose values PostgreSQL must render as text for the GraphQL value (see BigInt).
OUTPUT_CAST: dict[TypeCategory, str] = {"bigint": "text", "numeric": "text"}

_ORDERED = ("eq", "neq", "gt", "gte", "lt", "lte", "in", "is", "isdistinct")
# scalar name -> the REST operators its comparison input offers (lists: see LIST_OPERATORS)
OPERATORS: dict[str, tuple[str, ...]] = {
    "String": (*_ORDERED, "like", "ilike", "match", "imatch", "fts", "plfts", "phfts", "wfts"),
    "Int": _ORDERED, "BigInt": _ORDERED, "Float": _ORDERED, "Decimal": _ORDERED, "UUID": _ORDERED,
    "DateTime": _ORDERED, "Date": _ORDERED, "Time": _ORDERED,
    "Boolean": ("eq", "neq", "is", "isdistinct"),
    "JSON": ("eq", "neq", "is", "isdistinct", "cs", "cd", "has_key", "has_any_keys", "has_all_keys"),
}
ENUM_OPERATORS: tuple[str, ...] = _ORDERED
LIST_OPERATORS: tuple[str, ...] = ("eq", "neq", "is", "isdistinct", "cs", "cd", "ov")
# operators whose input is not the compared column's own type
KEY_OPERATORS: frozenset[str] = frozenset({"has_key", "has_any_keys", "has_all_keys"})


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    text = filter_text(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_text(value: Any) -> str:
    """A GraphQL input value as the text REST would have sent (``?col=op.<text>``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):  # an array column compared whole: a PostgreSQL array literal
        return "{" + ",".join(_array_element(v) for v in value) + "}"
    return orjson.dumps(value).decode()  # JSON values


def body_value(value: Any) -> Any:
    """A GraphQL input value as a decoded JSON body value (insert rows, update sets, call args)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):
        return [body_value(v) for v in value]
    return value
