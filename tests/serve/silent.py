"""A WebSocket server that greets like Kraken and then never answers a request (for 504s)."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from websockets.asyncio.server import ServerConnection, serve

__all__ = ["SilentServer"]

STATUS = (
    '{"channel":"status","type":"update","data":[{"system":"online","api_version":"v2","version":"2.0.10"}]}'
)


class SilentServer:
    """Accepts connections on a free loopback port, sends the status frame, reads and ignores the rest."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[str] = []
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._run(),), daemon=True
        )

    async def _handle(self, websocket: ServerConnection) -> None:
        await websocket.send(STATUS)
        async for frame in websocket:
            self.requests.append(str(frame))

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v2"
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)
