"""The protocol state machine: feed it frames, take requests to send.

``Session`` is sans-I/O: the transport hands it every received frame with its
receive time (``feed``) and tells it when a connection opens or drops; the
session keeps the books and buffers, tracks which subscriptions are wanted
and confirmed, and queues the requests the transport must send
(``data_to_send``). It never reads a clock, opens a socket or starts a thread,
so every recovery path (checksum resync, reconnect, dedupe) is unit-tested by
feeding strings.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import pandas as pd

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import BookTopBuffer, CandleBuffer, DepthBuffer, TickerBuffer, TradeBuffer
from kraken_nb.core.messages import (
    Ack,
    BookMessage,
    Heartbeat,
    InstrumentMessage,
    Message,
    OhlcMessage,
    Pong,
    Status,
    TickerMessage,
    TradeMessage,
    Unknown,
    parse,
)
from kraken_nb.core.params import RequestIds, Subscription
from kraken_nb.core.reconnect import Backoff
from kraken_nb.core.subscriptions import SubscriptionStatus, Tracker
from kraken_nb.core.taps import Tap
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import (
    ChecksumMismatch,
    InexactNumber,
    InvalidParams,
    KrakenError,
    MalformedMessage,
)

__all__ = ["Call", "Event", "Gap", "Session", "SubscriptionStatus"]

log = logging.getLogger(__name__)

_INSTRUMENT: Final = Subscription("instrument", (), {})
_MAX_QUEUED_BOOK_ENTRIES: Final = 10_000

SubKey = tuple[str, str, Any]  # (channel, symbol or "", interval for ohlc else None)

# Builds an Event in C: the NamedTuple constructor is a Python function, and the
# book path makes one Event per frame.
_tuple_new = tuple.__new__


class Event(NamedTuple):
    """Something that happened, for callbacks: ``kind`` is e.g. "trade" or "status"."""

    kind: str
    symbol: str | None
    data: Any


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of time in which data for ``symbol`` on ``channel`` may be missing."""

    channel: str
    symbol: str
    start_ns: int
    end_ns: int | None
    reason: str


@dataclass(slots=True)
class Call:
    """A user's subscribe/unsubscribe, done when every symbol is acked or rejected."""

    method: str
    channel: str
    waiting: set[str]
    results: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    rejections: dict[str, str] = field(default_factory=dict)
    acks: dict[str, Ack] = field(default_factory=dict)
    """The whole acknowledgement per symbol ("" for the instrument channel): warnings, times."""

    @property
    def done(self) -> bool:
        """Whether every symbol has been answered."""
        return not self.waiting


@dataclass(slots=True)
class _Request:
    method: str
    channel: str
    symbols: tuple[str, ...]
    interval: int | None


def _key(channel: str, symbol: str, params: Mapping[str, Any]) -> SubKey:
    return (channel, symbol, params.get("interval", 1) if channel == "ohlc" else None)


class Session:
    """Books, buffers and subscription bookkeeping of one logical client.

    ``max_rows`` bounds every history buffer; ``depth_levels`` and
    ``depth_sample_ns`` control the depth snapshots kept for heatmaps.
    ``ack_timeout_ns``, ``max_attempts`` and ``retry_backoff`` govern how
    unanswered and rejected subscribe requests are retried (see
    :mod:`kraken_nb.core.subscriptions`); retries happen in :meth:`poll`.
    """

    def __init__(
        self,
        *,
        max_rows: int | None = None,
        depth_levels: int = 50,
        depth_sample_ns: int = 1_000_000_000,
        ack_timeout_ns: int = 5_000_000_000,
        max_attempts: int = 3,
        retry_backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.trades = TradeBuffer(max_rows=max_rows)
        self.tickers = TickerBuffer(max_rows=max_rows)
        self.candles = CandleBuffer(max_rows=max_rows)
        self.book_tops = BookTopBuffer(max_rows=max_rows)
        self.depths = DepthBuffer(max_rows=None if max_rows is None else max_rows * 2 * depth_levels)
        self.books: dict[str, OrderBook] = {}
        self.pairs: dict[str, Mapping[str, Any]] = {}
        self.assets: dict[str, Mapping[str, Any]] = {}
        self.system_status: str | None = None
        self.connected = False
        self.counters: Counter[str] = Counter()
        self.gaps: list[Gap] = []
        self.versions: Counter[tuple[str, str]] = Counter()
        self.last_message_ns: int | None = None
        self.last_heartbeat_ns: int | None = None
        self._depth_levels = depth_levels
        self._depth_sample_ns = depth_sample_ns
        self._last_depth_sample: dict[str, int] = {}
        self._last_top: dict[str, tuple[float | None, float | None, float | None, float | None, bool]] = {}
        self._wanted: dict[SubKey, Subscription] = {}
        self._confirmed: set[SubKey] = set()
        self._tracker = Tracker(
            ack_timeout_ns=ack_timeout_ns, max_attempts=max_attempts, retry_backoff=retry_backoff, rng=rng
        )
        self._throttled = ThrottledLog(log)
        self._ids = RequestIds()
        self._requests: dict[int, _Request] = {}
        self._calls: dict[int, Call] = {}
        self._call_ids = RequestIds()
        self._outbox: list[dict[str, Any]] = []
        self._resyncing: set[str] = set()
        self._queued_book: dict[str, list[tuple[Mapping[str, Any], bool]]] = {}
        self._pings: set[int] = set()
        self._pongs: set[int] = set()
        self._open_gaps: dict[tuple[str, str], int] = {}
        self._taps: list[Tap] = []

    # -- taps ----------------------------------------------------------------

    def add_tap(self, tap: Tap) -> None:
        """Let ``tap`` observe every frame and connection change (see :mod:`kraken_nb.core.taps`)."""
        if tap not in self._taps:
            self._taps = [*self._taps, tap]

    def remove_tap(self, tap: Tap) -> None:
        """Stop notifying ``tap`` (no error if it was not added)."""
        self._taps = [t for t in self._taps if t is not tap]

    def _notify(self, method: str, *args: Any) -> None:
        for tap in self._taps:
            try:
                getattr(tap, method)(*args)
            except Exception:
                self.counters["tap_errors"] += 1
                if self.counters["tap_errors"] == 1:
                    log.exception("tap %r failed in %s (logged once; counted in tap_errors)", tap, method)

    # -- commands -----------------------------------------------------------

    def subscribe(self, subscription: Subscription) -> int | None:
        """Want ``subscription``; return a call id, or ``None`` if already wanted.

        Symbols already subscribed with the same parameters are skipped; the
        same symbol with other parameters (e.g. another book depth) must be
        unsubscribed first. A book subscription also subscribes the
        instrument channel, whose precisions the checksum needs.
        """
        new: list[str] = []
        again: list[SubKey] = []
        for symbol in subscription.symbols or ("",):
            key = _key(subscription.channel, symbol, subscription.params)
            current = self._wanted.get(key)
            if current is None:
                new.append(symbol)
            elif dict(current.params) != dict(subscription.params):
                raise InvalidParams(
                    f"{subscription.channel} params for {symbol or subscription.channel}",
                    dict(subscription.params),
                    f"{dict(current.params)} (already subscribed: unsubscribe first)",
                )
            elif self._tracker.state(key) in ("retrying", "failed"):
                again.append(key)  # asked for again: try now rather than wait for its retry
        if subscription.channel == "book" and new:
            self.subscribe(_INSTRUMENT)
        if not new and not again:
            return None
        wanted = subscription.with_symbols(s for s in new if s)
        for symbol in new:
            key = _key(subscription.channel, symbol, subscription.params)
            self._wanted[key] = wanted.with_symbols((symbol,) if symbol else ())
            self._tracker.add(key)
        if subscription.channel == "book":
            for symbol in new:
                self._reset_book(symbol)
        call_id = self._call_ids.next()
        self._calls[call_id] = Call("subscribe", subscription.channel, {*new, *(key[1] for key in again)})
        for key in again:
            self._tracker.renew(key)
        if self.connected:
            if new:
                self._send(wanted, "subscribe")
            self._renew(again)
        return call_id

    def unsubscribe(self, subscription: Subscription) -> int | None:
        """Stop wanting ``subscription``; return a call id, or ``None`` if it was not wanted."""
        gone: list[str] = []
        for symbol in subscription.symbols or ("",):
            key = _key(subscription.channel, symbol, subscription.params)
            if self._wanted.pop(key, None) is not None:
                gone.append(symbol)
                self._confirmed.discard(key)
                self._tracker.remove(key)
        if not gone:
            return None
        if subscription.channel == "book":
            for symbol in gone:
                self.books.pop(symbol, None)
                self._resyncing.discard(symbol)
        if not self.connected:
            return None
        call_id = self._call_ids.next()
        self._calls[call_id] = Call("unsubscribe", subscription.channel, set(gone))
        self._send(subscription.with_symbols(s for s in gone if s), "unsubscribe")
        return call_id

    def ping(self) -> int:
        """Queue a ping; return its ``req_id`` (the matching ``pong`` event carries it)."""
        req_id = self._ids.next()
        self._pings.add(req_id)
        self._outbox.append({"method": "ping", "req_id": req_id})
        return req_id

    def ping_pending(self, req_id: int) -> bool:
        """Whether the pong for ``req_id`` is still outstanding on this connection."""
        return req_id in self._pings

    def take_pong(self, req_id: int) -> bool:
        """Whether the pong for ``req_id`` arrived (forgets it)."""
        if req_id in self._pongs:
            self._pongs.discard(req_id)
            return True
        return False

    def call(self, call_id: int) -> Call | None:
        """The state of a subscribe/unsubscribe call (``None`` once forgotten)."""
        return self._calls.get(call_id)

    def forget_call(self, call_id: int) -> None:
        """Drop a finished or abandoned call."""
        self._calls.pop(call_id, None)

    def data_to_send(self) -> list[dict[str, Any]]:
        """Requests queued for the server, in order; the queue is emptied."""
        if not self.connected:
            return []
        out, self._outbox = self._outbox, []
        return out

    def subscriptions(self) -> list[SubscriptionStatus]:
        """Every wanted subscription, one record per (channel, symbol), with its state.

        States: ``wanted``, ``pending``, ``confirmed``, ``retrying``, ``failed``
        (see :mod:`kraken_nb.core.subscriptions`).
        """
        return [self._tracker.status(key, sub) for key, sub in self._wanted.items()]

    def subscription_counts(self) -> dict[str, int]:
        """How many wanted subscriptions are in each state."""
        return self._tracker.counts()

    def settled(self) -> bool:
        """Whether every wanted subscription is confirmed on this connection (true if none is wanted)."""
        return self._tracker.settled()

    def is_subscribed(self, channel: str, symbol: str = "", interval: int | None = None) -> bool:
        """Whether the server has confirmed this subscription on the current connection."""
        return (channel, symbol, interval if channel == "ohlc" else None) in self._confirmed

    def poll(self, now_ns: int) -> list[Event]:
        """Let time pass: retry subscriptions that are due, give up on unanswered new ones.

        The transport calls this about once a second; it returns a
        ``subscription`` event (data: :class:`SubscriptionStatus`) for each
        subscription whose request went unanswered.
        """
        if not self.connected:
            return []
        due, timed_out = self._tracker.poll(now_ns)
        events: list[Event] = []
        for key in timed_out:
            self.counters["subscribe_timeouts"] += 1
            status = self._tracker.status(key, self._wanted[key])
            if status.state == "failed":
                self.counters["subscriptions_failed"] += 1
                log.warning(
                    "%s %s: no answer to %d subscribe requests; giving up on this connection",
                    key[0],
                    key[1],
                    status.attempts,
                )
            else:
                self._throttled.warning(
                    "subscribe timeout", "%s %s: %s; retrying", key[0], key[1], status.last_error
                )
            events.append(Event("subscription", key[1] or None, status))
        if due:
            self.counters["subscribe_retries"] += len(due)
            self._renew(due)
        return events

    # -- connection lifecycle ----------------------------------------------

    def connection_made(self, now_ns: int) -> None:
        """A connection opened: queue every wanted subscription again, instrument first."""
        self.connected = True
        if self._taps:
            self._notify("connected", now_ns)
        self._outbox.clear()
        self._requests.clear()
        for index in self._open_gaps.values():
            self.gaps[index] = _closed(self.gaps[index], now_ns)
        self._open_gaps.clear()
        self._tracker.connection_made()
        self._renew(list(self._wanted))

    def _renew(self, keys: Iterable[SubKey]) -> None:
        """Send subscribe requests for wanted ``keys``: one per channel and params, instrument first."""
        groups: dict[tuple[str, tuple[tuple[str, Any], ...]], list[str]] = {}
        for key in keys:
            sub = self._wanted[key]
            params = dict(sub.params)
            if sub.channel == "trade" and self.trades.last_trade_id(sub.symbols[0]) is not None:
                # the 50-trade snapshot bridges the outage; dedupe drops what we already have
                params["snapshot"] = True
            group = (sub.channel, tuple(sorted(params.items())))
            groups.setdefault(group, []).extend(sub.symbols)
        for channel, params in sorted(groups, key=lambda g: g[0] != "instrument"):
            symbols = groups[(channel, params)]
            self._send(Subscription(channel, tuple(symbols), dict(params)), "subscribe")

    def connection_lost(self, now_ns: int, reason: str = "connection lost") -> list[Event]:
        """The connection dropped: books become invalid, open gaps are recorded."""
        if not self.connected:
            return []
        self.connected = False
        self._confirmed.clear()
        self._tracker.connection_lost()
        self._pings.clear()
        self._resyncing.clear()
        self._queued_book.clear()
        for symbol in list(self.books):
            self._reset_book(symbol)
        for (channel, symbol, _), _sub in self._wanted.items():
            if channel in ("trade", "book", "ticker", "ohlc"):
                self._open_gaps[(channel, symbol)] = len(self.gaps)
                self.gaps.append(Gap(channel, symbol, now_ns, None, reason))
        self.counters["disconnects"] += 1
        if self._taps:
            self._notify("disconnected", now_ns, reason)
        return [Event("disconnected", None, reason)]

    def record_gap(self, channel: str, symbol: str, start_ns: int, end_ns: int | None, reason: str) -> Event:
        """Note that ``channel`` data for ``symbol`` may be missing from ``start_ns`` to ``end_ns``.

        For what a source knows and the frames cannot tell: a relay's outage,
        messages that expired from a stream before they were read. Returns the
        ``gap`` event to hand on.
        """
        gap = Gap(channel, symbol, start_ns, end_ns, reason)
        self.gaps.append(gap)
        self.counters["source_gaps"] += 1
        return Event("gap", symbol, gap)

    # -- incoming ------------------------------------------------------------

    def feed(self, text: str | bytes, received_ns: int) -> list[Event]:
        """Handle one received frame; return the events it produced.

        A malformed frame is counted and reported as an ``error`` event; it
        never raises, so one bad frame cannot stop the stream.
        """
        self.counters["messages"] += 1
        self.counters["bytes"] += len(text)
        self.last_message_ns = received_ns
        message: Message | None = None
        try:
            try:
                message = parse(text)
                events = self.handle(message, received_ns)
            except InexactNumber:
                # A book value has more digits than a float keeps: decode the frame
                # again with Decimals. Book entries are applied whole or not at all,
                # and applying an entry twice leaves the same book.
                self.counters["exact_decodes"] += 1
                message = parse(text, exact=True)
                events = self.handle(message, received_ns)
        except MalformedMessage as exc:
            self.counters["malformed"] += 1
            log.warning("dropped malformed frame: %s", exc.reason)
            message = None
            events = [Event("error", None, exc)]
        if self._taps:
            self._notify("frame", text, message, received_ns, events)
        return events

    def handle(self, message: Message, received_ns: int) -> list[Event]:
        """Handle one parsed message (``feed`` without the decoding).

        Raises ``InexactNumber`` when a book value decoded as a float is too
        long to carry its digits; ``feed`` then decodes the frame again with
        Decimals, a caller of ``handle`` must do the same (``parse(text, exact=True)``).
        """
        if isinstance(message, TradeMessage):
            return self._on_trades(message)
        if isinstance(message, BookMessage):
            return self._on_book(message, received_ns)
        if isinstance(message, TickerMessage):
            return self._on_ticker(message, received_ns)
        if isinstance(message, OhlcMessage):
            return self._on_ohlc(message)
        if isinstance(message, Heartbeat):
            self.counters["heartbeats"] += 1
            self.last_heartbeat_ns = received_ns
            return []
        if isinstance(message, Ack):
            return self._on_ack(message)
        if isinstance(message, Pong):
            if message.req_id in self._pings:
                self._pings.discard(message.req_id)
                self._pongs.add(message.req_id)
            return [Event("pong", None, message)]
        if isinstance(message, InstrumentMessage):
            return self._on_instrument(message)
        if isinstance(message, Status):
            self.system_status = message.system
            if message.system != "online":
                log.warning("Kraken system status: %s", message.system)
            return [Event("status", None, message)]
        assert isinstance(message, Unknown)
        self.counters["unknown"] += 1
        return []

    # -- handlers -------------------------------------------------------------

    def _on_trades(self, message: TradeMessage) -> list[Event]:
        events = []
        gaps_before = len(self.trades.gaps)
        for row in message.data:
            if self.trades.append(row):
                events.append(Event("trade", row["symbol"], row))
            else:
                self.counters["duplicate_trades"] += 1
        self.counters["trades"] += len(events)
        for gap in self.trades.gaps[gaps_before:]:
            self.counters["trade_gaps"] += 1
            events.append(Event("gap", gap.symbol, gap))
        for symbol in message.symbols():
            self.versions[("trade", symbol)] += 1
        return events

    def _on_ticker(self, message: TickerMessage, received_ns: int) -> list[Event]:
        for row in message.data:
            self.tickers.append(row, received_ns)
            self.versions[("ticker", row["symbol"])] += 1
        return [Event("ticker", row["symbol"], row) for row in message.data]

    def _on_ohlc(self, message: OhlcMessage) -> list[Event]:
        for row in message.data:
            self.candles.append(row)
            self.versions[("ohlc", row["symbol"])] += 1
        return [Event("ohlc", row["symbol"], row) for row in message.data]

    def _on_instrument(self, message: InstrumentMessage) -> list[Event]:
        if message.snapshot:
            self.pairs.clear()
            self.assets.clear()
        self.pairs.update((p["symbol"], p) for p in message.pairs)
        self.assets.update((str(a.get("id")), a) for a in message.assets)
        self.versions[("instrument", "")] += 1
        events: list[Event] = [Event("instrument", None, message)]
        for symbol, queued in list(self._queued_book.items()):
            if symbol in self.pairs:
                del self._queued_book[symbol]
                try:
                    for entry, snapshot in queued:
                        events.extend(self._apply_book(entry, snapshot, self.last_message_ns or 0))
                except InexactNumber:
                    # The frames are gone, so they cannot be decoded again: start over.
                    log.warning("%s: a queued book value needs exact decoding; resyncing", symbol)
                    self._reset_book(symbol)
                    self._resync(symbol)
        return events

    def _on_book(self, message: BookMessage, received_ns: int) -> list[Event]:
        data = message.data
        if len(data) == 1 and data[0]["symbol"] in self.pairs:  # Kraken's usual frame
            return self._apply_book(data[0], message.snapshot, received_ns)
        events: list[Event] = []
        for entry in data:
            symbol = entry["symbol"]
            if symbol not in self.pairs:
                queue = self._queued_book.setdefault(symbol, [])
                if message.snapshot:
                    queue.clear()
                if len(queue) >= _MAX_QUEUED_BOOK_ENTRIES:
                    log.warning("%s: no instrument precisions yet; resyncing the book", symbol)
                    del self._queued_book[symbol]
                    self._resync(symbol)
                    continue
                queue.append((entry, message.snapshot))
                continue
            events.extend(self._apply_book(entry, message.snapshot, received_ns))
        return events

    def _apply_book(self, entry: Mapping[str, Any], snapshot: bool, received_ns: int) -> list[Event]:
        symbol = entry["symbol"]
        book = self.books.get(symbol)
        if book is None:
            book = self._new_book(symbol)
            if book is None:
                return []
        if symbol in self._resyncing and not snapshot:
            return []  # updates for the stale book, still in flight before the resync's snapshot
        if not snapshot and not book.valid and book.version == 0:
            return []  # an update before any snapshot: nothing to apply it to
        try:
            ok = book.apply(entry, snapshot=snapshot)
        except InexactNumber:
            raise  # feed() decodes the frame again, exactly
        except MalformedMessage as exc:
            self.counters["malformed"] += 1
            log.warning("%s: malformed book entry (%s); resyncing", symbol, exc.reason)
            book.reset()
            self._resync(symbol)
            return [Event("error", symbol, exc)]
        if snapshot:
            self._resyncing.discard(symbol)
        self.versions[("book", symbol)] += 1
        if not ok:
            self.counters["checksum_mismatches"] += 1
            mismatch = ChecksumMismatch(symbol, entry["checksum"], book.checksum())
            log.warning("%s; resubscribing", mismatch)
            self._resync(symbol)
            return [Event("checksum_mismatch", symbol, mismatch)]
        self._record_top(book, received_ns)
        return [_tuple_new(Event, ("book", symbol, book.version))]

    def _record_top(self, book: OrderBook, received_ns: int) -> None:
        """Append the top of book when it changed; take a depth sample when one is due."""
        symbol = book.symbol
        top = (*book.top(), book.valid)
        if self._last_top.get(symbol) != top:
            self._last_top[symbol] = top
            self.book_tops.append(symbol, received_ns, *top)
        last = self._last_depth_sample.get(symbol)
        if last is None or received_ns - last >= self._depth_sample_ns:
            self._last_depth_sample[symbol] = received_ns
            self.depths.append(symbol, received_ns, *book.depth_arrays(self._depth_levels))

    def _new_book(self, symbol: str) -> OrderBook | None:
        pair = self.pairs.get(symbol)
        sub = self._wanted.get(("book", symbol, None))
        if pair is None or sub is None:
            return None
        book = OrderBook(
            symbol,
            sub.params.get("depth", 10),
            price_precision=int(pair["price_precision"]),
            qty_precision=int(pair["qty_precision"]),
        )
        self.books[symbol] = book
        return book

    def _reset_book(self, symbol: str) -> None:
        book = self.books.get(symbol)
        if book is not None:
            book.reset()
            self.versions[("book", symbol)] += 1

    def _resync(self, symbol: str) -> None:
        """Resubscribe one symbol's book to get a fresh snapshot."""
        sub = self._wanted.get(("book", symbol, None))
        if sub is None or symbol in self._resyncing:
            return
        self._resyncing.add(symbol)
        self.counters["resyncs"] += 1
        fresh = Subscription("book", (symbol,), {k: v for k, v in sub.params.items() if k != "snapshot"})
        self._send(fresh, "unsubscribe")
        self._send(fresh, "subscribe")

    def _on_ack(self, ack: Ack) -> list[Event]:
        request = self._requests.pop(ack.req_id, None) if ack.req_id is not None else None
        channel = ack.channel or (request.channel if request else None)
        if request is not None and len(request.symbols) > 1:
            self._requests[ack.req_id] = request  # type: ignore[index]  # more acks to come
        symbols: Iterable[str]
        if ack.symbol is not None or channel == "instrument":
            symbols = (ack.symbol or "",)
        else:
            symbols = request.symbols if request else ()
        events: list[Event] = []
        for symbol in symbols:
            events.extend(self._settle(ack, channel, symbol, request))
        if not ack.success and channel is None:
            self.counters["errors"] += 1
            log.warning("server error for %s: %s", ack.method or "request", ack.error)
            events.append(Event("error", None, KrakenError(f"{ack.method or 'request'}: {ack.error}")))
        return events

    def _settle(self, ack: Ack, channel: str | None, symbol: str, request: _Request | None) -> list[Event]:
        if channel is None:
            return []
        interval = None
        if channel == "ohlc":
            interval = ack.result.get("interval", request.interval if request else 1)
        key: SubKey = (channel, symbol, interval)
        success = ack.success or (ack.method == "subscribe" and key in self._wanted and _already(ack.error))
        events: list[Event] = []
        if success:
            if ack.method == "subscribe":
                self._confirmed.add(key)
                self._tracker.confirmed(key)
            elif ack.method == "unsubscribe" and key not in self._wanted:
                self._confirmed.discard(key)
        elif ack.method == "subscribe" and key in self._wanted:
            error = ack.error or "rejected"
            if self._tracker.rejected(key, error):
                # the user had it: keep it and retry with backoff (poll() sends it again)
                self._confirmed.discard(key)
                self.counters["resubscribe_rejections"] += 1
                self._throttled.warning(
                    "resubscribe rejected",
                    "%s %s: resubscribe rejected (%s); kept, retrying",
                    channel,
                    symbol,
                    error,
                )
                status = self._tracker.status(key, self._wanted[key])
                events.append(Event("subscription", symbol or None, status))
            else:
                del self._wanted[key]
                self._tracker.remove(key)
                self._confirmed.discard(key)
                self.counters["rejected"] += 1
                log.warning("%s %s rejected: %s", channel, symbol or "", ack.error)
        for call in self._calls.values():
            if call.method == ack.method and call.channel == channel and symbol in call.waiting:
                call.waiting.discard(symbol)
                call.acks[symbol] = ack
                if success:
                    call.results[symbol] = ack.result
                else:
                    call.rejections[symbol or channel] = ack.error or "rejected"
        if not success:
            return [Event("rejected", symbol or None, (ack.method, channel, ack.error)), *events]
        return [Event("ack", symbol or None, (ack.method, channel))]

    # -- requests ---------------------------------------------------------------

    def _send(self, subscription: Subscription, method: str) -> None:
        if method == "subscribe":
            for symbol in subscription.symbols or ("",):
                self._tracker.sent(_key(subscription.channel, symbol, subscription.params))
        req_id = self._ids.next()
        interval = subscription.params.get("interval", 1) if subscription.channel == "ohlc" else None
        self._requests[req_id] = _Request(method, subscription.channel, subscription.symbols, interval)
        self._outbox.append(subscription.request(method, req_id))

    # -- views ------------------------------------------------------------------

    def gaps_frame(self) -> pd.DataFrame:
        """Disconnect windows and trade-id gaps, one row each, oldest first."""
        rows = [
            {
                "channel": g.channel,
                "symbol": g.symbol,
                "start": g.start_ns,
                "end": g.end_ns,
                "reason": g.reason,
                "after_trade_id": None,
                "before_trade_id": None,
            }
            for g in self.gaps
        ]
        rows += [
            {
                "channel": "trade",
                "symbol": g.symbol,
                "start": g.time_ns,
                "end": g.time_ns,
                "reason": "trade ids skipped",
                "after_trade_id": g.after_id,
                "before_trade_id": g.before_id,
            }
            for g in self.trades.gaps
        ]
        frame = pd.DataFrame(
            rows,
            columns=["channel", "symbol", "start", "end", "reason", "after_trade_id", "before_trade_id"],
        )
        for column in ("start", "end"):
            frame[column] = pd.to_datetime(frame[column].astype("Int64"), unit="ns", utc=True)
        for column in ("after_trade_id", "before_trade_id"):
            frame[column] = frame[column].astype("Int64")
        return frame.sort_values("start", kind="stable").reset_index(drop=True)


def _already(error: str | None) -> bool:
    """Whether a rejection says the server already has the subscription (a retry crossed its ack)."""
    return error is not None and "already subscribed" in error.lower()


def _closed(gap: Gap, end_ns: int) -> Gap:
    return Gap(gap.channel, gap.symbol, gap.start_ns, end_ns, gap.reason)
