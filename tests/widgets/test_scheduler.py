"""The shared scheduler: periodic ticks on one daemon thread, cancellation, error isolation."""

from __future__ import annotations

import threading

import pytest

from kraken_nb.errors import InvalidParams
from kraken_nb.widgets.scheduler import Scheduler, shared_scheduler

from .helpers import wait_for


def test_tasks_run_periodically_on_one_daemon_thread() -> None:
    scheduler = Scheduler(name="test-scheduler")
    threads: set[str] = set()
    fast = scheduler.add(lambda: threads.add(threading.current_thread().name), 50, name="fast")
    slow = scheduler.add(lambda: threads.add(threading.current_thread().name), 20, name="slow")
    wait_for(lambda: fast.runs >= 5 and slow.runs >= 2, timeout=5, what="both tasks to run")
    fast.cancel()
    slow.cancel()
    assert threads == {"test-scheduler"}
    assert scheduler.thread is not None and scheduler.thread.daemon
    assert threading.current_thread().name not in threads


def test_cancelled_task_stops_running() -> None:
    scheduler = Scheduler()
    task = scheduler.add(lambda: None, 50)
    wait_for(lambda: task.runs >= 2, timeout=5, what="the task to run")
    task.cancel()
    stopped_at = task.runs
    marker = scheduler.add(lambda: None, 50)
    # The scheduler keeps running other tasks while the cancelled one stays still.
    wait_for(lambda: marker.runs >= 5, timeout=5, what="another task to run")
    marker.cancel()
    assert task.runs <= stopped_at + 1
    assert task.cancelled
    assert scheduler.pending == 0


def test_a_failing_task_does_not_stop_the_others() -> None:
    scheduler = Scheduler()

    def explode() -> None:
        raise RuntimeError("boom")

    bad = scheduler.add(explode, 50, name="bad")
    good = scheduler.add(lambda: None, 50, name="good")
    wait_for(lambda: bad.errors >= 3 and good.runs >= 3, timeout=5, what="both tasks to keep running")
    bad.cancel()
    good.cancel()
    assert good.errors == 0


@pytest.mark.parametrize("rate", [0, -1, 61, "5", True, float("nan")])
def test_rate_must_be_a_sensible_number(rate: object) -> None:
    with pytest.raises(InvalidParams, match="rate_hz"):
        Scheduler().add(lambda: None, rate)  # type: ignore[arg-type]


def test_shared_scheduler_is_one_instance() -> None:
    assert shared_scheduler() is shared_scheduler()
