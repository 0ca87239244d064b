"""``History``: a recorded dataset as DuckDB views, and frames like the live client's.

DuckDB reads the part files where they lie (nothing is loaded first), so a
query that reduces (a VWAP per minute over weeks of trades) runs inside
DuckDB and only its result reaches pandas. Each view is a ``UNION ALL`` of
one ``read_parquet`` per symbol folder with the symbol written as a constant
in Kraken's spelling, so ``WHERE symbol = 'BTC/USD'`` reads only that
folder, and ``date`` (the partition) prunes days.

A part that is not a Parquet file (truncated, corrupt) is skipped: the
first query that meets it logs a warning naming it, leaves it out of the
views and runs again; ``History.skipped`` lists such files.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import CandleBuffer, TickerBuffer, TradeBuffer
from kraken_nb.core.buffers.columnar import NAT
from kraken_nb.core.buffers.exact import DECIMAL_DIGITS, decimal_floats
from kraken_nb.errors import DatasetError, InvalidParams
from kraken_nb.history.books import BookSource, replay_books
from kraken_nb.history.layout import TABLES, day_of, scan, symbol_folders

if TYPE_CHECKING:
    import duckdb

    from kraken_nb.history.source import HistoryRange

__all__ = ["COLUMNS", "History", "to_ns"]

log = logging.getLogger(__name__)

_SQL_TYPES: Final = {
    "time": "TIMESTAMPTZ_NS",
    "category": "VARCHAR",
    "price": "DECIMAL(18,0)",
    "qty": "DECIMAL(18,0)",
    "percent": "DECIMAL(18,2)",
    "int": "BIGINT",
    "bool": "BOOLEAN",
}
_BUFFERS: Final = {"trades": TradeBuffer, "ticker": TickerBuffer, "candles": CandleBuffer}
_EXTRA: Final = [("seq", "BIGINT"), ("date", "DATE")]
_LEVELS: Final = [
    ("time", "TIMESTAMPTZ_NS"),
    ("symbol", "VARCHAR"),
    ("side", "VARCHAR"),
    ("price", "DECIMAL(18,0)"),
    ("qty", "DECIMAL(18,0)"),
    ("received", "TIMESTAMPTZ_NS"),
    ("checksum", "BIGINT"),
]
COLUMNS: Final[dict[str, list[tuple[str, str]]]] = {
    **{
        table: [(name, _SQL_TYPES[kind]) for name, kind in buffer._fields] + _EXTRA
        for table, buffer in _BUFFERS.items()
    },
    "book_updates": [*_LEVELS, *_EXTRA],
    "book_snapshots": [*_LEVELS, ("depth", "BIGINT"), ("kind", "VARCHAR"), *_EXTRA],
    "instruments": [
        ("symbol", "VARCHAR"),
        ("price_precision", "BIGINT"),
        ("qty_precision", "BIGINT"),
        ("received", "TIMESTAMPTZ_NS"),
        *_EXTRA,
    ],
}
"""The columns of each view, in order, with their DuckDB types (instruments add every pair field)."""

_CATEGORIES: Final = {
    "side": ("buy", "sell"),
    "ord_type": ("limit", "market"),
}
_BOOK_SIDES: Final = ("bid", "ask")
_FILE: Final = re.compile(r"'([^']+\.parquet)'")
_MAX_SKIPS: Final = 100
_SOURCES: Final = ("auto", "ohlc", "trades")
_PRICE_DIGITS: Final = Context(prec=80)

Time = str | int | date | datetime | pd.Timestamp | np.datetime64
T = TypeVar("T")


def to_ns(when: Time, what: str = "time") -> int:
    """Nanoseconds since the epoch of a time (a naive one is UTC; an int is ns already)."""
    if isinstance(when, bool):
        raise InvalidParams(what, when, "a time: str, datetime, pandas Timestamp or ns since the epoch")
    if isinstance(when, int | np.integer):
        return int(when)
    try:
        stamp = pd.Timestamp(when)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(
            what, when, "a time: str, datetime, pandas Timestamp or ns since the epoch"
        ) from exc
    if stamp is pd.NaT:
        raise InvalidParams(what, when, "a time, not NaT")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _duckdb() -> Any:
    try:
        import duckdb
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            "kraken_nb.History reads datasets with DuckDB, which is not installed: "
            "pip install 'kraken_nb[history]'",
            name="duckdb",
        ) from exc
    return duckdb


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class History:
    """A recorded dataset (``DIR``, written by ``client.record_to`` or ``kraken-nb record --format parquet``).

    >>> h = History("data/")                                   # doctest: +SKIP
    >>> h.trades("BTC/USD", start="2024-05-01", end="2024-05-02")
    >>> h.sql("SELECT symbol, count(*) FROM trades GROUP BY ALL")

    Frames have the live client's columns and dtypes (``exact=True``:
    ``decimal128`` prices and quantities). ``start`` and ``end`` bound the
    receive time (``received``) of trades, tickers and books, and
    ``interval_begin`` of candles: ``start <= t < end``. A symbol never
    recorded gives an empty frame. ``threads`` and ``memory_limit`` (e.g.
    ``"1GB"``) are DuckDB's settings.
    """

    def __init__(
        self, directory: str | PathLike[str], *, threads: int | None = None, memory_limit: str | None = None
    ) -> None:
        duckdb = _duckdb()
        self.directory = Path(directory)
        if not self.directory.exists():
            raise DatasetError(f"no dataset at {self.directory}: the folder does not exist", self.directory)
        if not self.directory.is_dir():
            raise DatasetError(f"no dataset at {self.directory}: it is not a folder", self.directory)
        self._root = self.directory.resolve()
        config: dict[str, Any] = {}
        if threads is not None:
            config["threads"] = threads
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        self._con: duckdb.DuckDBPyConnection = duckdb.connect(config=config)
        self._duckdb_error = duckdb.Error
        # What a damaged part raises (a plain Error for a corrupt footer); not SQL mistakes or overflows.
        self._file_errors = (duckdb.IOException, duckdb.InvalidInputException)
        self.skipped: list[Path] = []
        """Parts left out because they are not readable Parquet files (each logged once)."""
        self._folders: dict[str, dict[str, Path]] = {}
        self._empty: list[Path] = []
        self._stamps: dict[str, int] = {}
        self.refresh()

    # -- the views ----------------------------------------------------------------

    def refresh(self) -> None:
        """Look for symbols recorded since this ``History`` was opened (methods do so when folders change)."""
        self._empty = []
        for table in TABLES:
            self._stamps[table] = self._stamp(table)
            self._folders[table] = {}
            for symbol, folder in symbol_folders(self._root, table).items():
                if _has_parts(folder):
                    self._folders[table][symbol] = folder
                else:  # created by a recorder killed before its first part was complete
                    self._empty.append(folder)
        self._retrying(self._create_views)

    def _create_views(self) -> None:
        for table in TABLES:
            self._con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {self._source(table)}")

    def _stamp(self, table: str) -> int:
        try:
            return os.stat(self._root / table).st_mtime_ns
        except OSError:
            return -1

    def _fresh(self) -> None:
        stale = any(self._stamp(table) != self._stamps[table] for table in TABLES)
        if stale or any(_has_parts(folder) for folder in self._empty):
            self.refresh()

    @property
    def symbols(self) -> dict[str, list[str]]:
        """The symbols each table holds, sorted."""
        self._fresh()
        return {table: sorted(folders) for table, folders in self._folders.items()}

    def _source(self, table: str, symbols: Iterable[str] | None = None, *, row_numbers: bool = False) -> str:
        """A FROM clause of ``table``'s rows (of ``symbols`` only, when given), columns in view order."""
        folders = self._folders[table]
        chosen = list(folders) if symbols is None else [s for s in symbols if s in folders]
        columns = COLUMNS[table]
        if not chosen:
            empty = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in columns)
            numbers = ", CAST(NULL AS BIGINT) AS file_row_number" if row_numbers else ""
            return f"(SELECT {empty}{numbers} WHERE false)"
        branches = [self._branch(table, symbol, folders[symbol], row_numbers) for symbol in sorted(chosen)]
        if table == "instruments":
            order = "symbol, * EXCLUDE (symbol, received, seq, date), received, seq, date"
        else:
            order = ", ".join(name for name, _ in columns) + (", file_row_number" if row_numbers else "")
        return f"(SELECT {order} FROM ({' UNION ALL BY NAME '.join(branches)}))"

    def _branch(self, table: str, symbol: str, folder: Path, row_numbers: bool) -> str:
        bad = [path for path in self.skipped if folder in path.parents]
        if bad:
            parts = [p.path for p in scan(self._root, table) if p.symbol == symbol and p.path not in bad]
            if not parts:
                return self._source(table, ()).removeprefix("(").removesuffix(")")
            files = "[" + ", ".join(_quote(str(path)) for path in parts) + "]"
        else:
            files = _quote(f"{folder}/date=*/part-*.parquet")
        options = (
            "hive_partitioning = true, union_by_name = true, hive_types = {'symbol': VARCHAR, 'date': DATE}"
        )
        if row_numbers:
            options += ", file_row_number = true"
        return f"SELECT * EXCLUDE (symbol), {_quote(symbol)} AS symbol FROM read_parquet({files}, {options})"

    # -- queries ------------------------------------------------------------------

    def _run(
        self, sql: str | Callable[[], str], params: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> pa.Table:
        """Run a query (``sql`` may build its text anew on each try) and return its rows."""
        return self._retrying(
            lambda: self._con.sql(sql() if callable(sql) else sql, params=params).to_arrow_table()
        )

    def _retrying(self, action: Callable[[], T]) -> T:
        """``action()``; a part that turns out unreadable is left out (with a warning) and it runs again."""
        rebuild = False
        for _ in range(_MAX_SKIPS):
            try:
                if rebuild:
                    self._create_views()
                return action()
            except self._duckdb_error as exc:
                bad = self._unreadable(exc) if self._about_files(exc) else []
                if not bad:
                    raise
                for path in bad:
                    reason = str(exc).splitlines()[0]
                    log.warning("skipping %s: not a readable Parquet file (%s)", path, reason)
                    self.skipped.append(path)
                rebuild = True
        raise DatasetError(f"more than {_MAX_SKIPS} unreadable parts in {self.directory}", self.directory)

    def _unreadable(self, exc: Exception) -> list[Path]:
        """The parts an error is about: the one it names, else every part that does not read."""
        for found in _FILE.findall(str(exc)):
            path = Path(found).resolve()
            if self._root in path.parents and path not in self.skipped:
                return [path]
        parts = [path for path in self._parts() if path not in self.skipped]
        damaged = [path for path in parts if not _footer_reads(path)]
        return damaged or [path for path in parts if not self._readable(path)]

    def _about_files(self, exc: Exception) -> bool:
        return isinstance(exc, self._file_errors) or type(exc) is self._duckdb_error

    def _parts(self) -> Iterator[Path]:
        for table in TABLES:
            for part in scan(self._root, table):
                yield part.path

    def _readable(self, path: Path) -> bool:
        """Whether DuckDB reads all of one part (the slow check, when the footers all read)."""
        try:
            self._con.sql(f"SELECT * FROM read_parquet({_quote(str(path))})").fetchall()
        except self._duckdb_error as exc:
            if self._about_files(exc):
                return False
            raise
        return True

    def sql(
        self, query: str, params: Mapping[str, Any] | Sequence[Any] | None = None, *, exact: bool = True
    ) -> pd.DataFrame:
        """Run ``query`` over the views (``trades``, ``ticker``, ``candles``, ``book_updates``,
        ``book_snapshots``, ``instruments``) and return its result as a DataFrame.

        Times come as ``datetime64[ns, UTC]``; decimals as exact ``decimal128``
        columns (``exact=False``: float64). ``params`` fills ``?`` or ``$name``.
        """
        self._fresh()
        return _frame(self._run(query, params), exact)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection holding the views (for relations and the like)."""
        return self._con

    def _rows(
        self,
        table: str,
        symbol: str | None,
        where: list[str],
        params: dict[str, Any],
        order: str,
        exact: bool,
        *,
        qualify: str = "",
    ) -> pd.DataFrame:
        self._fresh()
        symbols = None if symbol is None else [symbol]
        names = [name for name, _ in COLUMNS[table] if name not in ("seq", "date")]
        condition = " AND ".join(where) or "true"

        def query() -> str:
            return (
                f"SELECT {', '.join(names)} FROM {self._source(table, symbols)} WHERE {condition} "
                f"{qualify} ORDER BY {order}"
            )

        return _frame(self._run(query, params), exact, categorical=True)

    def trades(
        self,
        symbol: str | None = None,
        start: Time | None = None,
        end: Time | None = None,
        *,
        exact: bool = False,
    ) -> pd.DataFrame:
        """Trades received in ``[start, end)``, in arrival order: the columns of ``client.trades()``."""
        where, params = _bounds("received", start, end)
        return self._rows("trades", symbol, where, params, "received, seq, symbol", exact)

    def ticker(
        self,
        symbol: str | None = None,
        start: Time | None = None,
        end: Time | None = None,
        *,
        exact: bool = False,
    ) -> pd.DataFrame:
        """Ticker rows received in ``[start, end)``, in arrival order: the columns of ``client.ticker()``."""
        where, params = _bounds("received", start, end)
        return self._rows("ticker", symbol, where, params, "received, seq, symbol", exact)

    def candles(
        self,
        symbol: str | None = None,
        interval: int | str | pd.Timedelta | None = None,
        start: Time | None = None,
        end: Time | None = None,
        *,
        exact: bool = False,
        source: str = "auto",
    ) -> pd.DataFrame:
        """Candles beginning in ``[start, end)``: the columns of ``client.candles()``, by ``interval_begin``.

        ``source="ohlc"`` gives the recorded ohlc candles (the newest version
        of each); ``"trades"`` aggregates the recorded trades, inside DuckDB,
        to ``interval`` minutes (any whole number of minutes, e.g. 7 or
        ``"4h"``); ``"auto"`` uses ohlc candles when they were recorded for
        that interval, trades otherwise. Aggregated candles open with the
        first trade and close with the last, ``vwap`` is rounded half-even
        to the price's decimals, ``time`` is the newest trade's time and
        ``received`` its receive time.
        """
        if source not in _SOURCES:
            raise InvalidParams("source", source, _SOURCES)
        minutes = None if interval is None else _minutes(interval)
        if source == "trades" or (
            source == "auto" and minutes is not None and not self._has_ohlc(symbol, minutes)
        ):
            if minutes is None:
                raise InvalidParams("interval", interval, "a number of minutes to aggregate trades to")
            return self._aggregated(symbol, minutes, start, end, exact)
        where, params = _bounds("interval_begin", start, end, prune=False)
        if minutes is not None:
            where.append("interval = $interval")
            params["interval"] = minutes
        qualify = (
            "QUALIFY row_number() OVER (PARTITION BY symbol, interval, interval_begin ORDER BY seq DESC) = 1"
        )
        order = "interval_begin, min(received) OVER (PARTITION BY symbol, interval, interval_begin), symbol"
        return self._rows("candles", symbol, where, params, order, exact, qualify=qualify)

    def _has_ohlc(self, symbol: str | None, minutes: int) -> bool:
        source = self._source("candles", None if symbol is None else [symbol])
        found = self._run(lambda: f"SELECT 1 FROM {source} WHERE interval = $m LIMIT 1", {"m": minutes})
        return found.num_rows > 0

    def _aggregated(
        self, symbol: str | None, minutes: int, start: Time | None, end: Time | None, exact: bool
    ) -> pd.DataFrame:
        self._fresh()
        step = minutes * 60 * 1_000_000_000
        where, params = _bounds("time", start, end, prune=False)
        params["step"] = step
        condition = " AND ".join(where) or "true"
        symbols = None if symbol is None else [symbol]

        def query() -> str:
            return f"""
                SELECT symbol, epoch_ns(time) // $step * $step AS begin_ns,
                       arg_min(price, (time, seq)) AS open, max(price) AS high, min(price) AS low,
                       arg_max(price, (time, seq)) AS close,
                       sum(price * (qty * CAST(1 AS DECIMAL(38, 0)))) AS notional, count(*) AS trades,
                       sum(qty) AS volume,
                       max(time) AS time, max(received) AS received
                FROM {self._source("trades", symbols)} WHERE {condition}
                GROUP BY symbol, begin_ns ORDER BY begin_ns, symbol"""

        rows = self._run(query, params)
        return _candle_frame(rows, minutes, exact)

    def instruments(self) -> pd.DataFrame:
        """Each recorded pair's newest reference data, indexed by symbol (as ``client.instruments()``)."""
        self._fresh()
        rows = self._run(
            lambda: (
                f"""SELECT * EXCLUDE (received, seq, date) FROM {self._source("instruments")}
                    QUALIFY row_number() OVER (PARTITION BY symbol ORDER BY seq DESC) = 1
                    ORDER BY symbol"""
            )
        )
        return rows.to_pandas().set_index("symbol")

    # -- books ------------------------------------------------------------------------

    def book_at(self, symbol: str, when: Time) -> OrderBook | None:
        """``symbol``'s book as it was at ``when`` (None before its first recorded snapshot).

        Rebuilt from the latest snapshot received by then, applying every
        update received after it, each verified against Kraken's checksum:
        ``book.valid`` says whether all matched (False also where the live
        book was lost: a disconnect, a checksum mismatch).
        """
        return next(self.books(symbol, [when]))[1]

    def books(self, symbol: str, times: Iterable[Time]) -> Iterator[tuple[pd.Timestamp, OrderBook | None]]:
        """``(time, book)`` for each of ``times`` in rising order; the book is replayed once (``book_at``)."""
        self._fresh()
        source = BookSource(
            symbol,
            self._source("book_snapshots", [symbol]),
            self._source("book_updates", [symbol], row_numbers=True),
            lambda received: self._precisions(symbol, received),
        )
        instants = [to_ns(t, "when") for t in times]
        for at, book in replay_books(lambda sql, params: self._run(sql, params), source, instants):
            yield pd.Timestamp(at, unit="ns", tz="UTC"), book

    def _precisions(self, symbol: str, received_ns: int) -> tuple[int, int] | None:
        if symbol not in self._folders["instruments"]:
            return None
        rows = self._run(
            lambda: (
                f"""SELECT price_precision, qty_precision FROM {self._source("instruments", [symbol])}
                       ORDER BY (received <= make_timestamp_ns($at)::TIMESTAMPTZ_NS) DESC, seq DESC LIMIT 1"""
            ),
            {"at": received_ns},
        ).to_pylist()
        if not rows or rows[0]["price_precision"] is None:
            return None
        return int(rows[0]["price_precision"]), int(rows[0]["qty_precision"])

    # -- widgets ------------------------------------------------------------------

    def range(self, start: Time | None = None, end: Time | None = None) -> HistoryRange:
        """A fixed stretch of this dataset the widgets draw like a client: ``CandleChart(h.range(…), …)``."""
        from kraken_nb.history.source import HistoryRange

        return HistoryRange(self, start, end)

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the DuckDB connection."""
        self._con.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<History {self.directory}>"


def _footer_reads(path: Path) -> bool:
    """Whether a part's footer (its schema and statistics) reads: the quick check of a damaged part."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True


def _has_parts(folder: Path) -> bool:
    """Whether a ``symbol=`` folder holds at least one complete part."""
    return next(folder.glob("date=*/part-*.parquet"), None) is not None


def _minutes(interval: int | str | pd.Timedelta) -> int:
    if isinstance(interval, bool):
        raise InvalidParams("interval", interval, "a whole number of minutes")
    if isinstance(interval, int | np.integer):
        minutes = int(interval)
    else:
        try:
            span = pd.Timedelta(interval)
        except (TypeError, ValueError) as exc:
            raise InvalidParams("interval", interval, "minutes, or a span such as '4h'") from exc
        if span.value % 60_000_000_000:
            raise InvalidParams("interval", interval, "a whole number of minutes")
        minutes = span.value // 60_000_000_000
    if minutes < 1:
        raise InvalidParams("interval", interval, "at least one minute")
    return minutes


def _bounds(
    column: str, start: Time | None, end: Time | None, *, prune: bool = True
) -> tuple[list[str], dict[str, Any]]:
    """Conditions ``start <= column < end`` (and, on the receive time, the days they span)."""
    where: list[str] = []
    params: dict[str, Any] = {}
    if start is not None:
        params["start"] = to_ns(start, "start")
        where.append(f"{column} >= make_timestamp_ns($start)::TIMESTAMPTZ_NS")
        if prune:
            params["start_day"] = day_of(params["start"])
            where.append("date >= $start_day")
    if end is not None:
        params["end"] = to_ns(end, "end")
        where.append(f"{column} < make_timestamp_ns($end)::TIMESTAMPTZ_NS")
        if prune:
            params["end_day"] = day_of(params["end"])
            where.append("date <= $end_day")
    return where, params


# -- Arrow results to frames ----------------------------------------------------------


def _times(column: pa.ChunkedArray | pa.Array) -> Any:
    """A ``datetime64[ns, UTC]`` array (nulls are NaT)."""
    ns = pc.fill_null(column.cast(pa.timestamp("ns")).cast(pa.int64()), NAT).to_numpy()
    return pd.array(ns.view("M8[ns]"), copy=False).tz_localize("UTC")


def _decimals(column: pa.ChunkedArray, exact: bool) -> Any:
    """An exact ``decimal128(18 or 38, s)`` column as the live frames give it, or its floats."""
    array = column.combine_chunks()
    if not exact:
        return decimal_floats(array)
    scale = array.type.scale
    for digits in (DECIMAL_DIGITS, 38):
        try:
            return pd.arrays.ArrowExtensionArray(array.cast(pa.decimal128(digits, scale)))
        except pa.ArrowInvalid:
            continue
    raise DatasetError(f"a decimal column holds a value of more than 38 digits ({array.type})")


def _categorical(name: str, column: pa.ChunkedArray) -> pd.Categorical:
    """A string column as categories: the live frames' preset ones, else the values in order of appearance."""
    encoded = pc.dictionary_encode(column.combine_chunks())
    values = encoded.dictionary.to_pylist()  # in order of first appearance
    codes = pc.fill_null(encoded.indices.cast(pa.int32()), -1).to_numpy()
    preset = _CATEGORIES.get(name) or (_BOOK_SIDES if name == "side" else None)
    if preset is not None and set(values) <= set(preset):
        codes = np.array([preset.index(v) for v in values] + [-1], dtype=np.int32)[codes]
        values = list(preset)
    return pd.Categorical.from_codes(codes, categories=pd.Index(values, dtype="str"), validate=False)


def _frame(rows: pa.Table, exact: bool, *, categorical: bool = False) -> pd.DataFrame:
    """``rows`` as pandas: times ``datetime64[ns, UTC]``, decimals exact or float, strings categories."""
    data: dict[str, Any] = {}
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        kind = column.type
        if pa.types.is_timestamp(kind):
            data[name] = _times(column)
        elif pa.types.is_decimal(kind):
            data[name] = _decimals(column, exact)
        elif categorical and (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            data[name] = _categorical(name, column)
        else:
            data[name] = column.to_pandas()
    return pd.DataFrame(data, copy=False)


def _candle_frame(rows: pa.Table, minutes: int, exact: bool) -> pd.DataFrame:
    """Aggregated candle rows in the columns of ``client.candles()``."""
    count = rows.num_rows
    price_scale = rows.schema.field("open").type.scale if count else 0
    unit = Decimal(1).scaleb(-price_scale)
    vwaps = [
        (n / v).quantize(unit, ROUND_HALF_EVEN, _PRICE_DIGITS) if v else None
        for n, v in zip(rows.column("notional").to_pylist(), rows.column("volume").to_pylist(), strict=True)
    ]
    table = pa.table(
        {
            "symbol": rows.column("symbol"),
            "interval": pa.array([minutes] * count, pa.int64()),
            "interval_begin": rows.column("begin_ns").cast(pa.timestamp("ns", tz="UTC")),
            **{name: rows.column(name) for name in ("open", "high", "low", "close")},
            "vwap": pa.array(vwaps, pa.decimal128(38, price_scale)),
            "trades": rows.column("trades"),
            "volume": rows.column("volume"),
            "time": rows.column("time"),
            "received": rows.column("received"),
        }
    )
    return _frame(table, exact, categorical=True)
