"""What feeds a client's session: a source running on a daemon thread with its own asyncio loop.

A :class:`~kraken_nb.client.KrakenClient` owns one
:class:`~kraken_nb.core.session.Session` and one source. Two sources exist:
:class:`~kraken_nb.transport.Transport` (a WebSocket to Kraken or the
simulator) and :class:`~kraken_nb.relay.source.JetStreamSource` (a JetStream
consumer fed by ``kraken-nb relay``). Each one

- runs its own thread and event loop (never the caller's),
- hands every frame, unchanged, to ``Session.feed`` under the client's lock
  and passes the events on (``on_events``, outside the lock),
- contains any exception raised while handling one frame (counted in
  ``malformed`` and ``internal_errors``, logged rate-limited, reading goes on),
- carries out the requests the session queues (``data_to_send``) when
  :meth:`Source.flush` wakes it,
- reports ``state`` (``connecting``, ``live``, ``reconnecting``, ``failed``,
  ``closed``), a terminal ``failure`` and its own counters (:meth:`Source.stats`);
  should its thread itself die, it says ``failed`` (never looks live with no
  thread) and hands on a ``failed`` event.

:class:`Source` holds that shared plumbing; a subclass writes ``_run``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kraken_nb.core.session import Event, Session
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import ConnectionFailed, brief
from kraken_nb.looping import LoopThread

__all__ = ["Source"]


class Source:
    """Base of the client's sources: a daemon thread with its own loop, feeding one session.

    ``url`` is the address as shown (credentials redacted). Subclasses
    implement :meth:`_run` (the coroutine the thread runs until :meth:`close`)
    and extend :meth:`stats`.
    """

    thread_name = "kraken-nb-source"
    log = logging.getLogger(__name__)
    """The logger of the source's lifecycle and of frames that failed (a subclass names its own)."""

    def __init__(
        self,
        url: str,
        session: Session,
        lock: threading.Condition,
        on_events: Callable[[list[Event]], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.url = url
        self.state = "connecting"
        self.reconnects = 0
        self.last_error: str | None = None
        self.failure: ConnectionFailed | None = None
        """Why the source stopped for good (``state == "failed"``), else ``None``."""
        self._session = session
        self._lock = lock
        self._on_events = on_events
        self._runner = LoopThread(self.thread_name, self._main, loop)
        self._loop = self._runner.loop
        self._wakeup: asyncio.Event | None = None
        self._frame_errors = ThrottledLog(self.log)

    @property
    def _stop(self) -> asyncio.Event | None:
        """Set when :meth:`close` was called (on the source's loop)."""
        return self._runner.stopping

    # -- called from any thread ----------------------------------------------

    def start(self) -> None:
        """Start the thread; connecting happens in the background."""
        self._runner.start()

    def flush(self) -> None:
        """Ask the source's thread to carry out what the session has queued."""
        wakeup = self._wakeup
        if wakeup is not None:
            self._runner.call_soon(wakeup.set)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (bounded by ``timeout``)."""
        self._runner.stop(timeout)
        self.state = "closed"

    def stats(self) -> dict[str, Any]:
        """The source's counters, merged into ``KrakenClient.stats()``."""
        return {"reconnects": self.reconnects, "last_error": self.last_error}

    # -- the source's thread ------------------------------------------------------

    async def _main(self) -> None:
        self._wakeup = asyncio.Event()
        try:
            await self._run()
        except Exception as exc:  # the last resort: say so rather than look live with no thread
            self._thread_failed(exc)
        finally:
            if self.state != "failed":
                self.state = "closed"

    def _thread_failed(self, exc: Exception) -> None:
        self.last_error = f"network thread failed: {type(exc).__name__}: {brief(str(exc))}"
        self.log.exception("the network thread of %s failed; the client no longer receives", self.url)
        self.failure = ConnectionFailed(None, self.last_error)
        self.state = "failed"
        with self._lock:
            self._lock.notify_all()
        self._publish([Event("failed", None, self.failure)])

    async def _run(self) -> None:
        """Connect, feed, reconnect… until ``self._stop`` is set."""
        raise NotImplementedError

    def _handle_frame(self, frame: str | bytes, received_ns: int | None = None) -> list[dict[str, Any]]:
        """Feed one frame to the session, pass its events on, return the requests now queued.

        ``received_ns`` defaults to now. ``Session.feed`` does not raise; should
        anything here still do so, the frame is counted in ``malformed`` and
        ``internal_errors``, logged (the first time with its traceback, then
        rate-limited) and reading goes on.
        """
        lock = self._lock
        try:
            # acquire/release rather than ``with``: the Condition's __enter__/__exit__ are Python calls
            lock.acquire()
            try:
                events = self._session.feed(frame, time.time_ns() if received_ns is None else received_ns)
                outgoing = self._session.data_to_send()
                if lock._waiters:  # type: ignore[attr-defined]  # notify_all costs a call even with no one waiting
                    lock.notify_all()
            finally:
                lock.release()
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

    def _publish(self, events: list[Event]) -> None:
        """Hand events to the client's dispatcher (outside the lock)."""
        if events:
            self._on_events(events)
