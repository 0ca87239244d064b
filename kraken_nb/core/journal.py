"""The cursor journal: what the session accepted, per stream, for readers that page with cursors.

The REST and MCP surfaces serve the streams to readers that come and go:
each asks "what happened after cursor N?" and gets the messages in order with
the next cursor, or a snapshot built from current state. ``Journal`` is a
:class:`~kraken_nb.core.taps.Tap`: it sees every frame after the session
handled it and keeps, per stream (``(channel, symbol, interval)``), a bounded
log of the messages *as the session accepted them*, each with a cursor from
one global, increasing sequence (so one cursor covers any set of symbols).

Exact digits: a frame that carries one stream, and that the session accepted
whole, is kept as the very text Kraken sent. Only a frame that must be split
(several symbols) or filtered (trades the session dropped as duplicates after
a reconnect) is rebuilt, from an exact decode of its text
(:func:`~kraken_nb.core.wire.loads_exact`), never from floats. Book messages
the session ignored (stale updates during a resync) or rejected (checksum
mismatch, malformed entry) are not journaled, so a reader that applies a
snapshot and then every message reproduces every checksum; after a resync or
a reconnect the new snapshot message is journaled and tells the reader to
reset.

Each stream remembers the newest cursor it evicted, so a page reports
``gap`` exactly when messages after the reader's cursor were dropped from the
retained window (or the cursor is not from this journal). Snapshots come from
current state: the session's books (passed in by the caller), and the latest
ticker, the last candles and trades and the instrument reference data the
journal keeps itself.

The journal reads no clock and knows no threads: it runs where the session's
taps run (under the client's lock), its readers must hold the same lock, and
``wake`` (a thread-safe callable given by the serving layer) is called after
every frame that added messages and on every connection change.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Final

import orjson

from kraken_nb.core.book import OrderBook
from kraken_nb.core.messages import (
    Ack,
    BookMessage,
    InstrumentMessage,
    Message,
    OhlcMessage,
    Pong,
    TickerMessage,
    TradeMessage,
)
from kraken_nb.core.taps import Tap
from kraken_nb.core.wire import dumps_exact, loads_exact, to_decimal

__all__ = ["INSTRUMENT", "PING", "Journal", "Page", "Snapshot", "StreamKey", "stream_key"]

StreamKey = tuple[str, str, int | None]
"""``(channel, symbol or "", interval for ohlc else None)``."""

PING: Final[StreamKey] = ("ping", "", None)
"""The stream of pong frames."""
INSTRUMENT: Final[StreamKey] = ("instrument", "", None)
"""The stream of instrument (reference data) frames."""

Text = str | bytes
_MAX_PENDING_BOOK: Final = 10_000  # the session's own cap on book entries queued before precisions
_BOOK_OUTCOMES: Final = ("book", "checksum_mismatch", "error")


def stream_key(channel: str, symbol: str = "", interval: int | None = None) -> StreamKey:
    """The key of one stream (``interval`` counts only for ohlc)."""
    return (channel, symbol, interval if channel == "ohlc" else None)


@dataclass(frozen=True, slots=True)
class Page:
    """Messages after a cursor: ``entries`` are ``(cursor, wire text)`` in cursor order."""

    cursor: int
    """Where the next read continues (``since``)."""
    gap: bool
    """Messages after the reader's cursor were evicted (or the cursor is not from this journal)."""
    entries: tuple[tuple[int, Text], ...]

    @property
    def messages(self) -> list[Text]:
        """The wire texts alone."""
        return [text for _, text in self.entries]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A snapshot captured at ``cursor``; :meth:`message` renders it (no lock needed).

    ``missing`` lists the symbols the snapshot has no valid state for (a book
    that is not valid yet, no ticker yet): the caller may wait and retry.
    """

    channel: str
    cursor: int
    missing: tuple[str, ...]
    _build: Callable[[], Any]

    def message(self) -> bytes:
        """The snapshot as a Kraken-shaped message, numbers with their exact digits."""
        return dumps_exact({"channel": self.channel, "type": "snapshot", "data": self._build()})


class _Log:
    """One stream's retained messages: parallel lists of cursors and texts, oldest first."""

    __slots__ = ("cursors", "evicted_through", "retain", "start", "texts")

    def __init__(self, retain: int, evicted_through: int) -> None:
        self.retain = retain
        self.cursors: list[int] = []
        self.texts: list[Text] = []
        self.start = 0  # index of the oldest retained entry (compacted lazily)
        self.evicted_through = evicted_through

    def append(self, cursor: int, text: Text) -> bool:
        """Add one entry; return whether an old one was evicted."""
        self.cursors.append(cursor)
        self.texts.append(text)
        if len(self.cursors) - self.start <= self.retain:
            return False
        self.evicted_through = self.cursors[self.start]
        self.start += 1
        if self.start >= self.retain:
            del self.cursors[: self.start]
            del self.texts[: self.start]
            self.start = 0
        return True

    def after(self, since: int) -> Iterator[tuple[int, Text]]:
        """The retained entries with a cursor above ``since``, oldest first."""
        at = bisect_right(self.cursors, since, self.start)
        return zip(self.cursors[at:], self.texts[at:], strict=True)

    def __len__(self) -> int:
        return len(self.cursors) - self.start


class Journal(Tap):
    """Bounded per-stream logs of accepted messages with cursors, and the snapshot builder.

    ``retain`` messages are kept per stream; ``trades_kept`` trades per symbol
    and ``candles_kept`` candles per symbol and interval feed the snapshots.
    ``start`` is the cursor before the first one handed out: give each run a
    larger one (the serving layer uses the clock) and a cursor from an earlier
    run reads as a gap instead of silently skipping messages.
    """

    def __init__(
        self,
        *,
        retain: int = 1000,
        trades_kept: int = 50,
        candles_kept: int = 100,
        start: int = 0,
        wake: Callable[[], None] | None = None,
    ) -> None:
        if retain < 1 or trades_kept < 1 or candles_kept < 1:
            raise ValueError("retain, trades_kept and candles_kept must be positive")
        self.retain = retain
        self.trades_kept = trades_kept
        self.candles_kept = candles_kept
        self.counters: Counter[str] = Counter()
        self._start = start
        self._head = start
        self._wake = wake
        self._logs: dict[StreamKey, _Log] = {}
        self._tickers: dict[str, Text] = {}
        self._candles: dict[StreamKey, dict[str, Text]] = {}
        self._trades: dict[str, deque[Text]] = {}  # the newest trade messages (each ≥ 1 trade)
        self._pairs: dict[str, dict[str, Any]] = {}
        self._assets: dict[str, dict[str, Any]] = {}
        self._pending_book: dict[str, list[tuple[bool, Text]]] = {}
        self._acks: dict[tuple[str, StreamKey], Text] = {}
        self._last_pong: Text | None = None
        self._evictions = 0

    # -- reading (hold the lock the taps run under) ---------------------------------

    @property
    def cursor(self) -> int:
        """The newest cursor handed out (the start cursor before any message)."""
        return self._head

    def read(self, keys: Iterable[StreamKey], since: int, limit: int) -> Page:
        """Up to ``limit`` messages of the streams ``keys`` after cursor ``since``, in cursor order."""
        logs = [log for key in dict.fromkeys(keys) if (log := self._logs.get(key)) is not None]
        gap = since < self._start or since > self._head or any(log.evicted_through > since for log in logs)
        merged = logs[0].after(since) if len(logs) == 1 else heapq.merge(*(log.after(since) for log in logs))
        entries = tuple(islice(merged, limit))
        # After the last message served; with none, the newest cursor (later ones are all newer).
        return Page(entries[-1][0] if entries else self._head, gap, entries)

    def evicted(self, key: StreamKey) -> int:
        """The newest cursor evicted from stream ``key`` (a read after it has no gap)."""
        log = self._logs.get(key)
        return self._start if log is None else max(log.evicted_through, self._start)

    def snapshot(
        self,
        channel: str,
        keys: Sequence[StreamKey],
        books: Mapping[str, OrderBook | None] | None = None,
        reference: tuple[Mapping[str, Any], Mapping[str, Any]] | None = None,
    ) -> Snapshot:
        """A snapshot of ``keys`` (one channel) at the current cursor.

        For the book channel, ``books`` maps each symbol to the session's
        :class:`OrderBook`; valid books are copied here, so the snapshot can be
        rendered after the lock is released. For the instrument channel,
        ``reference`` (the session's pairs and assets) stands in until the
        journal has seen an instrument frame of its own (a journal added after
        the subscription); their numbers are floats, written back with
        ``repr``, which is Kraken's digits for every value of 15 significant
        digits or fewer.
        """
        if channel == "book":
            copies: list[OrderBook] = []
            missing: list[str] = []
            for _, symbol, _ in keys:
                book = (books or {}).get(symbol)
                if book is not None and book.valid:
                    copies.append(book.copy())
                else:
                    missing.append(symbol)
            return Snapshot(channel, self._head, tuple(missing), lambda: [_book_entry(b) for b in copies])
        if channel == "ticker":
            texts = [(s, self._tickers.get(s)) for _, s, _ in keys]
            missing = [s for s, text in texts if text is None]
            found = [(s, t) for s, t in texts if t is not None]
            return Snapshot(channel, self._head, tuple(missing), lambda: _latest_rows(found))
        if channel == "ohlc":
            candles = [(key, list(self._candles.get(key, {}).items())) for key in keys]
            missing = [key[1] for key, rows in candles if not rows]
            return Snapshot(channel, self._head, tuple(missing), lambda: _candle_rows(candles))
        if channel == "trade":
            trades = [list(self._trades.get(s, ())) for _, s, _ in keys]
            kept = self.trades_kept
            return Snapshot(channel, self._head, (), lambda: _trade_rows(trades, kept))
        if channel == "instrument":
            pairs, assets = list(self._pairs.values()), list(self._assets.values())
            if not pairs and reference is not None:
                pairs, assets = (
                    [_exact(p) for p in reference[0].values()],
                    [_exact(a) for a in reference[1].values()],
                )
            missing = () if pairs else ("instrument",)
            return Snapshot(channel, self._head, missing, lambda: {"assets": assets, "pairs": pairs})
        raise ValueError(f"no snapshot for channel {channel!r}")

    @property
    def last_pong(self) -> Text | None:
        """The newest pong frame, as received."""
        return self._last_pong

    def ack(self, method: str, key: StreamKey) -> Text | None:
        """The newest successful ``subscribe``/``unsubscribe`` ack frame for ``key``, as received."""
        return self._acks.get((method, key))

    def stats(self) -> dict[str, int]:
        """Streams, retained messages, and counters (appended, evicted, rebuilt, filtered, ...)."""
        return {
            "streams": len(self._logs),
            "retained": sum(len(log) for log in self._logs.values()),
            "cursor": self._head,
            "appended": self._head - self._start,
            "evicted": self._evictions,
            **self.counters,
        }

    # -- the tap ------------------------------------------------------------------------

    def frame(self, text: Text, message: Message | None, received_ns: int, events: list[Any]) -> None:
        """Journal what the session accepted of one frame."""
        kind = type(message)
        if kind is BookMessage:
            data = message.data  # type: ignore[union-attr]
            if len(data) == 1 and len(events) == 1 and events[0][0] == "book":
                self._append(("book", data[0]["symbol"], None), text)  # Kraken's usual frame, accepted
                added = True
            else:
                added = self._on_book(text, message, events)  # type: ignore[arg-type]
        elif kind is TradeMessage:
            added = self._on_trades(text, message, events)  # type: ignore[arg-type]
        elif kind is TickerMessage and len(message.data) == 1:  # type: ignore[union-attr]
            symbol = message.data[0]["symbol"]  # type: ignore[union-attr]
            self._append(("ticker", symbol, None), text)
            self._tickers[symbol] = text
            added = True
        elif kind is TickerMessage or kind is OhlcMessage:
            added = self._on_rows(text, message)  # type: ignore[arg-type]
        elif kind is InstrumentMessage:
            added = self._on_instrument(text, message, events)  # type: ignore[arg-type]
        elif kind is Pong:
            self._last_pong = text
            self._append(PING, text)
            added = True
        else:
            if kind is Ack:
                self._on_ack(text, message)  # type: ignore[arg-type]
            return
        if added and self._wake is not None:
            self._wake()

    def connected(self, now_ns: int) -> None:
        """Wake readers waiting for the upstream connection."""
        if self._wake is not None:
            self._wake()

    def disconnected(self, now_ns: int, reason: str) -> None:
        """Books are invalid until their next snapshot, which the journal will carry."""
        self.counters["disconnects"] += 1
        if self._wake is not None:
            self._wake()

    # -- handlers -------------------------------------------------------------------------

    def _append(self, key: StreamKey, text: Text) -> None:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log(self.retain, self._start)
        self._head = head = self._head + 1
        if log.append(head, text):
            self._evictions += 1

    def _groups(
        self,
        text: Text,
        message: BookMessage | TradeMessage | TickerMessage | OhlcMessage,
        keep: list[bool] | None,
    ) -> list[tuple[StreamKey, Text, list[int]]]:
        """The kept entries of a frame as one message per stream: ``(key, text, entry indexes)``.

        A frame whose entries are all kept and all of one stream is its own
        text; anything else is rebuilt from an exact decode.
        """
        data = message.data
        channel = message.channel
        keys = [stream_key(channel, row["symbol"], row.get("interval")) for row in data]
        kept = [i for i in range(len(data)) if keep is None or keep[i]]
        if not kept:
            return []
        first = keys[kept[0]]
        if len(kept) == len(data) and all(key == first for key in keys):
            return [(first, text, kept)]
        self.counters["rebuilt"] += 1
        frame = loads_exact(text)
        rows = frame["data"]
        by_key: dict[StreamKey, list[int]] = {}
        for i in kept:
            by_key.setdefault(keys[i], []).append(i)
        return [
            (key, dumps_exact({**frame, "data": [rows[i] for i in idx]}), idx) for key, idx in by_key.items()
        ]

    def _on_rows(self, text: Text, message: TickerMessage | OhlcMessage) -> bool:
        groups = self._groups(text, message, None)
        for key, part, idx in groups:
            self._append(key, part)
            if key[0] == "ticker":
                self._tickers[key[1]] = part
                continue
            candles = self._candles.setdefault(key, {})
            for i in idx:
                begin = str(message.data[i].get("interval_begin"))
                candles.pop(begin, None)
                candles[begin] = part
            while len(candles) > self.candles_kept:
                del candles[min(candles)]
        return bool(groups)

    def _on_trades(self, text: Text, message: TradeMessage, events: list[Any]) -> bool:
        data = message.data
        n = len(data)
        if n and len(events) >= n and events[n - 1][0] == "trade":
            # Each row gives at most one trade event, and trade events come first: the n-th
            # event being a trade means every row was new. Kraken's usual frame has one symbol.
            symbol = data[0]["symbol"]
            if n == 1 or all(row["symbol"] == symbol for row in data):
                self._append(("trade", symbol, None), text)
                recent = self._trades.get(symbol)
                if recent is None:
                    recent = self._trades[symbol] = deque(maxlen=self.trades_kept)
                recent.append(text)
                return True
        accepted = {id(event.data) for event in events if event.kind == "trade"}
        if not accepted:
            if message.data:
                self.counters["trades_filtered"] += len(message.data)
            return False
        keep = [id(row) in accepted for row in message.data]
        if not all(keep):
            self.counters["trades_filtered"] += keep.count(False)
        groups = self._groups(text, message, None if all(keep) else keep)
        for key, part, _ in groups:
            self._append(key, part)
            recent = self._trades.get(key[1])
            if recent is None:
                recent = self._trades[key[1]] = deque(maxlen=self.trades_kept)
            recent.append(part)
        return True

    def _on_book(self, text: Text, message: BookMessage, events: list[Any]) -> bool:
        data = message.data
        outcomes = _outcomes_by_symbol(events)
        positions: dict[str, list[int]] = {}
        for i, row in enumerate(data):
            positions.setdefault(row["symbol"], []).append(i)
        keep = [False] * len(data)
        hold = [False] * len(data)
        for symbol, where in positions.items():
            kinds = outcomes.get(symbol, [])
            if not kinds and symbol not in self._pairs:
                # Queued by the session until the precisions arrive; released by the instrument frame.
                for i in where:
                    hold[i] = True
                continue
            for i, ok in zip(where, _accepted([message.snapshot] * len(where), kinds), strict=True):
                keep[i] = ok
        rejected = len(data) - keep.count(True) - hold.count(True)
        if rejected:
            self.counters["book_not_applied"] += rejected
        if any(hold):
            for key, part, _ in self._groups(text, message, hold):
                pending = self._pending_book.setdefault(key[1], [])
                if message.snapshot:
                    pending.clear()
                if len(pending) >= _MAX_PENDING_BOOK:
                    pending.clear()  # the session resyncs this book; its snapshot will come
                pending.append((message.snapshot, part))
        groups = self._groups(text, message, keep) if any(keep) else []
        for key, part, _ in groups:
            self._append(key, part)
        return bool(groups)

    def _on_instrument(self, text: Text, message: InstrumentMessage, events: list[Any]) -> bool:
        data = loads_exact(text).get("data") or {}
        if message.snapshot:
            self._pairs.clear()
            self._assets.clear()
        self._pairs.update((str(p["symbol"]), p) for p in data.get("pairs", ()))
        self._assets.update((str(a.get("id")), a) for a in data.get("assets", ()))
        self._append(INSTRUMENT, text)
        for symbol, kinds in _outcomes_by_symbol(events).items():
            pending = self._pending_book.pop(symbol, [])
            released = _accepted([snapshot for snapshot, _ in pending], kinds)
            for (_, part), ok in zip(pending, released, strict=True):
                if ok:
                    self._append(stream_key("book", symbol), part)
        return True

    def _on_ack(self, text: Text, ack: Ack) -> None:
        channel = ack.channel
        if not ack.success or channel is None or ack.method not in ("subscribe", "unsubscribe"):
            return
        interval = ack.result.get("interval", 1) if channel == "ohlc" else None
        key = stream_key(channel, ack.symbol or "", interval)
        other = "unsubscribe" if ack.method == "subscribe" else "subscribe"
        self._acks.pop((other, key), None)
        self._acks[(ack.method, key)] = text


def _outcomes_by_symbol(events: list[Any]) -> dict[str, list[str]]:
    """The book outcome events (applied, mismatch, malformed) of each symbol, in order."""
    outcomes: dict[str, list[str]] = {}
    for event in events:
        if event.kind in _BOOK_OUTCOMES and event.symbol is not None:
            outcomes.setdefault(event.symbol, []).append(event.kind)
    return outcomes


def _accepted(snapshots: list[bool], kinds: list[str]) -> list[bool]:
    """Which of one symbol's book entries, applied in order, the session accepted.

    Each entry yields at most one outcome event. After a mismatch or a
    malformed entry the book is resyncing: later updates yield nothing until a
    snapshot. An update to a book that was resyncing (or never had a
    snapshot) when the frame arrived yields nothing either, and then no
    outcome is left to pair it with.
    """
    accepted: list[bool] = []
    remaining = iter(kinds)
    stale = False
    for snapshot in snapshots:
        if stale and not snapshot:
            accepted.append(False)
            continue
        kind = next(remaining, None)
        accepted.append(kind == "book")
        stale = kind is not None and kind != "book"
    return accepted


# -- snapshot rendering (outside the lock) ------------------------------------------------


def _book_entry(book: OrderBook) -> dict[str, Any]:
    price_precision, qty_precision = book.price_precision, book.qty_precision

    def levels(side: str) -> list[dict[str, orjson.Fragment]]:
        return [
            {
                "price": orjson.Fragment(f"{price:.{price_precision}f}"),
                "qty": orjson.Fragment(f"{qty:.{qty_precision}f}"),
            }
            for price, qty in book.levels_exact(side)
        ]

    entry: dict[str, Any] = {
        "symbol": book.symbol,
        "bids": levels("bid"),
        "asks": levels("ask"),
        "checksum": book.checksum(),
    }
    if book.timestamp is not None:
        entry["timestamp"] = book.timestamp
    return entry


def _exact(record: Mapping[str, Any]) -> dict[str, Any]:
    """A reference record with its floats as the Decimals of their shortest text."""
    return {k: to_decimal(v) if type(v) is float else v for k, v in record.items()}


class _Decoded:
    """Exact decodes of journaled texts, each decoded once per snapshot."""

    def __init__(self) -> None:
        self._rows: dict[int, list[dict[str, Any]]] = {}

    def rows(self, text: Text) -> list[dict[str, Any]]:
        rows = self._rows.get(id(text))
        if rows is None:
            rows = self._rows[id(text)] = loads_exact(text)["data"]
        return rows


def _latest_rows(found: list[tuple[str, Text]]) -> list[dict[str, Any]]:
    decoded = _Decoded()
    return [[row for row in decoded.rows(text) if row["symbol"] == symbol][-1] for symbol, text in found]


def _candle_rows(candles: list[tuple[StreamKey, list[tuple[str, Text]]]]) -> list[dict[str, Any]]:
    decoded = _Decoded()
    rows: list[dict[str, Any]] = []
    for _, kept in candles:
        for begin, text in sorted(kept):
            rows.append([row for row in decoded.rows(text) if str(row.get("interval_begin")) == begin][-1])
    return rows


def _trade_rows(trades: list[list[Text]], kept: int) -> list[dict[str, Any]]:
    """The newest ``kept`` trades of each symbol, oldest first (every journaled trade row was accepted)."""
    rows: list[dict[str, Any]] = []
    for texts in trades:
        symbol_rows = [row for text in texts for row in loads_exact(text)["data"]]
        rows.extend(symbol_rows[-kept:])
    return rows
