"""Decoding of wire frames and the exact text helpers of the book checksum.

Kraken sends prices and quantities as JSON numbers. A binary float holds any
decimal of at most 15 significant digits exactly in the sense that matters
here: its ``repr`` is that decimal again. Longer numbers (8 integer + 8
fraction digits occur on low-priced pairs) do not survive a float. Frames are
therefore decoded with ``orjson`` into floats, and the order book checks
every value it formats (``float_text``): when one may have lost digits, the
frame is decoded again with ``loads_exact`` (``Decimal`` for every
non-integer). Either way the checksum text is built from the exact wire digits.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import orjson

__all__ = [
    "EXACT_UNITS",
    "checksum_of",
    "dumps_exact",
    "float_text",
    "level_text",
    "loads",
    "loads_exact",
    "number_text",
    "to_decimal",
]

_decode_exact = json.JSONDecoder(parse_float=Decimal).decode
_TOO_DEEP = "depth limit exceeded"  # how orjson words nesting past its limit


def loads(text: str | bytes) -> Any:
    """Decode a JSON frame with floats (``orjson``); raises ``ValueError`` on invalid JSON.

    Nesting deeper than ``orjson``'s limit (1024) is refused outright: the
    standard decoder could not read it either.
    """
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith(_TOO_DEEP):
            raise ValueError(f"JSON nested too deeply ({exc})") from None
        # The standard decoder words the error (and accepts NaN, Infinity and
        # 1e999, which the schema refuses).
        return loads_exact(bytes(text) if isinstance(text, (memoryview, bytearray)) else text)


def loads_exact(text: str | bytes) -> Any:
    """Decode a JSON frame keeping every non-integer number as an exact ``Decimal``.

    Raises ``ValueError`` on invalid JSON, including nesting too deep for the
    standard decoder (which would otherwise raise ``RecursionError``).
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8")
    try:
        return _decode_exact(text)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps_exact(obj: Any) -> bytes:
    """Encode ``obj`` as compact JSON, writing every ``Decimal`` as a bare number with all its digits.

    The inverse of :func:`loads_exact` for the frames Kraken sends: ``1797.30``
    stays ``1797.30`` (never a float's ``1797.3``, never a string). A number
    Kraken wrote in exponent form (``1e-08``) comes back in plain notation
    (``0.00000001``): the same value and digits.
    """
    return orjson.dumps(obj, default=_exact_number)


def _exact_number(value: Any) -> orjson.Fragment:
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(format(value, "f"))
    raise TypeError(f"cannot encode {type(value).__name__} as a JSON number: {value!r}")


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


EXACT_UNITS = 10**15
"""A value ``v`` at precision ``p`` has at most 15 digits when ``v * 10**p`` is below this."""


def float_text(value: float, precision: int) -> str | None:
    """``number_text`` of a decoded float, or None when the float may have lost wire digits.

    A decimal of at most 15 significant digits survives the float. A wire
    value with at most ``precision`` decimals has at most 15 digits exactly
    when ``value * 10**precision`` rounds below 10**15; past that the frame
    must be decoded with Decimals. A value with more decimals than its
    precision is formatted (and rounded) from its ``repr``.
    """
    if precision > 15:
        return number_text(value, precision)
    scale = 10.0**precision
    scaled = value * scale
    if not -EXACT_UNITS < scaled < EXACT_UNITS:  # also ±inf (1e308 * 10) and NaN: round() cannot take them
        return None
    units = round(scaled)
    if units >= EXACT_UNITS:
        return None
    if units / scale == value:
        return str(units) if units else ""
    return number_text(value, precision)


def checksum_of(asks_best_first: Iterable[str], bids_best_first: Iterable[str]) -> int:
    """Unsigned CRC32 of the top-10 asks then top-10 bids, given their level texts."""
    text = "".join(asks_best_first) + "".join(bids_best_first)
    return zlib.crc32(text.encode("ascii"))
