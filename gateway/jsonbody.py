"""Request-body JSON that keeps every digit.

In:  a request body (bytes) from either front end; decoded values on their way back to PostgreSQL.
Out: Python values (``loads``), and JSON text (``dumps``) in which every number reads exactly as
     the caller wrote it.

orjson decodes a number into a float (about 16 significant digits) and refuses integers
beyond 64 bits, so ``12345678901234567890.123`` would reach a ``numeric`` column rounded.
Bodies with a run of 16 or more digits are decoded by the standard library instead, with those
numbers as ``Decimal``; ``dumps`` writes a ``Decimal`` back as the same JSON number. Every other
body keeps orjson's speed.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import orjson

_LONG_NUMBER = re.compile(rb"\d{16,}")
_INT64_DIGITS = 18  # any integer of up to 18 digits fits in 64 bits


class JsonError(ValueError):
    """The body is not JSON."""


def _int(text: str) -> int | Decimal:
    return int(text) if len(text.lstrip("-")) <= _INT64_DIGITS else Decimal(text)


def _no_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON value")


def loads(body: bytes | str) -> Any:
    """Decode ``body``; numbers that a float or a 64-bit integer cannot hold exactly become Decimal."""
    raw = body.encode() if isinstance(body, str) else body
    if _LONG_NUMBER.search(raw) is None:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise JsonError(str(exc)) from None
    try:
        return json.loads(raw, parse_float=Decimal, parse_int=_int, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise JsonError(str(exc)) from None


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON")


def dumps(value: Any) -> str:
    """JSON text of ``value``; a Decimal is written as the number it holds, digit for digit."""
    return orjson.dumps(value, default=_number).decode()
