"""Exact decoding of wire numbers and the text helpers of the book checksum.

Kraken sends prices and quantities as JSON numbers. A binary float cannot
hold every one of them (``12345678.12345678`` does not survive), so the book
decodes them with ``parse_float=Decimal`` and formats them back exactly.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

__all__ = ["checksum_of", "level_text", "loads_exact", "number_text", "to_decimal"]

_decode_exact = json.JSONDecoder(parse_float=Decimal).decode


def loads_exact(text: str | bytes) -> Any:
    """Decode a JSON frame keeping every non-integer number as an exact ``Decimal``."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    return _decode_exact(text)


def to_decimal(value: Decimal | float | int | str) -> Decimal:
    """Convert a wire value to ``Decimal`` without picking up binary noise.

    Floats go through ``repr`` (the shortest text that round-trips), which is
    the number as it was written on the wire whenever the float could hold it.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, (int, str)):
        return Decimal(value)
    raise TypeError(f"not a number: {value!r}")


def level_text(price: Decimal, qty: Decimal, price_precision: int, qty_precision: int) -> str:
    """One level's contribution to the checksum string.

    Each number is formatted with its precision, the decimal point removed and
    leading zeros stripped: ``29430.3`` at precision 1 gives ``294303`` and
    ``0.00011621`` at precision 8 gives ``11621``.
    """
    return number_text(price, price_precision) + number_text(qty, qty_precision)


def number_text(value: Decimal, precision: int) -> str:
    """``value`` at ``precision`` decimals, without the point and leading zeros.

    Wire values rarely carry more decimals than their precision, so the fast
    path pads ``str(value)``; exponents, signs, special values and longer
    fractions take the exact ``format`` path (which rounds like Kraken's).
    """
    text = str(value)
    head, _, fraction = text.partition(".")
    if len(fraction) <= precision and "E" not in text and text[0].isdigit():
        return (head + fraction + "0" * (precision - len(fraction))).lstrip("0")
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


def checksum_of(asks_best_first: Iterable[str], bids_best_first: Iterable[str]) -> int:
    """Unsigned CRC32 of the top-10 asks then top-10 bids, given their level texts."""
    text = "".join(asks_best_first) + "".join(bids_best_first)
    return zlib.crc32(text.encode("ascii"))
