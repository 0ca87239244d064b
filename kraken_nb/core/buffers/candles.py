"""Candles: ``CandleBuffer``, OHLC rows upserted by symbol, interval and interval start."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from operator import index as as_int
from typing import Any

import numpy as np
import pandas as pd

from kraken_nb.core.buffers.columnar import (
    _BAD_ROW,
    NAT,
    ColumnarBuffer,
    _malformed,
    _number,
    _Selection,
    _time_ns,
    check_last,
)
from kraken_nb.core.buffers.exact import Precisions, exact_entries
from kraken_nb.core.timestamps import parse_rfc3339_ns

__all__ = ["CandleBuffer"]

_CANDLE_NUMBERS = ("open", "high", "low", "close", "vwap")


class CandleBuffer(ColumnarBuffer):
    """OHLC candles upserted by ``(symbol, interval, interval_begin)``.

    ``time`` is Kraken's ``timestamp`` of the candle's latest version (``NaT``
    when absent), ``received`` when that version arrived. Kraken re-sends the
    current candle as trades arrive: a known key is overwritten in place, a new
    key is appended. The key index stays correct
    when ``max_rows`` trims old rows; a candle whose row was trimmed comes back
    as a new row. Frames are ordered by ``interval_begin`` (a stable sort, so
    ties keep arrival order): every symbol/interval series is chronological
    even when an old candle arrives late, e.g. in a second subscription's
    snapshot.
    """

    _fields = (
        ("symbol", "category"),
        ("interval", "int"),
        ("interval_begin", "time"),
        *((name, "price") for name in _CANDLE_NUMBERS),
        ("trades", "int"),
        ("volume", "qty"),
        ("time", "time"),
        ("received", "time"),
    )

    def __init__(
        self, *, capacity: int = 1024, max_rows: int | None = None, precisions: Precisions | None = None
    ) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows, precisions=precisions)
        self._index: dict[tuple[int, int, int], int] = {}
        self._upserts = 0
        self._appends = 0

    @property
    def upserts(self) -> int:
        """Candles that overwrote an existing row."""
        return self._upserts

    @property
    def appends(self) -> int:
        """Candles that added a row."""
        return self._appends

    def _convert(self, row: Mapping[str, Any], received_ns: int) -> tuple[Any, ...]:
        try:
            interval = as_int(row["interval"])
            begin = parse_rfc3339_ns(row["interval_begin"])
            open_, high, low, close, vwap = (_number(row[name]) for name in _CANDLE_NUMBERS)
            trades = as_int(row["trades"])
            volume = _number(row["volume"])
            stamp = row.get("timestamp")
            time_ns = NAT if stamp is None else parse_rfc3339_ns(stamp)
            name = row["symbol"]
            symbol = self._symbol_codes[name]
        except _BAD_ROW as exc:
            raise _malformed("ohlc", row, exc) from exc
        values = (
            symbol,
            interval,
            begin,
            open_,
            high,
            low,
            close,
            vwap,
            trades,
            volume,
            time_ns,
            received_ns,
        )
        pl, ql = self.precisions.limits_of(name)
        if open_ < pl and high < pl and low < pl and close < pl and vwap < pl and volume < ql:  # not negative
            return values
        checks = [(field, 3 + i, pl) for i, field in enumerate(_CANDLE_NUMBERS)]
        return exact_entries(values, row, [*checks, ("volume", 9, ql)])

    def _add(self, values: tuple[Any, ...]) -> bool:
        code = values[0]
        key = (code, values[1], values[2])
        at = self._index.get(key)
        if at is not None and at >= self._start:
            self._rows[at] = values
            self._forget_exact(at)
            self._keep_exact(at, values)
            self._version += 1
            self._symbol_versions[code] += 1
            self._upserts += 1
            if self._write_log is not None:
                self._write_log.serials.append(self._base + at)
            return False
        self._index[key] = self._write(values, code)
        self._appends += 1
        return True

    def _compacted(self) -> None:
        stop = self._stop
        keys = zip(
            self._rows["symbol"][:stop].tolist(),
            self._rows["interval"][:stop].tolist(),
            self._rows["interval_begin"][:stop].tolist(),
            strict=True,
        )
        self._index = {key: at for at, key in enumerate(keys)}

    def append(self, row: Mapping[str, Any], received_ns: int | None = None) -> bool:
        """Upsert one candle received at ``received_ns``; True if it added a row, False if it updated one."""
        return self._add(self._convert(row, _time_ns(received_ns, "received_ns")))

    def extend(self, rows: Iterable[Mapping[str, Any]], received_ns: int | None = None) -> int:
        """Upsert the candles of one frame in order; return how many added rows.

        Every row is converted first, so a malformed row adds nothing.
        """
        if type(received_ns) is not int:
            received_ns = _time_ns(received_ns, "received_ns")
        if type(rows) is tuple and len(rows) == 1:  # a frame of one candle
            return int(self._add(self._convert(rows[0], received_ns)))
        converted = [self._convert(row, received_ns) for row in rows]
        if len(converted) > 1:
            self._positioned(converted)
        return sum(self._add(values) for values in converted)

    def to_frame(  # type: ignore[override]
        self,
        symbol: str | None = None,
        interval: int | None = None,
        last: int | None = None,
        *,
        exact: bool = False,
    ) -> pd.DataFrame:
        """A copy of the candles ordered by ``interval_begin``, filtered by ``symbol`` and ``interval``.

        ``last`` keeps the newest n candles (by ``interval_begin``) of the
        selection; ``exact=True`` gives prices and volumes as exact decimals.
        """
        last = check_last(last)
        if symbol is None and interval is None and last is None:
            return self._full_frame(exact)
        return self._build(self._candles(symbol, interval, last), exact, symbol)

    def _full_selection(self) -> _Selection:
        return self._candles(None, None, None)

    def _candles(self, symbol: str | None, interval: int | None, last: int | None) -> _Selection:
        start, stop = self._start, self._stop
        mask = np.ones(stop - start, dtype=bool)
        if symbol is not None:
            code = self._symbol_codes.get(symbol)
            if code is None:
                return slice(0, 0)
            mask &= self._rows["symbol"][start:stop] == code
        if interval is not None:
            mask &= self._rows["interval"][start:stop] == interval
        rows = start + np.flatnonzero(mask)
        begins = self._rows["interval_begin"][rows]
        if len(begins) > 1 and not bool(np.all(begins[1:] >= begins[:-1])):
            rows = rows[np.argsort(begins, kind="stable")]
        if last is not None:
            rows = rows[max(0, len(rows) - last) :]
        return rows
