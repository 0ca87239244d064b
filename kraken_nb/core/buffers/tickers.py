"""Tickers: ``TickerBuffer``, the ticker history with each symbol's latest row, and ``TICKER_FIELDS``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from kraken_nb.core.buffers.columnar import (
    _BAD_ROW,
    NAT,
    ColumnarBuffer,
    _malformed,
    _number,
    _time_ns,
    _utc,
)
from kraken_nb.core.buffers.exact import Exact, ExactRow, Precisions, decimal_array, exact_entries, limit_of
from kraken_nb.core.timestamps import parse_rfc3339_ns

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

_KINDS = {
    "bid_qty": "qty",
    "ask_qty": "qty",
    "volume": "qty",
    "change_pct": "percent",
}
_PERCENT_LIMIT = limit_of(2)


class TickerBuffer(ColumnarBuffer):
    """Ticker history of every symbol plus each symbol's latest values.

    ``time`` is Kraken's ``timestamp`` of the row (``NaT`` when a frame has
    none), ``received`` the receive time the caller passes. A ``None`` number
    is stored as NaN.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        *((name, _KINDS.get(name, "price")) for name in TICKER_FIELDS),
        ("received", "time"),
    )

    def __init__(
        self, *, capacity: int = 1024, max_rows: int | None = None, precisions: Precisions | None = None
    ) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows, precisions=precisions)
        self._latest: dict[int, tuple[Any, ...]] = {}
        self._latest_serial: dict[int, int] = {}  # per symbol code, the serial of its latest row
        self._latest_by_serial: dict[int, int] = {}  # and back
        self._latest_exact: dict[int, dict[str, Exact]] = {}  # survives max_rows trimming
        self._checks: dict[tuple[float, float], list[tuple[str, int, float]]] = {}
        self._latest_frame: pd.DataFrame | None = None
        self._latest_version = -1

    def _convert(self, row: Mapping[str, Any], received_ns: int) -> tuple[Any, ...]:
        try:
            bid, bid_qty, ask, ask_qty, last, volume, vwap, low, high, change, change_pct = (
                _number(row[name]) for name in TICKER_FIELDS
            )
            stamp = row.get("timestamp")
            time_ns = NAT if stamp is None else parse_rfc3339_ns(stamp)
            name = row["symbol"]
            symbol = self._symbol_codes[name]
        except _BAD_ROW as exc:
            raise _malformed("ticker", row, exc) from exc
        values = (
            time_ns,
            symbol,
            bid,
            bid_qty,
            ask,
            ask_qty,
            last,
            volume,
            vwap,
            low,
            high,
            change,
            change_pct,
            received_ns,
        )
        pl, ql = self.precisions.limits_of(name)
        # Prices and quantities are not negative (a negative one, malformed anyway, is not
        # checked); changes can be.
        if (
            bid < pl
            and ask < pl
            and last < pl
            and vwap < pl
            and low < pl
            and high < pl
            and -pl < change < pl
            and bid_qty < ql
            and ask_qty < ql
            and volume < ql
            and -_PERCENT_LIMIT < change_pct < _PERCENT_LIMIT
        ):
            return values
        checks = self._checks.get((pl, ql))
        if checks is None:
            checks = self._checks[pl, ql] = [
                (field, index, ql if kind == "qty" else _PERCENT_LIMIT if kind == "percent" else pl)
                for index, (field, kind) in enumerate(self._fields)
                if field in TICKER_FIELDS
            ]
        return exact_entries(values, row, checks)

    def _add(self, values: tuple[Any, ...]) -> None:
        code = values[1]
        at = self._write(values, code)
        self._latest[code] = values
        serial = self._base + at
        previous = self._latest_serial.get(code)
        if previous is not None:
            del self._latest_by_serial[previous]
        self._latest_serial[code] = serial
        self._latest_by_serial[serial] = code
        if type(values) is ExactRow and values.exact:
            self._latest_exact[code] = dict(values.exact)
        elif code in self._latest_exact:
            del self._latest_exact[code]

    def _resolved(self, serial: int, field: str, number: Exact) -> None:
        code = self._latest_by_serial.get(serial)
        if code is not None:
            self._latest_exact.setdefault(code, {})[field] = number

    def append(self, row: Mapping[str, Any], received_ns: int | None = None) -> None:
        """Add one ticker row received at ``received_ns`` (ns since the epoch, UTC; None: ``NaT``)."""
        self._add(self._convert(row, _time_ns(received_ns, "received_ns")))

    def extend(self, rows: Iterable[Mapping[str, Any]], received_ns: int | None = None) -> int:
        """Add the ticker rows of one frame, all received at ``received_ns``; return how many.

        Every row is converted first, so a malformed row adds nothing.
        """
        if type(received_ns) is not int:
            received_ns = _time_ns(received_ns, "received_ns")
        if type(rows) is tuple and len(rows) == 1:  # the usual frame
            self._add(self._convert(rows[0], received_ns))
            return 1
        converted = [self._convert(row, received_ns) for row in rows]
        if len(converted) > 1:
            self._positioned(converted)
        for values in converted:
            self._add(values)
        return len(converted)

    def latest(self, *, exact: bool = False) -> pd.DataFrame:
        """One row per symbol with its newest values, indexed by ``symbol`` (first-seen order).

        ``exact=True`` gives the numbers as exact decimals, as ``to_frame``.
        """
        if self._latest_frame is None or self._latest_version != self._version:
            rows = list(self._latest.values())
            index = pd.Index([self._symbols[values[1]] for values in rows], dtype="str", name="symbol")
            data: dict[str, Any] = {}
            for offset, (name, kind) in enumerate(self._fields):
                if kind == "time":
                    data[name] = _utc(np.array([values[offset] for values in rows], dtype=np.int64))
                elif name != "symbol":
                    data[name] = np.array([values[offset] for values in rows], dtype=np.float64)
            self._latest_frame = pd.DataFrame(data, index=index, copy=False)
            self._latest_version = self._version
        frame = self._latest_frame.copy(deep=False)
        if exact:
            codes = list(self._latest)
            symbols = list(frame.index)
            for name, kind in self._exact_columns():
                entries = {
                    at: known[name]
                    for at, code in enumerate(codes)
                    if (known := self._latest_exact.get(code)) and name in known
                }
                scale = self.precisions.scale(kind, symbols)
                frame[name] = decimal_array(frame[name].to_numpy(), entries, scale, name)
        return frame
