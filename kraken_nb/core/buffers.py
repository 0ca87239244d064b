"""Columnar growing buffers for the streams, read as pandas DataFrames.

Each buffer keeps one preallocated NumPy record array (one field per stored
column) and writes each row in place: appends are amortised O(1) because the
array doubles when full. With ``max_rows`` the array grows to at most
``2 * max_rows`` rows; when it is full the newest rows move to the front in one
copy, so dropping the oldest rows is amortised O(1) as well and memory stays
bounded. Categorical columns (symbol, side, ord_type) are stored as int32
codes with a category list, times as int64 nanoseconds since the epoch (UTC).

``to_frame()`` always returns copies (the buffer keeps writing into its
arrays) with proper dtypes: ``category``, ``datetime64[ns, UTC]``, ``float64``,
``int64`` and ``bool``, and a ``RangeIndex``. The full frame is cached until the
next change and handed out as a shallow copy, which pandas' copy-on-write
makes safe to mutate.

Measured on a busy 2-core machine: appending 1M trade dicts costs 2–3.5 µs
per row, most of it parsing the timestamp and converting the numbers
(writing the row is about 0.4 µs); ``to_frame()`` of 1M trades takes
40–65 ms, no slower than ``pd.DataFrame`` built once from the same arrays,
and a cached call or ``last=100`` takes about a millisecond or less.

The buffers need no locks of their own: the client serialises appends and
reads.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import index as as_int
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.errors import InvalidParams, MalformedMessage

__all__ = [
    "TICKER_FIELDS",
    "BookTopBuffer",
    "CandleBuffer",
    "ColumnarBuffer",
    "DepthBuffer",
    "TickerBuffer",
    "TradeBuffer",
    "TradeGap",
]

logger = logging.getLogger(__name__)

_STORAGE: dict[str, type[np.generic]] = {
    "time": np.int64,
    "category": np.int32,
    "float": np.float64,
    "int": np.int64,
    "bool": np.bool_,
}
_NAN = math.nan
_BAD_ROW = (KeyError, TypeError, ValueError, ArithmeticError)

_Selection = slice | npt.NDArray[np.intp]


def _number(value: Any) -> float:
    """A wire number (``Decimal``, float, int or numeric str) as float; ``None`` is NaN."""
    return _NAN if value is None else float(value)


def _malformed(kind: str, row: Any, exc: Exception) -> MalformedMessage:
    """The error for a row that could not be converted."""
    if isinstance(exc, KeyError):
        reason = f"{kind} row lacks {exc.args[0]!r}"
    elif isinstance(exc, MalformedMessage):
        reason = f"{kind} row: {exc.reason}"
    else:
        reason = f"{kind} row: {exc}"
    return MalformedMessage(reason, row if isinstance(row, Mapping) else repr(row))


def _utc(ns: npt.NDArray[np.int64]) -> pd.api.extensions.ExtensionArray:
    """Nanoseconds since the epoch as a ``datetime64[ns, UTC]`` array."""
    return pd.array(ns.view("M8[ns]"), copy=False).tz_localize("UTC")


class _Codes(dict[str, int]):
    """Codes of one categorical column; looking up an unseen value registers it."""

    def __init__(
        self, column: str, preset: Iterable[str] = (), on_new: Callable[[], None] | None = None
    ) -> None:
        super().__init__()
        self.column = column
        self.values: list[str] = []
        self._on_new = on_new
        for value in preset:
            self.__missing__(value)

    def __missing__(self, value: Any) -> int:
        if not isinstance(value, str) or not value:
            raise ValueError(f"{self.column} must be a non-empty str, got {value!r}")
        code = len(self.values)
        self[value] = code
        self.values.append(value)
        if self._on_new is not None:
            self._on_new()
        return code


def _check_last(last: int | None) -> int | None:
    if last is None:
        return None
    if isinstance(last, bool) or not isinstance(last, int) or last < 0:
        raise InvalidParams("last", last, "None or an int >= 0")
    return last


class ColumnarBuffer:
    """Shared storage of the stream buffers: a growing record array plus categories.

    Subclasses declare ``_fields`` (column name and kind, in frame order) and
    add typed ``append`` methods. Every row carries a ``symbol``.
    """

    _fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(self, *, capacity: int = 1024, max_rows: int | None = None) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise InvalidParams("capacity", capacity, "an int >= 1")
        if max_rows is not None and (
            isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
        ):
            raise InvalidParams("max_rows", max_rows, "None or an int >= 1")
        self._max_rows = max_rows
        self._limit = None if max_rows is None else 2 * max_rows
        if self._limit is not None:
            capacity = min(capacity, self._limit)
        self._dtype = np.dtype([(name, _STORAGE[kind]) for name, kind in self._fields])
        self._rows: np.ndarray = np.zeros(capacity, self._dtype)
        self._capacity = capacity
        self._stop = 0
        self._version = 0
        self._symbol_versions: list[int] = []
        self._codes = {
            name: _Codes(name, self._preset_categories.get(name, ()))
            for name, kind in self._fields
            if kind == "category" and name != "symbol"
        }
        self._symbol_codes = self._codes["symbol"] = _Codes("symbol", (), self._new_symbol)
        self._symbols = self._symbol_codes.values
        self._cached: pd.DataFrame | None = None
        self._cached_version = -1

    # -- state ------------------------------------------------------------

    @property
    def version(self) -> int:
        """Counter bumped by every change of the rows."""
        return self._version

    @property
    def max_rows(self) -> int | None:
        """The bound on the number of rows kept (oldest dropped first), or None."""
        return self._max_rows

    @property
    def capacity(self) -> int:
        """Rows the storage can hold before it grows or compacts (at most ``2 * max_rows``)."""
        return self._capacity

    @property
    def _start(self) -> int:
        """First physical row of the visible window."""
        if self._max_rows is None:
            return 0
        return max(0, self._stop - self._max_rows)

    def __len__(self) -> int:
        return self._stop - self._start

    def symbols(self) -> list[str]:
        """Every symbol appended so far, in first-seen order (trimming does not forget them)."""
        return list(self._symbols)

    def version_of(self, symbol: str) -> int:
        """Counter bumped by every change to ``symbol``'s rows (0 for an unseen symbol).

        Dropping old rows through ``max_rows`` does not bump it.
        """
        code = self._symbol_codes.get(symbol)
        return 0 if code is None else self._symbol_versions[code]

    # -- writing ----------------------------------------------------------

    def _new_symbol(self) -> None:
        self._symbol_versions.append(0)

    def _symbol_code(self, symbol: str) -> int:
        """The code of ``symbol`` for the array-fed buffers; a bad symbol is ``InvalidParams``."""
        try:
            return self._symbol_codes[symbol]
        except (TypeError, ValueError):
            raise InvalidParams("symbol", symbol, "a non-empty str") from None

    def _reserve(self, count: int) -> int:
        """Make room for ``count`` (≤ max_rows) more rows; return where they go."""
        stop = self._stop
        if stop + count <= self._capacity:
            return stop
        limit = self._limit
        if limit is None or self._capacity < limit:
            capacity = max(2 * self._capacity, stop + count)
            if limit is not None:
                capacity = min(capacity, limit)
            rows = np.zeros(capacity, self._dtype)
            rows[:stop] = self._rows[:stop]
            self._rows = rows
            self._capacity = capacity
            logger.debug("%s grew to %d rows", type(self).__name__, capacity)
        if limit is not None and stop + count > self._capacity:
            keep = min(stop - self._start, limit // 2 - count)
            self._rows[:keep] = self._rows[stop - keep : stop]
            self._stop = keep
            self._compacted()
        return self._stop

    def _compacted(self) -> None:
        """Hook run after the newest rows moved to the front."""

    def _write(self, values: tuple[Any, ...], symbol_code: int) -> int:
        """Append one row of storage values; return its physical index."""
        at = self._stop
        if at == self._capacity:
            at = self._reserve(1)
        self._rows[at] = values
        self._stop = at + 1
        self._version += 1
        self._symbol_versions[symbol_code] += 1
        return at

    # -- reading ----------------------------------------------------------

    def to_frame(self, symbol: str | None = None, last: int | None = None) -> pd.DataFrame:
        """A copy of the rows in arrival order, optionally one ``symbol``'s and only the ``last`` n.

        An unseen symbol gives an empty frame with the usual columns.
        """
        last = _check_last(last)
        if symbol is None and last is None:
            return self._full_frame()
        return self._build(self._select(symbol, last))

    def _full_frame(self) -> pd.DataFrame:
        if self._cached is None or self._cached_version != self._version:
            self._cached = self._build(self._full_selection())
            self._cached_version = self._version
        return self._cached.copy(deep=False)

    def _full_selection(self) -> _Selection:
        return slice(self._start, self._stop)

    def _select(self, symbol: str | None, last: int | None) -> _Selection:
        """Physical rows of ``symbol`` (all when None), only the newest ``last`` when given."""
        start, stop = self._start, self._stop
        if symbol is None:
            return slice(start if last is None else max(start, stop - last), stop)
        code = self._symbol_codes.get(symbol)
        if code is None or last == 0:
            return slice(0, 0)
        codes = self._rows["symbol"]
        if last is None:
            return start + np.flatnonzero(codes[start:stop] == code)
        # Scan backwards in growing chunks until `last` rows are found.
        found: list[npt.NDArray[np.intp]] = []
        need, high, chunk = last, stop, max(1024, 4 * last)
        while high > start and need > 0:
            low = max(start, high - chunk)
            hits = low + np.flatnonzero(codes[low:high] == code)
            if len(hits) > need:
                hits = hits[len(hits) - need :]
            found.append(hits)
            need -= len(hits)
            high, chunk = low, 2 * chunk
        return np.concatenate(found[::-1]) if found else slice(0, 0)

    def _build(self, selection: _Selection) -> pd.DataFrame:
        """A frame of copies of the selected physical rows."""
        data: dict[str, Any] = {}
        is_slice = isinstance(selection, slice)
        for name, kind in self._fields:
            column = self._rows[name][selection]
            if is_slice:
                column = column.copy()
            if kind == "time":
                data[name] = _utc(column)
            elif kind == "category":
                categories = pd.Index(self._codes[name].values, dtype="str")
                data[name] = pd.Categorical.from_codes(column, categories=categories, validate=False)
            else:
                data[name] = column
        return pd.DataFrame(self._complete(data), copy=False)

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        """Hook adding derived columns to a frame's data."""
        return data

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rows={len(self)}, symbols={len(self._symbols)}, "
            f"max_rows={self._max_rows}, version={self._version})"
        )


@dataclass(frozen=True, slots=True)
class TradeGap:
    """Trades of ``symbol`` between ``after_id`` and ``before_id`` (exclusive) never arrived.

    ``time_ns`` is the time of the trade ``before_id`` that revealed the gap.
    """

    symbol: str
    after_id: int
    before_id: int
    time_ns: int

    @property
    def missing(self) -> int:
        """How many trade ids are missing."""
        return self.before_id - self.after_id - 1


class TradeBuffer(ColumnarBuffer):
    """Trades of every symbol, de-duplicated by ``(symbol, trade_id)``.

    Kraken's ``trade_id`` increases per book, so the buffer keeps the last id
    per symbol: an id at or below it is a duplicate (dropped and counted), an
    id more than one above it means trades were missed (a ``TradeGap`` is
    recorded and the trade kept). This state is O(1) per symbol and survives
    ``max_rows`` trimming, so replaying a snapshot after a reconnect adds only
    the new trades.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("side", "category"),
        ("price", "float"),
        ("qty", "float"),
        ("ord_type", "category"),
        ("trade_id", "int"),
    )
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "side": ("buy", "sell"),
        "ord_type": ("limit", "market"),
    }
    MAX_GAPS: ClassVar[int] = 10_000
    """How many of the newest gaps ``gaps`` keeps."""

    def __init__(self, *, capacity: int = 1024, max_rows: int | None = None) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows)
        self._sides = self._codes["side"]
        self._ord_types = self._codes["ord_type"]
        self._last_ids: dict[int, int] = {}
        self._gaps: deque[TradeGap] = deque(maxlen=self.MAX_GAPS)
        self._gap_count = 0
        self._duplicates = 0

    @property
    def duplicates(self) -> int:
        """Trades dropped because their id was not above the symbol's last one."""
        return self._duplicates

    @property
    def gaps(self) -> list[TradeGap]:
        """The gaps in trade ids seen so far (the newest ``MAX_GAPS``), oldest first."""
        return list(self._gaps)

    @property
    def gap_count(self) -> int:
        """How many gaps were seen in total."""
        return self._gap_count

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id kept for ``symbol``, or None before its first trade."""
        code = self._symbol_codes.get(symbol)
        return None if code is None else self._last_ids.get(code)

    def _convert(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            time_ns = parse_rfc3339_ns(row["timestamp"])
            price = float(row["price"])
            qty = float(row["qty"])
            trade_id = as_int(row["trade_id"])
            side = self._sides[row["side"]]
            ord_type = self._ord_types[row["ord_type"]]
            symbol = self._symbol_codes[row["symbol"]]
        except _BAD_ROW as exc:
            raise _malformed("trade", row, exc) from exc
        return (time_ns, symbol, side, price, qty, ord_type, trade_id)

    def _add(self, values: tuple[Any, ...]) -> bool:
        code, trade_id = values[1], values[6]
        last = self._last_ids.get(code)
        if last is not None:
            if trade_id <= last:
                self._duplicates += 1
                return False
            if trade_id > last + 1:
                self._gaps.append(TradeGap(self._symbols[code], last, trade_id, values[0]))
                self._gap_count += 1
        self._last_ids[code] = trade_id
        # The base class's _write, inlined: this is the hottest path.
        at = self._stop
        if at == self._capacity:
            at = self._reserve(1)
        self._rows[at] = values
        self._stop = at + 1
        self._version += 1
        self._symbol_versions[code] += 1
        return True

    def append(self, row: Mapping[str, Any]) -> bool:
        """Add one trade (an element of a trade message's ``data``); False if it was a duplicate."""
        return self._add(self._convert(row))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add trades in order; return how many were new.

        Every row is validated first, so a malformed row adds nothing.
        """
        converted = [self._convert(row) for row in rows]
        return sum(self._add(values) for values in converted)


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


def _time_ns(value: int) -> int:
    try:
        return as_int(value)
    except TypeError:
        raise InvalidParams("time_ns", value, "an int (ns since the epoch)") from None


_CANDLE_NUMBERS = ("open", "high", "low", "close", "vwap")


class CandleBuffer(ColumnarBuffer):
    """OHLC candles upserted by ``(symbol, interval, interval_begin)``.

    Kraken re-sends the current candle as trades arrive: a known key is
    overwritten in place, a new key is appended. The key index stays correct
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
        *((name, "float") for name in _CANDLE_NUMBERS),
        ("trades", "int"),
        ("volume", "float"),
        ("timestamp", "time"),
    )

    def __init__(self, *, capacity: int = 1024, max_rows: int | None = None) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows)
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

    def _convert(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            interval = as_int(row["interval"])
            begin = parse_rfc3339_ns(row["interval_begin"])
            numbers = tuple(_number(row[name]) for name in _CANDLE_NUMBERS)
            trades = as_int(row["trades"])
            volume = _number(row["volume"])
            stamp = parse_rfc3339_ns(row["timestamp"])
            symbol = self._symbol_codes[row["symbol"]]
        except _BAD_ROW as exc:
            raise _malformed("ohlc", row, exc) from exc
        return (symbol, interval, begin, *numbers, trades, volume, stamp)

    def _add(self, values: tuple[Any, ...]) -> bool:
        code = values[0]
        key = (code, values[1], values[2])
        at = self._index.get(key)
        if at is not None and at >= self._start:
            self._rows[at] = values
            self._version += 1
            self._symbol_versions[code] += 1
            self._upserts += 1
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

    def append(self, row: Mapping[str, Any]) -> bool:
        """Upsert one candle; True if it added a row, False if it overwrote one."""
        return self._add(self._convert(row))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Upsert candles in order; return how many added rows. A malformed row adds nothing."""
        converted = [self._convert(row) for row in rows]
        return sum(self._add(values) for values in converted)

    def to_frame(
        self, symbol: str | None = None, interval: int | None = None, last: int | None = None
    ) -> pd.DataFrame:
        """A copy of the candles ordered by ``interval_begin``, filtered by ``symbol`` and ``interval``.

        ``last`` keeps the newest n candles (by ``interval_begin``) of the selection.
        """
        last = _check_last(last)
        if symbol is None and interval is None and last is None:
            return self._full_frame()
        return self._build(self._candles(symbol, interval, last))

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
