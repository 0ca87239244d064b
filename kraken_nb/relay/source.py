"""``KrakenClient.from_nats``'s source: JetStream consumers of a relay's stream, fed to the same Session.

:class:`JetStreamSource` is the second :class:`~kraken_nb.source.Source`. It
does what the WebSocket transport does, with NATS underneath:

- **requests** the session queues are carried out here: a subscribe is
  checked against the relays' manifests (:class:`~kraken_nb.relay.manifest.Catalog`)
  and answered with an ack frame like Kraken's, one per symbol (a rejection
  names what the relay carries); a ping is a NATS round trip;
- **data**: each subscription gets a durable push consumer on its subject
  (``kraken.v2.trade.BTC-USD``…), acknowledged as it is applied. Its
  messages come on the data connection; JetStream API requests (creating a
  consumer, reading a snapshot) go on a second, API connection, so their
  answers do not queue behind the messages the consumers have in flight.
  Every raw frame goes through ``Session.feed`` (no second parser). A message at or
  below the highest stream sequence seen on its subject is a redelivery and
  is skipped, so nothing is applied twice; a NATS restart resumes each
  consumer where it was, so nothing the stream kept is lost;
- **books**: a live start (``new``, ``last``) feeds the relay's latest
  snapshot and starts the consumer right after the sequence it is valid at.
  Otherwise, and after a checksum mismatch (the session resubscribes the
  book), the first update without a snapshot makes the source load the
  latest snapshot: if it is newer, updates up to it are skipped; if it is
  older, the updates between it and now are read again from the stream;
- **gaps**: every frame names the id of the previous frame on its subject
  (``Kraken-Prev``); a frame whose predecessor this client never saw means
  messages expired from the stream before it read them: the stretch is
  recorded in ``gaps()`` (and a book reloads its snapshot). The relay's own
  gap records (upstream outages, frames it dropped, its restarts) are added
  for the streams the client subscribes to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, TypeVar

import orjson

from kraken_nb.core.params import Subscription
from kraken_nb.core.session import Event, Session
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import InvalidParams, KrakenError, MalformedMessage, RelayError
from kraken_nb.relay.connection import NatsLink, check_nats_url, require_nats, shown_nats_url
from kraken_nb.relay.gaps import DROPPED_REASON, GapRecord
from kraken_nb.relay.manifest import Catalog
from kraken_nb.relay.streams import StreamSettings, read_manifests, require_streams
from kraken_nb.relay.subjects import (
    GAP_SUBJECT,
    INSTRUMENT_SNAPSHOT_SUBJECT,
    INSTRUMENT_SUBJECT,
    STATUS_SUBJECT,
    book_snapshot_subject,
    data_subject,
    snapshot_stream_name,
    symbol_token,
)
from kraken_nb.source import Source

__all__ = [
    "EXPIRED_REASON",
    "SKIPPED_REASON",
    "START_POLICIES",
    "JetStreamSource",
    "StartPoint",
    "parse_start",
]

log = logging.getLogger(__name__)

START_POLICIES: Final = ("first", "last", "new")
T = TypeVar("T")

_DURABLE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_RECENT = 512
_ACK_EVERY = 128
_YIELD_EVERY = 16
_IDLE_HEARTBEAT_S = 5.0
EXPIRED_REASON: Final = "messages expired from the stream before they were read"
SKIPPED_REASON: Final = (
    "book rebuilt from the relay's latest snapshot: the updates before it were not applied"
)


@dataclass(frozen=True, slots=True)
class StartPoint:
    """Where a new consumer begins: ``policy`` is first, last, new, time or seq."""

    policy: str
    time: datetime | None = None
    seq: int | None = None

    @property
    def live(self) -> bool:
        """Whether it starts at the present (books then start from the latest snapshot)."""
        return self.policy in ("new", "last")

    def consumer_fields(self) -> dict[str, Any]:
        """``deliver_policy`` and its option for ``ConsumerConfig``."""
        from nats.js.api import DeliverPolicy

        if self.policy == "time":
            return {"deliver_policy": DeliverPolicy.BY_START_TIME, "opt_start_time": self.time}
        if self.policy == "seq":
            return {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": self.seq}
        policies = {"first": DeliverPolicy.ALL, "last": DeliverPolicy.LAST, "new": DeliverPolicy.NEW}
        return {"deliver_policy": policies[self.policy]}


def parse_start(start: object) -> StartPoint:
    """Check ``start`` ("first", "last", "new", an aware ``datetime`` or a sequence ≥ 1)."""
    if isinstance(start, str) and start in START_POLICIES:
        return StartPoint(start)
    if isinstance(start, datetime):
        if start.tzinfo is None:
            raise InvalidParams("start", start, "a timezone-aware datetime (e.g. datetime.now(UTC))")
        return StartPoint("time", time=start)
    if isinstance(start, int) and not isinstance(start, bool) and start >= 1:
        return StartPoint("seq", seq=start)
    raise InvalidParams("start", start, "'first', 'last', 'new', an aware datetime or a stream sequence ≥ 1")


@dataclass(slots=True)
class _Feed:
    """One subject this client consumes, and what it has seen of it."""

    channel: str
    symbol: str | None
    subject: str
    consumer: str
    sub: Any = None
    last_seq: int = 0
    last_ns: int | None = None
    need_snapshot: bool = False
    skip_until: int = 0
    loaded_at: int | None = None
    """The sequence the last snapshot loaded for this book was valid at."""
    bad_snapshot: int | None = None
    """A snapshot the book mismatched after: wait for a newer one rather than load it again."""
    snapshot_after_ns: int = 0
    """The relay dropped updates of this book until then: only a snapshot copied later will do."""
    unacked: int = 0
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=_RECENT))
    recent_set: set[str] = field(default_factory=set)
    busy: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a message or a snapshot reload is applied, so the two never interleave."""

    @property
    def key(self) -> tuple[str, str | None]:
        return self.channel, self.symbol

    def remember(self, msg_id: str | None) -> None:
        """Note a message id seen on this subject (the last ``_RECENT`` are kept)."""
        if msg_id is None or msg_id in self.recent_set:
            return
        if len(self.recent) == self.recent.maxlen:
            self.recent_set.discard(self.recent[0])
        self.recent.append(msg_id)
        self.recent_set.add(msg_id)


def _int_header(headers: dict[str, str], name: str) -> int:
    """The integer value of header ``name``; 0 if absent or not a number."""
    try:
        return int(headers.get(name, "0"))
    except ValueError:
        return 0


def _received(headers: dict[str, str] | None) -> int:
    """The relay's receive time of a message (its ``Kraken-Received`` header), else now."""
    value = (headers or {}).get("Kraken-Received")
    try:
        return int(value) if value else time.time_ns()
    except ValueError:
        return time.time_ns()


class JetStreamSource(Source):
    """Feeds a session from a relay's JetStream stream (see the module docstring).

    ``durable`` names the consumers (``<durable>-<channel>-<SYMBOL>``): a
    later client with the same name resumes them, and ``close()`` keeps them.
    Without it they get a random prefix, are deleted on ``close()`` and
    expire on the server after ``consumer_ttl`` seconds without a client.
    """

    thread_name = "kraken-nb-jetstream"
    log = log

    @classmethod
    def check(
        cls,
        url: str,
        *,
        start: object = "new",
        stream: str = "KRAKEN",
        durable: str | None = None,
        **options: Any,
    ) -> Callable[[Session, threading.Condition, Callable[[list[Event]], None]], JetStreamSource]:
        """Validate the arguments (before any thread starts); return a factory taking the session parts."""
        require_nats()
        check_nats_url(url)
        point = parse_start(start)
        StreamSettings(name=stream)
        if durable is not None and not _DURABLE.match(durable):
            raise InvalidParams("durable", durable, "1–48 letters, digits, '-' or '_'")
        return functools.partial(cls, url, start=point, stream=stream, durable=durable, **options)

    def __init__(
        self,
        url: str,
        session: Session,
        lock: threading.Condition,
        on_events: Callable[[list[Event]], None],
        *,
        start: StartPoint,
        stream: str = "KRAKEN",
        durable: str | None = None,
        connect_timeout: float = 10.0,
        reconnect_wait: float = 0.5,
        max_ack_pending: int = 4096,
        consumer_ttl: float = 3600.0,
    ) -> None:
        super().__init__(shown_nats_url(url), session, lock, on_events)
        self.stream = stream
        self.snapshot_stream = snapshot_stream_name(stream)
        self.counters: Counter[str] = Counter()
        self._link = NatsLink(
            url,
            name="kraken-nb client",
            api_timeout=connect_timeout,
            reconnect_wait=reconnect_wait,
            on_change=self._changed,
        )
        self._api = NatsLink(
            url, name="kraken-nb client api", api_timeout=connect_timeout, reconnect_wait=reconnect_wait
        )
        self._point = start
        self._durable = durable
        self._prefix = durable or f"kn-{secrets.token_hex(4)}"
        self._connect_timeout = connect_timeout
        self._max_ack_pending = max_ack_pending
        self._consumer_ttl = consumer_ttl
        self._feeds: dict[tuple[str, str | None], _Feed] = {}
        self._admin: list[Any] = []
        self._catalog = Catalog()
        self._gap_records: list[GapRecord] = []
        self._applied_gaps: set[tuple[str, str, str]] = set()
        self._requests: list[dict[str, Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._startup_error: KrakenError | None = None
        self._throttled = ThrottledLog(log)

    # -- called from the client's thread -------------------------------------------------

    @property
    def _startup_bound(self) -> float:
        """The longest a start may take: the two connects, then a few API requests."""
        return 2 * self._connect_timeout + 4 * self._api.api_timeout

    def wait_ready(self) -> None:
        """Block until connected and checked; raise the ``RelayError`` that stopped it otherwise."""
        if not self._ready.wait(self._startup_bound + 2.0):
            raise RelayError(f"no answer from {self.url} within {self._startup_bound:g} s")
        if self._startup_error is not None:
            raise self._startup_error

    def stats(self) -> dict[str, Any]:
        """NATS state and the consumers' counters."""
        return {
            **super().stats(),
            "nats_disconnects": self._link.disconnects,
            "stream": self.stream,
            "consumers": len(self._feeds),
            "relays": sorted(self._catalog.manifests),
            "redelivered": self.counters["redelivered"],
            "expired_gaps": self.counters["expired_gaps"],
            "relay_gaps": self.counters["relay_gaps"],
            "snapshot_loads": self.counters["snapshot_loads"],
            "replayed": self.counters["replayed"],
            "skipped_before_snapshot": self.counters["skipped"],
        }

    # -- the source's loop ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await asyncio.wait_for(self._open_link(), self._startup_bound)
        except (KrakenError, Exception) as exc:
            if not isinstance(exc, KrakenError):
                exc = self._explain(exc, f"reading stream {self.stream}")
            self._startup_error = exc
            self.last_error = str(exc)
            self.state = "failed"
            self._ready.set()
            await self._close_links()
            return
        with self._lock:
            self._session.connection_made(time.time_ns())
            self._lock.notify_all()
        self.state = "live"
        self._ready.set()
        log.info("reading stream %s on %s", self.stream, self.url)
        try:
            await self._serve()
        finally:
            await self._shutdown()

    async def _open_link(self) -> None:
        await self._api.open(self._connect_timeout)
        await self._link.open(self._connect_timeout)
        await self._guarded(self._check_stream(), f"reading stream {self.stream}")

    async def _check_stream(self) -> None:
        await require_streams(self._api, self.stream)
        try:
            self._catalog = Catalog(await read_manifests(self._api, self.stream))
        except Exception as exc:
            raise self._explain(exc, f"reading the manifests in {self.snapshot_stream}") from None
        await self._open_admin()

    def _guarded(self, coroutine: Coroutine[Any, Any, T], action: str) -> Coroutine[Any, Any, T]:
        """``coroutine``, failing at once on a permission violation on either connection."""
        return self._api.guarded(self._link.guarded(coroutine, action), action)

    def _explain(self, exc: BaseException, action: str) -> RelayError:
        """A ``RelayError`` for ``exc``, naming a permission violation from whichever connection saw it."""
        link = self._link if self._link.permission_errors and not self._api.permission_errors else self._api
        return link.explain(exc, action)

    async def _close_links(self) -> None:
        await self._link.close()
        await self._api.close()

    async def _serve(self) -> None:
        stop, wakeup = self._stop, self._wakeup
        assert stop is not None and wakeup is not None
        while not stop.is_set():
            waiters = [asyncio.ensure_future(wakeup.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=0.5, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            wakeup.clear()
            await self._reload_waiting()
            with self._lock:
                requests = [*self._requests, *self._session.data_to_send()]
                self._requests.clear()
            if requests and not stop.is_set():
                await self._carry_out(requests)

    async def _shutdown(self) -> None:
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for sub in self._admin:
            await self._unsubscribe(sub)
        for feed in feeds:
            await self._drop_feed(feed, delete=self._durable is None)
        if self._durable is None:
            for name in ("status", "gap"):
                await self._delete_consumer(f"{self._prefix}-{name}")
        await self._close_links()

    def _changed(self, connected: bool) -> None:
        if connected:
            self.reconnects += 1
            self.state = "live"
            task = asyncio.ensure_future(self._resume())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self.state = "reconnecting"
            self.last_error = self._link.last_error or "NATS connection lost"
        with self._lock:
            self._lock.notify_all()

    async def _resume(self) -> None:
        """After a reconnect: recreate any consumer the server lost, from the next unseen message."""
        import nats.js.errors

        with contextlib.suppress(TimeoutError):  # if not, the requests below time out and say so
            await asyncio.wait_for(self._api.wait_connected(), self._connect_timeout)
        for feed in list(self._feeds.values()):
            try:
                await self._api.js.consumer_info(self.stream, feed.consumer)
            except nats.js.errors.NotFoundError:
                log.warning(
                    "%s: consumer %s was lost; resuming after %d", self.url, feed.consumer, feed.last_seq
                )
                await self._unsubscribe(feed.sub)
                await self._consume(feed, {"opt_start_seq": feed.last_seq + 1})
            except Exception as exc:
                self._throttled.warning(
                    "resume", "%s: checking consumer %s: %s", self.url, feed.consumer, exc
                )

    # -- requests ----------------------------------------------------------------------

    async def _carry_out(self, requests: list[dict[str, Any]]) -> None:
        if any(r.get("method") == "subscribe" for r in requests):
            try:
                self._catalog = Catalog(await read_manifests(self._api, self.stream))
            except Exception as exc:
                self._throttled.warning("manifests", "%s: reading the manifests: %s", self.url, exc)
        closing: dict[tuple[str, str | None], _Feed] = {}
        for request in requests:
            method = request.get("method")
            req_id = request.get("req_id")
            if method == "ping":
                await self._pong(req_id)
                continue
            params = dict(request.get("params") or {})
            channel = str(params.pop("channel", ""))
            symbols = params.pop("symbol", None) or [""]
            if method == "unsubscribe":
                for symbol in symbols:
                    feed = self._feeds.get((channel, symbol or None))
                    if feed is not None:
                        closing[feed.key] = feed
                    self._answer(method, req_id, channel, symbol, params, None)
                continue
            subscription = Subscription(channel, tuple(s for s in symbols if s), params)
            verdicts = self._catalog.check(subscription)
            for symbol, verdict in verdicts.items():
                if verdict is None:
                    closing.pop((channel, symbol or None), None)
            await self._subscribe_symbols(method, req_id, channel, params, verdicts)
        for feed in closing.values():
            self._feeds.pop(feed.key, None)
            await self._drop_feed(feed, delete=True)

    async def _subscribe_symbols(
        self,
        method: str,
        req_id: int | None,
        channel: str,
        params: dict[str, Any],
        verdicts: dict[str, str | None],
    ) -> None:
        """Open the symbols the relays carry (at once: one round trip, not one each), then answer all."""
        opening = [symbol for symbol, verdict in verdicts.items() if verdict is None]
        outcomes = await asyncio.gather(
            *(self._open(channel, symbol or None) for symbol in opening), return_exceptions=True
        )
        opened = {s: o for s, o in zip(opening, outcomes, strict=True) if not isinstance(o, BaseException)}
        try:
            for symbol, verdict in verdicts.items():
                frames: list[tuple[bytes, int]] = []
                if verdict is None:
                    if symbol not in opened:
                        continue  # its failure is raised below
                    verdict, frames, _ = opened[symbol]
                self._answer(method, req_id, channel, symbol, params, verdict)
                for frame, received in frames:
                    self._deliver(frame, received)
        finally:  # the new feeds' messages may flow now, after their acks and snapshots
            for _, _, feed in opened.values():
                if feed is not None:
                    feed.busy.release()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    def _answer(
        self,
        method: str,
        req_id: int | None,
        channel: str,
        symbol: str,
        params: dict[str, Any],
        error: str | None,
    ) -> None:
        """Feed the session the ack Kraken would have sent for one symbol."""
        now = datetime.now().astimezone().isoformat()
        result: dict[str, Any] = {"channel": channel, **({"symbol": symbol} if symbol else {}), **params}
        frame: dict[str, Any] = {
            "method": method,
            "req_id": req_id,
            "success": error is None,
            "result": result,
            "time_in": now,
            "time_out": now,
        }
        if error is not None:
            frame["error"] = error
            if symbol:
                frame["symbol"] = symbol
            log.info("%s %s %s rejected: %s", method, channel, symbol, error)
        self._deliver(orjson.dumps(frame), time.time_ns())

    async def _pong(self, req_id: int | None) -> None:
        time_in = datetime.now().astimezone().isoformat()
        try:
            await self._link.nc.flush(self._link.api_timeout)
        except Exception as exc:
            self._throttled.warning("ping", "%s: ping failed: %s", self.url, exc)
            return
        frame = {"method": "pong", "req_id": req_id, "time_in": time_in, "time_out": time_in}
        self._deliver(orjson.dumps(frame), time.time_ns())

    # -- consumers ---------------------------------------------------------------------

    async def _open(
        self, channel: str, symbol: str | None
    ) -> tuple[str | None, list[tuple[bytes, int]], _Feed | None]:
        """Start consuming ``channel``/``symbol``: (an error, or None), the frames to feed first, a new feed.

        A new feed is returned with its ``busy`` lock held: its messages wait
        until the caller has fed the ack and the frames, then releases it.
        """
        frames: list[tuple[bytes, int]] = []
        feed = self._feeds.get((channel, symbol))
        if feed is not None:  # subscribed again: a book resync, or the instrument after a resync
            if channel == "book":
                feed.need_snapshot = True
                feed.bad_snapshot = feed.loaded_at
            return None, frames, None
        if channel == "instrument":
            feed = _Feed(channel, None, INSTRUMENT_SUBJECT, f"{self._prefix}-instrument")
        else:
            assert symbol is not None
            feed = _Feed(
                channel,
                symbol,
                data_subject(channel, symbol),
                f"{self._prefix}-{channel}-{symbol_token(symbol)}",
            )
        start = self._point.consumer_fields()
        await feed.busy.acquire()
        try:
            if channel == "instrument" or (channel == "book" and self._point.live):
                snapshot_subject = (
                    INSTRUMENT_SNAPSHOT_SUBJECT
                    if channel == "instrument"
                    else book_snapshot_subject(symbol or "")
                )
                snapshot = await self._snapshot(snapshot_subject)
                if snapshot is not None:
                    frame, seq, received, _ = snapshot
                    frames.append((frame, received))
                    start = {"opt_start_seq": seq + 1}
                    feed.last_seq = seq
                elif channel == "book":  # none yet: start at the present, load one when it comes
                    feed.need_snapshot = True
                    feed.last_seq = await self._stream_position()
                    start = {"opt_start_seq": feed.last_seq + 1}
            elif channel == "book":
                feed.need_snapshot = True
            await self._consume(feed, start)
        except BaseException as exc:
            feed.busy.release()
            if isinstance(exc, KrakenError):
                return str(exc), [], None
            raise
        self._feeds[feed.key] = feed
        self._apply_gap_records()
        return None, frames, feed

    async def _consume(self, feed: _Feed, start: dict[str, Any]) -> None:
        """Create (or resume) ``feed``'s durable push consumer and subscribe to it."""
        from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

        if "opt_start_seq" in start and "deliver_policy" not in start:
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE, **start}
        config = ConsumerConfig(
            durable_name=feed.consumer,
            filter_subject=feed.subject,
            ack_policy=AckPolicy.ALL,
            max_ack_pending=self._max_ack_pending,
            inactive_threshold=None if self._durable else self._consumer_ttl,
            **start,
        )
        try:
            feed.sub = await self._guarded(self._subscribe(feed, config), f"subscribing to {feed.subject}")
        except KrakenError:
            raise
        except Exception as exc:
            raise self._explain(exc, f"subscribing to {feed.subject}") from None

    async def _subscribe(self, feed: _Feed, config: Any) -> Any:
        """Bind a subscription on the data connection to ``feed``'s consumer, creating it if new.

        A push consumer delivers only while its delivery subject has a
        subscriber, so binding first and creating it then loses nothing.
        """
        import nats.js.errors

        if self._durable is not None:  # a durable may exist: resume it as it is
            try:
                info = await self._api.js.consumer_info(self.stream, feed.consumer)
            except nats.js.errors.NotFoundError:
                pass
            else:
                if info.push_bound:
                    raise RelayError(f"consumer {feed.consumer} is already read by another client")
                return await self._bind(feed, info.config)
        config.deliver_subject = self._link.nc.new_inbox()
        config.flow_control = True
        config.idle_heartbeat = _IDLE_HEARTBEAT_S
        sub = await self._bind(feed, config)
        try:
            await self._api.js.add_consumer(self.stream, config=config)
        except BaseException:
            await self._unsubscribe(sub)
            raise
        return sub

    def _bind(self, feed: _Feed, config: Any) -> Coroutine[Any, Any, Any]:
        return self._link.js.subscribe_bind(  # type: ignore[no-any-return]
            self.stream,
            config,
            feed.consumer,
            cb=functools.partial(self._on_message, feed),
            manual_ack=True,
        )

    async def _open_admin(self) -> None:
        """The status subject (latest status, then changes) and the relays' gap records."""
        from nats.js.api import DeliverPolicy

        status = _Feed("status", None, STATUS_SUBJECT, f"{self._prefix}-status")
        await self._consume(status, {"deliver_policy": DeliverPolicy.LAST})
        gaps = _Feed("gap", None, GAP_SUBJECT, f"{self._prefix}-gap")
        await self._consume(gaps, self._point.consumer_fields())
        self._admin = [status.sub, gaps.sub]

    async def _drop_feed(self, feed: _Feed, *, delete: bool) -> None:
        await self._unsubscribe(feed.sub)
        if delete:
            await self._delete_consumer(feed.consumer)

    async def _unsubscribe(self, sub: Any) -> None:
        if sub is None:
            return
        try:
            await asyncio.wait_for(sub.unsubscribe(), 2.0)
        except Exception as exc:
            log.debug("unsubscribe: %s", exc)

    async def _delete_consumer(self, name: str) -> None:
        try:
            await asyncio.wait_for(self._api.js.delete_consumer(self.stream, name), 2.0)
        except Exception as exc:
            log.debug("deleting consumer %s: %s", name, exc)

    async def _stream_position(self) -> int:
        """The main stream's last sequence now."""
        try:
            info = await self._api.js.stream_info(self.stream)
        except Exception as exc:
            raise self._explain(exc, f"reading stream {self.stream}") from None
        return int(info.state.last_seq)

    async def _snapshot(self, subject: str) -> tuple[bytes, int, int, int] | None:
        """The latest message on ``subject`` in the snapshot stream.

        Returns (frame, main-stream seq, received, copied): the sequence it is
        valid at, the relay's receive time of that frame, and when the relay
        copied the book (0 if not said).
        """
        import nats.js.errors

        try:
            message = await self._api.js.get_last_msg(self.snapshot_stream, subject)
        except nats.js.errors.NotFoundError:
            return None
        except Exception as exc:
            raise self._explain(exc, f"reading {subject}") from None
        headers = message.headers or {}
        return (
            message.data or b"",
            _int_header(headers, "Kraken-Stream-Seq"),
            _received(headers),
            _int_header(headers, "Kraken-Book-Time"),
        )

    # -- messages ----------------------------------------------------------------------

    async def _on_message(self, feed: _Feed, msg: Any) -> None:
        try:
            if feed.channel == "gap":
                self._on_gap_record(msg.data)
            else:
                async with feed.busy:
                    await self._handle(feed, msg)
            feed.unacked += 1
            if feed.unacked >= _ACK_EVERY or feed.sub is None or feed.sub.pending_msgs == 0:
                feed.unacked = 0
                await msg.ack()
            if feed.unacked % _YIELD_EVERY == 0:
                # nats-py hands a subscription's queued messages over without yielding: let the
                # other consumers, the API answers and the requests have the loop now and then
                await asyncio.sleep(0)
        except Exception:
            self.counters["errors"] += 1
            if self.counters["errors"] == 1:
                log.exception("%s: handling a message on %s failed (logged once)", self.url, feed.subject)

    async def _handle(self, feed: _Feed, msg: Any) -> None:
        seq = msg.metadata.sequence.stream
        if seq <= feed.last_seq:
            self.counters["redelivered"] += 1
            return
        headers = msg.headers or {}
        received = _received(headers)
        prev = headers.get("Kraken-Prev")
        if prev is not None and feed.recent and prev not in feed.recent_set:
            self._gap(feed.channel, feed.symbol or "", feed.last_ns or received, received, EXPIRED_REASON)
            self.counters["expired_gaps"] += 1
            if feed.channel == "book":
                feed.need_snapshot = True
        feed.remember(headers.get("Nats-Msg-Id"))
        feed.last_seq = seq
        feed.last_ns = received
        if feed.channel == "book":
            if seq <= feed.skip_until:  # a snapshot loaded already includes it (even an older snapshot)
                self.counters["skipped"] += 1
                return
            if headers.get("Kraken-Type") == "snapshot":
                feed.need_snapshot = False
            elif feed.need_snapshot and await self._reload(feed, seq, received):
                return
        self._deliver(msg.data, received)

    async def _reload(self, feed: _Feed, seq: int, received_ns: int | None = None) -> bool:
        """Feed the latest snapshot of the book before the update at ``seq``; True if it includes it."""
        import nats.js.errors

        assert feed.symbol is not None
        try:
            snapshot = await self._snapshot(book_snapshot_subject(feed.symbol))
        except KrakenError as exc:
            self._throttled.warning("snapshot", "%s: %s", feed.symbol, exc)
            return False
        if snapshot is None:
            self._throttled.warning(
                "no snapshot", "%s: the relay has published no book snapshot yet", feed.symbol
            )
            return False
        frame, valid_at, received, copied = snapshot
        if valid_at == feed.bad_snapshot or copied < feed.snapshot_after_ns:
            # the book went wrong after this one, or it misses updates the relay dropped:
            # wait for the relay's next snapshot
            self.counters["skipped"] += 1
            return True
        feed.need_snapshot = False
        feed.loaded_at = valid_at
        self.counters["snapshot_loads"] += 1
        self._deliver(frame, received)
        if valid_at >= seq:
            feed.skip_until = valid_at
            self.counters["skipped"] += 1
            if received_ns is not None and received > received_ns:
                self._gap("book", feed.symbol, received_ns, received, SKIPPED_REASON)
            return True
        after = valid_at + 1
        while after < seq:  # the snapshot is older: apply the updates since it again
            try:
                message = await self._api.js.get_msg(self.stream, seq=after, subject=feed.subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            if message.seq is None or message.seq >= seq:
                break
            self._deliver(message.data or b"", _received(message.headers))
            self.counters["replayed"] += 1
            after = message.seq + 1
        return False

    async def _reload_waiting(self) -> None:
        """Books waiting for a snapshot get one now, even if no update comes to trigger it."""
        for feed in list(self._feeds.values()):
            if feed.channel == "book" and feed.need_snapshot and (feed.last_seq or self._point.live):
                async with feed.busy:
                    if feed.need_snapshot:
                        await self._reload(feed, feed.last_seq + 1)

    def _deliver(self, frame: bytes, received_ns: int) -> None:
        """Feed one frame; keep the requests it made the session queue for the serve loop."""
        outgoing = self._handle_frame(frame, received_ns)
        if outgoing:
            self._requests.extend(outgoing)
            if self._wakeup is not None:
                self._wakeup.set()

    # -- gaps --------------------------------------------------------------------------

    def _gap(self, channel: str, symbol: str, start_ns: int, end_ns: int, reason: str) -> None:
        with self._lock:
            event = self._session.record_gap(channel, symbol, start_ns, end_ns, reason)
            self._lock.notify_all()
        self._publish([event])

    def _on_gap_record(self, payload: bytes) -> None:
        try:
            record = GapRecord.from_json(payload)
        except MalformedMessage as exc:
            self._throttled.warning("gap record", "%s: ignoring a gap record: %s", self.url, exc.reason)
            return
        self._gap_records.append(record)
        self._apply_gap_records()

    def _apply_gap_records(self) -> None:
        """Record each relay gap once for every subscribed stream it names."""
        for record in self._gap_records:
            for channel, symbol in record.streams:
                mark = (record.msg_id, channel, symbol)
                feed = self._feeds.get((channel, symbol))
                if feed is not None and mark not in self._applied_gaps:
                    self._applied_gaps.add(mark)
                    self.counters["relay_gaps"] += 1
                    if channel == "book" and record.reason == DROPPED_REASON:
                        feed.need_snapshot = True  # updates are missing: reload a newer snapshot
                        feed.snapshot_after_ns = max(feed.snapshot_after_ns, record.end_ns)
                    self._gap(
                        channel,
                        symbol,
                        record.start_ns,
                        record.end_ns,
                        f"relay {record.relay}: {record.reason}",
                    )
