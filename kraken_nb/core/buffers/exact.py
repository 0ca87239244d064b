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
from array import array
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
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
    "ExactValues",
    "Precisions",
    "decimal_array",
    "exact_entries",
    "float_holds",
    "same_number",
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


_INT64: Final = 1 << 63


def coefficient(number: Decimal | str) -> tuple[int, int]:
    """``number`` (a Decimal or a JSON number's text) as ``(coefficient, exponent)``.

    ``number == coefficient * 10**exponent``; read from the text, which is
    several times faster than ``Decimal.as_tuple``.
    """
    text = str(number)
    mantissa, _, power = text.replace("E", "e").partition("e")
    whole, _, fraction = mantissa.partition(".")
    try:
        return int(whole + fraction), (int(power) if power else 0) - len(fraction)
    except ValueError:
        raise InvalidParams("exact value", number, "a finite number") from None


class ExactValues:
    """One column's exact values by row serial, compact: an int64 coefficient and an exponent each.

    About 17 bytes per value (a dict of Decimals would take ten times that);
    a coefficient past int64 (more than 18 digits) is kept in ``wide``.
    """

    __slots__ = ("exponents", "serials", "units", "wide")

    def __init__(self) -> None:
        self.serials = array("q")
        self.units = array("q")
        self.exponents = array("b")
        self.wide: dict[int, Decimal] = {}

    def put(self, serial: int, number: Decimal | None, text: str | None = None) -> Exact:
        """Keep ``number`` (or the number ``text`` spells) for the row ``serial``; return what is kept.

        A row gets a value once; ``discard`` it first to replace it.
        """
        pair = coefficient(number if text is None else text)  # type: ignore[arg-type]
        units, exponent = pair
        if -_INT64 <= units < _INT64 and -128 <= exponent <= 127:
            self.serials.append(serial)
            self.units.append(units)
            self.exponents.append(exponent)
            return pair
        kept = Decimal(text) if number is None else number
        self.wide[serial] = kept
        return kept

    def discard(self, serial: int) -> None:
        """Forget the row ``serial``'s value (linear: only re-written rows, candles, need it)."""
        self.wide.pop(serial, None)
        if serial in self.serials:
            at = self.serials.index(serial)
            del self.serials[at], self.units[at], self.exponents[at]

    def prune(self, first: int) -> None:
        """Forget the rows before serial ``first`` (dropped by ``max_rows``)."""
        serials = np.frombuffer(self.serials, dtype=np.int64)
        keep = serials >= first
        if not keep.all():
            self.serials = array("q", serials[keep].tobytes())
            self.units = array("q", np.frombuffer(self.units, dtype=np.int64)[keep].tobytes())
            self.exponents = array("b", np.frombuffer(self.exponents, dtype=np.int8)[keep].tobytes())
        self.wide = {serial: v for serial, v in self.wide.items() if serial >= first}

    def items(self) -> Iterator[tuple[int, tuple[int, int] | Decimal]]:
        """``(serial, (coefficient, exponent))`` per value, and ``(serial, Decimal)`` for wide ones."""
        yield from zip(self.serials, zip(self.units, self.exponents, strict=True), strict=True)
        yield from self.wide.items()

    def get(self, serial: int) -> Decimal | None:
        """The value of the row ``serial``, or None."""
        if serial in self.wide:
            return self.wide[serial]
        if serial in self.serials:
            at = self.serials.index(serial)
            return Decimal(self.units[at]).scaleb(self.exponents[at])
        return None

    def __len__(self) -> int:
        return len(self.serials) + len(self.wide)


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


def wire_numbers(text: str, field: str, count: int) -> list[str] | None:
    """The texts of the values of every ``"field":`` key in ``text``, in order, if there are ``count``.

    Ticker, trade and ohlc rows hold each field once and nothing nested, so
    the n-th occurrence is row n's. None when the key occurs another number of
    times (the caller decodes the whole frame instead).
    """
    key = f'"{field}"'
    tokens: list[str] = []
    at = text.find(key)
    while at >= 0:
        at += len(key)
        value = _VALUE.match(text, at)
        if value is not None:  # a key (a string value equal to the key has no colon after it)
            if len(tokens) == count:
                return None
            tokens.append(value.group(1))
        at = text.find(key, at)
    return tokens if len(tokens) == count else None


def same_number(text: str, value: float) -> bool:
    """Whether the wire number ``text`` is the decimal ``value``'s shortest text shows (cheaply)."""
    shown = repr(value)
    if "e" in text or "E" in text or "e" in shown:
        return Decimal(text) == Decimal(shown)
    if "." in text:
        text = text.rstrip("0").removesuffix(".")
    return text == shown.removesuffix(".0")


def float_holds(value: float, number: Decimal) -> bool:
    """Whether ``value``'s shortest text is ``number`` (the float gives the wire value back)."""
    return to_decimal(value) == number


def _fewest_decimals(
    finite: npt.NDArray[np.float64],
    magnitude: npt.NDArray[np.float64],
    valid: npt.NDArray[np.bool_] | None,
    scale: int,
    what: str,
) -> int:
    """The fewest decimals, at least ``scale``, that every value under the 15-digit limit needs.

    Each step re-checks only the values that failed the last one, so a column
    that starts at scale 0 costs little more than one pass.
    """
    values, sizes = finite, magnitude
    if valid is not None:
        values, sizes = finite[valid], magnitude[valid]
    while True:
        factor = 10.0**scale
        fast = sizes < EXACT_UNITS / factor
        wrong = (np.round(values * factor) / factor != values) & fast
        if not wrong.any():
            return scale
        values, sizes = values[wrong], sizes[wrong]
        scale += 1
        if scale > _WIDE_DIGITS:
            raise InvalidParams("exact", what, f"values of at most {_WIDE_DIGITS} decimals")


Exact = Decimal | tuple[int, int]
"""An exact value: a ``Decimal``, or ``(coefficient, exponent)`` as :class:`ExactValues` keeps it."""


def _pair(number: Exact) -> tuple[int, int]:
    return coefficient(number) if isinstance(number, Decimal) else number


def _units(pair: tuple[int, int], scale: int) -> int:
    """``coefficient · 10**(exponent + scale)`` (exact: the value has at most ``scale`` decimals)."""
    units, exponent = pair
    return units * 10 ** (exponent + scale)


def _decimals(pair: tuple[int, int]) -> int:
    return max(0, -pair[1])


def decimal_array(
    values: npt.ArrayLike, exact: Mapping[int, Exact], scale: int, what: str = "column"
) -> pd.api.extensions.ExtensionArray:
    """An exact ``decimal128(18 or 38, s)`` array of float ``values``; ``exact`` overrides positions.

    ``s`` is at least ``scale`` and as many decimals as any value has; NaN (a
    missing value) and infinities become ``<NA>``. Values under the 15-digit
    limit at ``s`` are converted in bulk; the others (and every ``exact``
    entry) one by one, from their shortest text.
    """
    floats = np.ascontiguousarray(values, dtype=np.float64)
    count = len(floats)
    valid = np.isfinite(floats)
    all_valid = bool(valid.all())
    finite = floats if all_valid else np.where(valid, floats, 0.0)
    magnitude = np.abs(finite)
    if exact:
        exact = {at: _pair(number) for at, number in exact.items()}
        scale = max(scale, *map(_decimals, exact.values()))
        overridden = np.zeros(count, dtype=bool)
        overridden[np.fromiter(exact, dtype=np.intp, count=len(exact))] = True
        valid |= overridden
    scale = _fewest_decimals(finite, magnitude, valid if not all_valid else None, scale, what)
    while True:
        factor = 10.0**scale
        slow = magnitude >= EXACT_UNITS / factor
        if exact:
            slow |= overridden
        at_slow = np.flatnonzero(slow & valid)
        texts = finite[at_slow].tolist()
        slow_numbers = {
            at: exact[at] if at in exact else coefficient(repr(value))
            for at, value in zip(at_slow.tolist(), texts, strict=True)
        }
        needed = max(map(_decimals, slow_numbers.values()), default=0)
        if needed <= scale:
            break
        scale = needed  # values that fit a scale fit any larger one (or turn slow)
        if scale > _WIDE_DIGITS:
            raise InvalidParams("exact", what, f"values of at most {_WIDE_DIGITS} decimals")
    units = np.round(finite * factor)
    if len(slow_numbers):
        units[at_slow] = 0  # written below
    low = units.astype(np.int64)
    words = np.empty((count, 2), dtype=np.int64)
    words[:, 0] = low
    words[:, 1] = low >> 63
    digits = DECIMAL_DIGITS
    narrow: list[int] = []
    narrow_at: list[int] = []
    for at, number in slow_numbers.items():
        value = _units(number, scale)
        if -_INT64 <= value < _INT64:
            narrow_at.append(at)
            narrow.append(value)
        else:
            words[at, 0] = ((value & _MASK64) ^ _SIGN64) - _SIGN64
            words[at, 1] = value >> 64
        if abs(value) >= 10**digits:
            digits = _WIDE_DIGITS
            if abs(value) >= 10**digits:
                raise InvalidParams("exact", what, f"values of at most {_WIDE_DIGITS} digits")
    if narrow:
        column = np.array(narrow, dtype=np.int64)
        words[narrow_at, 0] = column
        words[narrow_at, 1] = column >> 63
    nulls = count - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    array = pa.Array.from_buffers(
        pa.decimal128(digits, scale), count, [bitmap, pa.py_buffer(words)], null_count=nulls
    )
    return pd.arrays.ArrowExtensionArray(array)
