"""Exact decoding: the float fast path only where floats keep the wire digits."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from kraken_nb.core.wire import dumps_exact, float_text, level_text, loads, loads_exact, number_text


@pytest.mark.parametrize(
    "frame",
    [
        '{"price":29430.3,"qty":0.00011621,"id":123456789012345}',
        '{"price": 0.5666, "qty": 18097.1547}',
        b'{"price":1234567.1234567,"qty":4.0}',
        bytearray(b'{"price":1.5,"qty":2.25}'),
    ],
)
def test_loads_gives_floats_whose_repr_is_the_wire_number(frame):
    decoded = loads(frame)
    exact = loads_exact(bytes(frame) if isinstance(frame, bytearray) else frame)
    for key, value in decoded.items():
        assert not isinstance(value, Decimal)
        assert (Decimal(repr(value)) if isinstance(value, float) else value) == exact[key]


def test_loads_exact_keeps_long_numbers():
    assert loads_exact('{"qty":12345678.12345679}')["qty"] == Decimal("12345678.12345679")
    assert loads_exact(b'{"qty":0.1234567890123456}')["qty"] == Decimal("0.1234567890123456")


def test_invalid_json_raises_value_error():
    with pytest.raises(ValueError):
        loads("{not json")
    with pytest.raises(ValueError):
        loads(b"\xff")


def test_floats_of_up_to_15_digits_format_like_their_decimals():
    """The fast path is exact: a float of a ≤15-digit decimal formats to the same checksum digits."""
    rng = random.Random(5)
    for _ in range(100_000):
        digits = rng.randint(1, 15)
        scale = rng.randint(0, min(digits, 12))
        text = str(Decimal(rng.randrange(1, 10**digits)).scaleb(-scale))
        precision = rng.randint(scale, scale + 4)
        value = float(text)
        assert Decimal(repr(value)) == Decimal(text), text
        assert number_text(value, precision) == number_text(Decimal(text), precision), (text, precision)


def test_float_text_is_the_decimal_text_up_to_15_digits():
    rng = random.Random(7)
    for _ in range(100_000):
        digits = rng.randint(1, 15)
        precision = rng.randint(0, min(digits, 12))
        text = str(Decimal(rng.randrange(1, 10**digits)).scaleb(-precision))
        assert float_text(float(text), precision) == number_text(Decimal(text), precision), text


def test_float_text_refuses_values_a_float_may_not_carry():
    rng = random.Random(8)
    for _ in range(10_000):
        precision = rng.randint(0, 12)
        text = str(Decimal(rng.randrange(10**15, 10**17)).scaleb(-precision))
        assert float_text(float(text), precision) is None, text
    assert float_text(12345678.12345678, 8) is None
    assert float_text(1234567.12345678, 8) == "123456712345678"


def test_float_text_rounds_values_with_more_decimals_than_their_precision():
    assert float_text(0.123456789, 8) == number_text(0.123456789, 8) == "12345679"
    assert float_text(0.0, 8) == ""


def test_level_text_examples():
    assert level_text(29430.3, 0.00011621, 1, 8) == "294303" + "11621"
    assert level_text(Decimal("0.5666"), Decimal("18097.1547"), 4, 8) == "5666" + "1809715470000"
    assert level_text(0.00001234, 1e-05, 8, 8) == "1234" + "1000"


@pytest.mark.parametrize("decode", [loads, loads_exact], ids=["loads", "loads_exact"])
@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000, b"[" * 3000 + b"]" * 3000],
    ids=["deep-list", "deep-object", "deep-bytes"],
)
def test_nesting_too_deep_is_a_value_error_not_a_recursion_error(decode, text):
    with pytest.raises(ValueError, match="nested too deeply"):
        decode(text)


@pytest.mark.parametrize("value", [1e308, -1e308, float("inf"), float("nan"), 9.9e307])
def test_float_text_of_a_value_too_large_for_its_precision_asks_for_exact_decoding(value):
    assert float_text(value, 1) is None


def test_dumps_exact_writes_decimals_as_bare_numbers_with_every_digit():
    text = '{"price":1797.30,"qty":12345678.12345678,"zero":0.00000000,"n":7,"s":"a","x":[true,null]}'
    assert dumps_exact(loads_exact(text)) == text.encode()
    assert dumps_exact({"qty_increment": loads_exact("1e-08")}) == b'{"qty_increment":0.00000001}'
    with pytest.raises(TypeError):
        dumps_exact({"bad": Decimal("NaN")})
