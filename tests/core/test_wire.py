"""Exact decoding: the float fast path only where floats keep the wire digits."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from kraken_nb.core.wire import level_text, loads, loads_exact, number_text


@pytest.mark.parametrize(
    "frame",
    [
        '{"qty":12345678.12345679}',
        '{"qty": 12345678.12345679}',
        '{"qty":\n\t12345678.12345679}',
        b'{"qty":12345678.12345679}',
        bytearray(b'{"qty":12345678.12345679}'),
        '{"qty":0.1234567890123456}',
        '{"qty":-1234567.123456789}',
    ],
)
def test_long_numbers_take_the_exact_path(frame):
    """16+ digits (or a long integer) in a value: decoded exactly, whatever the spacing."""
    value = loads(frame)["qty"]
    assert isinstance(value, Decimal)
    assert value == loads_exact(bytes(frame) if isinstance(frame, bytearray) else frame)["qty"]


@pytest.mark.parametrize(
    "frame",
    [
        '{"price":29430.3,"qty":0.00011621,"id":123456789012345}',
        '{"price": 0.5666, "qty": 18097.1547}',
        b'{"price":1234567.1234567,"qty":4.0}',
        '{"t":"2023-09-25T09:04:31.742599Z","note":"12345678.12345679"}',
    ],
)
def test_short_numbers_take_the_float_path(frame):
    decoded, exact = loads(frame), loads_exact(frame)
    assert not any(isinstance(v, Decimal) for v in decoded.values())
    for key, value in decoded.items():
        assert (Decimal(repr(value)) if isinstance(value, float) else value) == exact[key]


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


def test_level_text_examples():
    assert level_text(29430.3, 0.00011621, 1, 8) == "294303" + "11621"
    assert level_text(Decimal("0.5666"), Decimal("18097.1547"), 4, 8) == "5666" + "1809715470000"
    assert level_text(0.00001234, 1e-05, 8, 8) == "1234" + "1000"
