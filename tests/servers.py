"""Small misbehaving WebSocket servers on loopback, and a clock that runs as fast as the test wants."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from kraken_nb.transport import Clock

__all__ = ["LoopbackServer", "VirtualClock", "ack_subscribes", "loopback_server"]

STATUS = json.dumps(
    {"channel": "status", "type": "update", "data": [{"system": "online", "api_version": "v2"}]}
)


class VirtualClock(Clock):
    """Time that only moves when someone sleeps on it: ``sleep(6)`` returns at once, 6 s later.

    The transport waits on it for backoff and budget, and a test server waits on it
    to "keep a connection open for 6 s", so ten minutes pass in well under a second.
    """

    def __init__(self) -> None:
        self._now = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    async def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)
        await asyncio.sleep(0)


class LoopbackServer:
    """A websockets server on 127.0.0.1 in its own thread; ``handler(ws)`` serves each connection."""

    def __init__(self, handler: Callable[[ServerConnection], Awaitable[None]], **options: Any) -> None:
        self.handler = handler
        self.connections = 0
        self.connected_at: list[float] = []
        self.clock: VirtualClock | None = options.pop("clock", None)
        self._options = options
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="test-loopback-server", daemon=True)
        self.url = ""

    def start(self) -> LoopbackServer:
        self._thread.start()
        assert self._ready.wait(10), "the loopback server did not start"
        return self

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()

        async def handle(ws: ServerConnection) -> None:
            self.connections += 1
            if self.clock is not None:
                self.connected_at.append(self.clock.now())
            await self.handler(ws)

        async with serve(handle, "127.0.0.1", 0, **self._options) as server:
            port = server.sockets[0].getsockname()[1]
            self.url = f"ws://127.0.0.1:{port}/v2"
            self._ready.set()
            await self._stop.wait()


@contextmanager
def loopback_server(
    handler: Callable[[ServerConnection], Awaitable[None]], **options: Any
) -> Iterator[LoopbackServer]:
    """Run a :class:`LoopbackServer` for the duration of a ``with`` block."""
    server = LoopbackServer(handler, **options).start()
    try:
        yield server
    finally:
        server.close()


async def ack_subscribes(ws: ServerConnection, request_text: str | bytes) -> list[str]:
    """Answer one subscribe request like Kraken (one ack per symbol); return its symbols."""
    request = json.loads(request_text)
    params = request.get("params", {})
    symbols = params.get("symbol") or [None]
    for symbol in symbols:
        result = {"channel": params.get("channel"), **({"symbol": symbol} if symbol else {})}
        await ws.send(
            json.dumps(
                {
                    "method": request["method"],
                    "req_id": request.get("req_id"),
                    "success": True,
                    "result": result,
                }
            )
        )
    return [s for s in symbols if s]
