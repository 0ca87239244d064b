"""A daemon thread that runs one coroutine on an event loop of its own.

The client's sources and the relay's publisher each run their network I/O
this way: never in the caller's loop (a notebook's kernel has one running), and
stoppable from any thread within a bounded time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """Runs ``main()`` on a new event loop (or ``loop``) in a daemon thread named ``name``.

    ``stopping`` is an ``asyncio.Event`` (on that loop, set by :meth:`stop`)
    that ``main`` watches to end.
    """

    def __init__(
        self, name: str, main: Callable[[], Awaitable[None]], loop: asyncio.AbstractEventLoop | None = None
    ) -> None:
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self._main = main
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread.is_alive()

    def start(self) -> None:
        """Start the thread; return once ``stopping`` exists."""
        self._thread.start()
        self._started.wait(5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Set ``stopping`` and wait up to ``timeout`` for the thread to end."""
        if not self._thread.is_alive():
            return
        self.call_soon(lambda: self.stopping.set() if self.stopping is not None else None)
        self._thread.join(timeout)

    def call_soon(self, callback: Callable[[], Any]) -> None:
        """Run ``callback`` on the loop soon (from any thread; ignored once the loop is closed)."""
        if not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(callback)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coroutine`` on the loop from another thread and return its result (or raise)."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no result within {timeout:g} s") from None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._begin())
        finally:
            try:
                self._cancel_leftovers()
            finally:
                self.loop.close()

    def _cancel_leftovers(self) -> None:
        """Cancel the tasks ``main`` left behind (a library's half-made connection) and let them end."""
        leftovers = asyncio.all_tasks(self.loop)
        for task in leftovers:
            task.cancel()
        if leftovers:
            self.loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())

    async def _begin(self) -> None:
        self.stopping = asyncio.Event()
        self._started.set()
        await self._main()
