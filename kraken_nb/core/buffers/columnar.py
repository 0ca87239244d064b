"""Storage shared by the stream buffers: ``ColumnarBuffer`` and its helpers.

``ColumnarBuffer`` keeps the growing record array, the category codes
(``_Codes``), the ``max_rows`` trimming, per-symbol versions and the cached
frame building; the helpers convert wire numbers, times and bad rows the same
way for every buffer.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from operator import index as as_int
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pandas as pd

from kraken_nb.errors import InvalidParams, MalformedMessage

__all__ = ["ColumnarBuffer"]

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


def _time_ns(value: int) -> int:
    try:
        return as_int(value)
    except TypeError:
        raise InvalidParams("time_ns", value, "an int (ns since the epoch)") from None


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
