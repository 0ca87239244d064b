"""The client's own ceiling: the real ``KrakenClient`` fed by a source faster than it.

The source (:mod:`benchmarks.frame_source`) runs in its own process and sends
pre-encoded programs (:mod:`benchmarks.programs`: book depth 10, 100 and
1000, trades and tickers, on 1 and on 8 pairs) over a real loopback
WebSocket. For each case:

* **ceiling** — the source sends as fast as the socket takes frames for
  ``ceiling_s`` seconds; the figure is frames applied per second by the
  client (after the first 10 %), while the source is ahead of it. Side by
  side, ``Session.feed`` alone on the same frames in the same run (no socket,
  no thread, no lock) tells what the transport adds.
* **backlog** — frames sent minus frames applied, over time, from the two
  timestamp series; bounded means TCP flow control holds the source back
  (websockets stops reading once its receive queue holds ``max_queue``
  frames, then the kernel buffers fill and the source's ``send`` waits).
* **latency** — a paced run at ``PACED_RATE`` frames/s: for frame *i*, the
  source's ``time.monotonic_ns()`` just before ``send`` to the client-side
  moment the frame's rows / book version became visible to readers
  (:class:`benchmarks.streaming.AppliedTimes`); one monotonic clock for both
  processes. Frames are matched by index (one TCP connection keeps the
  order; the lengths of both series are compared to prove it).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.programs import Program, load_program
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from benchmarks.streaming import frame_source, play, subscribed_client
from benchmarks.timing import percentile
from kraken_nb.core.params import Subscription
from kraken_nb.core.session import Session

__all__ = ["CASES", "NAME", "PACED_RATE", "Case", "run"]

logger = logging.getLogger(__name__)

NAME = "ceiling"
PACED_RATE = 5_000.0
"""Frames per second of the paced latency run."""
_TARGET_RATE = 30_000.0
_TARGET_P99_MS = 50.0
_BACKLOG_STEP_S = 0.25

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "book10": ("book depth 10", {"book": {"depth": 10}}),
    "book100": ("book depth 100", {"book": {"depth": 100}}),
    "book1000": ("book depth 1000", {"book": {"depth": 1000}}),
    "trade": ("trades", {"trade": {}}),
    "ticker": ("tickers", {"ticker": {}}),
}
"""Case name → (what it is, the client's subscriptions)."""


@dataclass(slots=True)
class Case:
    """What one case gave."""

    key: str
    what: str
    pairs: int
    bytes_per_frame: float
    rate: float
    sent_rate: float
    feed_rate: float
    backlog_max: int
    backlog_end_of_send: int
    backlog_series: list[tuple[float, int]] = field(default_factory=list)
    lost: int = 0
    aligned: bool = True
    full_speed_p50_ms: float = math.nan
    full_speed_p99_ms: float = math.nan
    paced_rate: float = 0.0
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    paced_lost: int = 0
    behind_full: bool = False
    """Whether the client said it was behind (a ``behind`` episode) during the full-speed play."""
    behind_paced: bool = False
    """Whether it said so during the paced play."""
    counters: dict[str, Any] = field(default_factory=dict)


def _feed_rate(program: Program, rounds: int) -> float:
    """Frames per second of ``Session.feed`` alone on the program's frames (best of ``rounds``)."""
    best = math.inf
    for _ in range(max(rounds, 1)):
        session = Session()
        for channel, params in program.channels.items():
            session.subscribe(Subscription(channel, program.symbols, params))
        session.connection_made(0)
        session.feed(program.instrument, 0)
        for snapshot in program.snapshots.values():
            session.feed(snapshot, 0)
        feed = session.feed
        received = 1_000_000
        started = time.perf_counter()
        for frame in program.frames:
            feed(frame, received)
            received += 1_000_000
        best = min(best, time.perf_counter() - started)
        if session.counters["checksum_mismatches"] or session.counters["malformed"]:
            raise RuntimeError(f"{program.name}: Session.feed disagreed: {dict(session.counters)}")
    return len(program.frames) / best


def _measure(source: Any, key: str, pairs: int, settings: Settings) -> Case:
    what, channels = CASES[key]
    depth = channels.get("book", {}).get("depth")
    frames = settings.program_frames(next(iter(channels)), depth)
    program, path = load_program(settings, f"{key}x{pairs}", channels, frames, pairs=pairs)
    client, applied = subscribed_client(source, program, path)
    try:
        full = play(source, applied, 0, settings.ceiling_s)
        episodes = client.stats()["behind_episodes"]
        paced = play(source, applied, PACED_RATE, settings.paced_s)
        stats = client.stats()
    finally:
        client.close()
    series = full.backlog(_BACKLOG_STEP_S)
    last_send_s = (full.sent[-1] - full.sent[0]) / 1e9 if len(full.sent) else 0.0
    at_end = [backlog for t, backlog in series if t <= last_send_s]
    full_latency = full.latencies_ms.tolist()
    paced_latency = paced.latencies_ms.tolist()
    return Case(
        key=f"{key}x{pairs}",
        what=what,
        pairs=pairs,
        bytes_per_frame=program.nbytes / len(program.frames),
        rate=full.processed_rate(),
        sent_rate=full.sent_rate(),
        feed_rate=_feed_rate(program, min(settings.rounds, 3)),
        backlog_max=max((b for _, b in series), default=0),
        backlog_end_of_send=at_end[-1] if at_end else 0,
        backlog_series=series,
        lost=full.lost,
        aligned=full.aligned and paced.aligned,
        full_speed_p50_ms=percentile(full_latency, 0.5),
        full_speed_p99_ms=percentile(full_latency, 0.99),
        paced_rate=paced.sent_rate(),
        p50_ms=percentile(paced_latency, 0.5),
        p99_ms=percentile(paced_latency, 0.99),
        paced_lost=paced.lost,
        behind_full=episodes > 0,
        behind_paced=stats["behind_episodes"] > episodes,
        counters={
            k: stats[k]
            for k in (
                "messages",
                "checksum_mismatches",
                "resyncs",
                "malformed",
                "duplicate_trades",
                "trade_gaps",
                "reconnects",
            )
        },
    )


def _status(ok: bool) -> str:
    return "met" if ok else "missed"


def _rows(cases: list[Case]) -> list[Row]:
    rows: list[Row] = []
    for case in cases:
        pairs = f"{case.pairs} pair{'s' if case.pairs > 1 else ''}"
        is_book10 = case.key.startswith("book10x")
        rows.append(
            Row(
                f"{NAME}.{case.key}.rate",
                NAME,
                f"{case.what}, {pairs} · client ceiling, source process sending as fast as the socket takes",
                case.rate,
                "msgs/s",
                ratio=case.rate / case.feed_rate if case.feed_rate else None,
                compare="{ratio}× the rate of Session.feed alone on the same frames",
                target=f"≥ {_TARGET_RATE:,.0f} msgs/s" if is_book10 else "",
                status=_status(case.rate >= _TARGET_RATE) if is_book10 else "info",
                note=(
                    f"{case.rate * case.bytes_per_frame / 1e6:.1f} MB/s; "
                    f"max backlog {case.backlog_max:,} frames"
                    + (
                        ""
                        if case.lost == 0 and case.aligned
                        else f"; LOST {case.lost}, aligned {case.aligned}"
                    )
                ),
            )
        )
        rows.append(
            Row(
                f"{NAME}.{case.key}.p99",
                NAME,
                f"{case.what}, {pairs} · frame sent → visible in the client, p99 at {PACED_RATE:,.0f} msgs/s",
                case.p99_ms,
                "ms",
                target=f"< {_TARGET_P99_MS:g} ms",
                status=_status(case.p99_ms < _TARGET_P99_MS),
                note=f"p50 {case.p50_ms:.2f} ms; paced at {case.paced_rate:,.0f} msgs/s",
            )
        )
    overload = max(cases, key=lambda case: case.backlog_max)
    bounded = all(case.lost == 0 for case in cases) and all(_plateaued(case.backlog_series) for case in cases)
    said = sum(case.behind_full for case in cases)
    paced_said = [case.key for case in cases if case.behind_paced]
    rows.append(
        Row(
            f"{NAME}.backlog",
            NAME,
            f"largest backlog with the source ahead (sent − applied; {overload.key})",
            float(overload.backlog_max),
            "frames",
            ratio=overload.backlog_max / overload.rate if overload.rate else None,
            compare="{ratio} s of the client's work queued",
            target="bounded, nothing lost",
            status=_status(bounded and said == len(cases)),
            note=(
                f"TCP flow control; stats()['behind'] went true in {said} of {len(cases)} full-speed plays"
                + (f", and in the paced plays of {', '.join(paced_said)}" if paced_said else "")
            ),
        )
    )
    return rows


def _plateaued(series: list[tuple[float, int]]) -> bool:
    """Whether the backlog stopped growing: the last third's peak is under 1.25× the middle third's."""
    values = [backlog for _, backlog in series]
    if len(values) < 6:
        return True
    third = len(values) // 3
    middle, last = max(values[third : 2 * third]), max(values[2 * third :])
    return last <= 1.25 * max(middle, 1)


def _details(cases: list[Case]) -> list[str]:
    lines = [
        "| case | B/frame | client msgs/s | source sent msgs/s | Session.feed alone msgs/s | max backlog "
        "| full-speed p50 / p99 ms | paced msgs/s | paced p50 / p99 ms | lost | behind (full / paced) "
        "| client counters |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for c in cases:
        counters = ", ".join(f"{k} {v}" for k, v in c.counters.items() if v and k != "messages")
        lines.append(
            f"| {c.key} | {c.bytes_per_frame:.0f} | {c.rate:,.0f} | {c.sent_rate:,.0f} | {c.feed_rate:,.0f} "
            f"| {c.backlog_max:,} | {c.full_speed_p50_ms:.0f} / {c.full_speed_p99_ms:.0f} "
            f"| {c.paced_rate:,.0f} | {c.p50_ms:.2f} / {c.p99_ms:.2f} | {c.lost + c.paced_lost} "
            f"| {'yes' if c.behind_full else 'no'} / {'yes' if c.behind_paced else 'no'} "
            f"| {counters or 'all zero'} |"
        )
    worst = max(cases, key=lambda case: case.backlog_max)
    lines += [
        "",
        f"Backlog over time at full speed, {worst.key} "
        "(seconds since the first send: frames sent − applied):",
        "",
        " · ".join(f"{t:.2f} s: {b:,}" for t, b in worst.backlog_series),
    ]
    return lines


def run(settings: Settings) -> Report:
    """Every case at full speed and paced, against ``Session.feed`` alone on the same frames."""
    report = Report(NAME)
    cases: list[Case] = []
    with frame_source() as source:
        for pairs in (1, 8):
            for key in CASES:
                cases.append(_measure(source, key, pairs, settings))
    report.rows = _rows(cases)
    report.details = [
        "Full speed: the source sends as fast as the socket takes for "
        f"{settings.ceiling_s:g} s; the client's rate is taken while the source is ahead. "
        f"Paced: {PACED_RATE:,.0f} msgs/s for {settings.paced_s:g} s. Latency = source "
        "monotonic clock before send → the session has applied the frame (same clock).",
        "",
        *_details(cases),
    ]
    report.data = {"cases": [asdict(case) for case in cases]}
    return report
