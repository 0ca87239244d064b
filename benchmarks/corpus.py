"""Deterministic corpora of wire frames, generated from the simulator's market and feeds.

A seeded :class:`~kraken_nb.simulator.MarketModel` is stepped 50 ms of market
time at a time (as the running simulator does at speed 1) and the simulator's
own :class:`~kraken_nb.simulator.feeds.Feeds` turn each step into the frames a
subscriber would receive, so book updates are shaped as Kraken's (one per book
event: one side, one to a few levels) and carry Kraken's CRC32 checksums.
Corpora are cached as gzip'd JSON lines in ``benchmarks/.corpus/``, keyed by
size, seed and a hash of the simulator sources, so a changed simulator
regenerates them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kraken_nb.simulator as simulator_package
from benchmarks.settings import Settings
from kraken_nb.simulator.connection import Subscription
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.feeds import Feeds
from kraken_nb.simulator.market import MarketModel

__all__ = [
    "BOOK_SYMBOL",
    "STEP_S",
    "Corpus",
    "Recorder",
    "book_corpus",
    "cached",
    "channel_corpora",
    "load_corpora",
    "read_frames",
    "source_hash",
    "write_frames",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

BOOK_SYMBOL = "BTC/USD"
"""The pair of the book corpora (price precision 1, qty precision 8)."""
STEP_S = 0.05
"""Market seconds per step, as the simulator steps at speed 1."""
_FORMAT = 1
_CHANNELS = ("trade", "ticker", "ohlc")
_SOURCES = (
    "market.py",
    "pair_market.py",
    "book_feed.py",
    "feeds.py",
    "encoding.py",
    "pairs.py",
    "candles.py",
)


@dataclass(frozen=True, slots=True)
class Corpus:
    """Frames of one kind; book corpora also carry the instrument and snapshot frames to start from."""

    name: str
    channel: str
    frames: tuple[str, ...]
    depth: int | None = None
    instrument: str | None = None
    snapshot: str | None = None
    price_precision: int | None = None
    qty_precision: int | None = None

    @property
    def nbytes(self) -> int:
        """Total length of the measured frames."""
        return sum(len(frame) for frame in self.frames)


class Recorder:
    """Stands in for a simulator connection: keeps its subscriptions and every frame sent to it."""

    def __init__(self) -> None:
        self.subscriptions: dict[tuple[str, str, int], Subscription] = {}
        self.frames: list[str] = []

    def send(self, text: str, *, update: bool = True) -> None:
        self.frames.append(text)


def book_corpus(depth: int, updates: int, seed: int) -> Corpus:
    """A snapshot of ``BOOK_SYMBOL`` at ``depth`` followed by ``updates`` update frames."""
    market = MarketModel(seed, [BOOK_SYMBOL])
    feeds = Feeds(market, Faults())
    recorder = Recorder()
    subscription = Subscription("book", BOOK_SYMBOL, {"depth": depth, "snapshot": True})
    recorder.subscriptions[("book", BOOK_SYMBOL, depth)] = subscription
    snapshot = feeds.snapshot(subscription)
    while len(recorder.frames) < updates:
        feeds.publish(market.step(STEP_S), [recorder])
    spec = market.spec(BOOK_SYMBOL)
    return Corpus(
        name=f"book{depth}",
        channel="book",
        frames=tuple(recorder.frames[:updates]),
        depth=depth,
        instrument=dumps({"channel": "instrument", "type": "snapshot", "data": market.instrument()}),
        snapshot=snapshot,
        price_precision=spec.price_precision,
        qty_precision=spec.qty_precision,
    )


def channel_corpora(frames_each: int, seed: int) -> dict[str, Corpus]:
    """Trade, ticker (trade-triggered) and 1-minute ohlc update frames of every default pair."""
    market = MarketModel(seed)
    feeds = Feeds(market, Faults())
    recorder = Recorder()
    for symbol in market.symbols:
        recorder.subscriptions[("trade", symbol, 0)] = Subscription("trade", symbol, {"snapshot": False})
        recorder.subscriptions[("ticker", symbol, 0)] = Subscription(
            "ticker", symbol, {"event_trigger": "trades", "snapshot": False}
        )
        recorder.subscriptions[("ohlc", symbol, 1)] = Subscription(
            "ohlc", symbol, {"interval": 1, "snapshot": False}
        )
    found: dict[str, list[str]] = {channel: [] for channel in _CHANNELS}
    prefixes = {channel: f'{{"channel":"{channel}"' for channel in _CHANNELS}
    while min(len(frames) for frames in found.values()) < frames_each:
        recorder.frames.clear()
        feeds.publish(market.step(STEP_S), [recorder])
        for frame in recorder.frames:
            for channel, prefix in prefixes.items():
                if frame.startswith(prefix):
                    found[channel].append(frame)
    return {
        channel: Corpus(name=channel, channel=channel, frames=tuple(found[channel][:frames_each]))
        for channel in _CHANNELS
    }


def source_hash() -> str:
    """A short hash of the simulator sources the corpora are generated from."""
    folder = Path(simulator_package.__file__).parent
    digest = hashlib.sha1(str(_FORMAT).encode())
    for name in _SOURCES:
        path = folder / name
        if path.exists():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def write_frames(path: Path, header: dict[str, Any], frames: Iterable[str]) -> None:
    """Write a gzip'd JSON-lines file: the ``header`` object, then one frame per line (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wt", encoding="utf-8", compresslevel=3) as out:
        out.write(json.dumps(header) + "\n")
        for frame in frames:
            out.write(frame + "\n")
    partial.replace(path)


def read_frames(path: Path) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The header and the frames of a file written by :func:`write_frames`."""
    with gzip.open(path, "rt", encoding="utf-8") as source:
        header: dict[str, Any] = json.loads(source.readline())
        frames = tuple(line.rstrip("\n") for line in source)
    return header, frames


def _save(path: Path, corpus: Corpus) -> None:
    header = {
        "name": corpus.name,
        "channel": corpus.channel,
        "depth": corpus.depth,
        "instrument": corpus.instrument,
        "snapshot": corpus.snapshot,
        "price_precision": corpus.price_precision,
        "qty_precision": corpus.qty_precision,
    }
    write_frames(path, header, corpus.frames)


def _load(path: Path) -> Corpus:
    header, frames = read_frames(path)
    return Corpus(frames=frames, **header)


def _prune(path: Path) -> None:
    """Delete cached copies of the same corpus made from other simulator sources."""
    stem = path.name.rsplit("-", 1)[0]
    for stale in path.parent.glob(f"{stem}-*.jsonl.gz"):
        if stale != path:
            stale.unlink(missing_ok=True)


def cached(
    path: Path,
    build: Callable[[], T],
    save: Callable[[Path, T], None],
    load: Callable[[Path], T],
) -> T:
    """``load(path)`` when a readable copy is cached there, else ``build()`` and ``save`` it."""
    _prune(path)
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError, TypeError, EOFError) as exc:
            logger.warning("regenerating unreadable corpus %s (%s)", path.name, exc)
    value = build()
    save(path, value)
    return value


def load_corpora(settings: Settings, names: Iterable[str] | None = None) -> dict[str, Corpus]:
    """The corpora of this run (``book10``, ``book1000``, ``trade``, ``ticker``, ``ohlc``), cached."""
    wanted = set(names) if names is not None else {"book10", "book1000", *_CHANNELS}
    key = f"seed{settings.seed}-{source_hash()}"
    folder = settings.corpus_dir
    corpora: dict[str, Corpus] = {}
    for depth, updates in ((10, settings.book10_updates), (1000, settings.book1000_updates)):
        name = f"book{depth}"
        if name in wanted:
            path = folder / f"{name}-n{updates}-{key}.jsonl.gz"
            corpora[name] = cached(
                path, lambda d=depth, u=updates: book_corpus(d, u, settings.seed), _save, _load
            )
    channels = wanted.intersection(_CHANNELS)
    if channels:
        count = settings.channel_frames
        paths = {channel: folder / f"{channel}-n{count}-{key}.jsonl.gz" for channel in _CHANNELS}
        for path in paths.values():
            _prune(path)
        if all(paths[channel].exists() for channel in channels):
            corpora.update({channel: _load(paths[channel]) for channel in channels})
        else:
            built = channel_corpora(count, settings.seed)
            for channel, corpus in built.items():
                _save(paths[channel], corpus)
            corpora.update({channel: built[channel] for channel in channels})
    return corpora
