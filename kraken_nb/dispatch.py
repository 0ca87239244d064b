"""Hand events from the network thread to user callbacks and async iterators.

The network thread only appends to a bounded deque (``publish``); a separate
dispatcher thread calls the callbacks, so a slow callback can never stall the
stream. When the queue is full the oldest events are dropped and counted.
Once :meth:`Dispatcher.close` returns no callback runs any more: undelivered
events are discarded and counted. A callback that raises is logged with its
traceback the first time, then counted and logged ever more rarely.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Iterable

from kraken_nb.core.session import Event
from kraken_nb.core.throttle import ThrottledLog

__all__ = ["Dispatcher", "EventStream"]

log = logging.getLogger(__name__)


class EventStream:
    """Async iterator over events; bounded, dropping (and counting) the oldest."""

    def __init__(self, kinds: Iterable[str], maxsize: int, on_close: Callable[[EventStream], None]) -> None:
        self.kinds = frozenset(kinds)
        self.dropped = 0
        self._items: collections.deque[Event] = collections.deque()
        self._maxsize = maxsize
        self._on_close = on_close
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Event | None = None
        self._closed = False
        self._lock = threading.Lock()

    def wants(self, event: Event) -> bool:
        """Whether this stream takes events of that kind."""
        return "*" in self.kinds or event.kind in self.kinds

    def push(self, event: Event) -> None:
        """Called by the dispatcher thread."""
        with self._lock:
            if len(self._items) >= self._maxsize:
                self._items.popleft()
                self.dropped += 1
            self._items.append(event)
            loop, ready = self._loop, self._ready
        if loop is not None and ready is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ready.set)

    def close(self) -> None:
        """Stop the stream: iteration ends at once, undelivered events are discarded."""
        self._closed = True
        self._on_close(self)
        loop, ready = self._loop, self._ready
        if loop is not None and ready is not None and not loop.is_closed():
            loop.call_soon_threadsafe(ready.set)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._ready = asyncio.Event()
        assert self._ready is not None
        while True:
            with self._lock:
                if self._closed:
                    self._items.clear()
                    raise StopAsyncIteration
                if self._items:
                    return self._items.popleft()
                self._ready.clear()
            await self._ready.wait()


class Dispatcher:
    """Runs callbacks on its own daemon thread, fed through a bounded queue."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.dropped = 0
        """Events dropped because the queue was full."""
        self.discarded = 0
        """Events never delivered because the dispatcher was closed first."""
        self.errors = 0
        """Exceptions raised by callbacks."""
        self._maxsize = maxsize
        self._throttled = ThrottledLog(log)
        self._queue: collections.deque[Event] = collections.deque()
        self._callbacks: dict[str, list[Callable[[Event], None]]] = {}
        self._streams: list[EventStream] = []
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kraken-nb-callbacks", daemon=True)

    def start(self) -> None:
        """Start the dispatcher thread."""
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop delivering: discard (and count) queued events, wait up to ``timeout`` for a running callback.

        After this returns no callback starts again; one that is still running
        after ``timeout`` is logged and left to finish.
        """
        with self._cond:
            if not self._closed:
                self._closed = True
                self._discard()
            self._cond.notify_all()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("a callback is still running %g s after close(); it is left to finish", timeout)
        for stream in list(self._streams):
            stream.close()

    def _discard(self) -> None:
        if self._queue:
            self.discarded += len(self._queue)
            log.info("discarded %d undelivered event(s) on close", len(self._queue))
            self._queue.clear()

    def add(self, kind: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Register ``callback`` for ``kind``; return its remover."""
        with self._cond:
            self._callbacks.setdefault(kind, []).append(callback)

        def remove() -> None:
            with self._cond:
                callbacks = self._callbacks.get(kind, [])
                if callback in callbacks:
                    callbacks.remove(callback)

        return remove

    def stream(self, kinds: Iterable[str], maxsize: int) -> EventStream:
        """A new async event stream."""
        stream = EventStream(kinds, maxsize, self._remove_stream)
        with self._cond:
            self._streams.append(stream)
        return stream

    def _remove_stream(self, stream: EventStream) -> None:
        with self._cond:
            if stream in self._streams:
                self._streams.remove(stream)

    def publish(self, events: list[Event]) -> None:
        """Queue events (network thread); cheap when nobody listens (the lock is not even taken)."""
        if not self._callbacks and not self._streams:
            return
        with self._cond:
            if not self._callbacks and not self._streams:
                return
            events = [event for event in events if self._listened(event)]
            if self._closed:
                self.discarded += len(events)
                return
            for event in events:
                if len(self._queue) >= self._maxsize:
                    self._queue.popleft()
                    self.dropped += 1
                self._queue.append(event)
            self._cond.notify()

    def _listened(self, event: Event) -> bool:
        """Whether a callback or a stream takes ``event`` (called under the lock)."""
        return (
            bool(self._callbacks.get(event.kind))
            or bool(self._callbacks.get("*"))
            or any(stream.wants(event) for stream in self._streams)
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                event = self._queue.popleft()
                callbacks = self._callbacks.get(event.kind, []) + self._callbacks.get("*", [])
                streams = [s for s in self._streams if s.wants(event)]
            for callback in callbacks:
                if self._closed:
                    return
                try:
                    callback(event)
                except Exception:
                    self.errors += 1
                    self._throttled.log(
                        logging.ERROR,
                        f"callback {id(callback)}",
                        "callback %r failed on a %s event",
                        callback,
                        event.kind,
                        exc_info=True,
                    )
            for stream in streams:
                stream.push(event)
