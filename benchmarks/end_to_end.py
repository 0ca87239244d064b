"""End to end over loopback: the real client against the simulator in another process, at rising speeds.

The simulator runs in its own process (``benchmarks.sim_process``) so it does
not share the client's GIL, and counts every frame it queues for the client.
It steps its market every 1 ms of wall time instead of 50 ms: it sends at
most one trade, ticker and ohlc frame per pair per step (book frames follow
the book events), so without that the message rate would level off early and
only the frames would grow.
At the top speeds the simulator process itself nears a full core; the
details table shows its CPU share next to each rate.
At each speed the client subscribes to book (depth 10), trade, ticker and
1-minute ohlc for every listed pair, and the benchmark samples, side by side,
the frames the simulator has queued and the frames the client has processed
(``stats()["messages"]``). Their difference is the backlog (server queue,
socket buffers and the client's receive queue). A speed is sustained when the
backlog does not grow over the window and stays under half a second of
traffic.

Latency: the simulator records the wall clock (``time.time_ns``, one clock
for both processes) when it queues each trade frame; a ``client.on("trade")``
callback records when each trade reaches it. The callback runs after the
trade was appended to the buffer behind ``client.trades()``, on the
dispatcher thread, so the figure is an upper bound of frame-to-DataFrame
latency. The market clock (``speed`` × wall time) is never used for it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.child import Child
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from benchmarks.timing import percentile
from kraken_nb import KrakenClient
from kraken_nb.core.session import Event
from kraken_nb.simulator import DEFAULT_PAIRS

__all__ = ["NAME", "Level", "TradeReceipts", "run"]

logger = logging.getLogger(__name__)

NAME = "e2e"
_SAMPLE_S = 0.25
_GRACE_S = 1.0
_SERVER_BOUND_CPU = 0.9
_TICK_S = 0.001


@dataclass(slots=True)
class Level:
    """What one speed gave."""

    speed: float
    offered: float
    """Frames per second the simulator queued for the client."""
    processed: float
    """Frames per second the client processed."""
    processed_mb: float
    """Megabytes of frames per second the client processed."""
    backlog_start: int
    backlog_end: int
    growth: float
    """Backlog growth in frames per second over the window."""
    server_cpu: float
    """Share of one core the simulator process used."""
    p50_ms: float
    p99_ms: float
    trades: int
    unmatched: int
    """Trades queued in the window that had not reached the client a second after it."""
    sustained: bool


class _Server(Child):
    """The simulator process (``benchmarks.sim_process``) and its command pipe."""

    def __init__(self, seed: int, speed: float, tick: float = _TICK_S) -> None:
        super().__init__(
            "benchmarks.sim_process", "--seed", str(seed), "--speed", str(speed), "--tick", str(tick)
        )
        self.url: str = self.hello["url"]


class TradeReceipts:
    """When each trade reached a client's ``on("trade")`` callbacks, by ``(symbol, trade_id)``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[tuple[str, int], int] = {}

    def __call__(self, event: Event) -> None:
        now = time.time_ns()
        row = event.data
        with self.lock:
            self.times[(row["symbol"], int(row["trade_id"]))] = now


def _sample(server: _Server, client: KrakenClient) -> tuple[float, int, int, float, int]:
    stats = server.ask("stats")
    mine = client.stats()
    return stats["wall_ns"] / 1e9, stats["queued"], mine["messages"], stats["cpu_s"], mine["bytes"]


def _measure(
    server: _Server, client: KrakenClient, receipts: TradeReceipts, speed: float, settings: Settings
) -> Level:
    server.ask(f"speed {speed:g}")
    time.sleep(settings.settle_s)
    server.ask("trades")  # forget the trades queued while settling
    samples = [_sample(server, client)]
    deadline = time.monotonic() + settings.window_s
    while time.monotonic() < deadline:
        time.sleep(_SAMPLE_S)
        samples.append(_sample(server, client))
    sent: list[list[Any]] = server.ask("trades")
    time.sleep(_GRACE_S)
    (t0, queued0, done0, cpu0, bytes0), (t1, queued1, done1, cpu1, bytes1) = samples[0], samples[-1]
    elapsed = max(t1 - t0, 1e-9)
    with receipts.lock:
        times = dict(receipts.times)
    latencies = [
        (times[(symbol, trade_id)] - queued_ns) / 1e6
        for symbol, trade_id, queued_ns in sent
        if (symbol, trade_id) in times
    ]
    offered = (queued1 - queued0) / elapsed
    backlog0, backlog1 = queued0 - done0, queued1 - done1
    growth = (backlog1 - backlog0) / elapsed
    sustained = (
        client.connection_state == "live"
        and growth <= max(0.03 * offered, 10.0)
        and backlog1 <= max(200.0, 0.5 * offered)
    )
    return Level(
        speed=speed,
        offered=offered,
        processed=(done1 - done0) / elapsed,
        processed_mb=(bytes1 - bytes0) / elapsed / 1e6,
        backlog_start=backlog0,
        backlog_end=backlog1,
        growth=growth,
        server_cpu=(cpu1 - cpu0) / elapsed,
        p50_ms=percentile(latencies, 0.5),
        p99_ms=percentile(latencies, 0.99),
        trades=len(sent),
        unmatched=len(sent) - len(latencies),
        sustained=sustained,
    )


def _details(levels: list[Level]) -> list[str]:
    lines = [
        "| speed | queued frames/s | processed frames/s (MB/s) | backlog start → end | growth /s "
        "| simulator CPU | trade latency p50 / p99 ms | trades (late) | sustained |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for level in levels:
        lines.append(
            f"| {level.speed:g}× | {level.offered:,.0f} | {level.processed:,.0f} ({level.processed_mb:.2f}) "
            f"| {level.backlog_start:,} → {level.backlog_end:,} | {level.growth:,.0f} "
            f"| {level.server_cpu:.0%} | {level.p50_ms:.1f} / {level.p99_ms:.1f} "
            f"| {level.trades:,} ({level.unmatched:,}) | {'yes' if level.sustained else 'no'} |"
        )
    return lines


def _rows(levels: list[Level]) -> list[Row]:
    passed = [level for level in levels if level.sustained]
    best = max(passed, key=lambda level: level.processed) if passed else None
    if best is None:
        note, rate, ratio = "not even the slowest speed was sustained", 0.0, 0.0
    else:
        rate = best.processed
        ratio = best.processed / best.offered if best.offered else 1.0
        failed = [level for level in levels if not level.sustained]
        limit = f"{failed[0].speed:g}× was not sustained" if failed else "no speed tried fell behind"
        note = (
            f"speed {best.speed:g}×, {best.processed_mb:.1f} MB/s, simulator at {best.server_cpu:.0%} "
            f"of a core; {limit}"
        )
    measured = [level for level in levels if level.trades > level.unmatched]
    latency_from = best if best in measured else (measured[0] if measured else None)
    p50 = latency_from.p50_ms if latency_from else 0.0
    p99 = latency_from.p99_ms if latency_from else 0.0
    where = f"at {latency_from.speed:g}×" if latency_from else "(no trade arrived)"
    return [
        Row(
            f"{NAME}.sustained_rate",
            NAME,
            "highest sustained rate, no growing backlog (book10+trade+ticker+ohlc, 8 pairs)",
            rate,
            "msgs/s",
            ratio=ratio,
            compare="processed {ratio}× what the simulator queued",
            note=note,
        ),
        Row(f"{NAME}.latency_p50", NAME, f"trade frame queued → client callback, p50 {where}", p50, "ms"),
        Row(f"{NAME}.latency_p99", NAME, f"trade frame queued → client callback, p99 {where}", p99, "ms"),
    ]


def run(settings: Settings) -> Report:
    """Ramp the simulator's speed until the client falls behind; report the last sustained level."""
    report = Report(NAME)
    server = _Server(settings.seed, settings.speeds[0])
    client: KrakenClient | None = None
    levels: list[Level] = []
    try:
        client = KrakenClient(server.url, timeout=15.0)
        client.wait_connected()
        receipts = TradeReceipts()
        client.on("trade", receipts)
        symbols = list(DEFAULT_PAIRS)
        client.subscribe("book", symbols, depth=10)
        client.subscribe("trade", symbols)
        client.subscribe("ticker", symbols)
        client.subscribe("ohlc", symbols, interval=1)
        for speed in settings.speeds:
            level = _measure(server, client, receipts, speed, settings)
            levels.append(level)
            if not level.sustained:
                break
        stats = client.stats()
    finally:
        if client is not None:
            client.close()
        server.close()
    report.rows = _rows(levels)
    report.details = [
        "Backlog = frames the simulator queued − frames the client processed, sampled together; "
        "latency = simulator queue time → the client's trade callback (same wall clock).",
        "",
        *_details(levels),
        "",
        f"Client counters at the end: checksum mismatches {stats['checksum_mismatches']}, "
        f"resyncs {stats['resyncs']}, callbacks dropped {stats['callbacks_dropped']}, "
        f"reconnects {stats['reconnects']}.",
    ]
    report.data = {
        "levels": [asdict(level) for level in levels],
        "client_stats": {k: v for k, v in stats.items() if isinstance(v, (int, float, str)) or v is None},
    }
    return report
