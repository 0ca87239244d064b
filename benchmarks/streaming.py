"""The client side of a frame-source run: a subscribed ``KrakenClient`` and when each frame became visible.

:class:`AppliedTimes` is a :class:`~kraken_nb.core.taps.Tap`: the session
calls it right after it handled a frame, on the network thread and under the
client's lock, so at that moment the frame's rows are in the buffers behind
``client.trades()``/``ticker()`` and its book version is bumped; any reader
sees them as soon as the lock is released a few instructions later. It
records ``time.monotonic_ns()`` and the frame length of each channel data
frame (book, trade, ticker, ohlc; not instrument) once ``start()`` was called.
The cost, one ``startswith`` and two list appends per frame, is part of what
is measured (well under 1 µs of the 50–100 µs a frame takes end to end).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.child import Child
from benchmarks.programs import Program
from kraken_nb import KrakenClient
from kraken_nb.core.taps import Tap

__all__ = ["AppliedTimes", "Play", "frame_source", "play", "subscribe_program", "subscribed_client"]

_DATA_PREFIXES = ('{"channel":"book"', '{"channel":"trade"', '{"channel":"ticker"', '{"channel":"ohlc"')


class AppliedTimes(Tap):
    """When each data frame became visible to readers of the client (after ``start()``)."""

    def __init__(self) -> None:
        self.recording = False
        self.times: list[int] = []
        self.lengths: list[int] = []

    def start(self) -> None:
        """Forget what was recorded and record from now on."""
        self.times, self.lengths = [], []
        self.recording = True

    def frame(self, text: str | bytes, message: Any, received_ns: int, events: list[Any]) -> None:
        if self.recording and isinstance(text, str) and text.startswith(_DATA_PREFIXES):
            self.times.append(time.monotonic_ns())
            self.lengths.append(len(text))


class Play:
    """One play's send times (source) and applied times (client), aligned by frame index."""

    def __init__(self, sent: np.ndarray, sent_lengths: np.ndarray, applied: AppliedTimes) -> None:
        self.sent = sent
        self.applied = np.asarray(applied.times, dtype=np.int64)
        count = min(len(self.sent), len(self.applied))
        lengths = np.asarray(applied.lengths, dtype=np.int64)
        self.aligned = bool(np.array_equal(sent_lengths[:count], lengths[:count]))
        """Whether the n-th applied frame has the length of the n-th sent one (same order)."""
        self.lost = len(self.sent) - len(self.applied)
        """Frames sent but not applied (negative: more applied than sent, a misalignment)."""

    @property
    def latencies_ms(self) -> np.ndarray:
        """Send → visible, per frame, in milliseconds."""
        count = min(len(self.sent), len(self.applied))
        return (self.applied[:count] - self.sent[:count]) / 1e6

    def backlog(self, step_s: float) -> list[tuple[float, int]]:
        """``(seconds since the first send, frames sent − frames applied)`` every ``step_s``."""
        if not len(self.sent):
            return []
        start = int(self.sent[0])
        end = int(max(self.sent[-1], self.applied[-1] if len(self.applied) else 0))
        grid = np.arange(start, end + int(step_s * 1e9), int(step_s * 1e9))
        sent = np.searchsorted(self.sent, grid, side="right")
        done = np.searchsorted(self.applied, grid, side="right")
        return [(float((t - start) / 1e9), int(s - d)) for t, s, d in zip(grid, sent, done, strict=True)]

    def processed_rate(self, skip: float = 0.1) -> float:
        """Frames applied per second, leaving out the first ``skip`` share (warm-up)."""
        applied = self.applied
        if len(applied) < 10:
            return 0.0
        first = int(len(applied) * skip)
        return (len(applied) - 1 - first) / max((applied[-1] - applied[first]) / 1e9, 1e-9)

    def sent_rate(self) -> float:
        """Frames the source handed to the socket per second."""
        if len(self.sent) < 2:
            return 0.0
        return (len(self.sent) - 1) / max((self.sent[-1] - self.sent[0]) / 1e9, 1e-9)


@contextlib.contextmanager
def frame_source() -> Iterator[Child]:
    """The frame source in its own process (closed on exit)."""
    source = Child("benchmarks.frame_source")
    try:
        yield source
    finally:
        source.close()


def subscribe_program(client: KrakenClient, program: Program) -> None:
    """Subscribe the program's channels for its pairs; wait until every book is valid."""
    symbols = list(program.symbols)
    for channel, params in program.channels.items():
        client.subscribe(channel, symbols, **params)
    if "book" in program.channels:
        client.wait_until(
            lambda c: all((book := c.book(s)) is not None and book.valid for s in symbols), timeout=30
        )


def subscribed_client(source: Child, program: Program, path: Path) -> tuple[KrakenClient, AppliedTimes]:
    """Load ``program`` into the source, connect a client, subscribe it, wait for every book."""
    loaded = source.ask(f"load {path}")
    if "error" in loaded:
        raise RuntimeError(f"frame source: {loaded['error']}")
    client = KrakenClient(source.hello["url"], timeout=30.0)
    try:
        client.wait_connected()
        applied = AppliedTimes()
        client.add_tap(applied)
        subscribe_program(client, program)
    except BaseException:
        client.close()
        raise
    return client, applied


def play(source: Child, applied: AppliedTimes, rate: float, seconds: float, drain_s: float = 60.0) -> Play:
    """Play at ``rate`` (0: as fast as the socket takes) for ``seconds``; wait until the client drained."""
    applied.start()
    answer = source.ask(f"play {rate:g} {seconds:g}")
    if "error" in answer:
        raise RuntimeError(f"frame source: {answer['error']}")
    stats = source.ask("wait")
    deadline = time.monotonic() + drain_s
    while len(applied.times) < stats["sent"] and time.monotonic() < deadline:
        time.sleep(0.05)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "times.npz"
        source.ask(f"times {path}")
        with np.load(path) as data:
            sent, lengths = data["times"].copy(), data["lengths"].copy()
    applied.recording = False
    return Play(sent, lengths, applied)
