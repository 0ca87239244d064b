"""Order book samples over time: ``BookTopBuffer`` (best bid and ask) and ``DepthBuffer`` (levels)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from kraken_nb.core.buffers.columnar import _BAD_ROW, ColumnarBuffer, _time_ns
from kraken_nb.errors import InvalidParams

__all__ = ["BookTopBuffer", "DepthBuffer"]


class BookTopBuffer(ColumnarBuffer):
    """Top-of-book history: best bid and ask per sample, with mid, spread and validity.

    ``valid`` is False while a book is known to be wrong (e.g. after a
    checksum mismatch). A missing side is NaN.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("bid", "float"),
        ("bid_qty", "float"),
        ("ask", "float"),
        ("ask_qty", "float"),
        ("valid", "bool"),
    )

    def append(
        self,
        symbol: str,
        time_ns: int,
        bid: float | None,
        bid_qty: float | None,
        ask: float | None,
        ask_qty: float | None,
        valid: bool,
    ) -> None:
        """Add one top-of-book sample of ``symbol`` taken at ``time_ns``; a missing side is None."""
        if type(time_ns) is not int:
            time_ns = _time_ns(time_ns)
        code = self._symbol_code(symbol)
        try:  # NumPy converts the numbers (None is NaN) and refuses anything else
            self._write((time_ns, code, bid, bid_qty, ask, ask_qty, bool(valid)), code)
        except _BAD_ROW as exc:
            raise InvalidParams("book top", (bid, bid_qty, ask, ask_qty), "numbers or None") from exc

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        valid = data.pop("valid")
        data["mid"] = (data["bid"] + data["ask"]) / 2
        data["spread"] = data["ask"] - data["bid"]
        data["valid"] = valid
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
        ("price", "float"),
        ("qty", "float"),
    )
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {"side": ("bid", "ask")}

    def append(
        self,
        symbol: str,
        time_ns: int,
        bid_prices: Sequence[float] | npt.ArrayLike,
        bid_qtys: Sequence[float] | npt.ArrayLike,
        ask_prices: Sequence[float] | npt.ArrayLike,
        ask_qtys: Sequence[float] | npt.ArrayLike,
    ) -> int:
        """Add one depth sample of ``symbol`` taken at ``time_ns``; return the rows added."""
        time_ns = _time_ns(time_ns)
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
        code = self._symbol_code(symbol)
        prices = np.concatenate([bids, asks])
        sides = np.repeat(np.array([0, 1], dtype=np.int32), [len(bids), len(asks)])
        count = len(prices)
        if count == 0:
            return 0
        if self._max_rows is not None and count > self._max_rows:
            prices, qtys, sides = prices[-self._max_rows :], qtys[-self._max_rows :], sides[-self._max_rows :]
            count = self._max_rows
        at = self._reserve(count)
        rows = self._rows[at : at + count]
        rows["time"] = time_ns
        rows["symbol"] = code
        rows["side"] = sides
        rows["price"] = prices
        rows["qty"] = qtys
        self._stop = at + count
        self._version += 1
        self._symbol_versions[code] += 1
        return count
