"""Peak resident memory of one call, as the kernel counts it (numpy, Arrow and DuckDB alike).

``tracemalloc`` sees only allocations made through Python's allocator hooks;
DuckDB's and Arrow's buffers never pass through them. The kernel's high-water
mark of the process' resident set (``VmHWM``) sees everything: it is reset to
the current size just before the call (``/proc/self/clear_refs``) and read
after it. Where the reset is not allowed, a thread samples the resident size
every millisecond instead (it can miss a short spike).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

__all__ = ["peak_rss", "rss_bytes"]

T = TypeVar("T")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{_STATUS} has no {field} (peak memory needs Linux)")


def rss_bytes() -> int:
    """The process' resident set size now."""
    return _status("VmRSS")


def _reset_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss(call: Callable[[], T]) -> tuple[T, float, int]:
    """``(result, seconds, peak)``: ``call()``'s result and time, and how far the resident set rose above
    its size before the call at its highest."""
    gc.collect()
    before = rss_bytes()
    if _reset_peak():
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
        return result, seconds, max(0, _status("VmHWM") - before)
    highest = before
    done = threading.Event()

    def sample() -> None:
        nonlocal highest
        while not done.wait(0.001):
            highest = max(highest, rss_bytes())

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
    finally:
        done.set()
        sampler.join()
    return result, seconds, max(0, highest - before, rss_bytes() - before)
