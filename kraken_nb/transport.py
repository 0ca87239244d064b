"""One WebSocket connection on a daemon thread with its own asyncio loop.

The transport feeds every frame to the :class:`~kraken_nb.core.session.Session`
(under the client's lock), sends what the session queues, watches for
silence, and reconnects with exponential backoff and jitter. It never runs in
the caller's event loop, so it behaves the same in JupyterLab, VS Code,
Colab and plain scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection, connect

from kraken_nb.core.session import Event, Session
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import brief

__all__ = ["Backoff", "Transport"]

log = logging.getLogger(__name__)

# What ends a connection in the ordinary way; anything else ending a task is a bug, reported.
_CONNECTION_ERRORS = (OSError, TimeoutError, websockets.exceptions.WebSocketException)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``n``: exponential, capped, with jitter.

    The delay is ``min(maximum, initial * factor**n)`` scaled by a random
    factor in ``[1 - jitter, 1]`` so that many clients do not retry in step.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt`` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 32))
        return base * (1 - self.jitter * (rng or random).random())


_TASK_NAMES = ("reader", "writer", "watchdog", "stop")


class Transport:
    """Keeps a session connected to ``url`` until :meth:`close`.

    ``on_events`` is called on the network thread with the events of each
    frame, outside the lock; it must only hand them off (the client puts them
    on a bounded queue).
    """

    def __init__(
        self,
        url: str,
        session: Session,
        lock: threading.Condition,
        on_events: Callable[[list[Event]], None],
        *,
        backoff: Backoff = Backoff(),
        open_timeout: float = 10.0,
        silence_timeout: float = 5.0,
        stable_after: float = 5.0,
    ) -> None:
        self.url = url
        self.state = "connecting"
        self.reconnects = 0
        self.last_error: str | None = None
        self._session = session
        self._lock = lock
        self._on_events = on_events
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._silence_timeout = silence_timeout
        self._stable_after = stable_after
        self._loop = asyncio.new_event_loop()
        self._wakeup: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._ws: ClientConnection | None = None
        self._close_reason: str | None = None
        self._frame_errors = ThrottledLog(log)
        self._thread = threading.Thread(target=self._run_loop, name="kraken-nb-transport", daemon=True)

    # -- called from any thread ----------------------------------------------

    def start(self) -> None:
        """Start the network thread; connecting happens in the background."""
        self._thread.start()

    def flush(self) -> None:
        """Ask the network thread to send what the session has queued."""
        if self._wakeup is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def drop(self) -> None:
        """Close the current connection (the transport reconnects)."""
        ws = self._ws
        if ws is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(ws.close(code=1001, reason="client drop"), self._loop)

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection and stop the thread (bounded by ``timeout``)."""
        if not self._thread.is_alive():
            self.state = "closed"
            return
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        self.state = "closed"

    # -- network thread -----------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._run())
        except Exception as exc:  # the last resort: say so rather than look live with no thread
            self.last_error = f"network thread failed: {type(exc).__name__}: {exc}"
            log.exception("the network thread of %s failed; the client no longer receives", self.url)
            self.state = "failed"
        finally:
            self._loop.close()

    async def _run(self) -> None:
        self._wakeup = asyncio.Event()
        self._stop = asyncio.Event()
        attempt = 0
        rng = random.Random()
        while not self._stop.is_set():
            opened_at = await self._connect_once()
            if self._stop.is_set():
                break
            if opened_at is not None and time.monotonic() - opened_at >= self._stable_after:
                attempt = 0
            delay = self._backoff.delay(attempt, rng)
            attempt += 1
            self.reconnects += 1
            self.state = "reconnecting"
            log.info("reconnecting in %.2f s (attempt %d): %s", delay, attempt, self.last_error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)
        self.state = "closed"

    async def _connect_once(self) -> float | None:
        """One connection's life; return when it opened (monotonic), or None if it never did."""
        opened_at: float | None = None
        try:
            async with connect(
                self.url, open_timeout=self._open_timeout, max_size=2**26, max_queue=4096, close_timeout=2
            ) as ws:
                self._ws = ws
                self._close_reason = None
                opened_at = time.monotonic()
                with self._lock:
                    self._session.connection_made(time.time_ns())
                self.state = "live"
                log.info("connected to %s", self.url)
                await self._serve(ws)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ws = None
            with self._lock:
                events = self._session.connection_lost(time.time_ns(), self.last_error or "connection closed")
                self._lock.notify_all()
            if events:
                self._on_events(events)
        return opened_at

    async def _serve(self, ws: ClientConnection) -> None:
        """Read, write and watch one connection until one of them ends; then the connection closes.

        The reader, the writer or the watchdog ending for any reason stops
        the others, so a connection is never left open with nothing reading
        it. A connection error propagates (``_connect_once`` handles it); any
        other exception is a bug: it is logged with its traceback, kept in
        ``last_error``, and the connection is closed and dialled again.
        """
        tasks = [
            asyncio.create_task(self._read(ws)),
            asyncio.create_task(self._write(ws)),
            asyncio.create_task(self._watch(ws)),
            asyncio.create_task(self._stop.wait()),  # type: ignore[union-attr]
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if self._stop is not None and not self._stop.is_set():
                self.state = "reconnecting"  # nothing reads from here on
            for task in done:
                error = None if task.cancelled() else task.exception()
                if error is None:
                    continue
                if isinstance(error, _CONNECTION_ERRORS):
                    raise error
                self.last_error = f"{_TASK_NAMES[tasks.index(task)]} failed: {type(error).__name__}: {error}"
                log.error("%s: %s; reconnecting", self.url, self.last_error, exc_info=error)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                for request in self._handle_frame(frame):
                    await ws.send(json.dumps(request))
        except websockets.exceptions.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else "no close frame"
            self.last_error = self._close_reason or f"connection closed ({code})"
            return
        self.last_error = self._close_reason or "connection closed by server"

    def _handle_frame(self, frame: str | bytes) -> list[dict[str, Any]]:
        """Feed one frame to the session, pass its events on, return the requests to send.

        ``Session.feed`` does not raise; should anything here still do so, the
        frame is counted in ``malformed`` and ``internal_errors``, logged
        (the first time with its traceback, then rate-limited) and reading goes on.
        """
        try:
            with self._lock:
                events = self._session.feed(frame, time.time_ns())
                outgoing = self._session.data_to_send()
                self._lock.notify_all()
        except Exception as exc:
            self._frame_failed(exc)
            return []
        if events:
            try:
                self._on_events(events)
            except Exception as exc:
                self._frame_failed(exc)
        return outgoing

    def _frame_failed(self, exc: Exception) -> None:
        """Count and log (rate-limited) an exception that escaped the handling of one frame."""
        with self._lock:
            self._session.counters["malformed"] += 1
            self._session.counters["internal_errors"] += 1
        self._frame_errors.log(
            logging.ERROR,
            "frame",
            "%s: handling a frame failed (%s: %s); it was dropped and reading goes on",
            self.url,
            type(exc).__name__,
            brief(str(exc)),
            exc_info=True,
        )

    async def _write(self, ws: ClientConnection) -> None:
        assert self._wakeup is not None
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            with self._lock:
                outgoing = self._session.data_to_send()
            for request in outgoing:
                await ws.send(json.dumps(request))

    async def _watch(self, ws: ClientConnection) -> None:
        """Close a connection that has gone silent while it should be streaming."""
        while True:
            await asyncio.sleep(min(1.0, self._silence_timeout / 4))
            with self._lock:
                last = self._session.last_message_ns
                streaming = bool(self._session.subscriptions())
            if streaming and last is not None and time.time_ns() - last > self._silence_timeout * 1e9:
                self._close_reason = f"no message for {self._silence_timeout:g} s"
                log.warning("%s: %s; reconnecting", self.url, self._close_reason)
                await ws.close(code=1001, reason="silence")
                return
