"""Waking long-pollers and SSE streams on the serving loop when the journal grows, from any thread.

The journal calls :meth:`Notifier.wake` on the client's network thread after
every frame that added messages. That must cost next to nothing when nobody
waits (a notebook serving no readers), and must not flood the serving loop at
thousands of frames a second: a wake-up is scheduled only while someone waits
and only if none is pending, and every waiter then re-checks the journal.

No wake-up is lost: a waiter registers (``waiting()``) before it checks the
journal, and it captures the event it waits on in the same synchronous step
as that check, so a wake-up scheduled after the check sets that very event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

__all__ = ["Notifier"]


class Notifier:
    """A generation event on one asyncio loop, set from any thread."""

    def __init__(self) -> None:
        self.waiters = 0
        self.closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._scheduled = False

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Attach to the serving loop (call on that loop)."""
        self._loop = loop
        self._event = asyncio.Event()

    def wake(self) -> None:
        """Wake every waiter soon (thread-safe, cheap; a no-op while nobody waits)."""
        if self._scheduled or not self.waiters or self._loop is None:
            return
        self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop has closed
            self._loop.call_soon_threadsafe(self._fire)

    def close(self) -> None:
        """Wake everyone for good (call on the loop): the server is stopping."""
        self.closed = True
        self._fire()

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Count the caller as a waiter while it checks and waits."""
        self.waiters += 1
        try:
            yield
        finally:
            self.waiters -= 1

    async def wait(self, timeout: float) -> None:
        """Wait until the next wake-up or ``timeout`` seconds (use inside :meth:`waiting`)."""
        event = self._event
        if event is None or self.closed or timeout <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def _fire(self) -> None:
        self._scheduled = False
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()
