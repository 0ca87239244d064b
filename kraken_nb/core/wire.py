"""Exact decoding of wire numbers and the text helpers of the book checksum.

Kraken sends prices and quantities as JSON numbers. A binary float holds any
decimal of at most 15 significant digits exactly in the sense that matters
here: its ``repr`` is that decimal again. Longer numbers (8 integer + 8
fraction digits occur on low-priced pairs) do not survive a float. ``loads``
therefore takes the fast ``orjson`` path when no number in the frame is that
long, and decodes the frame with ``parse_float=Decimal`` otherwise; either
way every number formats back to its exact wire digits.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

__all__ = ["checksum_of", "level_text", "loads", "loads_exact", "number_text", "to_decimal"]

_decode_exact = json.JSONDecoder(parse_float=Decimal).decode
# A JSON value of 16 or more digits and points: it may not fit a float (or it is a long
# integer, which would be exact anyway: such frames merely take the slower exact path).
# Compact frames (Kraken's) need only the tight pattern; a frame with whitespace gets
# the loose one, which also allows whitespace after the colon.
_LONG_VALUE = re.compile(r":-?[0-9.]{16}")
_LONG_VALUE_SPACED = re.compile(r":\s*-?[0-9.]{16}")
_LONG_VALUE_BYTES = re.compile(rb":-?[0-9.]{16}")
_LONG_VALUE_SPACED_BYTES = re.compile(rb":\s*-?[0-9.]{16}")


def _fits_floats(text: str | bytes) -> bool:
    """Whether every number in the frame has at most 15 significant digits."""
    if isinstance(text, str):
        compact = " " not in text and "\n" not in text and "\t" not in text and "\r" not in text
        pattern = _LONG_VALUE if compact else _LONG_VALUE_SPACED
    else:
        compact = b" " not in text and b"\n" not in text and b"\t" not in text and b"\r" not in text
        pattern = _LONG_VALUE_BYTES if compact else _LONG_VALUE_SPACED_BYTES
    return pattern.search(text) is None  # type: ignore[arg-type]


def loads(text: str | bytes, *, exact: bool = True) -> Any:
    """Decode a frame so that every number keeps its exact wire value.

    Floats when every number has at most 15 significant digits (``orjson``;
    such a float's ``repr`` is the wire number), ``Decimal`` for every
    non-integer otherwise. ``exact=False`` always gives floats (for data that
    ends up as float64 anyway). Raises ``ValueError`` on invalid JSON.
    """
    if isinstance(text, (memoryview, bytearray)):
        text = bytes(text)
    if not exact or _fits_floats(text):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # the standard decoder words the error (and accepts NaN, which the book refuses)
    return loads_exact(text)


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


def number_text(value: Decimal | float, precision: int) -> str:
    """``value`` at ``precision`` decimals, without the point and leading zeros.

    ``value`` is a ``Decimal`` or a float whose ``repr`` is the wire text.
    Wire values rarely carry more decimals than their precision, so the fast
    path pads ``str(value)``; exponents, signs, special values and longer
    fractions take the ``format`` path.
    """
    text = str(value)
    head, _, fraction = text.partition(".")
    if len(fraction) <= precision and text[0].isdigit() and "e" not in text and "E" not in text:
        return (head + fraction + "0" * (precision - len(fraction))).lstrip("0")
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


def checksum_of(asks_best_first: Iterable[str], bids_best_first: Iterable[str]) -> int:
    """Unsigned CRC32 of the top-10 asks then top-10 bids, given their level texts."""
    text = "".join(asks_best_first) + "".join(bids_best_first)
    return zlib.crc32(text.encode("ascii"))
