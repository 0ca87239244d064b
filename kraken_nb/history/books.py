"""Books rebuilt from a dataset: the latest snapshot before an instant, then every update after it.

The same :class:`~kraken_nb.core.book.OrderBook` as the live client applies
the recorded levels, so every snapshot and every update is checked against
the checksum Kraken sent with it. A ``reset`` snapshot (the live book was lost:
a disconnect, a checksum mismatch) gives an empty book that is not valid, as
the live client's was until its next snapshot.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers.columnar import NAT
from kraken_nb.core.buffers.exact import decimal_floats
from kraken_nb.core.timestamps import format_rfc3339_ns
from kraken_nb.errors import InexactNumber, MalformedMessage
from kraken_nb.history.layout import day_of

__all__ = ["BookSource", "replay_books"]

log = logging.getLogger(__name__)

Query = Callable[[str, Mapping[str, Any]], pa.Table]
"""Runs SQL with named parameters and returns the rows (the History's error-handling query)."""


@dataclass(frozen=True, slots=True)
class BookSource:
    """Where one symbol's book rows are: the FROM clauses of its snapshots and updates, its precisions."""

    symbol: str
    snapshots: str
    updates: str
    precisions: Callable[[int], tuple[int, int] | None]
    """``(price_precision, qty_precision)`` in force at a receive time (ns), from the instruments."""


@dataclass(frozen=True, slots=True)
class _Snapshot:
    seq: int
    kind: str
    depth: int
    checksum: int | None
    time_ns: int
    received_ns: int


_AT = "received <= make_timestamp_ns($at)::TIMESTAMPTZ_NS AND date <= $day"


def replay_books(
    run: Query, source: BookSource, times: Iterable[int]
) -> Iterator[tuple[int, OrderBook | None]]:
    """``(t, book)`` for each time ``t`` (ns, in rising order): a copy of the book as it was then.

    ``book`` is None before the first snapshot of the symbol. It is replayed
    once: from the latest snapshot before the first time, then forward,
    restarting from a later snapshot whenever one lies between two times.
    """
    book: OrderBook | None = None
    applied = -1
    for at in sorted(times):
        snapshot = _latest_snapshot(run, source, at)
        if snapshot is None:
            yield at, None
            continue
        if book is None or snapshot.seq > applied:
            book = _start(run, source, snapshot)
            applied = snapshot.seq
        if book.valid:
            applied = _apply_updates(run, source, book, applied, at, snapshot)
        yield at, book.copy()


def _latest_snapshot(run: Query, source: BookSource, at: int) -> _Snapshot | None:
    day = day_of(at)
    for since in (day - timedelta(days=1), date.min):  # a snapshot is written at every roll
        rows = run(
            f"""SELECT seq, kind, any_value(depth) AS depth, any_value(checksum) AS checksum,
                       epoch_ns(any_value(time)) AS time_ns, epoch_ns(max(received)) AS received_ns
                FROM {source.snapshots} WHERE {_AT} AND date >= $since
                GROUP BY seq, kind ORDER BY seq DESC LIMIT 1""",
            {"at": at, "day": day, "since": since},
        ).to_pylist()
        if rows:
            row = rows[0]
            time_ns = row["time_ns"]
            return _Snapshot(
                row["seq"],
                row["kind"],
                int(row["depth"] or 10),
                row["checksum"],
                NAT if time_ns is None else time_ns,
                row["received_ns"],
            )
    return None


def _new_book(source: BookSource, snapshot: _Snapshot, levels: pa.Table | None) -> OrderBook:
    precisions = source.precisions(snapshot.received_ns)
    if (
        precisions is None and levels is not None and levels.num_rows
    ):  # no instrument rows: the columns' scales
        precisions = (levels.schema.field("price").type.scale, levels.schema.field("qty").type.scale)
    price_precision, qty_precision = precisions or (0, 0)
    return OrderBook(
        source.symbol,
        snapshot.depth,
        price_precision=price_precision,
        qty_precision=qty_precision,
        numeric_strings=False,
    )


def _start(run: Query, source: BookSource, snapshot: _Snapshot) -> OrderBook:
    """A book from one snapshot (empty and not valid for a reset)."""
    if snapshot.kind == "reset":
        return _new_book(source, snapshot, None)
    levels = run(
        f"""SELECT side, price, qty FROM {source.snapshots}
            WHERE seq = $seq AND kind = $kind AND date = $day""",
        {"seq": snapshot.seq, "kind": snapshot.kind, "day": day_of(snapshot.received_ns)},
    )
    book = _new_book(source, snapshot, levels)
    entry = _entry(source.symbol, levels, 0, levels.num_rows, snapshot.checksum, snapshot.time_ns)
    if not _apply(book, entry, levels, 0, levels.num_rows, snapshot=True):
        log.warning(
            "%s: the %s snapshot (seq %d) does not match its checksum; the book is not valid",
            source.symbol,
            snapshot.kind,
            snapshot.seq,
        )
    return book


def _apply_updates(
    run: Query, source: BookSource, book: OrderBook, applied: int, at: int, snapshot: _Snapshot
) -> int:
    """Apply the updates after seq ``applied`` received by ``at``; return the last seq applied."""
    rows = run(
        f"""SELECT seq, side, price, qty, checksum, epoch_ns(time) AS time_ns FROM {source.updates}
            WHERE seq > $after AND {_AT} AND date >= $since ORDER BY seq, file_row_number""",
        {"after": applied, "at": at, "day": day_of(at), "since": day_of(snapshot.received_ns)},
    )
    if not rows.num_rows:
        return applied
    seqs = rows.column("seq").to_numpy()
    starts = np.flatnonzero(np.r_[True, seqs[1:] != seqs[:-1]])
    stops = np.r_[starts[1:], len(seqs)]
    checksums = rows.column("checksum").to_pylist()
    times = rows.column("time_ns").to_pylist()
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        time_ns = times[start]
        entry = _entry(
            source.symbol, rows, start, stop, checksums[start], NAT if time_ns is None else time_ns
        )
        if not _apply(book, entry, rows, start, stop, snapshot=False):
            log.warning(
                "%s: recorded update seq %d does not match its checksum; the book is not valid",
                source.symbol,
                seqs[start],
            )
            return int(seqs[start])
        applied = int(seqs[start])
    return applied


def _entry(
    symbol: str, rows: pa.Table, start: int, stop: int, checksum: int | None, time_ns: int
) -> dict[str, Any]:
    """A book entry (as a message's ``data`` item) of rows ``start:stop``, numbers as floats."""
    part = rows.slice(start, stop - start)
    sides = part.column("side").to_pylist()
    prices = decimal_floats(part.column("price")).tolist()
    qtys = decimal_floats(part.column("qty")).tolist()
    bids = [{"price": p, "qty": q} for s, p, q in zip(sides, prices, qtys, strict=True) if s == "bid"]
    asks = [{"price": p, "qty": q} for s, p, q in zip(sides, prices, qtys, strict=True) if s == "ask"]
    stamp = None if time_ns == NAT else format_rfc3339_ns(time_ns, 6 if time_ns % 1000 == 0 else 9)
    return {"symbol": symbol, "bids": bids, "asks": asks, "checksum": checksum, "timestamp": stamp}


def _exact_entry(rows: pa.Table, start: int, stop: int, entry: dict[str, Any]) -> dict[str, Any]:
    """``entry`` with Decimal prices and quantities (for values too long for a float)."""
    part = rows.slice(start, stop - start)
    sides = part.column("side").to_pylist()
    levels = list(zip(sides, part.column("price").to_pylist(), part.column("qty").to_pylist(), strict=True))
    return {
        **entry,
        "bids": [{"price": p, "qty": q} for s, p, q in levels if s == "bid"],
        "asks": [{"price": p, "qty": q} for s, p, q in levels if s == "ask"],
    }


def _apply(
    book: OrderBook, entry: dict[str, Any], rows: pa.Table, start: int, stop: int, *, snapshot: bool
) -> bool:
    """Apply one recorded entry (exactly, when a float would lose digits); whether its checksum matched."""
    if entry["checksum"] is None:
        return False
    try:
        try:
            return book.apply(entry, snapshot=snapshot)
        except InexactNumber:
            return book.apply(_exact_entry(rows, start, stop, entry), snapshot=snapshot)
    except MalformedMessage as exc:
        log.warning("%s: a recorded book entry is not valid (%s)", book.symbol, exc.reason)
        book.valid = False
        return False
