"""The relay's publishing side: a tap that queues every frame, a publisher that drains the queue.

:class:`RelayTap` runs on the relay client's network thread, under its lock,
for every frame the session handled. It only decides where the frame goes
(:func:`~kraken_nb.relay.subjects.routes`), adds the headers, takes a copy of
a book when its snapshot is due, and puts an :class:`Outgoing` into the
:class:`Publisher`'s bounded buffer. The publisher runs on a thread and loop
of its own and sends the buffer, in order, through a
:class:`~kraken_nb.relay.sink.Sink`, a window of messages at a time with
their acknowledgements pipelined. A message leaves the buffer only once the
sink acknowledged it; after a failure the publisher waits and sends again
from the first unacknowledged message under the same ids, so nothing is lost
or stored twice.

When NATS stays away long enough for the buffer to fill, new frames are
refused (counted in ``dropped``) until it has drained to 90 %; then a
:class:`~kraken_nb.relay.gaps.GapRecord` naming the streams and times is
queued ahead of any frame accepted again (also when none comes: a market
gone quiet still gets its record).

Headers on every frame: ``Nats-Msg-Id`` (derived from the frame),
``Kraken-Received`` (the relay's receive time, ns), ``Kraken-Prev`` (the id
of the previous frame on the same subject, which lets a client notice frames
that expired before it read them) and ``Kraken-Type: snapshot`` on snapshot
frames. A book snapshot carries ``Kraken-Stream-Seq``: the main-stream
sequence of the frame after which the book was copied, and ``Kraken-Book-Time``:
when it was copied (ns; every frame received before is in it, dropped ones
included). While the buffer refuses frames no trailing copy is taken, so the
first one after a drop is newer than the drop's gap record (``end_ns``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, NamedTuple

from kraken_nb.core.book import OrderBook
from kraken_nb.core.messages import InstrumentMessage, Message
from kraken_nb.core.reconnect import Backoff
from kraken_nb.core.taps import Tap
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.looping import LoopThread
from kraken_nb.relay.gaps import DROPPED_REASON, GapRecord
from kraken_nb.relay.sink import Sink
from kraken_nb.relay.snapshot import book_snapshot_frame
from kraken_nb.relay.subjects import (
    GAP_SUBJECT,
    INSTRUMENT_SNAPSHOT_SUBJECT,
    Occurrences,
    book_snapshot_subject,
    routes,
)

__all__ = ["BookCopy", "Outgoing", "Publisher", "RelayTap"]

log = logging.getLogger(__name__)

_RETRY = Backoff(initial=0.1, maximum=2.0)


@dataclass(slots=True)
class Outgoing:
    """One message for the sink, and what to publish once its stream sequence is known."""

    subject: str
    payload: bytes
    msg_id: str | None
    headers: dict[str, str] = field(default_factory=dict)
    stream: tuple[str, str] | None = None
    """``(channel, symbol)`` of a data frame (what a drop makes a gap in)."""
    received_ns: int = 0
    book: OrderBook | None = None
    """A copy of the book right after this frame: published as its snapshot, valid at its sequence."""
    copy_to: str | None = None
    """Also publish the payload verbatim to this subject (the instrument snapshot)."""
    gap: GapRecord | None = None
    seq: int | None = None
    """Its stream sequence, once acknowledged."""


def _too_large(exc: BaseException) -> bool:
    return type(exc).__name__ == "MaxPayloadError"


class Publisher:
    """Drains a bounded buffer of :class:`Outgoing` into a sink, in order, on its own thread.

    ``gap_filter`` (optional, awaited on the publisher's loop) may narrow a
    gap record before it is published (the relay drops the streams another
    relay covered) or return None to skip it.
    """

    def __init__(
        self, *, relay: str, max_buffer: int = 100_000, window: int = 256, ack_timeout: float = 5.0
    ) -> None:
        if max_buffer < 1 or window < 1:
            raise ValueError("max_buffer and window must be positive")
        self.relay = relay
        self.ack_timeout = ack_timeout
        """How long a window of messages may wait for its acknowledgements before it is sent again."""
        self.max_buffer = max_buffer
        self.window = window
        self.gap_filter: Callable[[GapRecord], Awaitable[GapRecord | None]] | None = None
        self.counters: dict[str, int] = dict.fromkeys(
            ("published", "duplicates", "dropped", "too_large", "failures", "snapshots", "gap_records"), 0
        )
        self.last_error: str | None = None
        self.last_seq: int | None = None
        self._buffer: deque[Outgoing] = deque()
        self._mutex = threading.Lock()
        self._woken = False
        self._refusing = False
        self._drop_start_ns: int | None = None
        self._dropped_streams: set[tuple[str, str]] = set()
        self._sink: Sink | None = None
        self._has_items: asyncio.Event | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._throttled = ThrottledLog(log)
        self._rng = random.Random()
        self._runner = LoopThread("kraken-nb-relay-publisher", self._main)

    # -- any thread ---------------------------------------------------------------

    def start(self) -> None:
        """Start the publisher's thread (it publishes once a sink is attached)."""
        self._runner.start()

    def call(self, coroutine: Coroutine[Any, Any, Any], timeout: float | None = None) -> Any:
        """Run ``coroutine`` on the publisher's loop and return its result."""
        return self._runner.call(coroutine, timeout)

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run ``coroutine`` as a task on the publisher's loop until it ends or the publisher stops."""

        def create() -> None:
            task = asyncio.ensure_future(coroutine)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        self._runner.call_soon(create)

    def attach(self, sink: Sink) -> None:
        """Publish through ``sink`` from now on (call on the publisher's loop or before starting)."""
        self._sink = sink
        self._wake()

    @property
    def buffered(self) -> int:
        """Messages waiting for their acknowledgement."""
        return len(self._buffer)

    def put(self, item: Outgoing) -> bool:
        """Queue ``item``; False if the buffer is full (the item is dropped and counted)."""
        with self._mutex:
            size = len(self._buffer)
            if item.gap is not None:
                size = 0  # a gap record is never refused
            else:
                self._end_drop_if_room(item.received_ns)
            if self._refusing or size >= self.max_buffer:
                self._refuse(item)
                return False
            self._buffer.append(item)
            self._idle.clear()
            wake = not self._woken
            self._woken = True
        if wake:
            self._wake()
        return True

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued message was acknowledged; return whether it happened in time."""
        return self._idle.wait(timeout)

    def close(self, drain_timeout: float = 5.0) -> None:
        """Publish what is queued (for up to ``drain_timeout``), then stop and close the sink."""
        if self._sink is not None and self._buffer:
            self.wait_idle(drain_timeout)
        self._runner.stop(drain_timeout + 5.0)
        if self._buffer:
            log.warning("relay closing with %d messages not published", len(self._buffer))

    # -- buffer bookkeeping (under the mutex) --------------------------------------------

    def _refuse(self, item: Outgoing) -> None:
        if not self._refusing:
            log.warning(
                "relay buffer full (%d messages): dropping frames until NATS catches up; a gap is recorded",
                self.max_buffer,
            )
        self._refusing = True
        self.counters["dropped"] += 1
        if self._drop_start_ns is None:
            self._drop_start_ns = item.received_ns
        if item.stream is not None:
            self._dropped_streams.add(item.stream)

    def _end_drop_if_room(self, now_ns: int) -> None:
        """Stop refusing once the buffer is below 90 % again, queueing the gap record of the drop."""
        if self._refusing and len(self._buffer) <= self.max_buffer * 0.9:
            self._refusing = False
            self._buffer.append(self._drop_record(now_ns))

    def _drop_record(self, now_ns: int) -> Outgoing:
        record = GapRecord(
            self.relay,
            self._drop_start_ns or now_ns,
            now_ns,
            DROPPED_REASON,
            tuple(sorted(self._dropped_streams)),
        )
        self._drop_start_ns = None
        self._dropped_streams = set()
        return gap_outgoing(record)

    def _wake(self) -> None:
        has_items = self._has_items
        if has_items is not None:
            self._runner.call_soon(has_items.set)

    # -- the publisher's loop ----------------------------------------------------------

    async def _main(self) -> None:
        self._has_items = asyncio.Event()
        stopping = self._runner.stopping
        assert stopping is not None
        attempt = 0
        try:
            while not stopping.is_set():
                if not self._buffer or self._sink is None:
                    with self._mutex:
                        self._woken = False
                        self._has_items.clear()
                        if not self._buffer:
                            self._idle.set()
                        elif self._sink is not None:
                            continue  # items arrived meanwhile
                    await _first(self._has_items.wait(), stopping.wait())
                    continue
                if await self._pump(self._sink):
                    attempt = 0
                    continue
                attempt += 1
                await _first(asyncio.sleep(_RETRY.delay(attempt, self._rng)), stopping.wait())
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._sink is not None:
                try:
                    await self._sink.close()
                except Exception as exc:  # closing must not raise
                    log.debug("closing the sink: %s", exc)

    async def _pump(self, sink: Sink) -> bool:
        """Publish one window from the head of the buffer; return False after a failure."""
        with self._mutex:
            window = list(islice(self._buffer, 0, self.window))
        head = window[0]
        if head.gap is not None:
            return await self._publish_gap(sink, head)
        window = [item for item in _until_gap(window)]
        sent: list[tuple[Outgoing, asyncio.Future[Any] | None]] = []
        error: BaseException | None = None
        for item in window:
            try:
                sent.append((item, await sink.publish(item.subject, item.payload, item.msg_id, item.headers)))
            except Exception as exc:
                if _too_large(exc):
                    sent.append((item, None))
                    continue
                error = exc
                break
        results = await _settle([r for _, r in sent if r is not None], self.ack_timeout)
        done = 0
        extra: list[tuple[str, bytes, dict[str, str]]] = []
        answers = iter(results)
        for item, receipt in sent:
            if receipt is None:
                self._oversized(item)
                done += 1
                continue
            result = next(answers)
            if isinstance(result, BaseException):
                error = result
                break
            self._completed(item, result, extra)
            done += 1
        with self._mutex:
            for _ in range(done):
                self._buffer.popleft()
            if done:  # room again though no frame came since: the gap is recorded now
                self._end_drop_if_room(time.time_ns())
        if extra:
            await self._publish_extra(sink, extra)
        if error is not None:
            self._failed(error)
            return False
        return True

    def _completed(
        self, item: Outgoing, receipt: Any, extra: list[tuple[str, bytes, dict[str, str]]]
    ) -> None:
        self.counters["published"] += 1
        self.last_seq = item.seq = receipt.seq
        if receipt.duplicate:
            self.counters["duplicates"] += 1
        if item.book is not None:
            extra.append(_snapshot_message(BookCopy(item, item.book, item.received_ns)))
        if item.copy_to is not None:
            extra.append((item.copy_to, item.payload, _snapshot_headers(item)))

    @property
    def refusing(self) -> bool:
        """Whether the buffer is dropping frames (until it has room again and records the gap)."""
        return self._refusing

    async def publish_snapshots(self, pending: list[BookCopy]) -> list[BookCopy]:
        """Publish the snapshot of each book whose frame is acknowledged; return the others (on the loop)."""
        ready = [copy for copy in pending if copy.item.seq is not None]
        sink = self._sink
        if ready and sink is not None:
            await self._publish_extra(sink, [_snapshot_message(copy) for copy in ready])
        return [copy for copy in pending if copy.item.seq is None]

    async def _publish_extra(self, sink: Sink, extra: list[tuple[str, bytes, dict[str, str]]]) -> None:
        """Snapshots and copies: refreshed again later, so a failure is only counted."""
        try:
            pending = [
                await sink.publish(subject, payload, None, headers) for subject, payload, headers in extra
            ]
            results = await _settle(pending, self.ack_timeout)
        except Exception as exc:
            results = [exc]
        for result in results:
            if isinstance(result, BaseException):
                self._throttled.warning("snapshot", "relay: a snapshot was not stored: %s", result)
            else:
                self.counters["snapshots"] += 1

    async def _publish_gap(self, sink: Sink, item: Outgoing) -> bool:
        record = item.gap
        assert record is not None
        try:
            narrowed = record if self.gap_filter is None else await self.gap_filter(record)
            if narrowed is not None and narrowed.streams:
                future = await sink.publish(GAP_SUBJECT, narrowed.to_json(), narrowed.msg_id, {})
                (receipt,) = await _settle([future], self.ack_timeout)
                if isinstance(receipt, BaseException):
                    raise receipt
                self.last_seq = receipt.seq
                self.counters["gap_records"] += 1
                log.warning(
                    "relay gap %s: %.1f s, %d streams",
                    narrowed.reason,
                    (narrowed.end_ns - narrowed.start_ns) / 1e9,
                    len(narrowed.streams),
                )
        except Exception as exc:
            self._failed(exc)
            return False
        with self._mutex:
            self._buffer.popleft()
        return True

    def _oversized(self, item: Outgoing) -> None:
        self.counters["too_large"] += 1
        log.error(
            "relay: a %d-byte frame on %s exceeds the NATS server's max_payload; not published "
            "(raise max_payload in the nats-server configuration)",
            len(item.payload),
            item.subject,
        )
        if item.stream is not None:
            now = item.received_ns or time.time_ns()
            record = GapRecord(self.relay, now, now, "a frame exceeded the NATS max_payload", (item.stream,))
            with self._mutex:
                self._buffer.append(gap_outgoing(record))

    def _failed(self, exc: BaseException) -> None:
        self.counters["failures"] += 1
        self.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        self._throttled.warning(
            "publish", "relay: publishing failed (%s); %d messages wait", self.last_error, len(self._buffer)
        )


def _snapshot_headers(item: Outgoing) -> dict[str, str]:
    return {"Kraken-Stream-Seq": str(item.seq), "Kraken-Received": str(item.received_ns)}


class BookCopy(NamedTuple):
    """A copy of a book taken at ``taken_ns``, valid right after the frame ``item``."""

    item: Outgoing
    book: OrderBook
    taken_ns: int


def _snapshot_message(copy: BookCopy) -> tuple[str, bytes, dict[str, str]]:
    """The snapshot of the copied book, valid right after the acknowledged frame."""
    headers = {**_snapshot_headers(copy.item), "Kraken-Book-Time": str(copy.taken_ns)}
    return book_snapshot_subject(copy.book.symbol), book_snapshot_frame(copy.book), headers


def gap_outgoing(record: GapRecord) -> Outgoing:
    """The :class:`Outgoing` of a gap record."""
    return Outgoing(GAP_SUBJECT, b"", record.msg_id, received_ns=record.end_ns, gap=record)


async def _settle(futures: list[asyncio.Future[Any]], timeout: float) -> list[Any]:
    """Each future's result or exception, in order; those not done within ``timeout`` are cancelled."""
    if futures:
        _, late = await asyncio.wait(futures, timeout=timeout)
        for future in late:
            future.cancel()
    results: list[Any] = []
    for future in futures:
        if future.cancelled():
            results.append(TimeoutError(f"no acknowledgement within {timeout:g} s"))
        else:
            results.append(future.exception() or future.result())
    return results


def _until_gap(window: list[Outgoing]) -> list[Outgoing]:
    """The leading run of ``window`` without a gap record (those go one at a time)."""
    for index, item in enumerate(window):
        if item.gap is not None:
            return window[:index]
    return window


async def _first(*awaitables: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of ``awaitables`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class RelayTap(Tap):
    """Queues every frame the relay's session handled for the publisher (see the module docstring).

    ``streams`` are the ``(channel, symbol)`` data streams the relay carries
    (what an upstream outage makes a gap in); ``books`` returns a copy of a
    symbol's book (set once the client exists); a valid book's snapshot is
    published at most every ``snapshot_interval`` seconds per symbol.
    """

    def __init__(
        self,
        publisher: Publisher,
        streams: tuple[tuple[str, str], ...],
        *,
        snapshot_interval: float = 1.0,
    ) -> None:
        self.publisher = publisher
        self.streams = streams
        self.books: Callable[[str], OrderBook | None] | None = None
        self.connected_since_ns: int | None = None
        """When the upstream connection last opened (None while it is down)."""
        self._snapshot_ns = int(snapshot_interval * 1e9)
        self._last_id: dict[str, str] = {}
        self._occurrences: dict[str, Occurrences] = {}
        self._last_snapshot: dict[str, int] = {}
        self._dirty: dict[str, Outgoing] = {}
        self._last_book_frame: dict[str, Outgoing] = {}
        self._down_since: int | None = None
        self._down_reason = ""

    def frame(self, text: str | bytes, message: Message | None, received_ns: int, events: list[Any]) -> None:
        """Route, label and queue one frame (see :class:`Outgoing`)."""
        payload = text if isinstance(text, bytes) else text.encode()
        snapshot = bool(getattr(message, "snapshot", False))
        for route in routes(payload, message, self._occurrences):
            headers = {"Kraken-Received": str(received_ns)}
            prev = self._last_id.get(route.subject)
            if prev is not None:
                headers["Kraken-Prev"] = prev
            if snapshot:
                headers["Kraken-Type"] = "snapshot"
            item = Outgoing(route.subject, payload, route.msg_id, headers, received_ns=received_ns)
            book_symbol = route.symbol if route.channel == "book" else None
            if route.symbol is not None:
                item.stream = (route.channel, route.symbol)
            if book_symbol is not None:
                item.book = self._due_book(book_symbol, received_ns, events, snapshot)
            elif snapshot and isinstance(message, InstrumentMessage):
                item.copy_to = INSTRUMENT_SNAPSHOT_SUBJECT
            if self.publisher.put(item):
                self._last_id[route.subject] = route.msg_id
                if book_symbol is not None:
                    self._last_book_frame[book_symbol] = item
                    if item.book is None:
                        self._dirty[book_symbol] = item
                    else:
                        self._dirty.pop(book_symbol, None)
            elif book_symbol is not None:
                # dropped: the book changed after the last frame the stream will hold, so its next
                # snapshot is due at that frame's sequence (no stored update lies in between)
                self._last_snapshot.pop(book_symbol, None)
                last = self._last_book_frame.get(book_symbol)
                if last is not None:
                    self._dirty[book_symbol] = last

    def _due_book(self, symbol: str, now_ns: int, events: list[Any], snapshot: bool) -> OrderBook | None:
        """A copy of ``symbol``'s book if it is valid after this frame and its snapshot is due."""
        if self.books is None or not any(e.kind == "book" and e.symbol == symbol for e in events):
            return None
        last = self._last_snapshot.get(symbol)
        if not snapshot and last is not None and now_ns - last < self._snapshot_ns:
            return None
        book = self.books(symbol)
        if book is None or not book.valid:
            return None
        self._last_snapshot[symbol] = now_ns
        return book

    def trailing(self, now_ns: int) -> list[BookCopy]:
        """Books that changed since a snapshot older than the interval: (their last frame, a copy).

        Call under the client's lock (the copy must be the book right after
        that frame), so that a book which goes quiet still gets a snapshot of
        its final state. Nothing is copied while the buffer drops frames.
        """
        due: list[BookCopy] = []
        if self.publisher.refusing:
            return due
        for symbol, item in list(self._dirty.items()):
            if now_ns - self._last_snapshot.get(symbol, 0) < self._snapshot_ns or self.books is None:
                continue
            del self._dirty[symbol]
            book = self.books(symbol)
            if book is not None and book.valid:
                self._last_snapshot[symbol] = now_ns
                due.append(BookCopy(item, book, now_ns))
        return due

    def connected(self, now_ns: int) -> None:
        """The upstream connection opened: close an outage as a gap record."""
        self.connected_since_ns = now_ns
        if self._down_since is not None:
            record = GapRecord(
                self.publisher.relay,
                self._down_since,
                now_ns,
                f"the relay's upstream connection was down ({self._down_reason})",
                self.streams,
            )
            self._down_since = None
            self.publisher.put(gap_outgoing(record))

    def disconnected(self, now_ns: int, reason: str) -> None:
        """The upstream connection dropped."""
        self.connected_since_ns = None
        if self._down_since is None:
            self._down_since = now_ns
            self._down_reason = reason
