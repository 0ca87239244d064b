"""The NATS relay: fan-out rate per consumer with 1, 4 and 16 consumers, and the latency it adds.

**Publish rate.** A real relay receives book (depth 10), trade and ticker
frames for the simulator's eight pairs (the simulator in its own process at
100×, stepping every 1 ms) and publishes them into a JetStream stream on a
local ``nats-server -js``; the frames acknowledged per second are set beside
the frames the simulator sent it (a ratio below 1 means the relay buffered).

**Fan-out.** That stream is then the consumers' corpus (its frames for four
pairs). K client
processes (``benchmarks.relay_consumer``: ``KrakenClient.from_nats(start="first")``,
the same session, books and DataFrames as any client) then read the whole
stream at once, K = 1, 4 and 16. Each reports how long it took from its first
subscribe until its session had handled every data frame for its subjects:
the per-consumer rate. The consumers, nats-server and the benchmark share the
machine's cores, so on 2 cores the per-consumer rate falls as K grows;
the aggregate (all consumers' frames over the slowest one's time) shows what
the server delivered in total.

**Latency.** With the simulator at a steady pace, a relay runs as
``kraken-nb relay`` in its own process, and this process holds two clients
side by side: a direct WebSocket client of the simulator and a
``from_nats`` client of the relay. The simulator records the wall time at
which it queued each trade frame (``time.time_ns``, one clock for all
processes); each client's ``on("trade")`` callback records when the trade
reached it. The relay's figure includes the relay's own WebSocket receive,
its publish and JetStream's store and push; the difference to the direct
client is what the relay adds.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.child import Child
from benchmarks.end_to_end import TradeReceipts
from benchmarks.results import Report, Row
from benchmarks.settings import HERE, Settings
from benchmarks.timing import percentile
from kraken_nb import KrakenClient
from kraken_nb.core.params import validate_subscription
from kraken_nb.relay.local import LocalNatsServer
from kraken_nb.relay.relay import Relay
from kraken_nb.relay.subjects import data_subject
from kraken_nb.simulator import DEFAULT_PAIRS

__all__ = ["CONSUMERS", "NAME", "run"]

logger = logging.getLogger(__name__)

NAME = "relay"
CONSUMERS = (1, 4, 16)
PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD", "ADA/USD")
CHANNELS = ("trade", "book", "ticker")
_TICK_S = 0.001


@dataclass(slots=True)
class FanOut:
    """What K consumers reading the same stream gave."""

    consumers: int
    frames: int
    """Data frames each consumer read."""
    per_consumer: float
    """Median frames per second of one consumer."""
    slowest: float
    aggregate: float
    """All consumers' frames over the slowest one's time."""
    mismatches: int
    gaps: int
    subscribing: float
    """The longest any consumer's three subscribes took (nats-server creating 14 consumers)."""


@dataclass(slots=True)
class Latency:
    """Trade frame queued at the simulator → a client's callback, for both paths."""

    trades: int
    direct_p50: float
    direct_p99: float
    relay_p50: float
    relay_p99: float
    relay_missing: int
    """Trades queued in the window that had not reached the relay's client a second later."""


def _simulator(seed: int, speed: float) -> Child:
    return Child("benchmarks.sim_process", "--seed", str(seed), "--speed", str(speed), "--tick", str(_TICK_S))


@dataclass(slots=True)
class Fill:
    """What the relay published while the simulator ran fast (all eight pairs)."""

    seconds: float
    offered: float
    """Frames per second the simulator queued for the relay."""
    published: float
    """Frames per second NATS acknowledged to the relay."""
    backlog: int
    """Frames still buffered in the relay at the end of the window."""
    frames: int
    """Data frames stored for the consumers' four pairs."""


def _fill(settings: Settings, nats: LocalNatsServer) -> Fill:
    """Relay the simulator (all its pairs) into the stream for a while, measuring the relay's rate."""
    subscriptions = [validate_subscription(c, list(DEFAULT_PAIRS)) for c in CHANNELS]
    seconds = 1.5 if settings.quick else 10.0
    with _simulator(settings.seed, 100.0) as sim:
        relay = Relay(nats.url, subscriptions, upstream=sim.hello["url"], name="bench", max_buffer=10**7)
        relay.start()
        try:
            time.sleep(0.5)
            queued0, published0, t0 = (
                sim.ask("stats")["queued"],
                relay.stats()["published"],
                time.perf_counter(),
            )
            time.sleep(seconds)
            queued1, stats, t1 = sim.ask("stats")["queued"], relay.stats(), time.perf_counter()
            sim.ask("speed 0.000001")  # quiet: what is in the stream now is the consumers' corpus
            relay.wait_published(120)
            info = relay.stream_info(subjects_filter=">")
        finally:
            relay.close()
    subjects = info.state.subjects or {}
    return Fill(
        seconds=t1 - t0,
        offered=(queued1 - queued0) / (t1 - t0),
        published=(stats["published"] - published0) / (t1 - t0),
        backlog=stats["buffered"],
        frames=sum(subjects.get(data_subject(c, s), 0) for c in CHANNELS for s in PAIRS),
    )


def _consumers(nats: LocalNatsServer, frames: int) -> list[Child]:
    args = ["--nats", nats.url, "--target", str(frames)]
    for symbol in PAIRS:
        args += ["--symbol", symbol]
    return [Child("benchmarks.relay_consumer", *args) for _ in range(max(CONSUMERS))]


def _fan_out(children: list[Child], frames: int) -> FanOut:
    consumers = len(children)
    for child in children:  # all start together
        assert child.process.stdin is not None
        child.process.stdin.write("run\n")
        child.process.stdin.flush()
    results = [child._read() for child in children]
    rates = sorted(r["messages"] / r["seconds"] for r in results)
    slowest = max(r["seconds"] for r in results)
    return FanOut(
        consumers=consumers,
        frames=frames,
        per_consumer=percentile(rates, 0.5),
        slowest=min(rates),
        aggregate=sum(r["messages"] for r in results) / slowest,
        mismatches=sum(r["mismatches"] for r in results),
        gaps=sum(r["gaps"] for r in results),
        subscribing=max(r["subscribing"] for r in results),
    )


class _Receipts(TradeReceipts):
    """Trade receipts, and how long after the simulator queued them they arrived."""

    def latencies(self, sent: list[list[Any]]) -> tuple[list[float], int]:
        with self.lock:
            times = dict(self.times)
        found = [(times[(s, i)] - q) / 1e6 for s, i, q in sent if (s, i) in times]
        return found, len(sent) - len(found)


@contextlib.contextmanager
def _relay_process(nats_url: str, upstream: str) -> Iterator[subprocess.Popen[str]]:
    command = [sys.executable, "-m", "kraken_nb.cli", "relay", "--nats", nats_url, "--url", upstream]
    command += ["--name", "latency", "--channel", "trade"]
    for symbol in PAIRS:
        command += ["--symbol", symbol]
    process = subprocess.Popen(
        command, cwd=HERE.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Relaying"):
                break
        else:
            raise RuntimeError(f"the relay process ended ({process.poll()})")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _latency(settings: Settings, nats: LocalNatsServer) -> Latency:
    with _simulator(settings.seed + 1, 10.0) as sim:
        url = sim.hello["url"]
        with _relay_process(nats.url, url):
            direct = KrakenClient(url, timeout=15.0)
            relayed = KrakenClient.from_nats(nats.url, start="new", timeout=15.0)
            try:
                receipts = {"direct": _Receipts(), "relay": _Receipts()}
                direct.on("trade", receipts["direct"])
                relayed.on("trade", receipts["relay"])
                direct.subscribe("trade", PAIRS)
                relayed.subscribe("trade", PAIRS)
                time.sleep(0.5)
                sim.ask("trades")  # forget the trades queued before both were subscribed
                time.sleep(2.0 if settings.quick else 20.0)
                sent: list[list[Any]] = sim.ask("trades")
                time.sleep(1.0)
                mine, _ = receipts["direct"].latencies(sent)
                theirs, missing = receipts["relay"].latencies(sent)
            finally:
                direct.close()
                relayed.close()
    return Latency(
        trades=len(sent),
        direct_p50=percentile(mine, 0.5),
        direct_p99=percentile(mine, 0.99),
        relay_p50=percentile(theirs, 0.5),
        relay_p99=percentile(theirs, 0.99),
        relay_missing=missing,
    )


def _rows(fan_outs: list[FanOut], latency: Latency) -> list[Row]:
    one = fan_outs[0].per_consumer
    rows = [
        Row(
            f"{NAME}.fanout_{f.consumers}",
            NAME,
            f"per-consumer rate, {f.consumers} consumer{'s' if f.consumers > 1 else ''} reading one stream "
            "(book10+trade+ticker, 4 pairs, start=first)",
            f.per_consumer,
            "msgs/s",
            ratio=f.per_consumer / one if one else None,
            compare="{ratio}× the rate of one consumer",
            note=f"aggregate {f.aggregate:,.0f} msgs/s, slowest {f.slowest:,.0f} msgs/s",
        )
        for f in fan_outs
    ]
    for quantile in ("p50", "p99"):
        relay = getattr(latency, f"relay_{quantile}")
        direct = getattr(latency, f"direct_{quantile}")
        rows.append(
            Row(
                f"{NAME}.latency_{quantile}",
                NAME,
                f"trade frame queued → client callback through the relay, {quantile}",
                relay,
                "ms",
                ratio=relay / direct if direct else None,
                compare="{ratio}× the direct WebSocket client's",
                note=f"direct {direct:.2f} ms: the relay adds {relay - direct:.2f} ms",
            )
        )
    return rows


def run(settings: Settings) -> Report:
    """Fill a stream through a real relay, read it with 1, 4 and 16 consumers, then measure latency."""
    report = Report(NAME)
    with LocalNatsServer() as nats:
        fill = _fill(settings, nats)
        frames = fill.frames
        children = _consumers(nats, frames)
        try:
            fan_outs = [_fan_out(children[:k], frames) for k in CONSUMERS]
        finally:
            for child in children:
                child.close()
    with LocalNatsServer() as nats:
        latency = _latency(settings, nats)
    report.rows = [
        Row(
            f"{NAME}.publish_rate",
            NAME,
            "relay: frames acknowledged by JetStream per second (book10+trade+ticker, 8 pairs, 100×)",
            fill.published,
            "msgs/s",
            ratio=fill.published / fill.offered if fill.offered else None,
            compare="{ratio}× what the simulator sent it",
            note=f"{fill.backlog:,} frames still buffered at the end of {fill.seconds:.1f} s",
        ),
        *_rows(fan_outs, latency),
    ]
    report.details = [
        f"Stream: {frames:,} data frames (book depth 10, trade, ticker for {', '.join(PAIRS)}) relayed from "
        "the simulator; each consumer is its own process reading it from the first message.",
        "",
        "| consumers | per consumer (median) | slowest | aggregate | longest subscribe | checksum mismatches "
        "| gaps |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {f.consumers} | {f.per_consumer:,.0f} | {f.slowest:,.0f} | {f.aggregate:,.0f} "
            f"| {f.subscribing:.1f} s | {f.mismatches} | {f.gaps} |"
            for f in fan_outs
        ),
        "",
        f"Latency over {latency.trades:,} trades at 10×: direct p50 {latency.direct_p50:.2f} ms, p99 "
        f"{latency.direct_p99:.2f} ms; through the relay p50 {latency.relay_p50:.2f} ms, p99 "
        f"{latency.relay_p99:.2f} ms ({latency.relay_missing} trades had not arrived a second after "
        "the window).",
    ]
    report.data = {"fill": asdict(fill), "fan_out": [asdict(f) for f in fan_outs], "latency": asdict(latency)}
    return report
