"""Interleaved timing of contenders on the same input, and small statistics helpers."""

from __future__ import annotations

import cProfile
import gc
import io
import math
import pstats
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["interleaved", "percentile", "profile_top"]


def interleaved(contenders: Mapping[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Run every contender once per round, in turn, and keep each one's best time.

    Each callable does its own untimed setup and returns the seconds of its
    timed part. Interleaving spreads the machine's noise over all contenders
    alike; the minimum is the run least disturbed by other processes.
    """
    best = dict.fromkeys(contenders, math.inf)
    for _ in range(max(rounds, 1)):
        for name, run in contenders.items():
            gc.collect()
            best[name] = min(best[name], run())
    return best


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0..1) of ``values`` by linear interpolation; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def profile_top(run: Callable[[], object], limit: int = 15) -> str:
    """A cProfile of ``run()``: the ``limit`` functions with the most own time, as text."""
    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(limit)
    text = out.getvalue()
    start = text.find("   ncalls")
    text = text[start:] if start >= 0 else text
    for prefix in sorted({*sys.path, str(Path.cwd())}, key=len, reverse=True):
        if prefix and len(prefix) > 1:
            text = text.replace(prefix.rstrip("/") + "/", "")
    return text.rstrip()
