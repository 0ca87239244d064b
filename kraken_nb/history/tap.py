"""The recorder's tap: what the session accepted, turned into pending rows under the client's lock.

:class:`HistoryTap` never parses a frame: after the session handled one, it
copies the rows the session's buffers just wrote (trades after
de-duplication, tickers, each new version of a candle), with the exact values
the buffers keep for long numbers, so the dataset holds exactly the rows of
the live ``exact=True`` frames. Book entries come from the parsed message when
the session applied them (a ``book`` event): updates level by level with
Kraken's checksum, snapshots as the book holds them after applying. Where
the session's book changed in a way the tap cannot follow entry by entry
(queued entries applied when the instrument data arrived, a frame with
several entries for one symbol) it records the book itself (a ``recorder``
snapshot); where the book became invalid (disconnect, checksum mismatch,
malformed entry) it records a ``reset``.

Every row gets its stream's next sequence number (a stream is a table and a
symbol; book updates and book snapshots share the ``book`` stream). Rows an
earlier run already recorded (see :class:`Prior`) are skipped and counted.

No I/O and no clock here: the tap only appends to in-memory batches, which
the writer takes with :meth:`HistoryTap.take` (also under the lock) and
writes elsewhere.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

import numpy as np

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import Precisions
from kraken_nb.core.buffers.columnar import NAT, ColumnarBuffer
from kraken_nb.core.buffers.exact import Exact
from kraken_nb.core.messages import BookMessage, InstrumentMessage, OhlcMessage, TickerMessage, TradeMessage
from kraken_nb.core.session import Event, Session
from kraken_nb.core.taps import Tap
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.errors import DatasetError, MalformedMessage

__all__ = ["BOOK_KINDS", "STREAMS", "BookBlock", "ColumnBlock", "HistoryTap", "Pending", "Prior"]

log = logging.getLogger(__name__)

BOOK_KINDS: Final = ("kraken", "recorder", "reset")
"""``kind`` of a book snapshot: Kraken's snapshot, the recorder's copy of the book, or the book lost."""

STREAMS: Final = {
    "trades": "trades",
    "ticker": "ticker",
    "candles": "candles",
    "book_updates": "book",
    "book_snapshots": "book",
    "instruments": "instruments",
}
"""The sequence-number stream of each table (book updates and snapshots share one)."""

_COLUMN_TABLES: Final = {TradeMessage: "trades", TickerMessage: "ticker", OhlcMessage: "candles"}
_BOOK_EVENTS: Final = frozenset(("book", "checksum_mismatch", "error"))


@dataclass(slots=True)
class Prior:
    """What an earlier recording holds for one stream: where to continue and what not to repeat.

    ``seq`` is the newest sequence number written (-1 for none), ``received``
    the newest receive time; a row received no later than that is taken as
    recorded already. ``trade_ids`` are the newest trade ids recorded, which
    a trade snapshot after a restart repeats.
    """

    seq: int = -1
    received: int = NAT
    trade_ids: frozenset[int] = frozenset()

    def merge(self, other: Prior) -> Prior:
        """The newer of two streams' states (book updates and snapshots share one stream)."""
        return Prior(
            max(self.seq, other.seq), max(self.received, other.received), self.trade_ids | other.trade_ids
        )


@dataclass(slots=True)
class ColumnBlock:
    """Rows of one symbol copied out of a buffer: storage records, exact values by position, first seq."""

    records: np.ndarray
    exact: dict[str, dict[int, Exact]]
    first_seq: int


Levels = tuple[Sequence[float], Sequence[float | Decimal]]
"""Prices and quantities of one side, best first for snapshots, in message order for updates."""


@dataclass(slots=True)
class BookBlock:
    """One book message or state: ``kind`` is ``update`` or one of :data:`BOOK_KINDS`."""

    kind: str
    seq: int
    time_ns: int
    received_ns: int
    checksum: int | None
    depth: int | None
    bids: Levels = ((), ())
    asks: Levels = ((), ())

    @property
    def rows(self) -> int:
        """Rows this block becomes (a reset is one row without levels)."""
        return 1 if self.kind == "reset" else len(self.bids[0]) + len(self.asks[0])


@dataclass(slots=True)
class Pending:
    """Everything recorded since the last roll, as the writer takes it."""

    columns: dict[tuple[str, str], list[ColumnBlock]] = field(default_factory=lambda: defaultdict(list))
    books: dict[str, list[BookBlock]] = field(default_factory=lambda: defaultdict(list))
    instruments: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    categories: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    """Per table, the values behind the category codes of its records."""
    precisions: Precisions = field(default_factory=Precisions)
    """The pairs' precisions when the batch was taken (they set the exact columns' scales)."""
    rows: int = 0

    def __bool__(self) -> bool:
        return bool(self.rows)


@dataclass(slots=True)
class _Book:
    """The tap's view of one symbol's book stream."""

    depth: int | None = None
    last_seq: int = -1
    last_time: int = NAT
    last_received: int = NAT
    dirty: bool = False
    """Updates were recorded since the last snapshot (a roll then records the book)."""
    reset: bool = True
    """The newest thing recorded says the book is not valid (or nothing was recorded yet)."""


class HistoryTap(Tap):
    """Collects what a session accepted into :class:`Pending` batches (see the module docstring).

    ``prior`` maps ``(stream, symbol)`` to what an earlier run recorded;
    ``due`` is called (under the lock) once the pending rows reach
    ``roll_rows``. Attach with :meth:`attach` and take batches with
    :meth:`take`, both under the lock that serialises the session.
    """

    def __init__(
        self,
        session: Session,
        prior: Mapping[tuple[str, str], Prior] | None = None,
        *,
        roll_rows: int = 100_000,
        due: Callable[[], None] | None = None,
    ) -> None:
        self.session = session
        self.counters: Counter[str] = Counter()
        """``rows_<table>`` per table, ``skipped_recorded`` (rows an earlier run holds), ``rows_lost``."""
        self._prior = dict(prior or {})
        self._prior_ids = {
            key: (np.fromiter(p.trade_ids, np.int64), max(p.trade_ids))
            for key, p in self._prior.items()
            if p.trade_ids
        }
        self._next_seq = {key: p.seq + 1 for key, p in self._prior.items()}
        self._roll_rows = roll_rows
        self._due = due
        self._signalled = False
        self._buffers: dict[str, ColumnarBuffer] = {
            "trades": session.trades,
            "ticker": session.tickers,
            "candles": session.candles,
        }
        self._names: dict[str, list[str]] = {table: [] for table in self._buffers}
        self._books: dict[str, _Book] = {}
        self._symbols: set[str] = set()
        self._pairs: dict[str, dict[str, Any]] = {}
        self._pending = Pending()
        self._log = ThrottledLog(log)
        self._attached = False

    # -- lifecycle (under the lock) ---------------------------------------------

    def attach(self) -> None:
        """Start observing the session (its buffers begin logging their writes)."""
        if any(buffer.logging_writes for buffer in self._buffers.values()):
            raise DatasetError("this session already has a recorder; stop it first")
        for buffer in self._buffers.values():
            buffer.log_writes()
        self.session.add_tap(self)
        self._attached = True

    def detach(self) -> None:
        """Stop observing the session (idempotent)."""
        if not self._attached:
            return
        self._attached = False
        self.session.remove_tap(self)
        for buffer in self._buffers.values():
            buffer.log_writes(False)

    @property
    def pending_rows(self) -> int:
        """Rows collected since the last :meth:`take`."""
        return self._pending.rows

    def take(self) -> Pending:
        """The batch so far, plus a ``recorder`` snapshot of every book updated since its last snapshot."""
        for symbol, state in self._books.items():
            book = self.session.books.get(symbol)
            if state.dirty and book is not None and book.valid:
                self._add_book(
                    symbol,
                    _snapshot(book, "recorder", state.last_seq, state.last_time, state.last_received),
                    new_seq=False,
                )
        pending, self._pending = self._pending, Pending()
        self._signalled = False
        for (table, _), _blocks in pending.columns.items():
            if table not in pending.categories:
                pending.categories[table] = self._buffers[table].categories()
        symbols = {symbol for _, symbol in pending.columns} | set(pending.books)
        for symbol in symbols:
            known = self.session.precisions.get(symbol)
            if known is not None:
                pending.precisions.set(symbol, *known)
        return pending

    # -- the tap ----------------------------------------------------------------

    def frame(self, text: str | bytes, message: Any, received_ns: int, events: list[Any]) -> None:
        """Collect what the session accepted from one frame."""
        table = _COLUMN_TABLES.get(type(message))
        if table is not None:
            self._rows(table)
        elif type(message) is BookMessage:
            self._book_frame(message, events, received_ns)
        elif type(message) is InstrumentMessage:
            for pair in message.pairs:
                if pair["symbol"] in self._symbols:
                    self._pair(pair["symbol"], pair, received_ns)
            self._book_events(events, received_ns)  # entries queued for the precisions, applied now

    def disconnected(self, now_ns: int, reason: str) -> None:
        """Every book is lost until its next snapshot: record a reset for each."""
        for symbol, state in self._books.items():
            if not state.reset:
                self._add_book(symbol, BookBlock("reset", -1, NAT, now_ns, None, state.depth))

    # -- trades, tickers, candles -----------------------------------------------

    def _rows(self, table: str) -> None:
        buffer = self._buffers[table]
        writes = buffer.take_writes()
        if not writes.serials:
            return
        records, serials = buffer.stored_rows(writes.serials)
        lost = len(writes.serials) - len(serials)
        if lost:
            self.counters["rows_lost"] += lost
            self._log.warning(
                f"lost {table}",
                "%d %s rows were dropped by max_rows before the recorder copied them",
                lost,
                table,
            )
        if not len(records):
            return
        exact: dict[str, dict[int, Exact]] = {}
        if writes.exact:
            where = {serial: at for at, serial in enumerate(serials.tolist())}
            for serial, name, value in writes.exact:
                at = where.get(serial)
                if at is not None:
                    exact.setdefault(name, {})[at] = value
        codes = records["symbol"]
        first = int(codes[0])
        if len(codes) == 1 or bool((codes == first).all()):
            self._add_rows(table, first, records, exact)
            return
        for code in dict.fromkeys(codes.tolist()):
            mask = codes == code
            self._add_rows(table, code, records[mask], _subset(exact, mask))

    def _add_rows(
        self, table: str, code: int, records: np.ndarray, exact: dict[str, dict[int, Exact]]
    ) -> None:
        symbol = self._symbol_name(table, code)
        key = (table, symbol)
        prior = self._prior.get(key)
        if prior is not None:
            keep = records["received"] > prior.received
            ids, newest = self._prior_ids.get(key, (None, -1))
            if ids is not None:
                keep &= ~np.isin(records["trade_id"], ids)
            kept = int(np.count_nonzero(keep))
            if kept < len(records):
                self.counters["skipped_recorded"] += len(records) - kept
                if not kept:
                    return
                records, exact = records[keep], _subset(exact, keep)
            if ids is None or int(records["trade_id"].max()) > newest:
                del self._prior[key]  # past what was recorded: later rows are all new
        seq = self._seq(key, len(records))
        self._pending.columns[key].append(ColumnBlock(records, exact, seq))
        self._counted(table, symbol, len(records))

    def _symbol_name(self, table: str, code: int) -> str:
        names = self._names[table]
        if code >= len(names):
            names[:] = self._buffers[table].symbols()
        return names[code]

    # -- books ------------------------------------------------------------------

    def _book_frame(self, message: BookMessage, events: list[Event], received_ns: int) -> None:
        touched: dict[str, list[str]] = {}
        for event in events:
            if event.symbol is not None and event.kind in _BOOK_EVENTS:
                touched.setdefault(event.symbol, []).append(event.kind)
        if not touched:
            return
        entries: dict[str, list[Mapping[str, Any]]] = {}
        for entry in message.data:
            entries.setdefault(entry["symbol"], []).append(entry)
        for symbol, kinds in touched.items():
            mine = entries.get(symbol, ())
            if self._recorded(("book", symbol), received_ns, sum(map(_level_count, mine))):
                continue
            book = self.session.books.get(symbol)
            state = self._books.get(symbol)
            based = message.snapshot or (state is not None and not state.reset)
            if kinds == ["book"] and len(mine) == 1 and book is not None and book.valid and based:
                self._book_entry(book, mine[0], message.snapshot, received_ns)
            else:  # no snapshot to build on yet, or not entry by entry: record the book itself
                self._book_state(symbol, book, received_ns)

    def _book_events(self, events: Iterable[Event], received_ns: int) -> None:
        for symbol in dict.fromkeys(e.symbol for e in events if e.kind == "book" and e.symbol is not None):
            self._book_state(symbol, self.session.books.get(symbol), received_ns)

    def _book_entry(
        self, book: OrderBook, entry: Mapping[str, Any], snapshot: bool, received_ns: int
    ) -> None:
        """Record one applied entry: a snapshot as the book now holds it, an update level by level."""
        time_ns = self._time_ns(book.symbol, entry.get("timestamp"))
        if snapshot:
            block = _snapshot(book, "kraken", -1, time_ns, received_ns)
        else:
            block = BookBlock(
                "update",
                -1,
                time_ns,
                received_ns,
                int(entry["checksum"]),
                book.depth,
                _levels(entry.get("bids")),
                _levels(entry.get("asks")),
            )
        self._add_book(book.symbol, block)

    def _book_state(self, symbol: str, book: OrderBook | None, received_ns: int) -> None:
        """Record the session's book as it is now: a ``recorder`` snapshot if valid, else a reset."""
        if book is not None and book.valid:
            time_ns = self._time_ns(symbol, book.timestamp)
            self._add_book(symbol, _snapshot(book, "recorder", -1, time_ns, received_ns))
            return
        state = self._books.get(symbol)
        if state is not None and not state.reset:
            self._add_book(symbol, BookBlock("reset", -1, NAT, received_ns, None, state.depth))

    def _add_book(self, symbol: str, block: BookBlock, *, new_seq: bool = True) -> None:
        if self._recorded(("book", symbol), block.received_ns, block.rows):
            return
        state = self._books.get(symbol)
        if state is None:
            state = self._books[symbol] = _Book()
        if new_seq:
            block.seq = self._seq(("book", symbol), 1)
            state.last_seq, state.last_time, state.last_received = block.seq, block.time_ns, block.received_ns
        state.depth = block.depth if block.depth is not None else state.depth
        state.dirty = block.kind == "update"
        state.reset = block.kind == "reset"
        self._pending.books[symbol].append(block)
        self._counted("book_updates" if block.kind == "update" else "book_snapshots", symbol, block.rows)

    def _time_ns(self, symbol: str, text: Any) -> int:
        if text is None:
            return NAT
        try:
            return parse_rfc3339_ns(text)
        except (MalformedMessage, TypeError):
            self._log.warning(f"book time {symbol}", "%s: book timestamp %r is not RFC3339", symbol, text)
            return NAT

    # -- instruments ----------------------------------------------------------

    def _pair(self, symbol: str, pair: Mapping[str, Any], received_ns: int) -> None:
        """Record a pair's reference data when it differs from what was last recorded for it."""
        row = {name: float(value) if isinstance(value, Decimal) else value for name, value in pair.items()}
        row.pop("symbol", None)
        if self._pairs.get(symbol) == row:
            return
        key = ("instruments", symbol)
        if self._recorded(key, received_ns, 1):
            return
        self._pairs[symbol] = row
        self._pending.instruments[symbol].append({**row, "received": received_ns, "seq": self._seq(key, 1)})
        self._counted("instruments", symbol, 1)

    # -- bookkeeping ----------------------------------------------------------------

    def _recorded(self, key: tuple[str, str], received_ns: int, rows: int) -> bool:
        """Whether an earlier run recorded what stream ``key`` received at ``received_ns`` (then counted)."""
        prior = self._prior.get(key)
        if prior is None:
            return False
        if received_ns <= prior.received:
            self.counters["skipped_recorded"] += rows
            return True
        del self._prior[key]  # past what was recorded: later rows are all new
        return False

    def _seq(self, key: tuple[str, str], count: int) -> int:
        """The first of ``count`` new sequence numbers of stream ``key``."""
        first = self._next_seq.get(key, 0)
        self._next_seq[key] = first + count
        return first

    def _counted(self, table: str, symbol: str, rows: int) -> None:
        self.counters["rows_" + table] += rows
        pending = self._pending
        pending.rows += rows
        if symbol not in self._symbols:
            self._symbols.add(symbol)
            pair = self.session.pairs.get(symbol)
            if pair is not None:
                self._pair(symbol, pair, self.session.last_message_ns or 0)
        if pending.rows >= self._roll_rows and not self._signalled and self._due is not None:
            self._signalled = True
            self._due()


def _subset(exact: dict[str, dict[int, Exact]], mask: np.ndarray) -> dict[str, dict[int, Exact]]:
    """``exact`` for the rows ``mask`` keeps, by their new positions."""
    if not exact:
        return {}
    position = np.cumsum(mask) - 1
    return {
        name: {int(position[at]): value for at, value in values.items() if mask[at]}
        for name, values in exact.items()
    }


def _level_count(entry: Mapping[str, Any]) -> int:
    """The rows an entry's levels make."""
    return len(entry.get("bids") or ()) + len(entry.get("asks") or ())


def _levels(levels: Any) -> Levels:
    """Prices and quantities of an update side as applied (floats, or Decimals from the exact decoder)."""
    if not levels:
        return ((), ())
    return [float(level["price"]) for level in levels], [level["qty"] for level in levels]


def _snapshot(book: OrderBook, kind: str, seq: int, time_ns: int, received_ns: int) -> BookBlock:
    """The book's levels (best first) as a snapshot block."""
    bid_prices, bid_qtys, ask_prices, ask_qtys = book.depth_values()
    return BookBlock(
        kind,
        seq,
        time_ns,
        received_ns,
        book.checksum(),
        book.depth,
        (bid_prices, bid_qtys),
        (ask_prices, ask_qtys),
    )
