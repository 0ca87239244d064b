"""Tickers: ``TickerBuffer``, the ticker history with each symbol's latest row, and ``TICKER_FIELDS``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kraken_nb.core.buffers.columnar import _BAD_ROW, ColumnarBuffer, _malformed, _number, _time_ns, _utc

__all__ = ["TICKER_FIELDS", "TickerBuffer"]

TICKER_FIELDS = (
    "bid",
    "bid_qty",
    "ask",
    "ask_qty",
    "last",
    "volume",
    "vwap",
    "low",
    "high",
    "change",
    "change_pct",
)
"""The numeric fields of a ticker row, in wire order."""


class TickerBuffer(ColumnarBuffer):
    """Ticker history of every symbol plus each symbol's latest values.

    Ticker frames carry no timestamp: the caller passes the receive time. A
    ``None`` number is stored as NaN.
    """

    _fields = (("time", "time"), ("symbol", "category"), *((name, "float") for name in TICKER_FIELDS))

    def __init__(self, *, capacity: int = 1024, max_rows: int | None = None) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows)
        self._latest: dict[int, tuple[Any, ...]] = {}
        self._latest_frame: pd.DataFrame | None = None
        self._latest_version = -1

    def _convert(self, row: Mapping[str, Any], time_ns: int) -> tuple[Any, ...]:
        try:
            numbers = tuple(_number(row[name]) for name in TICKER_FIELDS)
            symbol = self._symbol_codes[row["symbol"]]
        except _BAD_ROW as exc:
            raise _malformed("ticker", row, exc) from exc
        return (time_ns, symbol, *numbers)

    def _add(self, values: tuple[Any, ...]) -> None:
        self._write(values, values[1])
        self._latest[values[1]] = values

    def append(self, row: Mapping[str, Any], time_ns: int) -> None:
        """Add one ticker row received at ``time_ns`` (ns since the epoch, UTC)."""
        self._add(self._convert(row, _time_ns(time_ns)))

    def extend(self, rows: Iterable[Mapping[str, Any]], time_ns: int) -> int:
        """Add ticker rows all received at ``time_ns``; return how many were added."""
        time_ns = _time_ns(time_ns)
        converted = [self._convert(row, time_ns) for row in rows]
        for values in converted:
            self._add(values)
        return len(converted)

    def latest(self) -> pd.DataFrame:
        """One row per symbol with its newest values, indexed by ``symbol`` (first-seen order)."""
        if self._latest_frame is None or self._latest_version != self._version:
            rows = list(self._latest.values())
            index = pd.Index([self._symbols[values[1]] for values in rows], dtype="str", name="symbol")
            data: dict[str, Any] = {"time": _utc(np.array([values[0] for values in rows], dtype=np.int64))}
            for offset, name in enumerate(TICKER_FIELDS, start=2):
                data[name] = np.array([values[offset] for values in rows], dtype=np.float64)
            self._latest_frame = pd.DataFrame(data, index=index, copy=False)
            self._latest_version = self._version
        return self._latest_frame.copy(deep=False)
