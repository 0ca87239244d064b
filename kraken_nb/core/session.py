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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import pandas as pd
from orjson import loads as _loads_floats  # the fast path; ``parse`` explains or recovers what it refuses

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import (
    BookTopBuffer,
    CandleBuffer,
    DepthBuffer,
    Precisions,
    TickerBuffer,
    TradeBuffer,
)
from kraken_nb.core.buffers.columnar import NAT, ColumnarBuffer
from kraken_nb.core.buffers.exact import same_number, wire_numbers
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
    parse_object,
)
from kraken_nb.core.params import RequestIds, Subscription
from kraken_nb.core.reconnect import Backoff
from kraken_nb.core.subscriptions import SubscriptionStatus, Tracker
from kraken_nb.core.taps import Tap
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.core.wire import loads_exact, to_decimal
from kraken_nb.errors import (
    ChecksumMismatch,
    InexactNumber,
    InvalidParams,
    KrakenError,
    MalformedMessage,
    brief,
)

__all__ = ["Call", "Event", "Gap", "Session", "SubscriptionStatus"]

log = logging.getLogger(__name__)

_INSTRUMENT: Final = Subscription("instrument", (), {})
_MAX_QUEUED_BOOK_ENTRIES: Final = 10_000
_TEXT_TYPES: Final = (str, bytes, bytearray, memoryview)
_NEVER: Final = -(2**63)  # the receive time of "no depth sample yet": the first one is due at once

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


class _Versions(dict[tuple[str, str], int]):
    """Change counters per ``(stream, symbol)``, 0 when never changed.

    A ``Counter`` would do, but a ``Counter``'s item assignment runs through
    Python (it defines ``__delitem__``) and every frame bumps one.
    """

    def __missing__(self, key: tuple[str, str]) -> int:
        return 0


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
        self.precisions = Precisions()
        self._counters: Counter[str] = Counter()
        # The two counters every frame bumps are plain ints (a Counter's += costs three
        # times a plain int's); ``counters`` folds them in.
        self._messages = 0
        self._bytes = 0
        self.trades = TradeBuffer(max_rows=max_rows, precisions=self.precisions, counters=self._counters)
        self.tickers = TickerBuffer(max_rows=max_rows, precisions=self.precisions)
        self.candles = CandleBuffer(max_rows=max_rows, precisions=self.precisions)
        self.book_tops = BookTopBuffer(max_rows=max_rows, precisions=self.precisions)
        self.depths = DepthBuffer(
            max_rows=None if max_rows is None else max_rows * 2 * depth_levels, precisions=self.precisions
        )
        self.books: dict[str, OrderBook] = {}
        self.pairs: dict[str, Mapping[str, Any]] = {}
        self.assets: dict[str, Mapping[str, Any]] = {}
        self.system_status: str | None = None
        self.connected = False
        self.gaps: list[Gap] = []
        self.versions: dict[tuple[str, str], int] = _Versions()
        self.last_message_ns: int | None = None
        self.last_heartbeat_ns: int | None = None
        self._depth_levels = depth_levels
        self._depth_sample_ns = depth_sample_ns
        self._last_depth_sample: dict[str, int] = {}
        self._last_top: dict[str, tuple[tuple[Any, ...], bool]] = {}
        self._book_keys: dict[str, tuple[str, str]] = {}  # ("book", symbol), built once per symbol
        self._wanted: dict[SubKey, Subscription] = {}
        self._confirmed: set[SubKey] = set()
        self._tracker = Tracker(
            ack_timeout_ns=ack_timeout_ns, max_attempts=max_attempts, retry_backoff=retry_backoff, rng=rng
        )
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
        self._log = ThrottledLog(log)
        self._frame_rejected = False
        self._book_time: tuple[str | None, int] = (None, NAT)

    @property
    def counters(self) -> Counter[str]:
        """Counts of what happened: ``messages``, ``bytes``, ``malformed``, ``resyncs``, ``trades``…"""
        counters = self._counters
        counters["messages"] = self._messages
        counters["bytes"] = self._bytes
        return counters

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
                self._counters["tap_errors"] += 1
                if self._counters["tap_errors"] == 1:
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
        if not self.connected or not self._outbox:
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
            self._counters["subscribe_timeouts"] += 1
            status = self._tracker.status(key, self._wanted[key])
            if status.state == "failed":
                self._counters["subscriptions_failed"] += 1
                log.warning(
                    "%s %s: no answer to %d subscribe requests; giving up on this connection",
                    key[0],
                    key[1],
                    status.attempts,
                )
            else:
                self._log.warning(
                    "subscribe timeout", "%s %s: %s; retrying", key[0], key[1], status.last_error
                )
            events.append(Event("subscription", key[1] or None, status))
        if due:
            self._counters["subscribe_retries"] += len(due)
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
        self._counters["disconnects"] += 1
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
        """Handle one received frame; return the events it produced. Never raises.

        A frame that is not valid is counted (``counters["malformed"]``), logged
        (rate-limited) and reported as an ``error`` event; so is each bad item
        of a frame whose other items are kept (``counters["rejected_items"]``).
        Any other exception while handling the frame is a bug: it is counted
        in ``malformed`` and ``internal_errors``, logged with its traceback the
        first time, and the frame is dropped, so one frame cannot stop the stream.
        """
        self._messages += 1
        self.last_message_ns = received_ns
        message: Message | None = None
        try:
            self._bytes += len(text)
            try:
                try:
                    frame = _loads_floats(text)
                except (ValueError, TypeError):
                    message = parse(text)  # says why the frame is not JSON, or decodes what orjson refuses
                else:
                    message = parse_object(frame)
                events = self.handle(message, received_ns, text)
            except InexactNumber:
                # A book value has more digits than a float keeps: decode the frame
                # again with Decimals. Book entries are applied whole or not at all,
                # and applying an entry twice leaves the same book.
                self._counters["exact_decodes"] += 1
                message = parse(text, exact=True)
                events = self.handle(message, received_ns, text)
        except MalformedMessage as exc:
            self._counters["malformed"] += 1
            self._log.warning("frame", "dropped a malformed frame: %s", exc.reason)
            message = None
            events = [Event("error", None, exc)]
        except Exception as exc:
            message = None
            events = [self._failed(text, exc)]
        if self._taps:
            self._notify("frame", text, message, received_ns, events)
        return events

    def _failed(self, text: object, exc: Exception) -> Event:
        """Count and report a frame whose handling raised (call it inside the ``except``)."""
        self._counters["malformed"] += 1
        if not isinstance(text, _TEXT_TYPES):
            error = MalformedMessage(f"a frame must be text or bytes, not {type(text).__name__}")
            self._log.warning("frame", "dropped a malformed frame: %s", error.reason)
            return Event("error", None, error)
        self._counters["internal_errors"] += 1
        detail = f"{type(exc).__name__}: {brief(str(exc))}"
        self._log.log(
            logging.ERROR,
            "internal",
            "could not handle a frame (%s); dropped it and went on (counted in internal_errors)",
            detail,
            exc_info=True,
        )
        error = MalformedMessage(f"could not be handled ({detail})", text)  # type: ignore[arg-type]
        error.__cause__ = exc
        return Event("error", None, error)

    def handle(self, message: Message, received_ns: int, text: str | bytes | None = None) -> list[Event]:
        """Handle one parsed message (``feed`` without the decoding); ``text`` is the frame it came from.

        Raises ``InexactNumber`` when a book value decoded as a float is too
        long to carry its digits; ``feed`` then decodes the frame again with
        Decimals, a caller of ``handle`` must do the same (``parse(text, exact=True)``).
        Trade, ticker and ohlc values that may be too long for their float are
        read exactly from ``text``; without it they keep their float (counted
        in ``counters["exact_unresolved"]``). A message with rejected items
        counts once in ``counters["malformed"]``.
        """
        self._frame_rejected = False
        if type(message) is BookMessage:  # most frames: skip the dispatch chain
            data = message.data
            if len(data) == 1 and not message.rejected and data[0]["symbol"] in self.pairs:  # the usual frame
                events = self._apply_book(data[0], message.snapshot, received_ns)
            else:
                events = self._on_book(message, received_ns)
        else:
            events = self._dispatch(message, received_ns, text)
        if self._frame_rejected:
            self._frame_rejected = False
            self._counters["malformed"] += 1
        return events

    def _dispatch(self, message: Message, received_ns: int, text: str | bytes | None) -> list[Event]:
        if isinstance(message, TradeMessage):
            return self._on_trades(message, received_ns, text)
        if isinstance(message, BookMessage):
            return self._on_book(message, received_ns)
        if isinstance(message, TickerMessage):
            return self._on_ticker(message, received_ns, text)
        if isinstance(message, OhlcMessage):
            return self._on_ohlc(message, received_ns, text)
        if isinstance(message, Heartbeat):
            self._counters["heartbeats"] += 1
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
        self._counters["unknown"] += 1
        return []

    # -- rejected items ---------------------------------------------------------

    def _reject(self, channel: str, error: MalformedMessage) -> Event:
        """Count, log (rate-limited) and report one bad item; the frame counts as malformed."""
        self._frame_rejected = True
        self._counters["rejected_items"] += 1
        self._log.warning(channel, "rejected a bad %s item: %s", channel, error.reason)
        item = error.frame
        symbol = item.get("symbol") if isinstance(item, Mapping) else None
        return Event("error", symbol if isinstance(symbol, str) else None, error)

    def _rejections(self, channel: str, rejected: tuple[MalformedMessage, ...]) -> list[Event]:
        return [self._reject(channel, error) for error in rejected]

    def _append_rows(
        self,
        channel: str,
        rows: Sequence[Mapping[str, Any]],
        append: Callable[[Sequence[Mapping[str, Any]]], Sequence[Mapping[str, Any]]],
        events: list[Event],
    ) -> list[Mapping[str, Any]]:
        """Append a frame's rows in one batch (``append`` returns the rows kept).

        A buffer converts a whole batch before adding any row; should it refuse
        a row the schema let through, the rows go in one at a time so the good
        ones are kept and the bad one is rejected like any other bad item.
        """
        try:
            return list(append(rows))
        except MalformedMessage:
            kept: list[Mapping[str, Any]] = []
            for row in rows:
                try:
                    kept.extend(append((row,)))
                except MalformedMessage as exc:
                    events.append(self._reject(channel, exc))
            return kept

    # -- handlers -------------------------------------------------------------

    def _on_trades(self, message: TradeMessage, received_ns: int, text: str | bytes | None) -> list[Event]:
        events = self._rejections("trade", message.rejected) if message.rejected else []
        trades = self.trades  # it counts duplicates, stale trades, gaps and anomalies itself
        snapshot = message.snapshot

        def add(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
            return trades.extend_new(rows, received_ns, snapshot=snapshot)

        new = self._append_rows("trade", message.data, add, events)
        if trades.suspects:
            self._read_exact(trades, message, text)
        events.extend(Event("trade", row["symbol"], row) for row in new)
        self._counters["trades"] += len(new)
        if trades.new_gaps:
            events.extend(Event("gap", gap.symbol, gap) for gap in trades.take_gaps())
        for symbol in message.symbols():
            self.versions[("trade", symbol)] += 1
        return events

    def _on_ticker(self, message: TickerMessage, received_ns: int, text: str | bytes | None) -> list[Event]:
        events = self._rejections("ticker", message.rejected) if message.rejected else []
        tickers = self.tickers

        def add(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
            tickers.extend(rows, received_ns)
            return rows

        rows = self._append_rows("ticker", message.data, add, events)
        if tickers.suspects:
            self._read_exact(tickers, message, text)
        for row in rows:
            self.versions[("ticker", row["symbol"])] += 1
            events.append(Event("ticker", row["symbol"], row))
        return events

    def _on_ohlc(self, message: OhlcMessage, received_ns: int, text: str | bytes | None) -> list[Event]:
        events = self._rejections("ohlc", message.rejected) if message.rejected else []
        candles = self.candles

        def add(rows: Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
            candles.extend(rows, received_ns)  # upserts: every row is kept
            return rows

        rows = self._append_rows("ohlc", message.data, add, events)
        if candles.suspects:
            self._read_exact(candles, message, text)
        for row in rows:
            self.versions[("ohlc", row["symbol"])] += 1
            events.append(Event("ohlc", row["symbol"], row))
        return events

    def _read_exact(self, buffer: ColumnarBuffer, message: Message, text: str | bytes | None) -> None:
        """Give ``buffer`` the exact wire digits of the floats it noted as possibly inexact."""
        suspects = buffer.take_suspects()
        if text is None:
            self._counters["exact_unresolved"] += len(suspects)
            self._log.warning(
                "exact unresolved",
                "%d values may have lost digits and no frame text came with them",
                len(suspects),
            )
            return
        if not isinstance(text, str):
            text = bytes(text).decode("utf-8", "replace")
        rows = message.data  # type: ignore[union-attr]
        tokens: dict[str, list[str] | None] = {}
        decoded: Any = None
        read = 0
        for serial, position, name, value in suspects:
            if name not in tokens:
                tokens[name] = wire_numbers(text, name, len(rows))
            found = tokens[name]
            token = None if found is None else found[position]
            try:
                if token is not None and float(token) == value:  # this row's number
                    read += 1
                    if not same_number(token, value):  # the float does not hold it
                        buffer.keep_wire(serial, name, token)
                    continue
                else:  # not one plain number per row: decode the frame exactly
                    if decoded is None:
                        self._counters["exact_decodes"] += 1
                        decoded = loads_exact(text)["data"]
                    number = to_decimal(decoded[position][name])
                    if float(number) != value:
                        raise ValueError("not this frame's value")
                    read += 1
            except (ValueError, TypeError, LookupError, ArithmeticError):
                self._counters["exact_unresolved"] += 1
                continue
            buffer.resolve(serial, name, number, value)
        self._counters["exact_reads"] += read

    def _on_instrument(self, message: InstrumentMessage) -> list[Event]:
        events = self._rejections("instrument", message.rejected) if message.rejected else []
        if message.snapshot:
            self.pairs.clear()
            self.assets.clear()
        self.pairs.update((p["symbol"], p) for p in message.pairs)
        self.assets.update((a["id"], a) for a in message.assets)
        if message.snapshot:
            self.precisions.clear()
        for symbol in self.precisions.replace(message.pairs):
            self._log.warning(
                f"precision {symbol}", "%s: unusable instrument precisions; exact columns infer them", symbol
            )
        self.versions[("instrument", "")] += 1
        events.append(Event("instrument", None, message))
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
        if len(data) == 1 and data[0]["symbol"] in self.pairs and not message.rejected:  # the usual frame
            return self._apply_book(data[0], message.snapshot, received_ns)
        events = self._rejections("book", message.rejected) if message.rejected else []
        for entry in data:
            symbol = entry["symbol"]
            if symbol not in self.pairs:
                if ("book", symbol, None) not in self._wanted:
                    continue  # a book nobody asked for: nothing to queue it for
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
            event = self._reject("book", exc)
            log.info("%s: malformed book entry; resyncing the book", symbol)
            book.reset()
            self.versions[("book", symbol)] += 1
            self._resync(symbol)
            return [event]
        if snapshot:
            self._resyncing.discard(symbol)
        key = self._book_keys.get(symbol) or self._book_keys.setdefault(symbol, ("book", symbol))
        self.versions[key] += 1
        if not ok:
            self._counters["checksum_mismatches"] += 1
            mismatch = ChecksumMismatch(symbol, entry["checksum"], book.checksum())
            log.warning("%s; resubscribing", mismatch)
            self._resync(symbol)
            return [Event("checksum_mismatch", symbol, mismatch)]
        # The top of book when it changed, a depth sample when one is due (inline: once per frame).
        top = book.top_values()
        valid = book.valid
        last = self._last_top.get(symbol)
        if last is None or last[0] != top or last[1] is not valid:
            self._last_top[symbol] = (top, valid)
            self.book_tops.append(symbol, self._book_time_ns(book), received_ns, *top, valid)
        if received_ns - self._last_depth_sample.get(symbol, _NEVER) >= self._depth_sample_ns:
            self._last_depth_sample[symbol] = received_ns
            self.depths.append(
                symbol, self._book_time_ns(book), received_ns, *book.depth_values(self._depth_levels)
            )
        return [_tuple_new(Event, ("book", symbol, book.version))]

    def _book_time_ns(self, book: OrderBook) -> int:
        """The book message's own time in ns (``NaT`` when it had none or it is not RFC3339)."""
        text = book.timestamp
        if text == self._book_time[0]:
            return self._book_time[1]
        if text is None:
            return NAT
        try:
            ns = parse_rfc3339_ns(text)
            if not 0 <= ns < 2**63:  # stored as int64 nanoseconds
                raise MalformedMessage(f"book timestamp {text!r} is out of range")
        except MalformedMessage:
            self._log.warning(
                f"book time {book.symbol}",
                "%s: book timestamp %r is not a usable RFC3339 time",
                book.symbol,
                text,
            )
            ns = NAT
        self._book_time = (text, ns)
        return ns

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
            numeric_strings=False,
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
        self._counters["resyncs"] += 1
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
            self._counters["errors"] += 1
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
                self._counters["resubscribe_rejections"] += 1
                self._log.warning(
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
                self._counters["rejected"] += 1
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
        """Disconnect windows, trade-id gaps and trade-id anomalies, one row each, oldest first."""
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
                "reason": g.reason,
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
