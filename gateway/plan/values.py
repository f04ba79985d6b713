"""Value checks for the planner: caller values against column types.

In:  a ``catalog.Column`` and a value — a string from a URL filter, or a decoded
     JSON value from a request body.
Out: nothing when the value can be stored in the column; a 400 GatewayError
     naming the field otherwise.

PostgreSQL still does the real conversion (every value reaches it as text or
JSON and is cast there); these checks exist to answer the common mistakes with
a message that names the field instead of PostgreSQL's
``invalid input syntax for type integer``. They are deliberately conservative:
anything they let through that PostgreSQL then refuses still becomes a 400.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from .. import errors
from ..catalog import Column
from ..pgtext import array_literal

_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_UUID = re.compile(r"^\{?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\}?$")
_BOOL_WORDS = {"t", "f", "true", "false", "y", "n", "yes", "no", "on", "off", "1", "0"}
_INT_RANGE = {"int": (-(2**31), 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}


def _is_number_text(s: str) -> bool:
    try:
        Decimal(s.strip())
    except InvalidOperation:
        return s.strip().lower() in {"nan", "infinity", "-infinity", "+infinity"}
    return True


def _int_ok(col: Column, v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, str):
        if not _INT.match(v):
            return False
        v = int(v)
    integral_float = isinstance(v, float) and v.is_integer()
    integral_decimal = isinstance(v, Decimal) and v.is_finite() and v == v.to_integral_value()
    if integral_float or integral_decimal:
        v = int(v)
    if not isinstance(v, int):
        return False
    lo, hi = _int_range(col)
    return lo <= v <= hi


def _int_range(col: Column) -> tuple[int, int]:
    if col.udt == "int2":
        return -(2**15), 2**15 - 1
    return _INT_RANGE.get(col.category, (-(2**63), 2**63 - 1))


# (category -> (accepts(col, value), expected-type words)) for body values
_BODY_RULES: dict[str, tuple[Callable[[Column, Any], bool], str]] = {
    "bool": (lambda c, v: isinstance(v, bool) or (isinstance(v, str) and v.strip().lower() in _BOOL_WORDS),
             "boolean"),
    "int": (_int_ok, "integer"),
    "bigint": (_int_ok, "integer"),
    "float": (lambda c, v: (isinstance(v, int | float | Decimal) and not isinstance(v, bool))
              or (isinstance(v, str) and _is_number_text(v)), "number"),
    "numeric": (lambda c, v: (isinstance(v, int | float | Decimal) and not isinstance(v, bool))
                or (isinstance(v, str) and _is_number_text(v)), "number"),
    "uuid": (lambda c, v: isinstance(v, str) and bool(_UUID.match(v.strip())), "uuid"),
    "text": (lambda c, v: isinstance(v, str | int | float | Decimal | bool), "string"),
    "date": (lambda c, v: isinstance(v, str), "date string"),
    "time": (lambda c, v: isinstance(v, str), "time string"),
    "timestamp": (lambda c, v: isinstance(v, str), "timestamp string"),
    "timestamptz": (lambda c, v: isinstance(v, str), "timestamp string"),
    "interval": (lambda c, v: isinstance(v, str | int | float | Decimal) and not isinstance(v, bool), "interval"),
    "enum": (lambda c, v: isinstance(v, str) and (not c.enum_values or v in c.enum_values), "enum value"),
}


def check_body_value(col: Column, value: Any) -> None:
    """Refuse a JSON body value that cannot be stored in ``col``."""
    if value is None:
        return
    if col.is_array:
        if isinstance(value, list) or (isinstance(value, str) and value.strip().startswith("{")):
            return
        raise _type_error(col, "array", value)
    rule = _BODY_RULES.get(col.category)
    if rule is None:
        return  # json, bytea, ranges, other: PostgreSQL decides
    accepts, expected = rule
    if not accepts(col, value):
        if col.category == "enum" and col.enum_values:
            raise errors.validation_error(
                f"Invalid value for '{col.name}': expected one of {', '.join(col.enum_values)}, got {_shown(value)}",
                code="22P02")
        if col.category in _INT_RANGE and isinstance(value, int) and not isinstance(value, bool):
            lo, hi = _int_range(col)  # a whole number, just too large or too small for the column
            raise errors.validation_error(f"Value {value} for '{col.name}' is out of range for {col.udt} "
                                          f"({lo} to {hi})", code="22003")
        raise _type_error(col, expected, value)


def _type_error(col: Column, expected: str, value: Any) -> errors.GatewayError:
    return errors.validation_error(f"Invalid field type: expected {expected} for '{col.name}', got {_shown(value)}",
                                   code="22P02")


def _shown(value: Any) -> str:
    """A body value as an error message quotes it: JSON-like, shortened."""
    text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= 40 else text[:37] + "..."


# (category -> accepts(text)) for URL filter values
_FILTER_RULES: dict[str, Callable[[str], bool]] = {
    "int": lambda s: bool(_INT.match(s)),
    "bigint": lambda s: bool(_INT.match(s)),
    "float": _is_number_text,
    "numeric": _is_number_text,
    "uuid": lambda s: bool(_UUID.match(s.strip())),
    "bool": lambda s: s.strip().lower() in _BOOL_WORDS,
}


def check_filter_value(col: Column | None, name: str, value: Any) -> None:
    """Refuse a filter value that cannot be compared with ``col`` (None: JSON path, anything goes)."""
    if col is None or col.is_array or value is None:
        return
    accepts = _FILTER_RULES.get(col.category)
    if accepts is not None and not accepts(str(value)):
        raise errors.validation_error(
            f"Invalid value '{value}' for column '{name}' of type {col.type}", code="22P02")


pg_array_literal = array_literal  # the planner's name for it
