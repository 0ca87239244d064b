"""A Kraken v2 frame source faster than any client: pre-encoded frames from its own process.

``python -m benchmarks.frame_source`` serves a real WebSocket on 127.0.0.1
(port 0), prints ``{"url": ...}`` and then answers one JSON line per command
read from stdin:

* ``load PATH`` — load a :class:`~benchmarks.programs.Program` file;
* ``play RATE SECONDS`` — send the program's update frames to the newest
  connection for ``SECONDS`` at ``RATE`` frames/s, or as fast as the socket
  takes them when ``RATE`` is 0 (``websockets``' ``send`` then waits whenever
  the kernel's send buffer is full, so TCP flow control paces the source);
* ``wait`` — block until the current play ends; ``stop`` — end it now and wait;
* ``stats`` — frames sent so far, whether playing, ``time.monotonic_ns``, CPU seconds;
* ``times PATH`` — write the last play's send times and frame lengths (``.npz``);
* ``quit``.

It speaks enough of the v2 protocol for the real ``KrakenClient`` to
subscribe normally: a ``status`` frame on connect, one ack per symbol for
``subscribe``/``unsubscribe`` (a book at another depth than the program's is
rejected, as Kraken rejects a bad depth), the instrument snapshot with every
pair's precisions, each pair's book snapshot, ``pong`` for ``ping``, and a
heartbeat each second while idle. A book subscribed in the middle of a play
(a checksum resync) gets its snapshot when the program starts over.

When ``SECONDS`` outlasts the program, the program starts over: each pair's
book snapshot is sent again (so books stay checksum-exact) and each pair's
trade ids are shifted by its id span, so they keep increasing without gaps.
Every frame sent during a play, those snapshots included, is stamped with
``time.monotonic_ns()`` just before it is handed to ``send``; Linux's
monotonic clock is one clock for every process, so the client can subtract.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.corpus import read_frames

__all__ = ["FrameSource", "main"]

_HEARTBEAT = b'{"channel":"heartbeat"}'
_TRADE_PREFIX = '{"channel":"trade"'
_TRADE_ID = re.compile(r'"trade_id":(\d+)')
_SYMBOL = re.compile(r'"symbol":"([^"]+)"')
_YIELD_EVERY = 64
_TICK_S = 0.001


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _Loaded:
    """A program ready to send: encoded frames, snapshots, and each pair's trade id span."""

    def __init__(self, path: Path) -> None:
        header, frames = read_frames(path)
        self.symbols: list[str] = header["symbols"]
        self.channels: dict[str, dict[str, Any]] = header["channels"]
        self.instrument = header["instrument"].encode()
        self.snapshots = {symbol: text.encode() for symbol, text in header["snapshots"].items()}
        self.texts = frames
        self.frames = [frame.encode() for frame in frames]
        self.trade_spans = self._trade_spans(frames)

    @staticmethod
    def _trade_spans(frames: tuple[str, ...]) -> dict[str, int]:
        first: dict[str, int] = {}
        last: dict[str, int] = {}
        for frame in frames:
            if frame.startswith(_TRADE_PREFIX):
                symbol = _SYMBOL.search(frame)
                ids = [int(match) for match in _TRADE_ID.findall(frame)]
                if symbol and ids:
                    first.setdefault(symbol.group(1), min(ids))
                    last[symbol.group(1)] = max(ids)
        return {symbol: last[symbol] - first[symbol] + 1 for symbol in first}

    def passes(self) -> Iterator[bytes]:
        """The program's frames forever: as generated, then snapshots + shifted trade ids each lap."""
        yield from self.frames
        lap = 1
        while True:
            yield from self.snapshots.values()
            for text, encoded in zip(self.texts, self.frames, strict=True):
                if text.startswith(_TRADE_PREFIX):
                    yield self._shifted(text, lap).encode()
                else:
                    yield encoded
            lap += 1

    def _shifted(self, text: str, lap: int) -> str:
        symbol = _SYMBOL.search(text)
        offset = lap * self.trade_spans.get(symbol.group(1) if symbol else "", 0)
        return _TRADE_ID.sub(lambda m: f'"trade_id":{int(m.group(1)) + offset}', text)


class FrameSource:
    """The server: protocol replies on every connection, plays to the newest one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.program: _Loaded | None = None
        self.connection: ServerConnection | None = None
        self.connections = 0
        self.sent = 0
        self.playing = False
        self._stopping = False
        self.error: str | None = None
        self.times = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int32)
        self._play_done = threading.Event()
        self._play_done.set()
        self._last_send = time.monotonic()
        self._frames: Iterator[bytes] | None = None
        self._fresh = True
        self.url = ""

    # -- control (stdin thread) ---------------------------------------------------

    def start(self) -> str:
        """Start the server thread; return its URL."""
        ready = threading.Event()

        async def run() -> None:
            async with serve(self._handle, "127.0.0.1", 0, max_size=2**26, compression=None) as server:
                port = server.sockets[0].getsockname()[1]
                self.url = f"ws://127.0.0.1:{port}"
                ready.set()
                heartbeat = asyncio.create_task(self._heartbeats())
                try:
                    await asyncio.Future()
                finally:
                    heartbeat.cancel()

        thread = threading.Thread(target=self.loop.run_until_complete, args=(run(),), daemon=True)
        thread.start()
        ready.wait(10)
        return self.url

    def load(self, path: Path) -> dict[str, Any]:
        """Load a program (not while playing)."""
        if self.playing:
            return {"error": "playing"}
        self.program = _Loaded(path)
        self._restart()
        return {"frames": len(self.program.frames), "symbols": self.program.symbols}

    def _restart(self) -> None:
        """Play from the program's first frame (for a new program or a new connection)."""
        self._frames = self.program.passes() if self.program is not None else None
        self._fresh = True

    def play(self, rate: float, seconds: float) -> dict[str, Any]:
        """Start a play in the background."""
        if self.program is None or self.connection is None:
            return {"error": "no program loaded" if self.program is None else "no client connected"}
        if self.playing:
            return {"error": "already playing"}
        self.playing = True
        self._stopping = False
        self._play_done.clear()
        asyncio.run_coroutine_threadsafe(self._play(self.connection, rate, seconds), self.loop)
        return {"playing": True}

    def stop(self) -> dict[str, Any]:
        """End the current play (if any) and wait for it."""
        self._stopping = True
        return self.wait()

    def wait(self, timeout: float = 600.0) -> dict[str, Any]:
        """Block until the play ends."""
        self._play_done.wait(timeout)
        return self.stats()

    def stats(self) -> dict[str, Any]:
        """Counters (read without locking: each is one attribute)."""
        return {
            "sent": self.sent,
            "playing": self.playing,
            "connections": self.connections,
            "error": self.error,
            "monotonic_ns": time.monotonic_ns(),
            "cpu_s": time.process_time(),
        }

    def write_times(self, path: Path) -> dict[str, Any]:
        """Save the last play's send times and frame lengths."""
        count = self.sent
        np.savez(path, times=self.times[:count], lengths=self.lengths[:count])
        return {"path": str(path), "count": count}

    # -- network (server thread) ---------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        self.connection = ws
        self._restart()
        status = {
            "api_version": "v2",
            "connection_id": self.connections,
            "system": "online",
            "version": "2.0.0",
        }
        await ws.send(json.dumps({"channel": "status", "type": "update", "data": [status]}))
        try:
            async for request in ws:
                for reply in self._answer(request):
                    await ws.send(reply, text=True)
                    self._last_send = time.monotonic()
        except ConnectionClosed:
            return
        finally:
            if self.connection is ws:
                self.connection = None

    def _answer(self, request: str | bytes) -> list[bytes]:
        time_in = _now_text()
        message = json.loads(request)
        method, req_id = message.get("method"), message.get("req_id")
        if method == "ping":
            return [_dumps({"method": "pong", "req_id": req_id, "time_in": time_in, "time_out": _now_text()})]
        params = message.get("params", {})
        channel = params.get("channel")
        options = {k: v for k, v in params.items() if k not in ("channel", "symbol")}
        replies: list[bytes] = []
        extra: list[bytes] = []
        program = self.program
        symbols = params.get("symbol") or [None]
        for symbol in symbols:
            error = None
            if channel == "book" and program is not None and "book" in program.channels:
                depth = program.channels["book"].get("depth", 10)
                if options.get("depth", 10) != depth:
                    error = f"this source serves book depth {depth} only"
            reply: dict[str, Any] = {"method": method, "req_id": req_id}
            if error is None:
                result = {"channel": channel, **({"symbol": symbol} if symbol else {}), **options}
                reply.update(success=True, result=result)
            else:
                reply.update(success=False, symbol=symbol, error=error)
            reply.update(time_in=time_in, time_out=_now_text())
            replies.append(_dumps(reply))
            if error is None and method == "subscribe" and program is not None:
                extra.extend(self._snapshot(channel, symbol, program))
        return replies + extra

    def _snapshot(self, channel: str, symbol: str | None, program: _Loaded) -> list[bytes]:
        if channel == "instrument":
            return [program.instrument]
        if channel == "book" and symbol in program.snapshots:
            # Mid-program, the snapshot of the start would not fit: the next lap sends it.
            return [program.snapshots[symbol]] if self._fresh else []
        return []

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            ws = self.connection
            if ws is not None and not self.playing and time.monotonic() - self._last_send >= 1.0:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(_HEARTBEAT, text=True)
                self._last_send = time.monotonic()

    async def _play(self, ws: ServerConnection, rate: float, seconds: float) -> None:
        frames = self._frames
        assert frames is not None
        self._fresh = False
        capacity = int(rate * seconds * 1.05) + 1024 if rate > 0 else 1 << 20
        self.times = np.zeros(capacity, dtype=np.int64)
        self.lengths = np.zeros(capacity, dtype=np.int32)
        self.sent = 0
        self.error = None
        times, lengths = self.times, self.lengths
        clock = time.monotonic_ns
        started = clock()
        deadline = started + int(seconds * 1e9)
        period_ns = 1e9 / rate if rate > 0 else 0.0
        sent = 0
        try:
            while True:
                now = clock()
                if now >= deadline or self._stopping:
                    break
                if rate > 0:
                    due = int((now - started) / period_ns) + 1
                    if sent >= due:
                        await asyncio.sleep(_TICK_S)
                        continue
                elif sent % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                if sent >= len(times):
                    times, lengths = self._grow()
                frame = next(frames)
                times[sent] = clock()
                lengths[sent] = len(frame)
                await ws.send(frame, text=True)
                sent += 1
                self.sent = sent
        except ConnectionClosed as exc:
            self.error = f"connection closed during the play: {exc}"
        finally:
            self._last_send = time.monotonic()
            self.playing = False
            self._play_done.set()

    def _grow(self) -> tuple[np.ndarray, np.ndarray]:
        self.times = np.concatenate([self.times, np.zeros_like(self.times)])
        self.lengths = np.concatenate([self.lengths, np.zeros_like(self.lengths)])
        return self.times, self.lengths


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _answer(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Serve until ``quit`` or end of stdin."""
    argparse.ArgumentParser(prog="python -m benchmarks.frame_source", description=__doc__).parse_args(argv)
    source = FrameSource()
    _answer({"url": source.start()})
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "load":
            _answer(source.load(Path(argument)))
        elif command == "play":
            rate, seconds = (float(x) for x in argument.split())
            _answer(source.play(rate, seconds))
        elif command == "wait":
            _answer(source.wait())
        elif command == "stop":
            _answer(source.stop())
        elif command == "stats":
            _answer(source.stats())
        elif command == "times":
            _answer(source.write_times(Path(argument)))
        elif command == "quit":
            break
        else:
            _answer({"error": f"unknown command {command!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
