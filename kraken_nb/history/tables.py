"""What the part files hold: a pending batch turned into one Arrow table per table, symbol and day.

Trades, tickers and candles are built by the buffer classes themselves
(:meth:`~kraken_nb.core.buffers.ColumnarBuffer.rows_frame`), so a file's
columns and dtypes are exactly those of the live ``exact=True`` frame, minus
``symbol`` (the partition) plus ``seq``. Book tables are in the long format of
``depth_history()`` (one row per level: ``time, side, price, qty, received``)
plus ``checksum`` and ``seq``; snapshots add ``depth`` and ``kind``. Prices and
quantities are ``decimal128`` at the pair's precision, converted by the same
:func:`~kraken_nb.core.buffers.decimal_array` as ``exact=True``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pyarrow as pa

from kraken_nb.core.buffers import decimal_array
from kraken_nb.core.buffers.columnar import NAT, ColumnarBuffer
from kraken_nb.core.buffers.exact import Exact
from kraken_nb.history.layout import NS_PER_DAY, day_of
from kraken_nb.history.tap import BOOK_KINDS, BookBlock, Pending

__all__ = ["SIDES", "TIMESTAMP", "column_table", "tables_of", "utc_timestamps"]

TIMESTAMP: Final = pa.timestamp("ns", tz="UTC")
"""The type of every time column."""

SIDES: Final = ("bid", "ask")
_KINDS: Final = ("price", "qty", "percent")

Part = tuple[str, str, date, pa.Table]
"""``(table, symbol, day, rows)``: the content of one part file."""


def utc_timestamps(ns: Sequence[int] | np.ndarray) -> pa.Array:
    """A ``timestamp[ns, UTC]`` array of ns since the epoch; ``NaT`` (int64 min) is null."""
    values = np.asarray(ns, dtype=np.int64)
    return pa.array(values, TIMESTAMP, mask=values == NAT)


def tables_of(pending: Pending, buffers: Mapping[str, ColumnarBuffer]) -> Iterator[Part]:
    """Every part a batch makes: one per table, symbol and day of the rows' receive time."""
    for (table, symbol), blocks in pending.columns.items():
        yield from _column_parts(table, symbol, blocks, pending, buffers[table])
    for symbol, books in pending.books.items():
        yield from _book_parts(symbol, books, pending)
    for symbol, rows in pending.instruments.items():
        yield from _by_day("instruments", symbol, _instrument_table(rows), [row["received"] for row in rows])


def _column_parts(
    table: str, symbol: str, blocks: list[Any], pending: Pending, buffer: ColumnarBuffer
) -> Iterator[Part]:
    records = blocks[0].records if len(blocks) == 1 else np.concatenate([b.records for b in blocks])
    exact: dict[str, dict[int, Exact]] = {}
    offset = 0
    for block in blocks:
        for name, values in block.exact.items():
            column = exact.setdefault(name, {})
            for at, value in values.items():
                column[offset + at] = value
        offset += len(block.records)
    seq = np.concatenate(
        [np.arange(b.first_seq, b.first_seq + len(b.records), dtype=np.int64) for b in blocks]
    )
    scales = {kind: pending.precisions.scale(kind, [symbol]) for kind in _KINDS}
    rows = column_table(buffer, records, pending.categories[table], exact, scales, seq)
    yield from _by_day(table, symbol, rows, records["received"])


def column_table(
    buffer: ColumnarBuffer,
    records: np.ndarray,
    categories: Mapping[str, Sequence[str]],
    exact: Mapping[str, Mapping[int, Exact]],
    scales: Mapping[str, int],
    seq: np.ndarray,
) -> pa.Table:
    """A part's rows of one symbol: the buffer's ``exact=True`` frame of ``records`` without
    ``symbol`` (the partition), plus ``seq``."""
    frame = buffer.rows_frame(records, categories, exact, scales).drop(columns="symbol")
    rows = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
    return rows.append_column("seq", pa.array(seq, pa.int64()))


def _book_parts(symbol: str, blocks: list[BookBlock], pending: Pending) -> Iterator[Part]:
    known = pending.precisions.get(symbol)
    price_scale, qty_scale = known if known is not None else (0, 0)
    updates = [block for block in blocks if block.kind == "update"]
    snapshots = [block for block in blocks if block.kind != "update"]
    for name, chosen in (("book_updates", updates), ("book_snapshots", snapshots)):
        if chosen:
            rows, received = _levels_table(chosen, price_scale, qty_scale, snapshots=name == "book_snapshots")
            yield from _by_day(name, symbol, rows, received)


def _levels_table(
    blocks: list[BookBlock], price_scale: int, qty_scale: int, *, snapshots: bool
) -> tuple[pa.Table, np.ndarray]:
    """One row per level of each block (a reset: one row without a level)."""
    times: list[int] = []
    received: list[int] = []
    sides: list[int | None] = []
    prices: list[float] = []
    qtys: list[float] = []
    exact_qtys: dict[int, Decimal] = {}
    checksums: list[int | None] = []
    depths: list[int | None] = []
    kinds: list[int] = []
    seqs: list[int] = []
    for block in blocks:
        count = block.rows
        times.extend([block.time_ns] * count)
        received.extend([block.received_ns] * count)
        checksums.extend([block.checksum] * count)
        seqs.extend([block.seq] * count)
        if snapshots:
            depths.extend([block.depth] * count)
            kinds.extend([BOOK_KINDS.index(block.kind)] * count)
        if block.kind == "reset":
            sides.append(None)
            prices.append(np.nan)
            qtys.append(np.nan)
            continue
        for side, (level_prices, level_qtys) in enumerate((block.bids, block.asks)):
            sides.extend([side] * len(level_prices))
            prices.extend(level_prices)
            for qty in level_qtys:
                if type(qty) is not float:
                    exact_qtys[len(qtys)] = to_exact(qty)
                qtys.append(float(qty))
    received_ns = np.asarray(received, dtype=np.int64)
    columns: dict[str, pa.Array] = {
        "time": utc_timestamps(times),
        "side": pa.DictionaryArray.from_arrays(pa.array(sides, pa.int8()), pa.array(SIDES)),
        "price": pa.array(decimal_array(np.asarray(prices), {}, price_scale, "price")),
        "qty": pa.array(decimal_array(np.asarray(qtys), exact_qtys, qty_scale, "qty")),
        "received": utc_timestamps(received_ns),
        "checksum": pa.array(checksums, pa.int64()),
    }
    if snapshots:
        columns["depth"] = pa.array(depths, pa.int64())
        columns["kind"] = pa.DictionaryArray.from_arrays(pa.array(kinds, pa.int8()), pa.array(BOOK_KINDS))
    columns["seq"] = pa.array(seqs, pa.int64())
    return pa.table(columns), received_ns


def to_exact(value: Any) -> Decimal:
    """A book quantity that is not a float (a ``Decimal`` from the exact decoder, or an int) as Decimal."""
    return value if isinstance(value, Decimal) else Decimal(value)


def _instrument_table(rows: list[dict[str, Any]]) -> pa.Table:
    table = pa.Table.from_pylist(rows)
    at = table.schema.get_field_index("received")
    return table.set_column(at, "received", utc_timestamps([row["received"] for row in rows]))


def _by_day(table: str, symbol: str, rows: pa.Table, received: Sequence[int] | np.ndarray) -> Iterator[Part]:
    """``rows`` split by the UTC day of ``received`` (one part per day)."""
    days = np.asarray(received, dtype=np.int64) // NS_PER_DAY
    if len(days) == 0:
        return
    if days.min() == days.max():
        yield table, symbol, day_of(int(days[0]) * NS_PER_DAY), rows
        return
    for day in np.unique(days):
        yield table, symbol, day_of(int(day) * NS_PER_DAY), rows.filter(pa.array(days == day))
