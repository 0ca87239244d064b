"""What feeds a client's session: a source running on a daemon thread with its own asyncio loop.

A :class:`~kraken_nb.client.KrakenClient` owns one
:class:`~kraken_nb.core.session.Session` and one source. Two sources exist:
:class:`~kraken_nb.transport.Transport` (a WebSocket to Kraken or the
simulator) and :class:`~kraken_nb.relay.source.JetStreamSource` (a JetStream
consumer fed by ``kraken-nb relay``). Each one

- runs its own thread and event loop (never the caller's),
- hands every frame, unchanged, to ``Session.feed`` under the client's lock
  and passes the events on (``on_events``, outside the lock),
- carries out the requests the session queues (``data_to_send``) when
  :meth:`Source.flush` wakes it,
- reports ``state`` (``connecting``, ``live``, ``reconnecting``, ``failed``,
  ``closed``), a terminal ``failure`` and its own counters (:meth:`Source.stats`).

:class:`Source` holds that shared plumbing; a subclass writes ``_run``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from kraken_nb.core.session import Event, Session
from kraken_nb.errors import ConnectionFailed
from kraken_nb.looping import LoopThread

__all__ = ["Source"]


class Source:
    """Base of the client's sources: a daemon thread with its own loop, feeding one session.

    ``url`` is the address as shown (credentials redacted). Subclasses
    implement :meth:`_run` (the coroutine the thread runs until :meth:`close`)
    and extend :meth:`stats`.
    """

    thread_name = "kraken-nb-source"

    def __init__(
        self, url: str, session: Session, lock: threading.Condition, on_events: Callable[[list[Event]], None]
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
        self._runner = LoopThread(self.thread_name, self._main)
        self._loop = self._runner.loop
        self._wakeup: asyncio.Event | None = None

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
        finally:
            if self.state != "failed":
                self.state = "closed"

    async def _run(self) -> None:
        """Connect, feed, reconnect… until ``self._stop`` is set."""
        raise NotImplementedError

    def _feed(self, frame: str | bytes, received_ns: int) -> tuple[list[Event], list[dict[str, Any]]]:
        """Feed one frame to the session; return its events and the requests now queued.

        The caller sends the requests and then passes the events on with
        :meth:`_publish`, so a resubscribe leaves before any callback is queued.
        """
        with self._lock:
            events = self._session.feed(frame, received_ns)
            outgoing = self._session.data_to_send()
            self._lock.notify_all()
        return events, outgoing

    def _publish(self, events: list[Event]) -> None:
        """Hand events to the client's dispatcher (outside the lock)."""
        if events:
            self._on_events(events)
