"""Sizes and places of one benchmark run: the full run and the tiny ``--quick`` one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["HERE", "Settings"]

HERE = Path(__file__).resolve().parent
"""The ``benchmarks`` folder."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a benchmark needs to know about the run it is part of."""

    quick: bool = False
    seed: int = 7
    corpus_dir: Path = field(default_factory=lambda: HERE / ".corpus")
    out_dir: Path = field(default_factory=lambda: HERE / "results")

    # -- corpus -----------------------------------------------------------------

    @property
    def book10_updates(self) -> int:
        """Book updates after the snapshot at depth 10."""
        return 300 if self.quick else 20_000

    @property
    def book1000_updates(self) -> int:
        """Book updates after the snapshot at depth 1000."""
        return 60 if self.quick else 2_000

    @property
    def channel_frames(self) -> int:
        """Frames of each of the trade, ticker and ohlc corpora."""
        return 300 if self.quick else 20_000

    @property
    def rounds(self) -> int:
        """Interleaved timing rounds (the best of them counts)."""
        return 1 if self.quick else 5

    # -- DataFrames ----------------------------------------------------------------

    @property
    def trade_rows(self) -> int:
        """Trades appended for the append / to_frame / memory figures."""
        return 20_000 if self.quick else 1_000_000

    @property
    def long_run_rows(self) -> int:
        """Trades appended to the bounded buffer of the long run."""
        return 100_000 if self.quick else 5_000_000

    @property
    def long_run_max_rows(self) -> int:
        """``max_rows`` of the bounded buffer of the long run."""
        return 2_000 if self.quick else 100_000

    # -- end to end ------------------------------------------------------------------

    @property
    def speeds(self) -> tuple[float, ...]:
        """Simulator speeds tried in rising order."""
        return (1.0, 20.0) if self.quick else (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)

    @property
    def window_s(self) -> float:
        """Seconds measured at each speed (after settling)."""
        return 1.0 if self.quick else 4.0

    @property
    def settle_s(self) -> float:
        """Seconds given to each new speed before measuring."""
        return 0.5 if self.quick else 1.0

    # -- widgets -------------------------------------------------------------------------

    @property
    def widget_ticks(self) -> int:
        """Widget ticks (at 10 Hz: a tenth of a second of data each) measured per widget."""
        return 10 if self.quick else 100

    # -- ceiling and responsiveness (the frame source) ----------------------------------------

    def program_frames(self, channel: str, depth: int | None = None) -> int:
        """Update frames of a frame-source program (the source loops it when a play outlasts it)."""
        if self.quick:
            return 400
        return 4_000 if depth == 1000 else 20_000

    @property
    def ceiling_s(self) -> float:
        """Seconds the source sends as fast as the socket takes them, per case."""
        return 0.3 if self.quick else 3.0

    @property
    def paced_s(self) -> float:
        """Seconds of each paced run (latency at a set rate)."""
        return 0.3 if self.quick else 2.0

    @property
    def responsive_rounds(self) -> int:
        """Interleaved rounds of the notebook workload under each streaming condition."""
        return 1 if self.quick else 3

    @property
    def workload_scale(self) -> float:
        """Size of the notebook workload (1.0: about 0.1 s on a quiet core)."""
        return 0.2 if self.quick else 1.0

    # -- serving ---------------------------------------------------------------------------

    @property
    def serve_speed(self) -> float:
        """Simulator speed while the servers are measured."""
        return 10.0 if self.quick else 20.0

    @property
    def serve_window_s(self) -> float:
        """Seconds measured in each round, with and without servers."""
        return 2.0 if self.quick else 8.0

    @property
    def serve_rounds(self) -> int:
        """Rounds of without-then-with servers."""
        return 1 if self.quick else 3

    @property
    def serve_readers(self) -> tuple[int, int, int, int]:
        """Book long-pollers, trade long-pollers, REST pollers and MCP pollers (50 in all)."""
        return (4, 3, 1, 2) if self.quick else (20, 15, 5, 10)
