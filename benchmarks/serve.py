"""Serving the streams: what REST/MCP readers get, and what serving costs the client and its widgets.

Two parts, both side by side in one run:

* **Journal cost in the core.** ``Session.feed`` over the book (depth 10) and
  trade corpora with and without the cursor journal as a tap, interleaved, best
  of the rounds: the per-frame price of journaling.
* **Live.** The simulator runs in its own process (as in the e2e benchmark)
  and streams book (depth 10), trade and ticker for every pair to a real
  client, which drives a ticker board and a depth heatmap at 10 Hz. Rounds
  alternate: without servers, then with both servers running and readers in a
  separate process (``benchmarks.serve_readers``): book and trade long-pollers
  that re-poll at once, REST pollers and MCP pollers that read a page every
  0.1 s without waiting. Measured in each round: the frames per second the
  client processed and the ticks per second the widgets made; with servers,
  also the trade delivery latency (simulator queued the frame → a REST
  long-poller received it; one wall clock), request latencies and rates, and
  the bytes of each book update on a Server-Sent-Events stream against the
  same update on the upstream WebSocket (its text plus the frame header).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from benchmarks.corpus import load_corpora
from benchmarks.end_to_end import _Server
from benchmarks.results import Report, Row
from benchmarks.settings import HERE, Settings
from benchmarks.timing import interleaved, percentile
from kraken_nb import KrakenClient
from kraken_nb.core.journal import Journal
from kraken_nb.serve import Limits
from kraken_nb.simulator import DEFAULT_PAIRS

__all__ = ["NAME", "run"]

NAME = "serve"
SYMBOL = "BTC/USD"
READ_SYMBOLS = ("BTC/USD", "ETH/USD")
WIDGET_HZ = 10.0
_SLOWDOWN = 0.90  # with servers, at least 90 % of the rate without
_TICK_S = 0.05  # the simulator's own pace: one frame per channel and pair every 50 ms at most


# -- journal cost in the core -------------------------------------------------------------


def _journal_rows(settings: Settings) -> tuple[list[Row], list[str]]:
    from benchmarks.core_throughput import _session_for

    corpora = load_corpora(settings, ["book10", "trade"])
    rows, details = [], []
    for name, corpus in corpora.items():

        def feed(with_journal: bool, corpus: Any = corpus) -> float:
            session = _session_for(corpus)
            if with_journal:
                session.add_tap(Journal(retain=1000))
            frames, feed_one = corpus.frames, session.feed
            started = time.perf_counter()
            for i, frame in enumerate(frames):
                feed_one(frame, i)
            return time.perf_counter() - started

        best = interleaved({"without": lambda: feed(False), "with": lambda: feed(True)}, settings.rounds)
        ratio = best["with"] / best["without"]
        rows.append(
            Row(
                f"{NAME}.journal_{name}",
                NAME,
                f"{name} · Session.feed with the cursor journal as a tap",
                len(corpus.frames) / best["with"],
                "frames/s",
                ratio=ratio,
                compare="{ratio}× the time without the journal",
                note=f"+{(best['with'] - best['without']) * 1e6 / len(corpus.frames):.1f} µs per frame",
            )
        )
        per_frame = {arm: seconds * 1e6 / len(corpus.frames) for arm, seconds in best.items()}
        details.append(
            f"- {name}: {len(corpus.frames):,} frames, {per_frame['without']:.2f} µs/frame without the "
            f"journal, {per_frame['with']:.2f} with it"
        )
    return rows, details


# -- live -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Round:
    served: bool
    client_rate: float = 0.0
    offered_rate: float = 0.0
    widget_hz: float = 0.0
    readers: dict[str, Any] = field(default_factory=dict)
    delivery_ms: list[float] = field(default_factory=list)
    sse: tuple[int, int, int] = (0, 0, 0)
    """Book updates seen on SSE, their SSE bytes, their upstream WebSocket bytes."""


class _SseMeter(threading.Thread):
    """Reads a book event stream and sizes every update event against its upstream frame."""

    def __init__(self, url: str) -> None:
        super().__init__(name="sse-meter", daemon=True)
        self.url = url
        self.updates = self.sse_bytes = self.ws_bytes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(timeout=30) as http,
            http.stream("GET", self.url) as response,
        ):
            event: list[str] = []
            first = True
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line:
                    event.append(line)
                    continue
                data = [x[len("data: ") :] for x in event if x.startswith("data: ")]
                if data and not first:
                    text = data[0].encode()
                    self.updates += 1
                    self.sse_bytes += sum(len(x.encode()) + 1 for x in event) + 1
                    self.ws_bytes += len(text) + (2 if len(text) < 126 else 4 if len(text) < 65536 else 10)
                first = first and not data
                event = []


def _widgets(client: KrakenClient) -> list[Any]:
    from kraken_nb.widgets import DepthHeatmap, TickerBoard

    return [
        TickerBoard(client, list(DEFAULT_PAIRS), rate_hz=WIDGET_HZ),
        DepthHeatmap(client, SYMBOL, rate_hz=WIDGET_HZ),
    ]


def _ticks(widgets: list[Any]) -> int:
    return sum(widget._task.runs for widget in widgets if widget._task is not None)


def _readers(settings: Settings, rest: str, mcp: str, seconds: float) -> subprocess.Popen[str]:
    book, trade, polls, mcp_polls = settings.serve_readers
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.serve_readers",
            "--rest",
            rest,
            "--mcp",
            mcp,
            "--symbols",
            ",".join(READ_SYMBOLS),
            "--book-readers",
            str(book),
            "--trade-readers",
            str(trade),
            "--rest-pollers",
            str(polls),
            "--mcp-pollers",
            str(mcp_polls),
            "--seconds",
            str(seconds),
        ],
        cwd=HERE.parent,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )


def _measure(
    server: _Server, client: KrakenClient, widgets: list[Any], seconds: float
) -> tuple[float, float, float]:
    """Client frames/s, simulator frames/s queued, widget ticks/s per widget over ``seconds``."""
    stats0, ticks0, mine0, t0 = (
        server.ask("stats"),
        _ticks(widgets),
        client.stats()["messages"],
        time.perf_counter(),
    )
    time.sleep(seconds)
    stats1, ticks1, mine1, t1 = (
        server.ask("stats"),
        _ticks(widgets),
        client.stats()["messages"],
        time.perf_counter(),
    )
    elapsed = t1 - t0
    return (
        (mine1 - mine0) / elapsed,
        (stats1["queued"] - stats0["queued"]) / elapsed,
        (ticks1 - ticks0) / elapsed / len(widgets),
    )


def _served_round(settings: Settings, server: _Server, client: KrakenClient, widgets: list[Any]) -> _Round:
    seconds = settings.serve_window_s
    outcome = _Round(served=True)
    with client.serve(0, 0, limits=Limits(max_waiters=512, max_sse_clients=8)) as handle:
        readers = _readers(settings, handle.urls["rest"], handle.urls["mcp"], seconds + 1.0)
        assert readers.stdout is not None
        try:
            if readers.stdout.readline().strip() != "ready":
                raise RuntimeError("the readers did not start")
            meter = _SseMeter(f"{handle.urls['rest']}/v1/streams/book/events?symbol={SYMBOL}")
            meter.start()
            server.ask("trades")  # forget the trades queued before the window
            time.sleep(0.5)
            outcome.client_rate, outcome.offered_rate, outcome.widget_hz = _measure(
                server, client, widgets, seconds
            )
            sent = server.ask("trades")
            outcome.readers = json.loads(readers.stdout.readline())
            meter.stop.set()
            outcome.sse = (meter.updates, meter.sse_bytes, meter.ws_bytes)
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                readers.wait(timeout=20)
            if readers.poll() is None:
                readers.kill()
                readers.wait()
    queued = {(symbol, trade_id): ns for symbol, trade_id, ns in sent}
    outcome.delivery_ms = [
        (ns - queued[(symbol, trade_id)]) / 1e6
        for symbol, trade_id, ns in outcome.readers["arrivals"]
        if (symbol, trade_id) in queued
    ]
    return outcome


def _live(settings: Settings) -> list[_Round]:
    server = _Server(settings.seed, settings.serve_speed, tick=_TICK_S)
    client: KrakenClient | None = None
    widgets: list[Any] = []
    rounds: list[_Round] = []
    try:
        client = KrakenClient(server.url, timeout=15.0)
        client.wait_connected()
        pairs = list(DEFAULT_PAIRS)
        client.subscribe("book", pairs, depth=10)
        client.subscribe("trade", pairs)
        client.subscribe("ticker", pairs)
        widgets = _widgets(client)
        client.wait_until(lambda c: (b := c.book(SYMBOL)) is not None and b.valid, timeout=15)
        time.sleep(settings.settle_s)
        for _ in range(settings.serve_rounds):
            plain = _Round(served=False)
            plain.client_rate, plain.offered_rate, plain.widget_hz = _measure(
                server, client, widgets, settings.serve_window_s
            )
            rounds.append(plain)
            rounds.append(_served_round(settings, server, client, widgets))
    finally:
        for widget in widgets:
            widget.close()
        if client is not None:
            client.close()
        server.close()
    return rounds


def _live_rows(settings: Settings, rounds: list[_Round]) -> tuple[list[Row], list[str]]:
    plain = [r for r in rounds if not r.served]
    served = [r for r in rounds if r.served]
    readers = sum(settings.serve_readers)

    # The simulator shares the two cores, so it may send less while the readers run; the client's
    # own rate is what it processed of what was sent (Kraken would not slow down with the machine).
    def kept_up(r: _Round) -> float:
        return r.client_rate / r.offered_rate if r.offered_rate else 0.0

    best = max(served, key=kept_up)
    base = max(plain, key=kept_up)
    rate_ratio = kept_up(best) / kept_up(base) if kept_up(base) else 0.0
    base_hz = max(r.widget_hz for r in plain)
    hz_ratio = max(r.widget_hz for r in served) / base_hz if base_hz else 0.0
    delivery = [x for r in served for x in r.delivery_ms]
    rest_ms = [x for r in served for x in r.readers["rest_ms"]]
    mcp_ms = [x for r in served for x in r.readers["mcp_ms"]]
    elapsed = sum(r.readers["elapsed"] for r in served)
    requests = sum(r.readers["requests"] for r in served)
    calls = sum(r.readers["calls"] for r in served)
    updates, sse_bytes, ws_bytes = (sum(r.sse[i] for r in served) for i in range(3))
    errors: dict[str, int] = {}
    for r in served:
        for key, count in r.readers["errors"].items():
            errors[key] = errors.get(key, 0) + count
    who = f"{readers} readers"
    rows = [
        Row(
            f"{NAME}.client_rate",
            NAME,
            f"client frames/s with both servers and {who} (book10+trade+ticker, 8 pairs)",
            best.client_rate,
            "msgs/s",
            ratio=rate_ratio,
            compare="processed/sent {ratio}× that without servers",
            target=f"≥ {_SLOWDOWN:g}×",
            status="met" if rate_ratio >= _SLOWDOWN else "missed",
            note=f"processed {kept_up(best):.1%} of {best.offered_rate:,.0f}/s sent; without servers "
            f"{kept_up(base):.1%} of {base.offered_rate:,.0f}/s",
        ),
        Row(
            f"{NAME}.widget_rate",
            NAME,
            f"widget ticks/s (ticker board + depth heatmap at {WIDGET_HZ:g} Hz) with servers and {who}",
            max(r.widget_hz for r in served),
            "Hz",
            ratio=hz_ratio,
            compare="{ratio}× the rate without servers",
            target=f"≥ {_SLOWDOWN:g}×",
            status="met" if hz_ratio >= _SLOWDOWN else "missed",
        ),
        Row(
            f"{NAME}.rest_delivery_p50",
            NAME,
            "REST long-poll: trade queued → reader, p50",
            percentile(delivery, 0.5),
            "ms",
        ),
        Row(
            f"{NAME}.rest_delivery_p99",
            NAME,
            "REST long-poll: trade queued → reader, p99",
            percentile(delivery, 0.99),
            "ms",
        ),
        Row(
            f"{NAME}.rest_requests",
            NAME,
            f"REST requests/s answered, {who}",
            requests / elapsed if elapsed else 0.0,
            "req/s",
        ),
        Row(f"{NAME}.rest_read_p50", NAME, "REST page read (no wait), p50", percentile(rest_ms, 0.5), "ms"),
        Row(f"{NAME}.rest_read_p99", NAME, "REST page read (no wait), p99", percentile(rest_ms, 0.99), "ms"),
        Row(
            f"{NAME}.mcp_call_p50",
            NAME,
            "MCP tools/call receive-trade (no wait), p50",
            percentile(mcp_ms, 0.5),
            "ms",
        ),
        Row(
            f"{NAME}.mcp_call_p99",
            NAME,
            "MCP tools/call receive-trade (no wait), p99",
            percentile(mcp_ms, 0.99),
            "ms",
        ),
        Row(
            f"{NAME}.mcp_calls", NAME, "MCP calls/s answered", calls / elapsed if elapsed else 0.0, "calls/s"
        ),
        Row(
            f"{NAME}.sse_bytes",
            NAME,
            "bytes per book update on SSE",
            sse_bytes / updates if updates else 0.0,
            "B",
            ratio=sse_bytes / ws_bytes if ws_bytes else 0.0,
            compare="{ratio}× the same update on the upstream WebSocket",
            note=f"{updates:,} updates",
        ),
    ]
    details = [
        "",
        "| round | servers | client frames/s | simulator queued/s | widget ticks/s | REST req/s "
        "| MCP calls/s | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for index, r in enumerate(rounds):
        rps = r.readers.get("requests", 0) / r.readers["elapsed"] if r.readers else 0.0
        cps = r.readers.get("calls", 0) / r.readers["elapsed"] if r.readers else 0.0
        errors_seen = r.readers.get("errors", {}) if r.served else ""
        details.append(
            f"| {index // 2 + 1} | {'yes' if r.served else 'no'} | {r.client_rate:,.0f} "
            f"| {r.offered_rate:,.0f} | {r.widget_hz:.1f} | {rps:,.0f} | {cps:,.0f} | {errors_seen} |"
        )
    details.append("")
    details.append(
        f"Reader errors over all rounds (status: count; gap = fell past the window): {errors or 'none'}."
    )
    return rows, details


def run(settings: Settings) -> Report:
    """The journal's cost in the core, then the live rounds without and with servers."""
    report = Report(NAME)
    journal_rows, journal_details = _journal_rows(settings)
    rounds = _live(settings)
    live_rows, live_details = _live_rows(settings, rounds)
    book, trade, polls, mcp_polls = settings.serve_readers
    report.rows = journal_rows + live_rows
    report.details = [
        "Journal cost (Session.feed, best of interleaved rounds):",
        *journal_details,
        "",
        f"Live: simulator at {settings.serve_speed:g}× in its own process; {settings.serve_rounds} rounds "
        f"of {settings.serve_window_s:g} s without and with servers; readers in their own process: {book} "
        f"book and {trade} trade long-pollers, {polls} REST and {mcp_polls} MCP pollers every 0.1 s. "
        "The machine has 2 shared cores for the simulator, the client with its servers, and the readers.",
        *live_details,
    ]
    report.data = {
        "rounds": [
            {
                "served": r.served,
                "client_rate": r.client_rate,
                "offered_rate": r.offered_rate,
                "widget_hz": r.widget_hz,
                "requests": r.readers.get("requests"),
                "calls": r.readers.get("calls"),
                "errors": r.readers.get("errors"),
                "sse": r.sse,
            }
            for r in rounds
        ]
    }
    return report
