"""The simulator: a real WebSocket server on loopback speaking Kraken's public v2 protocol.

It runs on an asyncio loop, either the caller's (``async with Simulator()``)
or its own on a daemon thread (``start_in_thread`` / ``running()``). A market
task steps the :class:`~kraken_nb.simulator.market.MarketModel` every 50 ms
of wall time (``speed`` × that in market time) and fans the events out; a
heartbeat task sends a heartbeat to a subscribed connection once it has had no
channel update for ``heartbeat_interval`` (Kraken: "approximately once every
second in the absence of any other channel updates"). The fault switches can
be thrown from any thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, TypeVar

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from kraken_nb.errors import InvalidParams
from kraken_nb.simulator.connection import Connection, Subscription
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.feeds import Feeds
from kraken_nb.simulator.market import MarketModel, format_time
from kraken_nb.simulator.protocol import (
    Request,
    RequestError,
    ack,
    parse_request,
    pong,
    result_of,
    subscription_key,
)

__all__ = ["SYSTEM_STATES", "Simulator"]

logger = logging.getLogger(__name__)

SYSTEM_STATES: Final = ("online", "maintenance", "cancel_only", "post_only")
API_VERSION: Final = "v2"
SERVER_VERSION: Final = "2.0.10"
TICK_SECONDS: Final = 0.05
"""Wall time between market steps."""
MALFORMED_FRAME: Final = '{"channel":"book","type":"update","data":[{"symbol":'
HEARTBEAT_FRAME: Final = '{"channel":"heartbeat"}'
_CALL_TIMEOUT: Final = 10.0
_CLOSE_TIMEOUT: Final = 2.0

T = TypeVar("T")


class Simulator:
    """A Kraken v2 public WebSocket server driven by a seeded :class:`MarketModel`.

    >>> with Simulator(seed=1, speed=20).running() as sim:   # doctest: +SKIP
    ...     url = sim.url                                      # ws://127.0.0.1:PORT/v2
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        speed: float = 1.0,
        pairs: Sequence[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float = 1.0,
        book_snapshot_timestamps: bool = False,
    ) -> None:
        """``book_snapshot_timestamps`` adds a ``timestamp`` to book snapshots (Kraken's have none)."""
        if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed > 0:
            raise InvalidParams("speed", speed, "a positive number")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidParams("port", port, "an integer from 0 to 65535")
        if (
            isinstance(heartbeat_interval, bool)
            or not isinstance(heartbeat_interval, (int, float))
            or not heartbeat_interval > 0
        ):
            raise InvalidParams("heartbeat_interval", heartbeat_interval, "a positive number of seconds")
        self.seed = seed
        self.speed = float(speed)
        self.host = host
        self.port = port
        self.heartbeat_interval = float(heartbeat_interval)
        self.market = MarketModel(seed, pairs, start=datetime.now(UTC))
        self._faults = Faults()
        self._feeds = Feeds(self.market, self._faults, snapshot_timestamps=book_snapshot_timestamps)
        self._lock = threading.Lock()
        self._connections: set[Connection] = set()
        self._connection_ids = random.Random(seed ^ 0x5EED5)
        self._counter = itertools.count(1)
        self._system = "online"
        self._paused = False
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_step_at = 0.0
        self._thread: threading.Thread | None = None
        self._stop_requested: asyncio.Event | None = None

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The ``ws://host:port/v2`` address clients connect to (while running)."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; start it first")
        return f"ws://{self.host}:{self.port}/v2"

    @property
    def connection_count(self) -> int:
        """How many clients are connected now."""
        return len(self._connections)

    @property
    def is_running(self) -> bool:
        """Whether the server is accepting connections."""
        return self._server is not None

    async def start(self) -> str:
        """Start serving on the current event loop; return the URL."""
        if self._server is not None:
            raise RuntimeError(f"the simulator is already running at {self.url}")
        loop = asyncio.get_running_loop()
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            compression=None,
            close_timeout=1.0,
            max_size=2**20,
            logger=logging.getLogger(f"{__name__}.websockets"),
        )
        self._loop, self._loop_thread = loop, threading.get_ident()
        self.port = self._server.sockets[0].getsockname()[1]
        self._last_step_at = loop.time()
        self._tasks = [
            asyncio.create_task(self._run_market(), name="simulator-market"),
            asyncio.create_task(self._run_heartbeats(), name="simulator-heartbeats"),
        ]
        logger.info(
            "Kraken v2 simulator listening on %s (seed %s, speed %g)", self.url, self.seed, self.speed
        )
        return self.url

    async def stop(self) -> None:
        """Close every connection, stop the server and its tasks (bounded in time)."""
        server, self._server = self._server, None
        if server is None:
            return
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        server.close(close_connections=True)
        try:
            await asyncio.wait_for(server.wait_closed(), _CLOSE_TIMEOUT)
        except TimeoutError:
            for connection in tuple(self._connections):
                connection.abort()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), _CLOSE_TIMEOUT)
        logger.info("Kraken v2 simulator on port %d stopped", self.port)

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start_in_thread(self, timeout: float = 10.0) -> str:
        """Run the server on its own event loop in a daemon thread; return the URL."""
        if self._thread is not None:
            return self.url
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(
            target=lambda: asyncio.run(self._serve_in_thread(ready, failure)),
            name="kraken-simulator",
            daemon=True,
        )
        thread.start()
        if not ready.wait(timeout):
            raise TimeoutError(f"the simulator did not start within {timeout} s")
        if failure:
            thread.join(timeout)
            raise failure[0]
        self._thread = thread
        return self.url

    def close(self) -> None:
        """Stop the server (idempotent). Blocks until it has stopped, unless called on its own loop."""
        thread, self._thread = self._thread, None
        loop = self._loop
        if thread is not None:
            if loop is not None and self._stop_requested is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(self._stop_requested.set)
            thread.join(_CALL_TIMEOUT)
            return
        if self._server is None or loop is None:
            return
        if self._on_loop_thread():
            loop.create_task(self.stop())
        else:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(_CALL_TIMEOUT)

    @contextlib.contextmanager
    def running(self) -> Iterator[Simulator]:
        """Context manager: start in a thread, yield the simulator, close on exit."""
        self.start_in_thread()
        try:
            yield self
        finally:
            self.close()

    async def _serve_in_thread(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            await self.start()
        except BaseException as exc:  # reported to the starting thread
            failure.append(exc)
            ready.set()
            return
        self._stop_requested = asyncio.Event()
        ready.set()
        try:
            await self._stop_requested.wait()
        finally:
            await self.stop()

    # -- fault switches and controls (thread-safe) ---------------------------------------

    def drop_connections(self) -> None:
        """Close every open connection now, without a closing handshake."""
        logger.info("fault: dropping %d connection(s)", len(self._connections))
        self._call(lambda: [c.abort() for c in tuple(self._connections)])

    def drop_after(self, n_messages: int) -> None:
        """Drop each open connection after it has been sent ``n_messages`` more frames."""
        logger.info("fault: dropping connections after %d more frames", n_messages)
        self._call(lambda: [c.drop_after(n_messages) for c in tuple(self._connections)])

    def corrupt_next_checksum(self, symbol: str | None = None) -> None:
        """Give the next book message (for ``symbol``, or any) a checksum that is off by one bit."""
        logger.info("fault: corrupting the next book checksum%s", f" of {symbol}" if symbol else "")
        self._call(lambda: self._faults.corrupt_checksum(symbol))

    def reject_next_subscribe(self, reason: str = "EService:Unavailable") -> None:
        """Answer the next subscribe request ``success: false`` with ``reason``, per symbol."""
        logger.info("fault: rejecting the next subscribe with %r", reason)
        self._call(lambda: self._faults.reject_subscribe(reason))

    def ignore_next_subscribe(self, count: int = 1) -> None:
        """Leave the next ``count`` subscribe requests unanswered and unsubscribed (0 stops it)."""
        logger.info("fault: ignoring the next %d subscribe request(s)", count)
        self._call(lambda: self._faults.ignore_subscribes(count))

    def send_malformed(self) -> None:
        """Send one frame that is not valid JSON to every connection."""
        logger.info("fault: sending a malformed frame")
        self._call(lambda: [c.send(MALFORMED_FRAME) for c in tuple(self._connections)])

    def set_status(self, system: str) -> None:
        """Broadcast a status update (``online``, ``maintenance``, ``cancel_only``, ``post_only``)."""
        if system not in SYSTEM_STATES:
            raise InvalidParams("system", system, SYSTEM_STATES)
        logger.info("status: %s", system)

        def broadcast() -> None:
            self._system = system
            for connection in tuple(self._connections):
                connection.send(self._status_frame(connection))

        self._call(broadcast)

    def stop_heartbeats(self) -> None:
        """Stop sending heartbeats (as if the link went quiet)."""
        logger.info("fault: heartbeats stopped")
        self._call(lambda: setattr(self._faults, "heartbeats", False))

    def resume_heartbeats(self) -> None:
        """Send heartbeats again."""
        logger.info("heartbeats resumed")
        self._call(lambda: setattr(self._faults, "heartbeats", True))

    def pause(self) -> None:
        """Freeze the market clock: no trades or book changes until :meth:`resume`."""
        self._call(lambda: setattr(self, "_paused", True))

    def resume(self) -> None:
        """Let the market clock run again after :meth:`pause`."""

        def run() -> None:
            if self._loop is not None:
                self._last_step_at = self._loop.time()
            self._paused = False

        self._call(run)

    def trade_log(self, symbol: str) -> list[dict[str, Any]]:
        """Every trade the market produced for ``symbol``, in order, wire-shaped."""
        with self._lock:
            return self.market.trade_log(symbol)

    def _call(self, action: Callable[[], T]) -> T:
        """Run ``action`` on the server's loop and wait for it (directly when already there)."""
        loop = self._loop
        if loop is None or self._server is None or self._on_loop_thread() or not loop.is_running():
            return action()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(action())
            except BaseException as exc:
                future.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return future.result(_CALL_TIMEOUT)

    def _on_loop_thread(self) -> bool:
        return self._loop_thread == threading.get_ident()

    # -- connections and requests --------------------------------------------------------

    async def _handle(self, websocket: ServerConnection) -> None:
        connection = Connection(self._connection_ids.getrandbits(64), websocket)
        self._connections.add(connection)
        logger.debug("connection %d opened from %s", connection.id, websocket.remote_address)
        connection.send(self._status_frame(connection))
        try:
            async for frame in websocket:
                self._on_frame(connection, frame)
        except ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            await connection.finish()
            logger.debug("connection %d closed", connection.id)

    def _on_frame(self, connection: Connection, frame: str | bytes) -> None:
        time_in = self._clock()
        try:
            request = parse_request(frame)
        except RequestError as exc:
            if exc.sends_status:
                connection.send(self._status_frame(connection))
            self._reply(connection, ack(exc.method, exc.req_id, time_in, self._clock(), error=exc.error))
            return
        try:
            if request.method == "ping":
                self._reply(connection, pong(request.req_id, time_in, self._clock()))
            elif request.method == "subscribe":
                self._subscribe(connection, request, time_in)
            else:
                self._unsubscribe(connection, request, time_in)
        except Exception:
            logger.exception("failed to handle %r", frame)
            self._reply(
                connection,
                ack(request.method, request.req_id, time_in, self._clock(), error="EGeneral:Internal error"),
            )

    def _subscribe(self, connection: Connection, request: Request, time_in: str) -> None:
        channel, options = request.channel, request.options
        if self._faults.take_ignore():
            return
        rejection = self._faults.take_rejection()
        added: list[Subscription] = []
        for symbol in request.symbols or (None,):
            key = subscription_key(channel, symbol or "", options)
            if rejection is not None:
                error: str | None = rejection
            elif symbol is not None and symbol not in self.market.symbols:
                error = f"Currency pair not supported {symbol}"
            elif key in connection.subscriptions:
                error = "Already subscribed"
            else:
                error = None
            if error is not None:
                self._reply(
                    connection,
                    ack("subscribe", request.req_id, time_in, self._clock(), error=error, symbol=symbol),
                )
                continue
            sub = Subscription(channel, symbol, options)
            connection.subscriptions[key] = sub
            added.append(sub)
            result = result_of("subscribe", channel, symbol, options)
            self._reply(connection, ack("subscribe", request.req_id, time_in, self._clock(), result=result))
        for sub in added:
            frame = self._feeds.snapshot(sub)
            if frame is not None:
                connection.send(frame)

    def _unsubscribe(self, connection: Connection, request: Request, time_in: str) -> None:
        channel, options = request.channel, request.options
        for symbol in request.symbols or (None,):
            key = subscription_key(channel, symbol or "", options)
            sub = connection.subscriptions.get(key)
            if sub is not None and channel == "book" and "depth" in request.explicit:
                sub = sub if sub.options["depth"] == options["depth"] else None
            if sub is None:
                error = ack(
                    "unsubscribe",
                    request.req_id,
                    time_in,
                    self._clock(),
                    error="Subscription Not Found",
                    symbol=symbol,
                )
                self._reply(connection, error)
                continue
            del connection.subscriptions[key]
            result = result_of("unsubscribe", channel, symbol, sub.options)
            self._reply(connection, ack("unsubscribe", request.req_id, time_in, self._clock(), result=result))

    @staticmethod
    def _reply(connection: Connection, message: dict[str, Any]) -> None:
        """Send the answer to a request (not a channel update: it does not hold back a heartbeat)."""
        connection.send(dumps(message), update=False)

    def _status_frame(self, connection: Connection) -> str:
        data = {
            "version": SERVER_VERSION,
            "system": self._system,
            "api_version": API_VERSION,
            "connection_id": connection.id,
            "upcoming_maintenance": [],
            "emergency": [],
        }
        return dumps({"channel": "status", "type": "update", "data": [data]})

    def _clock(self) -> str:
        """The market time now, between steps interpolated from the wall clock."""
        loop = self._loop
        now_us = self.market.now_us
        if loop is not None and not self._paused:
            now_us += max(0, int((loop.time() - self._last_step_at) * self.speed * 1e6))
        return format_time(now_us)

    # -- background tasks ---------------------------------------------------------------

    async def _run_market(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            elapsed, last = now - last, now
            if self._paused:
                continue
            try:
                with self._lock:
                    events = self.market.step(elapsed * self.speed)
                self._last_step_at = now
                self._feeds.publish(events, self._connections)
            except Exception:
                logger.exception("market step failed")

    async def _run_heartbeats(self) -> None:
        """Beat on each subscribed connection that has had no channel update for an interval."""
        while True:
            interval = self.heartbeat_interval
            await asyncio.sleep(min(0.1, interval / 4))
            if not self._faults.heartbeats:
                continue
            now = time.monotonic()
            for connection in tuple(self._connections):
                if connection.subscriptions and now - connection.last_update >= interval:
                    connection.send(HEARTBEAT_FRAME)
