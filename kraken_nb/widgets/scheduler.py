"""One daemon thread that runs every widget's periodic tick.

Widgets never run on the client's network thread: they register a tick here and
the scheduler calls it ``rate_hz`` times a second. Ticks run one after another
on this thread, so a slow tick delays the next ones but never the client; a
late task is rescheduled from now instead of running a burst to catch up.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

from kraken_nb.errors import InvalidParams

__all__ = ["Scheduler", "Task", "shared_scheduler"]

logger = logging.getLogger(__name__)


class Task:
    """A periodic call registered with a :class:`Scheduler`; ``cancel()`` stops it."""

    __slots__ = ("_cancelled", "errors", "function", "name", "period", "runs")

    def __init__(self, function: Callable[[], None], period: float, name: str) -> None:
        self.function = function
        self.period = period
        self.name = name
        self.runs = 0
        self.errors = 0
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        """Whether the task was cancelled."""
        return self._cancelled

    def cancel(self) -> None:
        """Stop running the task (idempotent)."""
        self._cancelled = True

    def __repr__(self) -> str:
        return f"Task({self.name!r}, period={self.period:.3f}, runs={self.runs}, cancelled={self._cancelled})"


class Scheduler:
    """Runs registered tasks periodically on one lazily started daemon thread."""

    def __init__(self, name: str = "kraken-nb-widgets") -> None:
        self._name = name
        self._heap: list[tuple[float, int, Task]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, function: Callable[[], None], rate_hz: float, *, name: str = "task") -> Task:
        """Call ``function`` about ``rate_hz`` times a second, first after one period."""
        if isinstance(rate_hz, bool) or not isinstance(rate_hz, int | float) or not 0 < rate_hz <= 60:
            raise InvalidParams("rate_hz", rate_hz, "a number of updates per second in (0, 60]")
        task = Task(function, 1.0 / rate_hz, name)
        with self._condition:
            heapq.heappush(self._heap, (time.monotonic() + task.period, next(self._counter), task))
            self._ensure_thread()
            self._condition.notify()
        return task

    @property
    def pending(self) -> int:
        """The number of tasks not yet cancelled."""
        with self._condition:
            return sum(1 for _, _, task in self._heap if not task.cancelled)

    @property
    def thread(self) -> threading.Thread | None:
        """The worker thread, once a task was added."""
        return self._thread

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def _next_due(self) -> Task:
        """Block until the earliest live task is due and pop it."""
        with self._condition:
            while True:
                while self._heap and self._heap[0][2].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._condition.wait()
                    continue
                due = self._heap[0][0]
                delay = due - time.monotonic()
                if delay <= 0:
                    return heapq.heappop(self._heap)[2]
                self._condition.wait(delay)

    def _run(self) -> None:
        while True:
            task = self._next_due()
            started = time.monotonic()
            try:
                task.function()
            except Exception:
                task.errors += 1
                if task.errors in (1, 10, 100) or task.errors % 1000 == 0:
                    logger.exception("widget task %s failed (%d errors so far)", task.name, task.errors)
            task.runs += 1
            if task.cancelled:
                continue
            with self._condition:
                due = max(started + task.period, time.monotonic())
                heapq.heappush(self._heap, (due, next(self._counter), task))


_shared: Scheduler | None = None
_shared_lock = threading.Lock()


def shared_scheduler() -> Scheduler:
    """The process-wide scheduler all widgets share."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Scheduler()
        return _shared
