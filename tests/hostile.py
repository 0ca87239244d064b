"""A small Kraken-like WebSocket server on 127.0.0.1:0 that sends exactly what a test scripts.

``HostileServer`` is real (``websockets`` on loopback, its own thread and
loop) but knows nothing of markets: it sends a status frame on connect, acks
every subscribe and unsubscribe once per symbol (echoing the parameters),
answers pings, and sends whatever frames the test hands to :meth:`send`, in
order, to every open connection. Frames sent right after a subscribe's acks
(``after_subscribe``) test that an ack followed by a hostile frame is not
lost. Reuse it for any test that needs a peer misbehaving on purpose.

A ``str`` goes out as a text frame, ``bytes`` as a binary frame and
``TextBytes`` as a text frame of exactly those bytes (e.g. invalid UTF-8).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["HostileServer", "TextBytes", "book_frame", "trade_frame", "trade_row"]

TIME = "2024-05-01T12:00:00.000000Z"


@dataclass(frozen=True, slots=True)
class TextBytes:
    """Bytes to send as a text frame as they are (the peer's WebSocket layer checks UTF-8)."""

    data: bytes


Outgoing = str | bytes | TextBytes
AfterSubscribe = Callable[[dict[str, Any]], Iterable[Outgoing]]


def trade_row(trade_id: int, /, **change: Any) -> dict[str, Any]:
    """A valid BTC/USD trade (``change`` overrides any field, e.g. to make it invalid)."""
    row = {
        "symbol": "BTC/USD",
        "side": "buy" if trade_id % 2 else "sell",
        "price": 60000.0 + trade_id % 100,
        "qty": 0.25,
        "ord_type": "limit",
        "trade_id": trade_id,
        "timestamp": TIME,
    }
    row.update(change)
    return row


def trade_frame(*rows: dict[str, Any]) -> str:
    """A trade update frame of ``rows`` (NaN and infinities written as Python's json does)."""
    return json.dumps({"channel": "trade", "type": "update", "data": list(rows)})


def book_frame(entry: dict[str, Any], kind: str = "update") -> str:
    """A book frame of one entry."""
    return json.dumps({"channel": "book", "type": kind, "data": [entry]})


class HostileServer:
    """A scripted WebSocket server on loopback; use as a context manager.

    ``after_subscribe(request)`` returns frames to send right after the acks
    of each subscribe request. ``requests`` lists every request received, in
    order; ``connections`` counts the connections accepted so far.
    """

    def __init__(self, *, after_subscribe: AfterSubscribe | None = None) -> None:
        self.after_subscribe = after_subscribe
        self.requests: list[dict[str, Any]] = []
        self.connections = 0
        self.url = ""
        self._open: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._server: Server | None = None
        self._stopped: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hostile-server", daemon=True)

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> HostileServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, timeout: float = 10.0) -> str:
        """Start serving; return the ``ws://127.0.0.1:PORT`` URL."""
        ready = threading.Event()
        self._ready = ready
        self._thread.start()
        if not ready.wait(timeout):
            raise RuntimeError("the hostile server did not start")
        return self.url

    def close(self) -> None:
        """Close every connection and stop the server thread."""
        if self._thread.is_alive() and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stopped = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0, max_size=None) as server:
            self._server = server
            port = next(iter(server.sockets)).getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}"
            self._ready.set()
            await self._stopped.wait()

    # -- control (any thread) -------------------------------------------------------

    def send(self, *frames: Outgoing, timeout: float = 30.0) -> int:
        """Send ``frames`` in order to every open connection; return how many connections got them."""
        future = asyncio.run_coroutine_threadsafe(self._broadcast(frames), self._loop)
        return future.result(timeout)

    def drop(self) -> None:
        """Close every open connection abruptly (no close frame)."""
        asyncio.run_coroutine_threadsafe(self._abort_all(), self._loop).result(10)

    def wait_for_connections(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` connections have been accepted in total."""
        deadline = time.monotonic() + timeout
        while self.connections < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.connections} connections, expected {count}")
            time.sleep(0.01)

    def requests_of(self, method: str) -> list[dict[str, Any]]:
        """The requests received with this ``method``, in order."""
        with self._lock:
            return [r for r in self.requests if r.get("method") == method]

    @property
    def open_connections(self) -> int:
        """Connections open right now."""
        return len(self._open)

    # -- server side ------------------------------------------------------------------

    async def _broadcast(self, frames: Iterable[Outgoing]) -> int:
        connections = tuple(self._open)
        for connection in connections:
            for frame in frames:
                with contextlib.suppress(ConnectionClosed):
                    await _send(connection, frame)
        return len(connections)

    async def _abort_all(self) -> None:
        for connection in tuple(self._open):
            connection.transport.abort()

    async def _handle(self, connection: ServerConnection) -> None:
        self._open.add(connection)
        self.connections += 1
        status = {"system": "online", "api_version": "v2", "connection_id": self.connections, "version": "2"}
        try:
            await connection.send(json.dumps({"channel": "status", "type": "update", "data": [status]}))
            async for text in connection:
                request = json.loads(text)
                with self._lock:
                    self.requests.append(request)
                await self._answer(connection, request)
        except ConnectionClosed:
            pass
        finally:
            self._open.discard(connection)

    async def _answer(self, connection: ServerConnection, request: dict[str, Any]) -> None:
        method, req_id = request.get("method"), request.get("req_id")
        if method == "ping":
            await connection.send(
                json.dumps({"method": "pong", "req_id": req_id, "time_in": TIME, "time_out": TIME})
            )
            return
        params = dict(request.get("params") or {})
        symbols = params.pop("symbol", None) or [None]
        for symbol in symbols:
            result = {**params, **({"symbol": symbol} if symbol else {})}
            ack = {"method": method, "req_id": req_id, "success": True, "result": result}
            await connection.send(json.dumps({**ack, "time_in": TIME, "time_out": TIME}))
        if method == "subscribe" and self.after_subscribe is not None:
            for frame in self.after_subscribe(request):
                await _send(connection, frame)


async def _send(connection: ServerConnection, frame: Outgoing) -> None:
    if isinstance(frame, TextBytes):
        await connection.send(frame.data, text=True)
    else:
        await connection.send(frame)
