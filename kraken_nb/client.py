"""KrakenClient: the background client users hold in a notebook or script.

The client owns a :class:`~kraken_nb.core.session.Session` (books, buffers,
subscriptions) and a :class:`~kraken_nb.transport.Transport` (one daemon
thread with its own asyncio loop). Every method here is called from the
user's thread, takes the client's lock briefly and returns copies, so cells
can read DataFrames while data keeps arriving.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from os import PathLike
from typing import TYPE_CHECKING, Any

import pandas as pd

from kraken_nb.core.book import OrderBook
from kraken_nb.core.params import Subscription, validate_subscription
from kraken_nb.core.reconnect import Backoff, ConnectBudget
from kraken_nb.core.redaction import redact, redact_url
from kraken_nb.core.session import Call, Event, Session
from kraken_nb.core.subscriptions import SubscriptionStatus
from kraken_nb.core.taps import Tap
from kraken_nb.dispatch import Dispatcher, EventStream
from kraken_nb.errors import (
    ClientClosed,
    ConnectionFailed,
    DatasetError,
    InvalidParams,
    RequestTimeout,
    SubscriptionRejected,
)
from kraken_nb.history.recorder import DEFAULT_ROLL_ROWS, DEFAULT_ROLL_SECONDS, Recorder
from kraken_nb.source import Source
from kraken_nb.transport import Clock, Transport

if TYPE_CHECKING:
    from kraken_nb.serve import Limits, ServeHandle
    from kraken_nb.simulator import Simulator

__all__ = ["KRAKEN_WS_URL", "KrakenClient"]

log = logging.getLogger(__name__)

KRAKEN_WS_URL = "wss://ws.kraken.com/v2"


class KrakenClient:
    """Stream Kraken Spot v2 public channels into books and growing DataFrames.

    >>> with KrakenClient() as client:                     # doctest: +SKIP
    ...     client.subscribe("trade", ["BTC/USD"])
    ...     client.trades("BTC/USD").tail()

    ``max_rows`` bounds each history buffer (oldest rows dropped);
    ``timeout`` is the default wait for acks; ``silence_timeout`` is how long
    a subscribed connection may stay silent before it is considered dead.
    ``ack_timeout`` is how long one subscribe request may go unanswered
    before it is sent again. Reconnects wait ``backoff`` (reset once a
    connection stayed useful for ``stable_after`` seconds) and never exceed
    ``connect_budget`` (100 connects per rolling 600 s by default); ``clock``
    is the time they wait on (tests pass a fast one). A frame longer than
    ``max_size`` bytes ends the connection with close code 1009 (message too
    big), reported in ``stats()["last_error"]``.

    A URL may carry credentials (``wss://user:secret@host/v2?token=…``): they
    are used to connect but never shown; ``url``, ``repr``, logs and errors
    show it redacted.
    """

    def __init__(
        self,
        url: str = KRAKEN_WS_URL,
        *,
        timeout: float = 10.0,
        max_rows: int | None = None,
        silence_timeout: float = 5.0,
        ack_timeout: float = 5.0,
        backoff: Backoff | None = None,
        stable_after: float = 30.0,
        connect_budget: ConnectBudget | None = None,
        clock: Clock | None = None,
        max_size: int = 2**26,
        callback_queue_size: int = 10_000,
        depth_levels: int = 50,
        depth_sample_interval: float = 1.0,
        taps: Iterable[Tap] = (),
    ) -> None:
        _check_url(url)
        self._prepare(
            redact_url(url),
            timeout=timeout,
            max_rows=max_rows,
            ack_timeout=ack_timeout,
            callback_queue_size=callback_queue_size,
            depth_levels=depth_levels,
            depth_sample_interval=depth_sample_interval,
            taps=taps,
        )
        self._source = Transport(
            url,
            self._session,
            self._lock,
            self._dispatcher.publish,
            backoff=backoff,
            budget=connect_budget,
            clock=clock,
            silence_timeout=silence_timeout,
            stable_after=stable_after,
            max_size=max_size,
        )
        self._begin()

    def _prepare(
        self,
        shown_url: str,
        *,
        timeout: float,
        max_rows: int | None,
        ack_timeout: float,
        callback_queue_size: int,
        depth_levels: int,
        depth_sample_interval: float,
        taps: Iterable[Tap],
    ) -> None:
        """Everything but the source: the session, its lock, the dispatcher."""
        self.url = shown_url
        """The source's address as shown (credentials redacted)."""
        self.timeout = timeout
        self.simulator: Simulator | None = None
        self._lock = threading.Condition(threading.RLock())
        self._session = Session(
            max_rows=max_rows,
            depth_levels=depth_levels,
            depth_sample_ns=int(depth_sample_interval * 1e9),
            ack_timeout_ns=int(ack_timeout * 1e9),
        )
        for tap in taps:
            self._session.add_tap(tap)
        self._dispatcher = Dispatcher(callback_queue_size)
        self._source: Source
        self._closed = False
        self._recorders: list[Recorder] = []
        self._served: list[ServeHandle] = []

    def _begin(self) -> None:
        self._dispatcher.start()
        self._source.start()
        log.info("client started for %s", self.url)

    @classmethod
    def from_nats(
        cls,
        url: str = "nats://127.0.0.1:4222",
        *,
        start: str | int | datetime = "new",
        stream: str = "KRAKEN",
        durable: str | None = None,
        timeout: float = 10.0,
        max_rows: int | None = None,
        callback_queue_size: int = 10_000,
        depth_levels: int = 50,
        depth_sample_interval: float = 1.0,
        taps: Iterable[Tap] = (),
        max_ack_pending: int = 4096,
    ) -> KrakenClient:
        """A client fed by ``kraken-nb relay`` through NATS JetStream instead of its own WebSocket.

        Same API, DataFrames, widgets and ``gaps()``: ``subscribe(channel,
        symbols, **params)`` validates as always and selects the relay's
        subjects; what the relay does not carry (a symbol, a book depth, a
        candle interval) raises ``SubscriptionRejected`` naming what it does
        carry. ``start`` says where each subscription begins in the stream:
        ``"new"`` (from now), ``"last"`` (each subject's last message, then
        on), ``"first"`` (everything the stream still keeps), a ``datetime``
        or a stream sequence number. Books start from the relay's latest
        checksum-valid snapshot. ``durable`` names the consumers so that a
        later client with the same name resumes where this one stopped
        (without it they are removed on ``close()``). ``max_ack_pending``
        bounds the messages each subscription has in flight; ``timeout`` bounds
        connecting and each request to the server. A NATS server restart
        loses nothing the stream kept; messages that expired before they were
        read and the relay's own outages are recorded in ``gaps()``. ``url``
        may be a comma-separated seed list of a cluster's nodes
        (``nats://a:4222,nats://b:4222``): the client connects to any and
        fails over to the others.

        Raises ``RelayError`` (unreachable server, missing stream, permission
        denied), ``InvalidParams`` (a malformed URL or ``start``) and names
        the extra to install when ``nats-py`` is missing.
        """
        from kraken_nb.relay.connection import shown_nats_url
        from kraken_nb.relay.source import JetStreamSource

        client = cls.__new__(cls)
        source = JetStreamSource.check(
            url,
            start=start,
            stream=stream,
            durable=durable,
            connect_timeout=timeout,
            max_ack_pending=max_ack_pending,
        )
        client._prepare(
            shown_nats_url(url),
            timeout=timeout,
            max_rows=max_rows,
            ack_timeout=timeout,
            callback_queue_size=callback_queue_size,
            depth_levels=depth_levels,
            depth_sample_interval=depth_sample_interval,
            taps=taps,
        )
        client._source = source(client._session, client._lock, client._dispatcher.publish)
        client._begin()
        try:
            client._source.wait_ready()  # type: ignore[attr-defined]
        except BaseException:
            client.close()
            raise
        return client

    @classmethod
    def simulated(cls, *, client_options: dict[str, Any] | None = None, **sim_options: Any) -> KrakenClient:
        """Start the embedded simulator (``Simulator(**sim_options)``) and connect to it.

        The simulator is closed with the client and reachable as ``client.simulator``.
        """
        from kraken_nb.simulator import Simulator

        simulator = Simulator(**sim_options)
        url = simulator.start_in_thread()
        client = cls(url, **(client_options or {}))
        client.simulator = simulator
        try:
            client.wait_connected()
        except BaseException:
            client.close()
            raise
        return client

    # -- lifecycle ------------------------------------------------------------

    def __enter__(self) -> KrakenClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection, stop the threads (and an embedded simulator). Idempotent.

        Callbacks stop first: events still queued for them are discarded
        (``stats()["callbacks_discarded"]``) and, once this returns, no
        callback runs again.
        """
        if self._closed:
            return
        self._closed = True
        with self._lock:
            self._lock.notify_all()  # requests waiting for acks raise ClientClosed now
        for handle in self._served:
            handle.stop()
        self._dispatcher.close()
        self._source.close()
        for recorder in self._recorders:
            try:
                recorder.stop()  # writes what is pending
            except DatasetError as error:
                log.warning("recorder %s had failed: %s", recorder.directory, error)
        if self.simulator is not None:
            self.simulator.close()
        log.info("client closed")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def connection_state(self) -> str:
        """``"connecting"``, ``"live"``, ``"reconnecting"``, ``"failed"`` or ``"closed"``.

        ``failed`` is final: the server closed the connection with code 1008
        (policy violation), so the client stopped reconnecting; ``failure``
        holds the code and the server's reason.
        """
        return "closed" if self._closed else self._source.state

    @property
    def failure(self) -> ConnectionFailed | None:
        """Why the connection failed for good (``connection_state == "failed"``), else ``None``."""
        return self._source.failure

    @property
    def behind(self) -> bool:
        """Whether the source has been faster than the client for a second or more (``stats()["behind"]``)."""
        busy = getattr(self._source, "busy", None)  # a WebSocket transport measures it
        return busy is not None and busy.behind

    @property
    def system_status(self) -> str | None:
        """Kraken's system status (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""
        return self._session.system_status

    def wait_connected(self, timeout: float | None = None) -> None:
        """Block until the connection is live; raise ``RequestTimeout`` otherwise."""
        self._wait(lambda: self._source.state == "live", timeout, "connection to " + self.url)

    def wait_until(self, predicate: Callable[[KrakenClient], bool], timeout: float | None = None) -> None:
        """Block until ``predicate(client)`` is true, re-checking as data arrives."""
        self._wait(lambda: predicate(self), timeout, "condition")

    # -- requests ----------------------------------------------------------------

    def subscribe(
        self,
        channel: str,
        symbols: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Subscribe and wait for the acks; return the server's result per symbol.

        Parameters are validated before anything is sent (``InvalidParams``).
        Symbols the server rejects raise ``SubscriptionRejected`` naming each
        symbol and reason; the others stay subscribed. Symbols already
        subscribed with the same parameters are skipped. The subscription is
        kept and renewed after every reconnect.
        """
        subscription = validate_subscription(channel, symbols, **params)
        return self._request(subscription, "subscribe", timeout)

    def unsubscribe(
        self,
        channel: str,
        symbols: str | Iterable[str] | None = None,
        *,
        timeout: float | None = None,
        **params: Any,
    ) -> dict[str, Any]:
        """Unsubscribe and wait for the acks (same arguments as :meth:`subscribe`)."""
        subscription = validate_subscription(channel, symbols, **params)
        return self._request(subscription, "unsubscribe", timeout)

    def ping(self, timeout: float | None = None) -> float:
        """Send an application-level ping; return the round trip in seconds."""
        self.wait_connected(timeout)
        started = time.perf_counter()
        with self._lock:
            req_id = self._session.ping()
        self._source.flush()
        self._wait(lambda: not self._session.ping_pending(req_id), timeout, f"pong for req_id {req_id}")
        elapsed = time.perf_counter() - started
        with self._lock:
            if not self._session.take_pong(req_id):
                raise RequestTimeout(f"connection lost before the pong for req_id {req_id}")
        return elapsed

    def subscriptions(self) -> list[SubscriptionStatus]:
        """Every subscription the client keeps, one record per channel and symbol.

        Each record has ``channel``, ``symbol`` (``None`` for instrument),
        ``params``, ``state`` (``wanted``, ``pending``, ``confirmed``,
        ``retrying`` or ``failed``), ``attempts`` and ``last_error``;
        ``record.subscription`` is the :class:`Subscription` itself.
        ``pd.DataFrame(map(dataclasses.asdict, client.subscriptions()))`` makes a table.
        """
        with self._lock:
            return self._session.subscriptions()

    def _request(self, subscription: Subscription, method: str, timeout: float | None) -> dict[str, Any]:
        self._check_open()
        with self._lock:
            start = self._session.subscribe if method == "subscribe" else self._session.unsubscribe
            call_id = start(subscription)
        if call_id is None:
            return {}
        self._source.flush()
        call: Call | None = None
        try:
            self._wait(
                lambda: (c := self._session.call(call_id)) is None or c.done,
                timeout,
                f"{method} {subscription.channel} {', '.join(subscription.symbols)}".strip(),
            )
        except RequestTimeout as timed_out:
            if method != "subscribe":
                raise
            raise RequestTimeout(f"{timed_out}; {self._fate_of(subscription)}") from None
        finally:
            with self._lock:
                call = self._session.call(call_id)
                self._session.forget_call(call_id)
        if call is not None and call.rejections:
            raise SubscriptionRejected(method, subscription.channel, call.rejections)
        return dict(call.results) if call is not None else {}

    def _fate_of(self, subscription: Subscription) -> str:
        """What becomes of an unanswered subscribe, for the ``RequestTimeout`` message."""
        with self._lock:
            records = [
                s
                for s in self._session.subscriptions()
                if s.channel == subscription.channel and (s.symbol or "") in (subscription.symbols or ("",))
            ]
        if not records:
            return "it is not kept"
        states = ", ".join(
            f"{s.symbol or s.channel} {s.state} after {s.attempts} request(s)" for s in records
        )
        if all(s.state == "failed" for s in records):
            return (
                f"the subscription is kept as failed ({states}): it is tried again on the next "
                "connection or when you subscribe again; see subscriptions()"
            )
        return f"the subscription is kept and retried with backoff ({states}); see subscriptions()"

    def _wait(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        with self._lock:
            while not ready():
                self._check_open()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RequestTimeout(
                        f"no answer within {timeout:g} s: {what} (state {self.connection_state})"
                    )
                self._lock.wait(min(remaining, 0.25))

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosed("the client is closed")
        failure = self._source.failure
        if failure is not None and self._source.state == "failed":
            raise ConnectionFailed(failure.code, failure.reason)

    # -- data -----------------------------------------------------------------------

    # Every accessor: ``time`` is Kraken's own time of the row (NaT where the message had
    # none), ``received`` the receive time; ``exact=True`` gives prices and quantities as
    # exact decimals (``decimal128`` at the pair's precision) instead of float64.

    def trades(
        self, symbol: str | None = None, last: int | None = None, *, exact: bool = False
    ) -> pd.DataFrame:
        """Trades received so far (de-duplicated by trade_id), in arrival order."""
        with self._lock:
            return self._session.trades.to_frame(symbol=symbol, last=last, exact=exact)

    def ticker(
        self, symbol: str | None = None, last: int | None = None, *, exact: bool = False
    ) -> pd.DataFrame:
        """Every ticker row received, with Kraken's timestamp (``time``) and the receive time."""
        with self._lock:
            return self._session.tickers.to_frame(symbol=symbol, last=last, exact=exact)

    def ticker_latest(self, *, exact: bool = False) -> pd.DataFrame:
        """The newest ticker row of each symbol, indexed by symbol."""
        with self._lock:
            return self._session.tickers.latest(exact=exact)

    def candles(
        self,
        symbol: str | None = None,
        interval: int | None = None,
        last: int | None = None,
        *,
        exact: bool = False,
    ) -> pd.DataFrame:
        """OHLC candles (the current one updated in place), sorted by ``interval_begin``."""
        with self._lock:
            return self._session.candles.to_frame(symbol=symbol, interval=interval, last=last, exact=exact)

    def book(self, symbol: str) -> OrderBook | None:
        """A consistent copy of ``symbol``'s order book (``None`` if not subscribed).

        Check ``.valid``: it is False until a snapshot arrived and after a
        checksum mismatch until the resync's snapshot arrives.
        """
        with self._lock:
            book = self._session.books.get(symbol)
            return book.copy() if book is not None else None

    def book_history(
        self, symbol: str | None = None, last: int | None = None, *, exact: bool = False
    ) -> pd.DataFrame:
        """Top of book each time it changed: bid, ask, their sizes, mid, spread, valid."""
        with self._lock:
            return self._session.book_tops.to_frame(symbol=symbol, last=last, exact=exact)

    def depth_history(
        self, symbol: str | None = None, last: int | None = None, *, exact: bool = False
    ) -> pd.DataFrame:
        """Depth samples over time, long format (time, symbol, side, price, qty, received), for heatmaps.

        The levels of one sample share ``received`` (``time`` is NaT for a
        sample of a book message without a timestamp, such as a snapshot).
        """
        with self._lock:
            return self._session.depths.to_frame(symbol=symbol, last=last, exact=exact)

    def instruments(self) -> pd.DataFrame:
        """Tradeable pairs with their precisions and limits, indexed by symbol."""
        with self._lock:
            pairs = [dict(p) for p in self._session.pairs.values()]
        return _reference_frame(pairs, "symbol")

    def assets(self) -> pd.DataFrame:
        """Assets from the instrument channel, indexed by id."""
        with self._lock:
            assets = [dict(a) for a in self._session.assets.values()]
        return _reference_frame(assets, "id")

    def instrument(self, symbol: str) -> dict[str, Any] | None:
        """One pair's reference data (precisions, increments, minimums)."""
        with self._lock:
            pair = self._session.pairs.get(symbol)
            return None if pair is None else {k: _plain(v) for k, v in pair.items()}

    def gaps(self) -> pd.DataFrame:
        """Where data may be missing: disconnect windows per stream and skipped trade ids."""
        with self._lock:
            return self._session.gaps_frame()

    def versions(self) -> dict[tuple[str, str], int]:
        """Change counters per ``(stream, symbol)``; an unchanged counter means nothing new."""
        with self._lock:
            return dict(self._session.versions)

    def stats(self) -> dict[str, Any]:
        """Counters: messages, bytes, reconnects, resyncs, gaps, drops, last heartbeat…

        A WebSocket client also reports ``busy``, the network thread's busy
        share over the last second (None before the first), ``behind`` whether
        it stayed ≥ 95 % busy for a second or more with data waiting (the source
        is faster than the client: nothing is lost, data arrives late),
        ``receive_backlog`` the frames websockets holds unhandled and
        ``receive_buffered`` the bytes the kernel holds unread.
        """
        with self._lock:
            counters = self._session.counters
            last_heartbeat = self._session.last_heartbeat_ns
            stats: dict[str, Any] = {
                "state": self.connection_state,
                "system_status": self._session.system_status,
                "messages": counters["messages"],
                "bytes": counters["bytes"],
                "trades": counters["trades"],
                "duplicate_trades": counters["duplicate_trades"],
                "trade_gaps": counters["trade_gaps"],
                "trade_id_anomalies": counters["trade_id_anomalies"],
                "stale_trades": counters["stale_trades"],
                "checksum_mismatches": counters["checksum_mismatches"],
                "resyncs": counters["resyncs"],
                "malformed": counters["malformed"],
                "rejected_items": counters["rejected_items"],
                "internal_errors": counters["internal_errors"],
                "exact_decodes": counters["exact_decodes"],
                "exact_reads": counters["exact_reads"],
                "rejected": counters["rejected"],
                "resubscribe_rejections": counters["resubscribe_rejections"],
                "subscribe_timeouts": counters["subscribe_timeouts"],
                "subscribe_retries": counters["subscribe_retries"],
                "subscriptions_failed": counters["subscriptions_failed"],
                "subscriptions": self._session.subscription_counts(),
                "errors": counters["errors"],
                "heartbeats": counters["heartbeats"],
                "disconnects": counters["disconnects"],
                "gaps": len(self._session.gaps) + len(self._session.trades.gaps),
            }
        stats.update(self._source.stats())
        stats["last_heartbeat"] = (
            pd.Timestamp(last_heartbeat, unit="ns", tz="UTC") if last_heartbeat is not None else None
        )
        stats["callbacks_dropped"] = self._dispatcher.dropped
        stats["callbacks_discarded"] = self._dispatcher.discarded
        stats["callback_errors"] = self._dispatcher.errors
        return stats

    # -- events ---------------------------------------------------------------------

    def on(self, kind: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of ``kind`` (``"*"`` for all).

        Kinds: trade, ticker, ohlc, book, checksum_mismatch, gap, status, ack,
        rejected, subscription (a subscription went ``retrying`` or
        ``failed``; data: its record), pong, error, disconnected, failed (the
        server closed with 1008; data: ``ConnectionFailed``), behind (the
        network thread fell behind its source or caught up; data:
        :class:`~kraken_nb.core.busy.Behind`). Callbacks run
        on a dispatcher thread, never the network thread; if they fall
        behind, the bounded queue drops the oldest events and counts them
        (``stats()["callbacks_dropped"]``). A callback that raises is logged
        with its traceback once, then counted (``stats()["callback_errors"]``)
        and logged ever more rarely. Returns a function that removes the
        callback.
        """
        return self._dispatcher.add(kind, callback)

    def stream(self, *kinds: str, maxsize: int = 1000) -> EventStream:
        """An async iterator of events (``async for event in client.stream("trade")``).

        Its queue holds ``maxsize`` events; when full the oldest are dropped
        and counted in ``stream.dropped``. Close it with ``stream.close()``.
        """
        return self._dispatcher.stream(kinds or ("*",), maxsize)

    def add_tap(self, tap: Tap) -> Callable[[], None]:
        """Let ``tap`` observe every received frame and connection change; return its remover.

        Taps run on the network thread under the client's lock and must only
        hand work off (see :mod:`kraken_nb.core.taps`): the REST/MCP journal,
        the Parquet recorder and the NATS relay are taps.
        """
        with self._lock:
            self._session.add_tap(tap)

        def remove() -> None:
            with self._lock:
                self._session.remove_tap(tap)

        return remove

    # -- recording ------------------------------------------------------------------

    def record_to(
        self,
        directory: str | PathLike[str],
        *,
        roll_seconds: float = DEFAULT_ROLL_SECONDS,
        roll_rows: int = DEFAULT_ROLL_ROWS,
    ) -> Recorder:
        """Record every stream into a Parquet dataset at ``directory`` until ``.stop()`` (or ``close()``).

        Returns the :class:`~kraken_nb.history.Recorder` handle (``stop()``,
        ``stats()``, ``state``, ``error``). Files roll every ``roll_seconds``
        or ``roll_rows`` rows; read them with :class:`kraken_nb.History`. A
        folder that cannot be written raises ``DatasetError``; a write that
        fails later stops the recorder and is reported by the handle.
        """
        self._check_open()
        recorder = Recorder(
            self._session, directory, lock=self._lock, roll_seconds=roll_seconds, roll_rows=roll_rows
        )
        self._recorders.append(recorder)
        return recorder

    # -- serving --------------------------------------------------------------------

    def serve(
        self,
        rest_port: int = 8080,
        mcp_port: int = 9090,
        *,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        allowed_hosts: Iterable[str] = (),
        limits: Limits | None = None,
    ) -> ServeHandle:
        """Serve this client's streams over REST and MCP in the background; return the handle.

        ``handle.urls`` says where (``rest``, ``docs``, ``mcp``); ``handle.stop()``
        or closing the client stops both servers. Port 0 picks a free one. Any
        ``host`` other than loopback needs ``api_key``, then required as a bearer
        token on both surfaces; ``allowed_hosts`` adds names clients may use in
        ``Host`` (DNS-rebinding protection). Needs ``pip install "kraken_nb[serve]"``.
        An assistant connected to the MCP server sees exactly what this client
        and its widgets see; start serving before subscribing so that repeated
        subscribes can be answered with Kraken's acks.
        """
        from kraken_nb.serve import serve

        self._check_open()
        handle = serve(
            self,
            rest_port=rest_port,
            mcp_port=mcp_port,
            host=host,
            api_key=api_key,
            allowed_hosts=allowed_hosts,
            limits=limits,
        )
        self._served.append(handle)
        return handle

    # -- widgets --------------------------------------------------------------------

    def dashboard(self, symbol: str, **options: Any) -> Any:
        """A :class:`~kraken_nb.widgets.Dashboard` for ``symbol`` on this client."""
        from kraken_nb.widgets import Dashboard

        return Dashboard(self, symbol, **options)

    def __repr__(self) -> str:
        return f"<KrakenClient {self.url} {self.connection_state}>"


def _check_url(url: str) -> None:
    """Refuse a URL websockets cannot dial, before any thread starts (the error shows it redacted)."""
    from websockets.exceptions import InvalidURI
    from websockets.uri import parse_uri

    try:
        parse_uri(url)
    except (InvalidURI, ValueError, TypeError) as exc:
        reason = redact(str(exc), url) if isinstance(url, str) else str(exc)
        raise InvalidParams("url", redact_url(str(url)), f"a ws:// or wss:// URL ({reason})") from None


def _plain(value: Any) -> Any:
    """Decimals from the exact decoder become floats in user-facing reference data."""
    return float(value) if isinstance(value, Decimal) else value


def _reference_frame(rows: list[dict[str, Any]], index: str) -> pd.DataFrame:
    frame = pd.DataFrame([{k: _plain(v) for k, v in row.items()} for row in rows])
    return frame.set_index(index) if index in frame.columns else frame
