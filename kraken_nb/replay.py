"""Serve a recording over WebSocket so that any Kraken v2 client can replay it live.

:func:`serve_recording` listens on ``127.0.0.1`` and plays the recording to
every client that connects, each from the start and independently:

- on connect the client gets the recording's first ``status`` frame (or a
  synthetic ``online`` one if it has none);
- ``ping`` is answered with a ``pong``, and ``subscribe``/``unsubscribe`` with
  one successful ack per symbol echoing the request's params (nothing is
  checked against the recording); anything else gets an
  ``EGeneral:Invalid arguments`` error;
- playback starts after the first subscribe, once the client has subscribed to
  everything the recording holds or after a one-second grace; the recorded data
  frames then follow at their recorded offsets divided by ``speed``, each sent
  only if the client is subscribed to its channel and one of its symbols (or
  to the bare channel, for frames without symbols); heartbeats always go out.
  Only data frames are played: the recording's acks and pongs are skipped and
  of its status frames only the first is sent, on connect;
- after the last frame the client gets a heartbeat every second until it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from kraken_nb.recording import Frame, RecordingHeader

__all__ = ["serve_recording"]

log = logging.getLogger(__name__)

_REPLAY_START_GRACE: Final = 1.0
"""Seconds a replay waits after the first subscribe for the rest of the recording's subscriptions."""


class _PlannedFrame:
    """A recorded data frame with what the replay server needs to route and pace it."""

    __slots__ = ("channel", "offset", "symbols", "text")

    def __init__(self, offset: float, channel: str, symbols: frozenset[str], text: str) -> None:
        self.offset = offset
        self.channel = channel
        self.symbols = symbols
        self.text = text


def _plan(frames: list[Frame]) -> tuple[list[_PlannedFrame], str | None]:
    """Data frames with their offsets from the first frame, and the first status frame."""
    planned: list[_PlannedFrame] = []
    status = None
    first = frames[0].t if frames else 0
    for frame in frames:
        try:
            message = json.loads(frame.text)
        except ValueError:
            message = None
        if not isinstance(message, dict) or "method" in message:
            continue  # acks and pongs answer the recorder, not this client
        channel = str(message.get("channel"))
        if channel == "status":
            status = status or frame.text
            continue
        data = message.get("data")
        symbols = frozenset(
            str(row["symbol"])
            for row in (data if isinstance(data, list) else [])
            if isinstance(row, dict)
            if "symbol" in row
        )
        planned.append(_PlannedFrame((frame.t - first) / 1e9, channel, symbols, frame.text))
    return planned, status


async def serve_recording(
    header: RecordingHeader,
    frames: list[Frame],
    port: int,
    speed: float,
    on_listening: Callable[[str, int], None] | None = None,
) -> None:
    """Serve the recording to every client that connects, until SIGINT/SIGTERM.

    ``port`` 0 picks a free one. Once listening, ``on_listening`` gets the
    server's URL and the number of data frames each client will be played.
    """
    from websockets.asyncio.server import ServerConnection, serve

    planned, status = _plan(frames)
    wanted_by_recording = {
        (str(s.get("channel")), sym) for s in header.subscriptions for sym in (s.get("symbol") or [""])
    }

    async def handle(websocket: ServerConnection) -> None:
        await _ReplayConnection(websocket, planned, status, wanted_by_recording, speed).run()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with serve(handle, "127.0.0.1", port) as server:
        bound = server.sockets[0].getsockname()[1]
        if on_listening is not None:
            on_listening(f"ws://127.0.0.1:{bound}/v2", len(planned))
        await stop.wait()


class _ReplayConnection:
    """One client of the replay server: acks its requests, plays the recording at its pace."""

    def __init__(
        self,
        websocket: Any,
        planned: list[_PlannedFrame],
        status: str | None,
        recorded: set[tuple[str, str]],
        speed: float,
    ) -> None:
        self.websocket = websocket
        self.planned = planned
        self.status = status or json.dumps(
            {"channel": "status", "type": "update", "data": [{"system": "online", "api_version": "v2"}]}
        )
        self.recorded = recorded
        self.speed = speed
        self.wanted: set[tuple[str, str]] = set()
        self.changed = asyncio.Event()

    async def run(self) -> None:
        from websockets.exceptions import ConnectionClosed

        player: asyncio.Task[None] | None = None
        try:
            await self.websocket.send(self.status)
            async for text in self.websocket:
                await self._answer(text)
                if player is None and self.wanted:
                    player = asyncio.create_task(self._play())
        except ConnectionClosed:
            pass
        finally:
            if player is not None:
                player.cancel()

    async def _answer(self, text: str | bytes) -> None:
        now = _rfc3339()
        try:
            request = json.loads(text)
            method = request["method"]
        except (ValueError, TypeError, KeyError):
            await self.websocket.send(json.dumps({"error": "EGeneral:Invalid arguments", "success": False}))
            return
        req_id = request.get("req_id")
        if method == "ping":
            await self.websocket.send(
                json.dumps({"method": "pong", "req_id": req_id, "time_in": now, "time_out": now})
            )
            return
        params = request.get("params") if isinstance(request.get("params"), dict) else {}
        if method not in ("subscribe", "unsubscribe") or "channel" not in params:
            answer = {
                "method": method,
                "req_id": req_id,
                "success": False,
                "error": "EGeneral:Invalid arguments",
            }
            await self.websocket.send(json.dumps(answer))
            return
        channel = str(params["channel"])
        extra = {k: v for k, v in params.items() if k not in ("channel", "symbol")}
        for symbol in params.get("symbol") or [""]:
            result = {"channel": channel, **({"symbol": symbol} if symbol else {}), **extra}
            ack = {"method": method, "req_id": req_id, "result": result, "success": True}
            await self.websocket.send(json.dumps({**ack, "time_in": now, "time_out": _rfc3339()}))
            (self.wanted.add if method == "subscribe" else self.wanted.discard)((channel, symbol))
        self.changed.set()

    async def _play(self) -> None:
        grace = asyncio.get_running_loop().time() + _REPLAY_START_GRACE
        while not self.recorded <= self.wanted and (left := grace - asyncio.get_running_loop().time()) > 0:
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for frame in self.planned:
            delay = start + frame.offset / self.speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._routed(frame):
                await self.websocket.send(frame.text)
        log.info("replay finished; sending heartbeats only")
        while True:
            await asyncio.sleep(1.0)
            await self.websocket.send('{"channel":"heartbeat"}')

    def _routed(self, frame: _PlannedFrame) -> bool:
        if frame.channel == "heartbeat":
            return True
        if not frame.symbols:
            return (frame.channel, "") in self.wanted
        return any((frame.channel, symbol) in self.wanted for symbol in frame.symbols)


def _rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
