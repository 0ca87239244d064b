"""Core throughput: ``Session.feed`` frames per second against the parse floor and other clients.

For each corpus every contender runs once per round, interleaved, and keeps
its best round. ``Session.feed`` does everything the client does per frame:
exact parse, typed message, book apply + truncate + CRC32 verification, and
the buffer appends (top of book, depth samples, trades, tickers, candles).
Its receive times advance 1 ms per frame, so a depth sample (50 levels a
side) is taken every 1000 frames, as at 1000 frames/s live.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from benchmarks import peers
from benchmarks.corpus import BOOK_SYMBOL, Corpus, load_corpora
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from benchmarks.timing import interleaved, profile_top
from kraken_nb.core.book import OrderBook
from kraken_nb.core.messages import decode, parse
from kraken_nb.core.params import Subscription
from kraken_nb.core.session import Session
from kraken_nb.core.wire import loads, loads_exact

__all__ = ["NAME", "FeedFailed", "breakdown", "feed_all", "run"]

logger = logging.getLogger(__name__)

NAME = "core"
_FEED = "Session.feed"
_FRAME_NS = 1_000_000
_TARGET_PARSE = 4.0
_TARGET_SDK = {10: 3.0, 1000: 10.0}


class FeedFailed(RuntimeError):
    """The session disagreed with the corpus (a checksum mismatch or a malformed frame)."""


def _session_for(corpus: Corpus) -> Session:
    """A session ready for the corpus' measured frames (subscribed, instrument and snapshot fed)."""
    session = Session()
    if corpus.channel == "book":
        session.subscribe(Subscription("book", (BOOK_SYMBOL,), {"depth": corpus.depth}))
        session.connection_made(0)
        assert corpus.instrument is not None and corpus.snapshot is not None
        session.feed(corpus.instrument, 0)
        session.feed(corpus.snapshot, 0)
    return session


def _check(session: Session, corpus: Corpus) -> None:
    counters = session.counters
    bad = counters["checksum_mismatches"] + counters["malformed"]
    if bad:
        raise FeedFailed(f"{corpus.name}: Session.feed reported {dict(counters)}")
    if corpus.channel == "book" and not session.books[BOOK_SYMBOL].valid:
        raise FeedFailed(f"{corpus.name}: the book is not valid after the corpus")


def feed_all(corpus: Corpus) -> float:
    """Seconds ``Session.feed`` takes for the corpus' frames (setup untimed); checks the outcome."""
    session = _session_for(corpus)
    feed = session.feed
    frames = corpus.frames
    started = time.perf_counter()
    received = _FRAME_NS
    for frame in frames:
        feed(frame, received)
        received += _FRAME_NS
    seconds = time.perf_counter() - started
    _check(session, corpus)
    return seconds


def _loop(parse: Callable[[str], object], frames: tuple[str, ...]) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for frame in frames:
            parse(frame)
        return time.perf_counter() - started

    return run


def _contenders(corpus: Corpus) -> tuple[dict[str, Callable[[], float]], dict[str, int], list[str]]:
    """Timed callables by name, a place for peers' mismatch counts, and the peers not installed."""
    runs: dict[str, Callable[[], float]] = {_FEED: lambda: feed_all(corpus)}
    mismatches: dict[str, int] = {}
    missing: list[str] = []
    if peers.available("orjson"):
        import orjson

        runs["orjson.loads"] = _loop(orjson.loads, corpus.frames)
    else:
        missing.append("orjson.loads")
    runs["loads"] = _loop(decode, corpus.frames)
    runs["loads_exact"] = _loop(loads_exact, corpus.frames)
    if corpus.channel != "book":
        return runs, mismatches, missing

    def peer(name: str, runner: Callable[[Corpus], tuple[float, int]]) -> Callable[[], float]:
        def run() -> float:
            seconds, bad = runner(corpus)
            mismatches[name] = bad
            return seconds

        return run

    if peers.available("python-kraken-sdk"):
        runs["python-kraken-sdk"] = peer("python-kraken-sdk", peers.sdk_book)
    else:
        missing.append("python-kraken-sdk")
    if peers.available("order-book") and peers.available("orjson"):
        runs["order-book apply-only"] = peer("order-book apply-only", peers.order_book_apply_only)
        runs["order-book verified"] = peer("order-book verified", peers.order_book_verified)
    else:
        missing += ["order-book apply-only", "order-book verified"]
    return runs, mismatches, missing


_KEYS = {
    "orjson.loads": "orjson",
    "loads": "loads",
    "loads_exact": "loads_exact",
    "python-kraken-sdk": "sdk",
    "order-book apply-only": "order_book_apply",
    "order-book verified": "order_book_verified",
}
_LABELS = {
    "orjson.loads": "orjson.loads (bare parse, floats)",
    "loads": "messages.decode (the core's parse: orjson floats, Decimal only on InexactNumber)",
    "loads_exact": "loads_exact (exact-decimal parse, the core's fallback for long values)",
    "python-kraken-sdk": "python-kraken-sdk SpotOrderBookClient (json.loads + on_message)",
    "order-book apply-only": "order-book C ext, apply-only (orjson floats, no checksum)",
    "order-book verified": "order-book C ext + KRAKEN checksum (Decimal quantize adapter)",
}


def _rows(
    corpus: Corpus, best: dict[str, float], mismatches: dict[str, int], missing: list[str]
) -> list[Row]:
    count = len(corpus.frames)
    feed = best[_FEED]
    title = f"book depth {corpus.depth}" if corpus.channel == "book" else f"{corpus.name} frames"
    prefix = f"{NAME}.{corpus.name}"
    rows = [
        Row(
            f"{prefix}.feed",
            NAME,
            f"{title} · {_FEED} (parse + apply + checksum + buffers)",
            count / feed,
            "frames/s",
            note=f"{count} frames, {corpus.nbytes / count:.0f} B avg",
        )
    ]
    for name in ("orjson.loads", "loads", "loads_exact"):
        if name in missing:
            rows.append(
                Row(
                    f"{prefix}.{_KEYS[name]}",
                    NAME,
                    f"{title} · {_LABELS[name]}",
                    0.0,
                    "frames/s",
                    status="unavailable",
                    note="not installed",
                )
            )
            continue
        ratio = feed / best[name]
        target, status = "", "info"
        if name in ("orjson.loads", "loads_exact") and corpus.channel == "book" and corpus.depth == 10:
            target = f"≤ {_TARGET_PARSE:g}×"
            status = "met" if ratio <= _TARGET_PARSE else "missed"
        rows.append(
            Row(
                f"{prefix}.{_KEYS[name]}",
                NAME,
                f"{title} · {_LABELS[name]}",
                count / best[name],
                "frames/s",
                ratio=ratio,
                compare=f"{_FEED} takes {{ratio}}× its time",
                target=target,
                status=status,
            )
        )
    if corpus.channel != "book":
        return rows
    for name in ("python-kraken-sdk", "order-book apply-only", "order-book verified"):
        label = f"{title} · {_LABELS[name]}"
        if name in missing:
            rows.append(
                Row(
                    f"{prefix}.{_KEYS[name]}",
                    NAME,
                    label,
                    0.0,
                    "frames/s",
                    status="unavailable",
                    note="not installed",
                )
            )
            continue
        speedup = best[name] / feed
        target, status = "", "info"
        if name == "python-kraken-sdk":
            goal = _TARGET_SDK[corpus.depth or 10]
            target = f"≥ {goal:g}× faster"
            status = "met" if speedup >= goal else "missed"
        bad = mismatches.get(name, 0)
        note = (
            f"{bad} checksum mismatches" if name != "order-book apply-only" else "cannot verify v2 checksums"
        )
        rows.append(
            Row(
                f"{prefix}.{_KEYS[name]}",
                NAME,
                label,
                count / best[name],
                "frames/s",
                ratio=speedup,
                compare=f"{_FEED} is {{ratio}}× as fast",
                target=target,
                status=status,
                note=note,
            )
        )
    return rows


def _each(function: Callable[[str], object], frames: tuple[str, ...]) -> Callable[[], None]:
    """Call ``function`` on every frame, keeping no result (kept results would time the GC too)."""

    def run() -> None:
        for frame in frames:
            function(frame)

    return run


def _per_frame_us(run: Callable[[], object], frames: int, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / frames * 1e6


def breakdown(corpus: Corpus) -> list[tuple[str, float]]:
    """Microseconds per frame of the pieces of ``Session.feed`` on a book corpus, measured one by one."""
    assert corpus.snapshot is not None and corpus.depth is not None
    assert corpus.price_precision is not None and corpus.qty_precision is not None
    frames, count = corpus.frames, len(corpus.frames)
    entries = [loads(frame)["data"][0] for frame in frames]
    snapshot = loads(corpus.snapshot)["data"][0]
    precisions = (corpus.price_precision, corpus.qty_precision)

    def fresh_book() -> OrderBook:
        book = OrderBook(
            BOOK_SYMBOL, corpus.depth, price_precision=precisions[0], qty_precision=precisions[1]
        )
        book.apply(snapshot, snapshot=True)
        return book

    def apply_all(book: OrderBook) -> None:
        for entry in entries:
            book.apply(entry, snapshot=False)

    book = fresh_book()
    checksum = book.checksum
    pieces = [
        ("loads_exact (exact-decimal parse)", _per_frame_us(_each(loads_exact, frames), count)),
        ("messages.decode (the core's parse)", _per_frame_us(_each(decode, frames), count)),
        ("messages.parse (decode + typed message)", _per_frame_us(_each(parse, frames), count)),
    ]
    books = [fresh_book() for _ in range(2)]
    pieces.append(
        (
            "OrderBook.apply on parsed entries (validate, set, truncate, checksum)",
            _per_frame_us(lambda: apply_all(books.pop()), count),
        )
    )
    pieces.append(
        ("  of which OrderBook.checksum()", _per_frame_us(_each(lambda _: checksum(), frames), count))
    )
    pieces.append(
        (
            f"{_FEED} (all of the above + session bookkeeping + buffer appends)",
            _per_frame_us(lambda: feed_all(corpus), count),
        )
    )
    return pieces


def _profile(corpus: Corpus) -> str:
    return profile_top(lambda: feed_all(corpus), limit=18)


def run(settings: Settings) -> Report:
    """Measure every corpus; profile ``Session.feed`` where a target was missed."""
    report = Report(NAME)
    corpora = load_corpora(settings)
    for name in ("book10", "book1000", "trade", "ticker", "ohlc"):
        corpus = corpora[name]
        contenders, mismatches, missing = _contenders(corpus)
        best = interleaved(contenders, settings.rounds)
        rows = _rows(corpus, best, mismatches, missing)
        report.rows.extend(rows)
        report.data[name] = {
            "frames": len(corpus.frames),
            "bytes": corpus.nbytes,
            "best_seconds": best,
            "peer_checksum_mismatches": mismatches,
        }
        if corpus.channel == "book":
            pieces = breakdown(corpus)
            report.data[name]["breakdown_us_per_frame"] = dict(pieces)
            report.details += [
                f"Where {_FEED}'s time goes on {name} (µs per frame, each piece timed alone):",
                "",
                "| piece | µs/frame |",
                "|---|---:|",
                *(f"| {piece} | {us:.1f} |" for piece, us in pieces),
                "",
            ]
        if any(row.status == "missed" for row in rows):
            report.details += [
                f"`{_FEED}` on {name} missed a target; where its time goes (cProfile, own time):",
                "",
                "```",
                _profile(corpus),
                "```",
                "",
            ]
    return report
