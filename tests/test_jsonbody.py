"""Request bodies keep every digit: numbers a float or a 64-bit integer cannot hold arrive exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gateway import jsonbody


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": 1.5, "b": 2}', {"a": 1.5, "b": 2}),
    ('{"n": 12345678901234567890.123456789}', {"n": Decimal("12345678901234567890.123456789")}),
    ('{"n": 123456789012345678901234567890}', {"n": Decimal("123456789012345678901234567890")}),
    ('{"n": 1234567890123456789}', {"n": Decimal("1234567890123456789")}),
    ('{"n": 123456789012345678}', {"n": 123456789012345678}),
    ('[{"s": "1234567890123456789"}]', [{"s": "1234567890123456789"}]),
])
def test_numbers_decode_without_losing_digits(text: str, expected: object) -> None:
    assert jsonbody.loads(text.encode()) == expected


@pytest.mark.parametrize("text", [
    '{"n": 12345678901234567890.123456789, "m": [1, 2.5, 99999999999999999999]}',
    '{"n": -0.000000000000000012345678901234567}',
    '{"a": 1.5, "b": "x", "c": null, "d": true}',
])
def test_numbers_encode_back_digit_for_digit(text: str) -> None:
    again = jsonbody.dumps(jsonbody.loads(text.encode()))
    assert jsonbody.loads(again.encode()) == jsonbody.loads(text.encode())
    for token in ("12345678901234567890.123456789", "99999999999999999999"):
        if token in text:
            assert token in again


@pytest.mark.parametrize("text", ["not json", '{"n": NaN, "x": 12345678901234567890}', "{", '{"a": 1}}'])
def test_anything_but_json_is_refused(text: str) -> None:
    with pytest.raises(jsonbody.JsonError):
        jsonbody.loads(text.encode())
