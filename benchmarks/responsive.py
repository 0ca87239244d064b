"""A notebook stays responsive while streaming: a fixed workload in the caller's thread, side by side.

The workload is what a notebook cell does: a pandas groupby/cumsum and
groupby/mean over a fixed 200,000-row frame, then a pure-Python loop. It is
timed in the benchmark's main thread (the "kernel" thread) under each
condition, conditions interleaved round by round:

* no client at all;
* a ``KrakenClient`` streaming the mixed program (book depth 10, trades,
  tickers and 1-minute candles of 8 pairs) from the frame source in another
  process, paced at 1,000 and 5,000 msgs/s;
* the same with a ``Dashboard`` (ticker board of the 8 pairs, candles, tape,
  depth heatmap) ticking on its scheduler thread at its default rates, with
  no browser attached (its messages go to a comm with no front end, so this
  counts the Python side only).

The figure is the median time of the workload under a condition divided by
its median with no client. The client's threads take the GIL to decode and
apply each frame, so the slowdown is about the share of a core the client
uses at that rate.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.child import Child
from benchmarks.offload import OffloadedClient
from benchmarks.programs import Program, load_program
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from benchmarks.streaming import frame_source, subscribed_client
from kraken_nb.simulator import DEFAULT_PAIRS

__all__ = ["CHANNELS", "CONDITIONS", "NAME", "run", "workload"]

NAME = "responsive"
CHANNELS: dict[str, dict[str, Any]] = {
    "book": {"depth": 10},
    "trade": {},
    "ticker": {},
    "ohlc": {"interval": 1},
}
"""The mixed program the client streams."""
CONDITIONS: dict[str, tuple[float, str]] = {
    "idle": (0.0, ""),
    "1k": (1_000.0, ""),
    "1k+widgets": (1_000.0, "widgets"),
    "1k+offloaded": (1_000.0, "offloaded"),
    "5k": (5_000.0, ""),
    "5k+widgets": (5_000.0, "widgets"),
    "5k+offloaded": (5_000.0, "offloaded"),
}
"""Condition → (msgs/s streamed, 0 for no client; "", "widgets" (a Dashboard) or "offloaded")."""
_WHAT = {
    "": "",
    "widgets": " with a Dashboard ticking",
    "offloaded": " by the client in a subprocess (prototype), rows pulled at 4 Hz",
}
_TARGET_1K = 1.10
_REPEATS = 7
_SETTLE_S = 0.5
_ROWS = 200_000


def workload(scale: float = 1.0) -> Callable[[], float]:
    """A fixed notebook-like workload; the returned callable runs it once and returns its seconds."""
    rng = np.random.default_rng(7)
    rows = int(_ROWS * scale)
    frame = pd.DataFrame(
        {
            "g": rng.integers(0, 64, rows),
            "x": rng.standard_normal(rows),
            "y": rng.random(rows),
        }
    )
    loop = int(400_000 * scale)

    def run() -> float:
        started = time.perf_counter()
        frame.groupby("g")["x"].cumsum()
        frame.groupby("g")[["x", "y"]].mean()
        total = 0
        for i in range(loop):
            total += i * i % 7
        return time.perf_counter() - started

    return run


def _times(work: Callable[[], float], repeats: int) -> list[float]:
    return [work() for _ in range(repeats)]


def _start(source: Child, rate: float) -> None:
    answer = source.ask(f"play {rate:g} 600")
    if "error" in answer:
        raise RuntimeError(f"frame source: {answer['error']}")
    time.sleep(_SETTLE_S)


def _offloaded(
    source: Child,
    work: Callable[[], float],
    repeats: int,
    rate: float,
    path: Path,
    program: Program,
    kept_up: list[float],
) -> list[float]:
    """The workload while the prototype's child process runs the client."""
    source.ask(f"load {path}")
    offloaded = OffloadedClient(source.hello["url"], path)
    try:
        _start(source, rate)
        times = _times(work, repeats)
        stats = source.ask("stop")
        time.sleep(0.3)
        offloaded.pull()
        data_frames = offloaded.messages - _setup_frames(program)
        kept_up.append(data_frames / max(stats["sent"], 1))
    finally:
        offloaded.close()
    return times


def _setup_frames(program: Program) -> int:
    """Frames a client receives before a play: status, acks (one per symbol), instrument, snapshots."""
    acks = len(program.channels) * len(program.symbols) + 1
    return 1 + acks + 1 + len(program.snapshots)


def run(settings: Settings) -> Report:
    """Time the workload under every condition, interleaved; report each against no client."""
    report = Report(NAME)
    work = workload(settings.workload_scale)
    work()  # warm up pandas
    frames = settings.program_frames("mixed")
    program, path = load_program(settings, "mixedx8", CHANNELS, frames, pairs=len(DEFAULT_PAIRS))
    samples: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    kept_up: dict[str, list[float]] = {name: [] for name in CONDITIONS if CONDITIONS[name][0]}
    repeats = 3 if settings.quick else _REPEATS
    with frame_source() as source:
        for _ in range(settings.responsive_rounds):
            for name, (rate, mode) in CONDITIONS.items():
                if not rate:
                    samples[name] += _times(work, repeats)
                    continue
                if mode == "offloaded":
                    samples[name] += _offloaded(source, work, repeats, rate, path, program, kept_up[name])
                    continue
                client, applied = subscribed_client(source, program, path)
                dashboard = None
                try:
                    if mode == "widgets":
                        from kraken_nb.widgets import Dashboard

                        dashboard = Dashboard(client, program.symbols[0], symbols=program.symbols)
                    applied.start()
                    _start(source, rate)
                    samples[name] += _times(work, repeats)
                    stats = source.ask("stop")
                    time.sleep(0.2)
                    kept_up[name].append(len(applied.times) / max(stats["sent"], 1))
                finally:
                    if dashboard is not None:
                        dashboard.close()
                    client.close()
    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["idle"]
    report.rows.append(
        Row(
            f"{NAME}.idle",
            NAME,
            "notebook workload (pandas groupby + Python loop), no client",
            base * 1e3,
            "ms",
        )
    )
    for name, (rate, mode) in CONDITIONS.items():
        if not rate:
            continue
        ratio = medians[name] / base
        is_goal = name == "1k"
        report.rows.append(
            Row(
                f"{NAME}.{name.replace('+', '_')}",
                NAME,
                f"the same while streaming {rate:,.0f} msgs/s (8 pairs, 4 channels)" + _WHAT[mode],
                medians[name] * 1e3,
                "ms",
                ratio=ratio,
                compare="{ratio}× the time with no client",
                target="≤ 1.10×" if is_goal else "",
                status=("met" if ratio <= _TARGET_1K else "missed") if is_goal else "info",
                note=f"client applied {min(kept_up[name]):.0%} of the frames sent",
            )
        )
    report.details = [
        f"Median of {len(samples['idle'])} runs per condition ({settings.responsive_rounds} interleaved "
        f"rounds × {repeats}); workload scale {settings.workload_scale:g}.",
        "",
        "| condition | median ms | min ms | max ms | × no client |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {name} | {medians[name] * 1e3:.1f} | {min(values) * 1e3:.1f} | {max(values) * 1e3:.1f} "
            f"| {medians[name] / base:.2f} |"
            for name, values in samples.items()
        ),
    ]
    report.data = {"samples_s": samples, "kept_up": kept_up}
    return report
