"""Exact decimal columns: the pairs' precisions, the check on arrival, and ``decimal128`` arrays.

Why the buffers can store float64 and still give every wire value back: a
binary float holds any decimal of at most 15 significant digits in the sense
that matters, its ``repr`` is that decimal again. Kraken prints prices and
quantities at the pair's precision ``p``, so a value ``v`` has at most 15
digits exactly when ``|v| · 10**p < 10**15`` (the rule of
:func:`kraken_nb.core.wire.float_text` and the order book).

* **On arrival** the buffers compare every price and quantity with that limit
  (two float comparisons per value). A float past it may have lost digits: the
  buffer stores the row and notes the value as a *suspect*; the session, which
  holds the frame's text, reads those numbers' exact digits from it
  (:func:`wire_numbers`, checked against the float; a full ``Decimal`` decode
  of the frame when that is ambiguous) and hands them back
  (:meth:`~kraken_nb.core.buffers.ColumnarBuffer.resolve`). A Decimal past the
  limit (from the exact decoder) is checked at once. A value whose float does
  not give its digits back is kept exactly in the buffer's small side table
  (in 65 s of simulator data: a few hundred ticker volumes, a handful of trade
  and book quantities). Without the instrument channel the limit uses
  :data:`FALLBACK_PRECISION`, which is conservative: it reads more values from
  the text, it never lets one through.
* **On request** (``exact=True``) :func:`decimal_array` turns a float column
  plus its side-table entries into ``decimal128(18, s)``, vectorised:
  ``round(v · 10**s)`` is the exact integer for every value under the limit,
  the rare others go through ``Decimal``. The scale ``s`` starts at the pair's
  precision and grows when a value has more decimals than that (a value is
  never rounded). 18 digits is the range of int64 units, so a product of two
  such columns (``price * qty``, 37 digits) still fits ``decimal128``; a column
  holding a value of more than 18 digits becomes ``decimal128(38, s)``.

What this relies on: a value whose wire text has more decimals than the pair's
precision *and* more than 15 significant digits cannot be told from its float
on arrival; Kraken prints values at the pair's precision, so it does not occur.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from kraken_nb.core.wire import EXACT_UNITS, to_decimal
from kraken_nb.errors import InvalidParams

__all__ = [
    "DECIMAL_DIGITS",
    "FALLBACK_LIMITS",
    "FALLBACK_PRECISION",
    "PERCENT_PRECISION",
    "ExactRow",
    "Precisions",
    "decimal_array",
    "exact_entries",
    "float_holds",
    "wire_numbers",
]

FALLBACK_PRECISION: Final = 10
"""Precision assumed by the arrival check for a pair the instrument channel has not described."""

PERCENT_PRECISION: Final = 2
"""Decimals of a percentage such as the ticker's ``change_pct``."""

DECIMAL_DIGITS: Final = 18
"""Digits of an exact column (widened to 38 for a column holding a longer value)."""

_WIDE_DIGITS: Final = 38
_MASK64: Final = (1 << 64) - 1
_SIGN64: Final = 1 << 63


def limit_of(precision: int) -> float:
    """The magnitude from which a value at ``precision`` may have more than 15 digits."""
    return EXACT_UNITS / 10.0**precision


FALLBACK_LIMITS: Final = (limit_of(FALLBACK_PRECISION), limit_of(FALLBACK_PRECISION))
"""The arrival limits of prices and quantities of a pair of unknown precision."""


class Precisions:
    """Price and quantity precisions per symbol, from the instrument channel; shared by the buffers.

    ``limits`` holds, per symbol, the arrival limits of its prices and of its
    quantities (see the module docstring).
    """

    def __init__(self) -> None:
        self._pairs: dict[str, tuple[int, int]] = {}
        self.limits: dict[str, tuple[float, float]] = {}

    def set(self, symbol: str, price_precision: int, qty_precision: int) -> None:
        """Record one pair's precisions."""
        self._pairs[symbol] = (price_precision, qty_precision)
        self.limits[symbol] = (limit_of(price_precision), limit_of(qty_precision))

    def replace(self, pairs: Iterable[Mapping[str, Any]]) -> list[str]:
        """Take the precisions of instrument ``pairs``; return the symbols whose precisions are unusable."""
        bad: list[str] = []
        for pair in pairs:
            symbol = pair.get("symbol")
            price, qty = pair.get("price_precision"), pair.get("qty_precision")
            if (
                isinstance(symbol, str)
                and type(price) is int
                and type(qty) is int
                and 0 <= price <= _WIDE_DIGITS
                and 0 <= qty <= _WIDE_DIGITS
            ):
                self.set(symbol, price, qty)
            else:
                bad.append(str(symbol))
        return bad

    def clear(self) -> None:
        """Forget every pair (a new instrument snapshot follows)."""
        self._pairs.clear()
        self.limits.clear()  # cleared in place: the buffers hold this dict

    def get(self, symbol: str) -> tuple[int, int] | None:
        """``(price_precision, qty_precision)`` of ``symbol``, or None when unknown."""
        return self._pairs.get(symbol)

    def limits_of(self, symbol: str) -> tuple[float, float]:
        """The arrival limits of ``symbol``'s prices and quantities (conservative when unknown)."""
        return self.limits.get(symbol, FALLBACK_LIMITS)

    def scale(self, kind: str, symbols: Iterable[str]) -> int:
        """The starting scale of a ``kind`` ("price", "qty", "percent") column holding ``symbols``.

        The largest known precision among them; 0 when none is known (the data
        then decides, see :func:`decimal_array`).
        """
        if kind == "percent":
            return PERCENT_PRECISION
        at = 0 if kind == "price" else 1
        known = [pair[at] for symbol in symbols if (pair := self._pairs.get(symbol)) is not None]
        return max(known, default=0)

    def __len__(self) -> int:
        return len(self._pairs)


class ExactRow(tuple):  # type: ignore[type-arg]
    """A converted row (storage values) with exact values known (``exact``) or to read (``suspects``).

    ``suspects`` names the float fields that may have lost digits; ``position``
    is the row's index in its frame's ``data`` (for reading them from the text).
    """

    exact: dict[str, Decimal]
    suspects: tuple[str, ...] = ()
    position: int = 0


def exact_entries(
    values: tuple[Any, ...],
    row: Mapping[str, Any],
    checks: Iterable[tuple[str, int, float]],
) -> tuple[Any, ...]:
    """``values``, or an :class:`ExactRow` noting the values a float may not hold.

    ``checks`` lists ``(field, index in values, arrival limit)``. A float past
    its limit becomes a suspect (its digits are read from the frame's text);
    an exact wire value (Decimal, int, str) past it is kept when its float does
    not give it back.
    """
    exact: dict[str, Decimal] = {}
    suspects: list[str] = []
    for name, index, limit in checks:
        value = values[index]
        if -limit < value < limit or value != value:  # within the limit, or NaN (a missing value)
            continue
        raw = row[name]
        if type(raw) is float:
            suspects.append(name)
            continue
        number = to_decimal(raw)
        if to_decimal(value) != number:
            exact[name] = number
    if not exact and not suspects:
        return values
    kept = ExactRow(values)
    kept.exact = exact
    kept.suspects = tuple(suspects)
    return kept


_VALUE = re.compile(r"\s*:\s*([^\s,}\]]*)")
"""What follows a key: the colon and the value's text."""


def wire_numbers(text: str, field: str, count: int) -> list[Decimal | None] | None:
    """The exact numbers of every ``"field": number`` in ``text``, in order, if there are ``count``.

    Ticker, trade and ohlc rows hold each field once and nothing nested, so
    the n-th occurrence is row n's. None when the key occurs another number of
    times (the caller decodes the whole frame instead); an entry is None where
    the value is not a plain number.
    """
    key = f'"{field}"'
    numbers: list[Decimal | None] = []
    at = text.find(key)
    while at >= 0:
        at += len(key)
        value = _VALUE.match(text, at)
        if value is not None:  # a key (a string value equal to the key has no colon after it)
            if len(numbers) == count:
                return None
            try:
                numbers.append(Decimal(value.group(1)))
            except InvalidOperation:
                numbers.append(None)
        at = text.find(key, at)
    return numbers if len(numbers) == count else None


def float_holds(value: float, number: Decimal) -> bool:
    """Whether ``value``'s shortest text is ``number`` (the float gives the wire value back)."""
    return to_decimal(value) == number


def _units(number: Decimal, scale: int) -> int:
    """``number · 10**scale`` as an int (exact: ``number`` has at most ``scale`` decimals)."""
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    units = int("".join(map(str, digits)) or "0") * 10 ** (exponent + scale)
    return -units if sign else units


def _decimals(number: Decimal) -> int:
    exponent = number.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def decimal_array(
    values: npt.ArrayLike, exact: Mapping[int, Decimal], scale: int, what: str = "column"
) -> pd.api.extensions.ExtensionArray:
    """An exact ``decimal128(18 or 38, s)`` array of float ``values``; ``exact`` overrides positions.

    ``s`` is at least ``scale`` and as many decimals as any value has; NaN (a
    missing value) and infinities become ``<NA>``. Values under the 15-digit
    limit at ``s`` are converted in bulk; the others (and every ``exact``
    entry) through ``Decimal``.
    """
    floats = np.ascontiguousarray(values, dtype=np.float64)
    count = len(floats)
    valid = np.isfinite(floats)
    finite = np.where(valid, floats, 0.0)
    magnitude = np.abs(finite)
    if exact:
        scale = max(scale, *(_decimals(number) for number in exact.values()))
        overridden = np.zeros(count, dtype=bool)
        overridden[np.fromiter(exact, dtype=np.intp, count=len(exact))] = True
        valid |= overridden
    while True:
        factor = 10.0**scale
        slow = magnitude >= EXACT_UNITS / factor
        if exact:
            slow |= overridden
        units = np.round(finite * factor)
        if bool(((units / factor != finite) & valid & ~slow).any()):
            scale += 1  # a value has more decimals than the scale: widen, never round
        else:
            slow_numbers = {
                int(at): exact[at] if at in exact else to_decimal(float(finite[at]))
                for at in np.flatnonzero(slow & valid)
            }
            needed = max(map(_decimals, slow_numbers.values()), default=0)
            if needed <= scale:
                break
            scale = needed
        if scale > _WIDE_DIGITS:
            raise InvalidParams("exact", what, f"values of at most {_WIDE_DIGITS} decimals")
    words = np.empty((count, 2), dtype=np.int64)
    low = np.where(slow, 0.0, units).astype(np.int64)  # slow rows are written below
    words[:, 0] = low
    words[:, 1] = low >> 63
    digits = DECIMAL_DIGITS
    for at, number in slow_numbers.items():
        value = _units(number, scale)
        if abs(value) >= 10**digits:
            digits = _WIDE_DIGITS
            if abs(value) >= 10**digits:
                raise InvalidParams("exact", what, f"values of at most {_WIDE_DIGITS} digits")
        words[at, 0] = ((value & _MASK64) ^ _SIGN64) - _SIGN64
        words[at, 1] = value >> 64
    nulls = count - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    array = pa.Array.from_buffers(
        pa.decimal128(digits, scale), count, [bitmap, pa.py_buffer(words)], null_count=nulls
    )
    return pd.arrays.ArrowExtensionArray(array)
