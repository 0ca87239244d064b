"""Order book samples over time: ``BookTopBuffer`` (best bid and ask) and ``DepthBuffer`` (levels).

Both take the values the order book keeps: float prices (exact by the book's
own rule) and quantities that are floats or, for values a float cannot hold,
``Decimal``; such a quantity is kept exactly for ``exact=True``. ``time`` is
Kraken's ``timestamp`` of the book message the sample follows (``NaT`` when it
had none, as real Kraken snapshots), ``received`` its receive time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kraken_nb.core.buffers.columnar import _BAD_ROW, ColumnarBuffer, _time_ns
from kraken_nb.core.buffers.exact import ExactRow
from kraken_nb.core.wire import to_decimal
from kraken_nb.errors import InvalidParams

__all__ = ["BookTopBuffer", "DepthBuffer"]

_Number = float | Decimal | None
_TOP_NUMBERS = ("bid", "bid_qty", "ask", "ask_qty")


def _lost(value: Any) -> bool:
    """Whether ``value`` is an exact number (not a float) that its float does not give back."""
    return type(value) is not float and value is not None and to_decimal(float(value)) != to_decimal(value)


class BookTopBuffer(ColumnarBuffer):
    """Top-of-book history: best bid and ask per sample, with mid, spread and validity.

    ``valid`` is False while a book is known to be wrong (e.g. after a
    checksum mismatch). A missing side is NaN.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("bid", "price"),
        ("bid_qty", "qty"),
        ("ask", "price"),
        ("ask_qty", "qty"),
        ("valid", "bool"),
        ("received", "time"),
    )

    def append(
        self,
        symbol: str,
        time_ns: int | None,
        received_ns: int | None,
        bid: _Number,
        bid_qty: _Number,
        ask: _Number,
        ask_qty: _Number,
        valid: bool,
    ) -> None:
        """Add one top-of-book sample of ``symbol``; a missing side is None, a missing time None.

        ``time_ns`` is the book message's own time, ``received_ns`` its receive
        time (ns since the epoch). A float is taken as the value its ``repr``
        shows; a ``Decimal`` a float cannot hold is kept exactly.
        """
        if type(time_ns) is not int:
            time_ns = _time_ns(time_ns)
        if type(received_ns) is not int:
            received_ns = _time_ns(received_ns, "received_ns")
        code = self._symbol_code(symbol)
        values: tuple[Any, ...] = (time_ns, code, bid, bid_qty, ask, ask_qty, bool(valid), received_ns)
        try:
            if type(bid_qty) is not float or type(ask_qty) is not float or type(bid) is not float:
                exact = {
                    name: to_decimal(value)
                    for name, value in zip(_TOP_NUMBERS, (bid, bid_qty, ask, ask_qty), strict=True)
                    if _lost(value)
                }
                if exact:
                    values = ExactRow(values)
                    values.exact = exact  # type: ignore[attr-defined]
            elif type(ask) is not float and _lost(ask):
                values = ExactRow(values)
                values.exact = {"ask": to_decimal(ask)}  # type: ignore[attr-defined]
            # NumPy converts the numbers (None is NaN) and refuses anything else
            self._write(values, code)
        except _BAD_ROW as exc:
            raise InvalidParams("book top", (bid, bid_qty, ask, ask_qty), "numbers or None") from exc

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        received = data.pop("received")
        valid = data.pop("valid")
        data["mid"] = (data["bid"] + data["ask"]) / 2
        data["spread"] = data["ask"] - data["bid"]
        data["valid"] = valid
        data["received"] = received
        return data

    def _complete_exact(self, data: dict[str, Any], symbols: list[str]) -> dict[str, Any]:
        # mid = (bid + ask) * 0.5 has one decimal more; spread = ask - bid keeps the scale.
        bid, ask = pa.array(data["bid"]), pa.array(data["ask"])
        digits = max(bid.type.precision, ask.type.precision)
        scale = max(bid.type.scale, ask.type.scale)
        half = pa.scalar(Decimal("0.5"), pa.decimal128(1, 1))
        mid = pc.multiply_checked(pc.add_checked(bid, ask), half)
        data["mid"] = pd.arrays.ArrowExtensionArray(mid.cast(pa.decimal128(min(digits + 1, 38), scale + 1)))
        spread = pc.subtract_checked(ask, bid)
        data["spread"] = pd.arrays.ArrowExtensionArray(spread.cast(pa.decimal128(digits, scale)))
        return data


class DepthBuffer(ColumnarBuffer):
    """Depth snapshots over time in long format: one row per level per sample.

    ``max_rows`` counts levels. A sample larger than ``max_rows`` keeps only
    its last ``max_rows`` levels (asks are stored after bids).
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("side", "category"),
        ("price", "price"),
        ("qty", "qty"),
        ("received", "time"),
    )
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {"side": ("bid", "ask")}

    def append(
        self,
        symbol: str,
        time_ns: int | None,
        received_ns: int | None,
        bid_prices: Sequence[float] | npt.ArrayLike,
        bid_qtys: Sequence[float | Decimal] | npt.ArrayLike,
        ask_prices: Sequence[float] | npt.ArrayLike,
        ask_qtys: Sequence[float | Decimal] | npt.ArrayLike,
    ) -> int:
        """Add one depth sample of ``symbol`` (book time ``time_ns``, received at ``received_ns``).

        Returns the rows added. Prices are floats; a ``Decimal`` quantity a
        float cannot hold is kept exactly.
        """
        time_ns = _time_ns(time_ns)
        received_ns = _time_ns(received_ns, "received_ns")
        try:
            bids = np.asarray(bid_prices, dtype=np.float64).ravel()
            asks = np.asarray(ask_prices, dtype=np.float64).ravel()
            qtys = np.concatenate(
                [
                    np.asarray(bid_qtys, dtype=np.float64).ravel(),
                    np.asarray(ask_qtys, dtype=np.float64).ravel(),
                ]
            )
        except _BAD_ROW as exc:
            raise InvalidParams("depth levels", symbol, "arrays of numbers") from exc
        if len(qtys) != len(bids) + len(asks):
            raise InvalidParams("depth qtys", len(qtys), f"{len(bids) + len(asks)} (one per price)")
        exact = {
            at: to_decimal(qty)
            for at, qty in enumerate(_exact_candidates(bid_qtys, ask_qtys))
            if qty is not None and _lost(qty)
        }
        code = self._symbol_code(symbol)
        prices = np.concatenate([bids, asks])
        sides = np.repeat(np.array([0, 1], dtype=np.int32), [len(bids), len(asks)])
        count = len(prices)
        if count == 0:
            return 0
        if self._max_rows is not None and count > self._max_rows:
            dropped = count - self._max_rows
            prices, qtys, sides = prices[dropped:], qtys[dropped:], sides[dropped:]
            exact = {at - dropped: number for at, number in exact.items() if at >= dropped}
            count = self._max_rows
        at = self._reserve(count)
        rows = self._rows[at : at + count]
        rows["time"] = time_ns
        rows["symbol"] = code
        rows["side"] = sides
        rows["price"] = prices
        rows["qty"] = qtys
        rows["received"] = received_ns
        if exact:
            column = self._exact_column("qty")
            for offset, number in exact.items():
                column.put(self._base + at + offset, number)
        self._stop = at + count
        self._version += 1
        self._symbol_versions[code] += 1
        return count


def _exact_candidates(*sides: Any) -> list[Any]:
    """The quantities of ``sides`` in order, with None for every float (nothing to keep)."""
    out: list[Any] = []
    for side in sides:
        if isinstance(side, np.ndarray) and side.dtype.kind == "f":
            out.extend([None] * side.size)
        else:
            out.extend(None if type(qty) is float else qty for qty in side)
    return out
