"""JSON text with exact numbers, the way Kraken prints them.

Kraken prints every price and quantity as a bare JSON number at the pair's
precision, trailing zeros kept (``"qty":0.10000000``, ``"price":1797.30``, a
delete is ``"qty":0.00000000``), so a client can build the book checksum from
the wire text. ``json.dumps`` cannot write a ``Decimal`` as a bare number, and
a float would lose the zeros, so frames are built here: a ``Decimal`` is
written in plain notation with exactly its own exponent (a value made with
``Decimal(units).scaleb(-precision)`` carries the precision), and
:func:`fixed_text` writes an integer count of ``10**-precision`` steps the same
way without a ``Decimal``. A float is written as its shortest ``repr``, which
is the form Kraken uses for the instrument channel's reference values
(``"qty_increment":1e-08``, ``"cost_min":0.5``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

__all__ = ["decimal_text", "dumps", "fixed_text"]


def decimal_text(value: Decimal) -> str:
    """The JSON number text of ``value``: plain notation with all its digits (``0.10000000``)."""
    return format(value, "f")


def fixed_text(units: int, precision: int) -> str:
    """The number ``units * 10**-precision`` with exactly ``precision`` decimals.

    ``fixed_text(12345, 2)`` is ``"123.45"``, ``fixed_text(10, 8)`` is
    ``"0.00000010"``, ``fixed_text(0, 8)`` is ``"0.00000000"``.
    """
    if precision <= 0:
        return str(units)
    if units < 0:
        return "-" + fixed_text(-units, precision)
    digits = str(units).rjust(precision + 1, "0")
    return f"{digits[:-precision]}.{digits[-precision:]}"


def dumps(obj: Any) -> str:
    """Serialise ``obj`` (dicts, lists, str, int, bool, None, float, Decimal) as compact JSON."""
    parts: list[str] = []
    _write(obj, parts.append)
    return "".join(parts)


def _write(obj: Any, out: Callable[[str], None]) -> None:
    if isinstance(obj, str):
        out(encode_basestring_ascii(obj))
    elif obj is None:
        out("null")
    elif obj is True:
        out("true")
    elif obj is False:
        out("false")
    elif isinstance(obj, Decimal):
        out(decimal_text(obj))
    elif isinstance(obj, int):
        out(int.__repr__(obj))
    elif isinstance(obj, float):
        out(float.__repr__(obj))
    elif isinstance(obj, Mapping):
        out("{")
        first = True
        for key, value in obj.items():
            if not first:
                out(",")
            first = False
            out(encode_basestring_ascii(str(key)))
            out(":")
            _write(value, out)
        out("}")
    elif isinstance(obj, (list, tuple)):
        out("[")
        for index, value in enumerate(obj):
            if index:
                out(",")
            _write(value, out)
        out("]")
    else:
        raise TypeError(f"cannot encode {type(obj).__name__} as JSON: {obj!r}")
