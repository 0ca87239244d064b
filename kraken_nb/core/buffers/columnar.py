"""Storage shared by the stream buffers: ``ColumnarBuffer`` and its helpers.

``ColumnarBuffer`` keeps the growing record array, the category codes
(``_Codes``), the ``max_rows`` trimming, per-symbol versions, the side table of
exact values and the cached frame building; the helpers convert wire numbers,
times and bad rows the same way for every buffer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from operator import index as as_int
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from kraken_nb.core.buffers.exact import Exact, ExactRow, ExactValues, Precisions, decimal_array, float_holds
from kraken_nb.errors import InvalidParams, MalformedMessage

__all__ = ["NAT", "ColumnarBuffer", "WriteLog", "check_last"]

logger = logging.getLogger(__name__)

_STORAGE: dict[str, type[np.generic]] = {
    "time": np.int64,
    "category": np.int32,
    "float": np.float64,
    "price": np.float64,
    "qty": np.float64,
    "percent": np.float64,
    "int": np.int64,
    "bool": np.bool_,
}
_EXACT_KINDS = frozenset(("price", "qty", "percent"))
"""Column kinds that ``exact=True`` returns as decimals (stored as float64)."""
NAT = int(np.iinfo(np.int64).min)
"""The stored nanoseconds of a missing time (pandas' ``NaT``)."""
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


class WriteLog:
    """What a buffer wrote since it was last asked: row serials and the exact values it kept.

    ``serials`` lists the serial of every row written (appended or, for
    candles, overwritten), in order; ``exact`` every exact value kept as
    ``(serial, field, value)``, also for values resolved after their row was
    written. The Parquet recorder reads these after each frame
    (:meth:`ColumnarBuffer.take_writes`).
    """

    __slots__ = ("exact", "serials")

    def __init__(self) -> None:
        self.serials: list[int] = []
        self.exact: list[tuple[int, str, Exact]] = []

    def __bool__(self) -> bool:
        return bool(self.serials or self.exact)


def check_last(last: int | None) -> int | None:
    """``last`` (how many newest rows to keep) checked: None, or an int ≥ 0."""
    if last is None:
        return None
    if isinstance(last, bool) or not isinstance(last, int) or last < 0:
        raise InvalidParams("last", last, "None or an int >= 0")
    return last


def _time_ns(value: int | None, what: str = "time_ns") -> int:
    """An int of ns since the epoch; None is a missing time (``NaT``)."""
    if value is None:
        return NAT
    try:
        return as_int(value)
    except TypeError:
        raise InvalidParams(what, value, "an int (ns since the epoch) or None") from None


class ColumnarBuffer:
    """Shared storage of the stream buffers: a growing record array plus categories.

    Subclasses declare ``_fields`` (column name and kind, in frame order) and
    add typed ``append`` methods. Every row carries a ``symbol``.
    """

    _fields: ClassVar[tuple[tuple[str, str], ...]] = ()
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def __init__(
        self, *, capacity: int = 1024, max_rows: int | None = None, precisions: Precisions | None = None
    ) -> None:
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
        self.precisions = precisions if precisions is not None else Precisions()
        # Exact values a float could not hold, per column: {serial: Decimal}. A row's
        # serial is its physical index plus _base, which compaction advances.
        self._exact: dict[str, ExactValues] = {}
        self._base = 0
        self.suspects: list[tuple[int, int, str, float]] = []
        """Floats that may have lost digits, ``(serial, position, field, value)``: see ``take_suspects``."""
        self._field_index = {name: index for index, (name, _) in enumerate(self._fields)}
        self._write_log: WriteLog | None = None

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

    @property
    def exact_values(self) -> int:
        """How many values the buffer keeps as exact Decimals because a float could not hold them."""
        return sum(len(column) for column in self._exact.values())

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
            self._base += stop - keep
            for column in self._exact.values():
                column.prune(self._base)
            self._compacted()
        return self._stop

    def _compacted(self) -> None:
        """Hook run after the newest rows moved to the front."""

    def _write(self, values: tuple[Any, ...], symbol_code: int) -> int:
        """Append one row of storage values (an ``ExactRow`` keeps its Decimals); return its index."""
        at = self._stop
        if at == self._capacity:
            at = self._reserve(1)
        self._rows[at] = values
        if type(values) is not tuple:
            self._keep_exact(at, values)
        self._stop = at + 1
        self._version += 1
        self._symbol_versions[symbol_code] += 1
        if self._write_log is not None:
            self._write_log.serials.append(self._base + at)
        return at

    def _keep_exact(self, at: int, values: tuple[Any, ...]) -> None:
        """Keep the exact values of the row at physical index ``at``; note its suspects."""
        serial = self._base + at
        if isinstance(values, ExactRow):
            for name, number in values.exact.items():
                self._put_exact(serial, name, number)
            for name in values.suspects:
                self.suspects.append((serial, values.position, name, values[self._field_index[name]]))

    @staticmethod
    def _positioned(converted: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Tell each ``ExactRow`` of a frame its position in the frame."""
        for position, values in enumerate(converted):
            if type(values) is ExactRow:
                values.position = position
        return converted

    def take_suspects(self) -> list[tuple[int, int, str, float]]:
        """The values stored since the last call that may have lost digits, and forget them.

        Each is ``(serial, position, field, value)``: pass ``serial`` to
        :meth:`resolve` with the exact number of ``field`` in row ``position``
        of the frame; ``value`` is the float stored.
        """
        suspects, self.suspects = self.suspects, []
        return suspects

    def stored(self, serial: int, field: str) -> float | None:
        """The float stored for ``field`` of the row ``serial`` (None once the row is gone)."""
        at = serial - self._base
        if not self._start <= at < self._stop:
            return None
        return float(self._rows[field][at])

    def resolve(
        self, serial: int, field: str, number: Decimal, value: float | None = None, text: str | None = None
    ) -> None:
        """Give the exact wire value of a suspect; it is kept when its float does not hold it.

        ``value`` is the stored float when the caller has it (``stored``);
        ``text``, the number's wire text, means the caller found that the
        float does not give it back (``same_number``).
        """
        if text is None:
            if value is None:
                value = self.stored(serial, field)
            if value is None or float_holds(value, number):
                return
        self._resolved(serial, field, self._put_exact(serial, field, number, text))

    def keep_wire(self, serial: int, field: str, text: str) -> None:
        """Keep a suspect's wire ``text``, which its float does not give back (``same_number``)."""
        self._resolved(serial, field, self._put_exact(serial, field, None, text))

    def _put_exact(self, serial: int, field: str, number: Decimal | None, text: str | None = None) -> Exact:
        """Keep the exact value of ``field`` of the row ``serial`` (and log it); return what is kept."""
        kept = self._exact_column(field).put(serial, number, text)
        if self._write_log is not None:
            self._write_log.exact.append((serial, field, kept))
        return kept

    def _exact_column(self, name: str) -> ExactValues:
        column = self._exact.get(name)
        if column is None:
            column = self._exact[name] = ExactValues()
        return column

    def _forget_exact(self, at: int) -> None:
        """Forget the exact values of the row at physical index ``at`` (before it is re-written)."""
        for column in self._exact.values():
            column.discard(self._base + at)

    def _resolved(self, serial: int, field: str, number: Exact) -> None:
        """Hook: a suspect of row ``serial`` turned out to need its exact value."""

    # -- the write log (for a recorder) ----------------------------------------

    def log_writes(self, on: bool = True) -> None:
        """Start (or, with ``on=False``, stop) noting what is written: see :meth:`take_writes`."""
        self._write_log = WriteLog() if on else None

    @property
    def logging_writes(self) -> bool:
        """Whether :meth:`log_writes` is on."""
        return self._write_log is not None

    def take_writes(self) -> WriteLog:
        """What was written since the last call (empty when :meth:`log_writes` is off); forgets it."""
        log = self._write_log
        if log is None:
            return WriteLog()
        self._write_log = WriteLog()
        return log

    def stored_rows(self, serials: Sequence[int]) -> tuple[np.ndarray, npt.NDArray[np.int64]]:
        """Copies of the stored rows ``serials`` that are still kept, and the serials of those.

        The copies are records of the buffer's storage dtype, in the order
        given; rows that ``max_rows`` dropped meanwhile are left out.
        """
        wanted = np.asarray(serials, dtype=np.int64)
        at = wanted - self._base
        kept = (at >= self._start) & (at < self._stop)
        if not kept.all():
            at, wanted = at[kept], wanted[kept]
        return self._rows[at], wanted

    def categories(self) -> dict[str, list[str]]:
        """The values behind each categorical column's codes (copies), as stored rows use them."""
        return {name: list(codes.values) for name, codes in self._codes.items()}

    def rows_frame(
        self,
        records: np.ndarray,
        categories: Mapping[str, Sequence[str]],
        exact: Mapping[str, Mapping[int, Exact]] | None = None,
        scales: Mapping[str, int] | None = None,
    ) -> pd.DataFrame:
        """The frame ``to_frame`` builds, for ``records`` copied out with :meth:`stored_rows`.

        ``categories`` are the values behind the codes (:meth:`categories`).
        With ``scales`` (the starting scale per column kind: "price", "qty",
        "percent") price and quantity columns are exact decimals, ``exact``
        giving each column's exact values by position. It reads none of the
        buffer's state, so any thread may call it.
        """
        frame = self._assemble(lambda name: np.ascontiguousarray(records[name]), categories)
        if scales is None:
            return frame
        known = exact or {}
        return self._exactify(frame, lambda name: known.get(name, {}), scales.__getitem__, [])

    # -- reading ----------------------------------------------------------

    def to_frame(
        self, symbol: str | None = None, last: int | None = None, *, exact: bool = False
    ) -> pd.DataFrame:
        """A copy of the rows in arrival order, optionally one ``symbol``'s and only the ``last`` n.

        An unseen symbol gives an empty frame with the usual columns. With
        ``exact=True`` price and quantity columns are exact decimals (see
        :mod:`kraken_nb.core.buffers.exact`) instead of float64.
        """
        last = check_last(last)
        if symbol is None and last is None:
            return self._full_frame(exact)
        return self._build(self._select(symbol, last), exact, symbol)

    def _full_frame(self, exact: bool = False) -> pd.DataFrame:
        if self._cached is None or self._cached_version != self._version:
            self._cached = self._build(self._full_selection())
            self._cached_version = self._version
        if exact:
            return self._exact_frame(self._cached, self._full_selection(), None)
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

    def _build(self, selection: _Selection, exact: bool = False, symbol: str | None = None) -> pd.DataFrame:
        """A frame of copies of the selected physical rows (of ``symbol``, None for any)."""
        frame = self._float_frame(selection)
        return self._exact_frame(frame, selection, symbol) if exact else frame

    def _exact_frame(self, frame: pd.DataFrame, selection: _Selection, symbol: str | None) -> pd.DataFrame:
        """``frame`` (of the ``selection``) with its price and quantity columns as exact decimals."""
        symbols = self._symbols if symbol is None else [symbol]
        return self._exactify(
            frame,
            lambda name: self._exact_positions(name, selection),
            lambda kind: self.precisions.scale(kind, symbols),
            symbols,
        )

    def _exactify(
        self,
        frame: pd.DataFrame,
        positions: Callable[[str], Mapping[int, Exact]],
        scale: Callable[[str], int],
        symbols: list[str],
    ) -> pd.DataFrame:
        """``frame`` with its price and quantity columns as exact decimals.

        ``positions(name)`` gives a column's exact values by row position,
        ``scale(kind)`` the starting scale of a column kind.
        """
        data = {name: frame[name] for name in frame.columns}
        for name, kind in self._exact_columns():
            data[name] = decimal_array(frame[name].to_numpy(), positions(name), scale(kind), name)
        return pd.DataFrame(self._complete_exact(data, symbols), copy=False)

    def _exact_columns(self) -> list[tuple[str, str]]:
        """The stored columns ``exact=True`` converts, with their kinds."""
        return [(name, kind) for name, kind in self._fields if kind in _EXACT_KINDS]

    def _complete_exact(self, data: dict[str, Any], symbols: list[str]) -> dict[str, Any]:
        """Hook converting derived columns of an exact frame."""
        return data

    def _exact_positions(self, name: str, selection: _Selection) -> dict[int, Exact]:
        """The exact values of column ``name`` among the selected rows, by position in the selection."""
        column = self._exact.get(name)
        if not column:
            return {}
        entries = list(column.items())
        physical = np.array([serial for serial, _ in entries], dtype=np.intp) - self._base
        numbers = [number for _, number in entries]
        if isinstance(selection, slice):
            start, stop, _ = selection.indices(self._stop)
            return {int(at) - start: numbers[i] for i, at in enumerate(physical) if start <= at < stop}
        order = np.argsort(selection, kind="stable")
        ordered = selection[order]
        found = np.searchsorted(ordered, physical)
        return {
            int(order[spot]): numbers[i]
            for i, spot in enumerate(found)
            if spot < len(ordered) and ordered[spot] == physical[i]
        }

    def _float_frame(self, selection: _Selection) -> pd.DataFrame:
        """The frame with float64 numbers."""
        rows = self._rows
        if isinstance(selection, slice):
            return self._assemble(lambda name: rows[name][selection].copy(), self._codes)

        def column(name: str) -> np.ndarray:
            return rows[name][selection]

        return self._assemble(column, self._codes)

    def _assemble(self, column: Callable[[str], np.ndarray], categories: Mapping[str, Any]) -> pd.DataFrame:
        """The float frame of the columns ``column(name)`` gives (``categories[name]``: the codes' values)."""
        data: dict[str, Any] = {}
        for name, kind in self._fields:
            values = column(name)
            if kind == "time":
                data[name] = _utc(values)
            elif kind == "category":
                known = categories[name]
                index = pd.Index(known.values if isinstance(known, _Codes) else known, dtype="str")
                data[name] = pd.Categorical.from_codes(values, categories=index, validate=False)
            else:
                data[name] = values
        return pd.DataFrame(self._complete(data), copy=False)

    def _complete(self, data: dict[str, Any]) -> dict[str, Any]:
        """Hook adding derived columns to a frame's data."""
        return data

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(rows={len(self)}, symbols={len(self._symbols)}, "
            f"max_rows={self._max_rows}, version={self._version})"
        )
