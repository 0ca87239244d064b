"""One WebSocket connection on a daemon thread with its own asyncio loop.

The transport feeds every frame to the :class:`~kraken_nb.core.session.Session`
(under the client's lock), sends what the session queues, watches for
silence, and reconnects with exponential backoff and jitter. It never runs in
the caller's event loop, so it behaves the same in JupyterLab, VS Code,
Colab and plain scripts.

Reconnect policy (Kraken bans addresses that connect too often):

- close code 1008 (policy violation) is final, as in Kraken's own SDK: the
  state becomes ``"failed"`` and a ``failed`` event carries
  :class:`~kraken_nb.errors.ConnectionFailed`; every other close reconnects;
- the backoff's attempt counter resets only after a connection proved useful:
  every wanted subscription confirmed and messages arriving for
  ``stable_after`` seconds;
- a :class:`~kraken_nb.core.reconnect.ConnectBudget` caps connects per rolling
  window (100 per 600 s by default; Kraken's SDK allows itself 120).

Every wait of that policy goes through an injectable :class:`Clock`, so a test
can run ten minutes of a misbehaving server in a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import selectors
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import websockets
from websockets.asyncio.client import ClientConnection, connect

try:  # the bytes waiting in a socket's receive buffer (not on Windows)
    from fcntl import ioctl
    from termios import FIONREAD
except ImportError:  # pragma: no cover
    ioctl = None  # type: ignore[assignment]

from kraken_nb.core.busy import Behind, BusyMeter
from kraken_nb.core.reconnect import Backoff, ConnectBudget
from kraken_nb.core.redaction import RedactingLogger, redact, redact_url
from kraken_nb.core.session import Event, Session
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import ConnectionFailed
from kraken_nb.source import Source

__all__ = ["TERMINAL_CLOSE_CODES", "Backoff", "Clock", "ConnectBudget", "Transport"]

log = logging.getLogger(__name__)

TERMINAL_CLOSE_CODES: Final = frozenset({1008})
"""Close codes after which the transport stops for good (1008: policy violation)."""

# What ends a connection in the ordinary way; anything else ending a task is a bug, reported.
_CONNECTION_ERRORS = (OSError, TimeoutError, websockets.exceptions.WebSocketException)


class Clock:
    """The time the reconnect policy reads and waits on: monotonic seconds and ``sleep``.

    Tests pass a clock whose ``sleep`` advances its own time at once, which
    compresses minutes of backoff and budget waits into milliseconds.
    """

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        await asyncio.sleep(seconds)


_TASK_NAMES = ("reader", "writer", "watchdog", "stop")


class _IdleTimedSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """The loop's selector, adding up the time the loop waited in ``select`` (it was idle)."""

    idle_ns = 0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        started = time.perf_counter_ns()
        try:
            return super().select(timeout)
        finally:
            self.idle_ns += time.perf_counter_ns() - started


class Transport(Source):
    """Keeps a session connected to ``url`` until :meth:`close` (or a terminal close code).

    ``on_events`` is called on the network thread with the events of each
    frame, outside the lock; it must only hand them off (the client puts them
    on a bounded queue). ``state`` is ``"connecting"``, ``"live"``,
    ``"reconnecting"``, ``"failed"`` (the server closed with 1008) or
    ``"closed"``.
    """

    thread_name = "kraken-nb-transport"
    log = log

    def __init__(
        self,
        url: str,
        session: Session,
        lock: threading.Condition,
        on_events: Callable[[list[Event]], None],
        *,
        backoff: Backoff | None = None,
        budget: ConnectBudget | None = None,
        clock: Clock | None = None,
        open_timeout: float = 10.0,
        silence_timeout: float = 5.0,
        stable_after: float = 30.0,
        max_size: int = 2**26,
    ) -> None:
        self._selector = _IdleTimedSelector()
        loop = asyncio.SelectorEventLoop(self._selector)
        super().__init__(redact_url(url), session, lock, on_events, loop=loop)
        self.busy = BusyMeter()
        """The network thread's busy share and whether it is behind (see ``kraken_nb.core.busy``)."""
        self._behind_log = ThrottledLog(log)
        self.connects = 0
        """Connection attempts so far (each one counts against the budget)."""
        self.budget_waits = 0
        self.attempt = 0
        """The backoff's attempt counter: failed connections since the last useful one."""
        self.close_code: int | None = None
        """The close code of the last connection (1006 when it ended without a close frame)."""
        self.close_reason: str | None = None
        self.budget = budget if budget is not None else ConnectBudget()
        self.clock = clock if clock is not None else Clock()
        self._url = url
        self._backoff = backoff if backoff is not None else Backoff()
        self._open_timeout = open_timeout
        self._silence_timeout = silence_timeout
        self._stable_after = stable_after
        self._max_size = max_size
        self._rng = random.Random()
        self._throttled = ThrottledLog(log)
        self._ws_logger = RedactingLogger(logging.getLogger("websockets.client"), url)
        self._ws: ClientConnection | None = None
        self._close_reason: str | None = None
        self._useful_since: float | None = None
        self._useful = False

    # -- called from any thread ----------------------------------------------

    def drop(self) -> None:
        """Close the current connection (the transport reconnects)."""
        ws = self._ws
        if ws is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(ws.close(code=1001, reason="client drop"), self._loop)

    def connects_in_window(self) -> int:
        """Connects in the budget's current window."""
        return self.budget.used(self.clock.now())

    def stats(self) -> dict[str, Any]:
        """Connects, the budget, the backoff and how the last connection ended."""
        return {
            **super().stats(),
            "connects": self.connects,
            "connects_in_window": self.connects_in_window(),
            "connect_budget": self.budget.limit,
            "connect_budget_window": self.budget.window,
            "budget_waits": self.budget_waits,
            "backoff_attempt": self.attempt,
            "close_code": self.close_code,
            "close_reason": self.close_reason,
            "busy": self.busy.busy,
            "behind": self.busy.behind,
            "behind_episodes": self.busy.episodes,
            "behind_seconds": self.busy.behind_ns / 1e9,
            "receive_backlog": self.receive_backlog(),
            "receive_buffered": self.receive_buffered(),
        }

    def receive_backlog(self) -> int | None:
        """Frames received and not yet handled, in ``websockets``' queue (None when not connected).

        ``websockets`` stops reading the socket once ``max_queue`` frames wait
        there, so a larger backlog sits in the kernel and with the sender.
        """
        ws = self._ws
        frames = getattr(getattr(ws, "recv_messages", None), "frames", None)
        try:
            return len(frames)  # type: ignore[arg-type]
        except TypeError:  # not connected, or another websockets layout
            return None

    def receive_buffered(self) -> int | None:
        """Bytes received by the kernel and not yet read from the socket (None when unknown)."""
        ws = self._ws
        sock = ws.transport.get_extra_info("socket") if ws is not None else None
        if sock is None or ioctl is None:
            return None
        buffer = bytearray(4)
        with contextlib.suppress(OSError, ValueError):
            ioctl(sock.fileno(), FIONREAD, buffer)
            return int.from_bytes(buffer, sys.byteorder, signed=True)
        return None

    # -- network thread -----------------------------------------------------------

    async def _run(self) -> None:
        assert self._stop is not None
        while not self._stop.is_set():
            if not await self._spend_budget():
                break
            useful = await self._connect_once()
            if self._stop.is_set():
                break
            if self.failure is not None:
                self.state = "failed"
                log.error("%s: %s; not reconnecting", self.url, self.failure)
                self._publish([Event("failed", None, self.failure)])
                return
            if useful:
                self.attempt = 0
            delay = self._backoff.delay(self.attempt, self._rng)
            self.attempt += 1
            self.reconnects += 1
            self.state = "reconnecting"
            log.info("reconnecting in %.2f s (attempt %d): %s", delay, self.attempt, self.last_error)
            if await self._pause(delay):
                break

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` on the clock; return True if ``close()`` was called meanwhile."""
        assert self._stop is not None
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            stopper.cancel()
        return self._stop.is_set()

    async def _spend_budget(self) -> bool:
        """Wait until the connect budget allows one more connect and take it; False if closed."""
        wait = self.budget.wait(self.clock.now())
        if wait > 0:
            self.budget_waits += 1
            self._throttled.warning(
                "budget",
                "%s: %d connects in %g s reached; next attempt in %.0f s",
                self.url,
                self.budget.limit,
                self.budget.window,
                wait,
            )
            if await self._pause(wait):
                return False
        self.budget.record(self.clock.now())
        self.connects += 1
        return True

    async def _connect_once(self) -> bool:
        """One connection's life; return whether it proved useful (see ``stable_after``)."""
        self._useful, self._useful_since, self._close_reason = False, None, None
        ws: ClientConnection | None = None
        error: str | None = None
        try:
            async with connect(
                self._url,
                open_timeout=self._open_timeout,
                max_size=self._max_size,
                max_queue=4096,
                close_timeout=2,
                logger=self._ws_logger,
            ) as ws:
                self._ws = ws
                with self._lock:
                    self._session.connection_made(time.time_ns())
                self.state = "live"
                log.info("connected to %s", self.url)
                await self._serve(ws)
        except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            self._ws = None
            self._note_busy(self.busy.reset(time.perf_counter_ns()))
            self._note_close(ws, error)
            with self._lock:
                events = self._session.connection_lost(time.time_ns(), self.last_error or "connection closed")
                self._lock.notify_all()
            self._publish(events)
        return self._useful

    def _note_close(self, ws: ClientConnection | None, error: str | None) -> None:
        """Record why the connection ended: ``last_error``, the close code and reason, a terminal close."""
        if ws is None:  # never opened
            if error is not None:
                self.last_error = redact(error, self._url)
            return
        protocol = ws.protocol
        received, sent = protocol.close_rcvd, protocol.close_sent
        self.close_code = received.code if received is not None else 1006
        self.close_reason = received.reason if received is not None else None
        if self._close_reason is not None:
            description = self._close_reason
        elif sent is not None and sent.code not in (1000, 1001) and not protocol.close_rcvd_then_sent:
            description = f"closed by the client: {sent}"  # e.g. 1009 message too big
        elif received is not None:
            description = f"closed by the server: {received}"
        elif error is not None:
            description = error
        else:
            description = "connection closed (no close frame)"
        self.last_error = redact(description, self._url)
        if received is not None and received.code in TERMINAL_CLOSE_CODES:
            self.failure = ConnectionFailed(received.code, received.reason)

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
            failed = [t for t in done if not t.cancelled() and t.exception() is not None]
            for task in failed:
                error = task.exception()
                if isinstance(error, _CONNECTION_ERRORS):
                    continue
                # the close reason: _note_close reports it rather than our own close code
                name = _TASK_NAMES[tasks.index(task)]
                self._close_reason = self.last_error = f"{name} failed: {type(error).__name__}: {error}"
                log.error("%s: %s; reconnecting", self.url, self._close_reason, exc_info=error)
            if self._stop is not None and not self._stop.is_set():
                self.state = "reconnecting"  # nothing reads from here on (the reason is recorded first)
            for task in failed:
                if isinstance(task.exception(), _CONNECTION_ERRORS):
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                for request in self._handle_frame(frame):
                    await ws.send(json.dumps(request))
        except websockets.exceptions.ConnectionClosed:
            return  # _note_close records how it ended

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
        """Once a second: retry unanswered subscriptions, note a useful connection, close a silent one."""
        assert self._wakeup is not None
        while True:
            await asyncio.sleep(min(1.0, self._silence_timeout / 4))
            now = time.time_ns()
            with self._lock:
                events = self._session.poll(now)
                last = self._session.last_message_ns
                # only a confirmed subscription promises data or heartbeats; an unanswered
                # request is the session's to retry (and websockets' keepalive finds a dead link)
                counts = self._session.subscription_counts()
                streaming = "confirmed" in counts
                settled = len(counts) <= 1 and (streaming or not counts)
            self._publish(events)
            # frames wait in websockets' queue or bytes in the kernel: the reader does not keep up
            backlog, buffered = self.receive_backlog(), self.receive_buffered()
            waiting = bool(backlog) or bool(buffered) or (backlog is None and buffered is None)
            self._note_busy(self.busy.sample(time.perf_counter_ns(), self._selector.idle_ns, waiting))
            self._wakeup.set()  # send what poll() queued
            flowing = last is not None and now - last <= self._silence_timeout * 1e9
            self._note_health(settled and (flowing or not streaming))
            if streaming and last is not None and not flowing:
                self._close_reason = f"no message for {self._silence_timeout:g} s"
                log.warning("%s: %s; reconnecting", self.url, self._close_reason)
                await ws.close(code=1001, reason="silence")
                return

    def _note_busy(self, change: Behind | None) -> None:
        """Say when the network thread fell behind its source or caught up (a ``behind`` event)."""
        if change is None:
            return
        if change.behind:
            self._behind_log.warning(
                "behind",
                "%s: the network thread was busy %.0f%% for %.1f s: the source is faster than the "
                "client; nothing is lost (reading waits, TCP holds the sender back) but data arrives "
                "late (%s frames queued)",
                self.url,
                100 * change.busy,
                change.for_ns / 1e9,
                self.receive_backlog(),
            )
        else:
            log.info("%s: caught up with the source after %.1f s behind", self.url, change.for_ns / 1e9)
        self._on_events([Event("behind", None, change)])

    def _note_health(self, healthy: bool) -> None:
        """A connection is useful once it stayed healthy for ``stable_after`` seconds in a row."""
        if not healthy:
            self._useful_since = None
            return
        now = self.clock.now()
        if self._useful_since is None:
            self._useful_since = now
        elif not self._useful and now - self._useful_since >= self._stable_after:
            self._useful = True
            log.debug("%s: connection stable; the backoff starts over after it", self.url)
