"""Programs for the frame source: what one client subscribes to, and the frames it is then sent.

A :class:`Program` is generated like the corpora (:mod:`benchmarks.corpus`):
a seeded :class:`~kraken_nb.simulator.MarketModel` of the chosen pairs is
stepped 50 ms of market time at a time, and the simulator's own feeds turn
each step into the frames a subscriber of the program's channels would get.
So several pairs mean several independent markets (each with its own book,
precisions and trade ids), interleaved as they would arrive, not one
market relabelled; every book frame carries the CRC32 checksum of its pair.

Besides the update frames a program keeps what the source needs to answer
subscriptions: the instrument snapshot (precisions) and one book snapshot per
pair. Programs are cached like the corpora, keyed by name, size, seed and the
simulator sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.corpus import STEP_S, Recorder, cached, read_frames, source_hash, write_frames
from benchmarks.settings import Settings
from kraken_nb.simulator import DEFAULT_PAIRS
from kraken_nb.simulator.connection import Subscription
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.feeds import Feeds
from kraken_nb.simulator.market import MarketModel

__all__ = ["SOURCE_OPTIONS", "Program", "build_program", "load_program", "program_path", "read_program"]

SOURCE_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "book": {"snapshot": True},
    "trade": {"snapshot": False},
    "ticker": {"event_trigger": "trades", "snapshot": False},
    "ohlc": {"interval": 1, "snapshot": False},
}
"""The simulator-side options of each channel's subscription while generating (plus ``depth``)."""


@dataclass(frozen=True, slots=True)
class Program:
    """Subscriptions of one client (``channels``: channel → client subscribe params) and its frames."""

    name: str
    symbols: tuple[str, ...]
    channels: Mapping[str, Mapping[str, Any]]
    instrument: str
    """The instrument channel's snapshot frame (every pair's precisions)."""
    snapshots: Mapping[str, str]
    """The book snapshot frame of each symbol (when the program has a book)."""
    frames: tuple[str, ...]
    """Update frames, in the order a subscriber receives them."""

    @property
    def nbytes(self) -> int:
        """Total length of the update frames."""
        return sum(len(frame) for frame in self.frames)

    def header(self) -> dict[str, Any]:
        """Everything but the frames, as JSON-ready data."""
        return {
            "name": self.name,
            "symbols": list(self.symbols),
            "channels": {channel: dict(params) for channel, params in self.channels.items()},
            "instrument": self.instrument,
            "snapshots": dict(self.snapshots),
        }


def build_program(
    name: str,
    symbols: Sequence[str],
    channels: Mapping[str, Mapping[str, Any]],
    frames: int,
    seed: int,
) -> Program:
    """Step a market of ``symbols`` until ``frames`` update frames of ``channels`` were sent."""
    market = MarketModel(seed, list(symbols))
    feeds = Feeds(market, Faults())
    recorder = Recorder()
    snapshots: dict[str, str] = {}
    for channel, params in channels.items():
        for symbol in symbols:
            options = {**SOURCE_OPTIONS[channel], **params}
            subscription = Subscription(channel, symbol, options)
            recorder.subscriptions[(channel, symbol, int(options.get("interval", 0)))] = subscription
            if channel == "book":
                snapshot = feeds.snapshot(subscription)
                assert snapshot is not None
                snapshots[symbol] = snapshot
    while len(recorder.frames) < frames:
        feeds.publish(market.step(STEP_S), [recorder])
    instrument = dumps({"channel": "instrument", "type": "snapshot", "data": market.instrument()})
    return Program(
        name=name,
        symbols=tuple(symbols),
        channels={channel: dict(params) for channel, params in channels.items()},
        instrument=instrument,
        snapshots=snapshots,
        frames=tuple(recorder.frames[:frames]),
    )


def _save(path: Path, program: Program) -> None:
    write_frames(path, program.header(), program.frames)


def read_program(path: Path) -> Program:
    """The program saved in ``path``."""
    header, frames = read_frames(path)
    return Program(
        name=header["name"],
        symbols=tuple(header["symbols"]),
        channels=header["channels"],
        instrument=header["instrument"],
        snapshots=header["snapshots"],
        frames=frames,
    )


def program_path(settings: Settings, name: str, frames: int) -> Path:
    """Where the program ``name`` of ``frames`` frames is cached for this run's seed and simulator."""
    return settings.corpus_dir / f"program-{name}-n{frames}-seed{settings.seed}-{source_hash()}.jsonl.gz"


def load_program(
    settings: Settings,
    name: str,
    channels: Mapping[str, Mapping[str, Any]],
    frames: int,
    pairs: int = 1,
) -> tuple[Program, Path]:
    """The program (generated or read from the cache) and the file the source can load it from.

    ``pairs`` takes that many of the simulator's default pairs, BTC/USD first.
    """
    symbols = tuple(DEFAULT_PAIRS[:pairs])
    path = program_path(settings, name, frames)
    program = cached(
        path, lambda: build_program(name, symbols, channels, frames, settings.seed), _save, read_program
    )
    return program, path
