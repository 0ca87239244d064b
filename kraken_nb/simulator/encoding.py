"""JSON text with exact ``Decimal`` numbers, the way Kraken prints them.

``json.dumps`` cannot write a ``Decimal`` as a bare number, and a float would
add binary noise, so frames are built here: a ``Decimal`` is written with all
its digits and trailing fractional zeros dropped (``4.00000000`` → ``4.0``,
``0.00011621`` → ``0.00011621``), as Kraken does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

__all__ = ["decimal_text", "dumps"]


def decimal_text(value: Decimal) -> str:
    """The JSON number text of ``value``: plain notation, trailing fractional zeros dropped."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0")
        if text.endswith("."):
            text += "0"
    return text


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
