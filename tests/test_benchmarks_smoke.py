"""Smoke test of the benchmark suite: a ``--quick`` run yields every row with finite numbers.

It checks structure, never speed: the machine running the tests is shared
and noisy, so no figure is compared with a threshold here.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("benchmarks") is None:  # pytest run from outside the repository
    sys.path.insert(0, str(ROOT))

from benchmarks.core_throughput import FeedFailed, feed_all  # noqa: E402
from benchmarks.corpus import book_corpus, channel_corpora  # noqa: E402
from benchmarks.programs import build_program, load_program  # noqa: E402
from benchmarks.settings import Settings  # noqa: E402
from benchmarks.streaming import AppliedTimes, Play, frame_source, play, subscribed_client  # noqa: E402

# The rows the brief asks for, by stable key.
BOOK_ROWS = ("feed", "orjson", "loads", "loads_exact", "sdk", "order_book_apply", "order_book_verified")
CHANNEL_ROWS = ("feed", "orjson", "loads", "loads_exact")
EXPECTED_KEYS = (
    [f"core.book{depth}.{row}" for depth in (10, 1000) for row in BOOK_ROWS]
    + [f"core.{channel}.{row}" for channel in ("trade", "ticker", "ohlc") for row in CHANNEL_ROWS]
    + ["e2e.sustained_rate", "e2e.latency_p50", "e2e.latency_p99"]
    + [
        f"dataframes.{key}"
        for key in ("append", "to_frame", "to_frame_cached", "to_frame_exact", "memory", "max_rows_peak")
    ]
    + [f"widgets.{name}" for name in ("TickerBoard", "TradeTape", "CandleChart", "DepthHeatmap")]
    + [
        f"ceiling.{case}x{pairs}.{row}"
        for case in ("book10", "book100", "book1000", "trade", "ticker")
        for pairs in (1, 8)
        for row in ("rate", "p99")
    ]
    + ["ceiling.backlog"]
    + [f"responsive.{name}" for name in ("idle", "1k", "1k_widgets", "1k_offloaded", "5k", "5k_widgets")]
    + [f"serve.{key}" for key in ("journal_book10", "journal_trade", "client_rate", "widget_rate")]
    + [f"serve.{what}_{q}" for what in ("rest_delivery", "rest_read", "mcp_call") for q in ("p50", "p99")]
    + ["serve.rest_requests", "serve.mcp_calls", "serve.sse_bytes"]
    + [
        f"history.{key}"
        for key in (
            "record_trade",
            "record_book10",
            "bytes_per_trade",
            "bytes_per_book_update",
            "vwap_duckdb",
            "vwap_duckdb_memory",
            "vwap_pandas_memory",
            "vwap_pandas_load",
            "candles_from_trades",
        )
    ]
    + ["relay.publish_rate"]
    + [f"relay.fanout_{consumers}" for consumers in (1, 4, 16)]
    + ["relay.latency_p50", "relay.latency_p99"]
)
# Rows that depend on an optional package (the "bench" extra), and the module each needs.
OPTIONAL = {
    "sdk": "kraken",
    "order_book_apply": "order_book",
    "order_book_verified": "order_book",
    "orjson": "orjson",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("benchmarks")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--out",
            str(out),
            "--corpus-dir",
            str(out / "corpus"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return {
        "stdout": completed.stdout,
        "json": json.loads((out / "latest.json").read_text(encoding="utf-8")),
        "markdown": (out / "latest.md").read_text(encoding="utf-8"),
        "corpus": sorted(p.name for p in (out / "corpus").iterdir()),
    }


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


@pytest.mark.timeout(360)
def test_every_row_is_present_with_finite_numbers(quick_run: dict[str, Any]) -> None:
    rows = {row["key"]: row for row in quick_run["json"]["rows"]}
    missing = [key for key in EXPECTED_KEYS if key not in rows]
    assert not missing, f"rows missing from the table: {missing}"
    for key, row in rows.items():
        assert isinstance(row["value"], (int, float)) and math.isfinite(row["value"]), (key, row["value"])
        if row["ratio"] is not None:
            assert math.isfinite(row["ratio"]) and row["ratio"] > 0, (key, row["ratio"])
        assert row["status"] in ("met", "missed", "info", "unavailable"), (key, row["status"])
        if row["status"] == "unavailable":
            module = OPTIONAL.get(key.rsplit(".", 1)[-1])
            assert module is not None and not _installed(module), (
                f"{key} unavailable but {module} is installed"
            )
        else:
            assert row["value"] > 0 or key.startswith("e2e."), (key, row["value"])
    targets = [row for row in rows.values() if row["target"]]
    assert {row["key"] for row in targets} >= {
        "core.book10.orjson",
        "dataframes.max_rows_peak",
        "serve.client_rate",
        "serve.widget_rate",
        "history.bytes_per_trade",
        "history.bytes_per_book_update",
        "history.vwap_duckdb",
        "history.vwap_duckdb_memory",
    }
    assert all(row["status"] in ("met", "missed", "unavailable") for row in targets)


@pytest.mark.timeout(360)
def test_printed_table_matches_the_written_files(quick_run: dict[str, Any]) -> None:
    markdown = quick_run["markdown"]
    assert quick_run["stdout"] == markdown
    table = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| Benchmark | Case | Value |")
    for row in quick_run["json"]["rows"]:
        assert any(f"| {row['benchmark']} | {row['case']} |" in line for line in table), row["case"]
    assert quick_run["json"]["meta"]["quick"] is True
    assert set(quick_run["json"]["benchmarks"]) == {
        "core",
        "e2e",
        "ceiling",
        "responsive",
        "dataframes",
        "widgets",
        "serve",
        "history",
        "relay",
    }


@pytest.mark.timeout(360)
def test_the_run_generated_and_cached_every_corpus(quick_run: dict[str, Any]) -> None:
    names = {name.split("-", 1)[0] for name in quick_run["corpus"]}
    assert names == {"book10", "book1000", "trade", "ticker", "ohlc", "program", "vwap"}
    frames = [name for name in quick_run["corpus"] if not name.startswith("vwap-")]
    assert all(name.endswith(".jsonl.gz") for name in frames)


def test_book_corpus_is_deterministic_and_its_checksums_verify() -> None:
    first = book_corpus(10, 50, seed=3)
    again = book_corpus(10, 50, seed=3)
    other = book_corpus(10, 50, seed=4)
    assert first.frames == again.frames and first.snapshot == again.snapshot
    assert first.frames != other.frames
    assert len(first.frames) == 50
    assert all(json.loads(frame)["type"] == "update" for frame in first.frames)
    feed_all(first)  # raises FeedFailed on any checksum mismatch
    deep = book_corpus(1000, 20, seed=3)
    assert len(json.loads(deep.snapshot)["data"][0]["bids"]) == 1000
    feed_all(deep)


def test_feed_all_rejects_a_corpus_with_a_wrong_checksum() -> None:
    corpus = book_corpus(10, 20, seed=3)
    frame = json.loads(corpus.frames[5])
    frame["data"][0]["checksum"] ^= 1
    bad_frame = json.dumps(frame, separators=(",", ":"))
    tampered = replace(corpus, frames=(*corpus.frames[:5], bad_frame, *corpus.frames[6:]))
    with pytest.raises(FeedFailed):
        feed_all(tampered)


def test_channel_corpora_hold_only_their_channel() -> None:
    corpora = channel_corpora(20, seed=3)
    for channel, corpus in corpora.items():
        assert len(corpus.frames) == 20
        assert {json.loads(frame)["channel"] for frame in corpus.frames} == {channel}
        feed_all(corpus)


# -- the frame source (ceiling / responsive) ------------------------------------------------


def test_programs_of_several_pairs_are_separate_markets_with_verified_checksums() -> None:
    program = build_program("book10x3", ["BTC/USD", "ETH/USD", "SOL/USD"], {"book": {"depth": 10}}, 90, 3)
    assert set(program.snapshots) == {"BTC/USD", "ETH/USD", "SOL/USD"}
    symbols = [json.loads(frame)["data"][0]["symbol"] for frame in program.frames]
    assert set(symbols) == {"BTC/USD", "ETH/USD", "SOL/USD"}
    prices = {s: json.loads(program.snapshots[s])["data"][0]["bids"][0]["price"] for s in program.snapshots}
    assert len(set(prices.values())) == 3  # not one book relabelled
    from benchmarks.ceiling import _feed_rate

    assert _feed_rate(program, 1) > 0  # raises on any checksum mismatch


@pytest.mark.timeout(120)
def test_the_frame_source_loops_a_program_without_breaking_books_or_trade_ids(tmp_path: Path) -> None:
    settings = Settings(quick=True, corpus_dir=tmp_path)
    mixed = {"book": {"depth": 10}, "trade": {}}
    program, path = load_program(settings, "loop", mixed, 150, pairs=2)
    trade_rows = sum(
        len(json.loads(frame)["data"]) for frame in program.frames if frame.startswith('{"channel":"trade"')
    )
    with frame_source() as source:
        client, applied = subscribed_client(source, program, path)
        try:
            # 2,000 frames/s for 0.5 s: more than 6 laps of the 150 frames
            result = play(source, applied, 2_000, 0.5)
            stats = client.stats()
            trades = client.trades()
            books = [client.book(symbol) for symbol in program.symbols]
        finally:
            client.close()
    laps = len(result.sent) / (len(program.frames) + len(program.snapshots))
    assert laps > 3, laps
    assert result.lost == 0 and result.aligned
    assert stats["checksum_mismatches"] == 0 and stats["resyncs"] == 0, stats
    assert all(book is not None and book.valid for book in books)
    assert stats["duplicate_trades"] == 0 and stats["trade_gaps"] == 0, stats
    assert len(trades) >= int(laps) * trade_rows
    for _, ids in trades.groupby("symbol", observed=True)["trade_id"]:
        assert ids.is_monotonic_increasing and ids.diff().dropna().eq(1).all()
    latencies = result.latencies_ms
    assert len(latencies) == len(result.sent) and (latencies > 0).all()


def test_play_backlog_and_rates_come_from_both_timestamp_series() -> None:
    applied = AppliedTimes()
    applied.times = [int(1e9) + i * int(2e6) for i in range(100)]  # 500 frames/s, from 1 s
    applied.lengths = [10] * 100

    sent = np.array([int(1e9) + i * int(1e6) for i in range(100)], dtype=np.int64)  # 1000 frames/s
    result = Play(sent, np.full(100, 10), applied)
    assert result.aligned and result.lost == 0
    backlog = result.backlog(0.05)
    assert backlog[0] == (0.0, 0)
    assert backlog[1][0] == pytest.approx(0.05)
    assert backlog[1][1] == 51 - 26  # by 0.05 s: 51 sent, 26 applied
    assert backlog[2][1] == 100 - 51  # by 0.1 s: all 100 sent, 51 applied
    assert backlog[-1][1] == 0  # drained
    assert result.processed_rate() == pytest.approx(500, rel=0.01)
    assert result.sent_rate() == pytest.approx(1000, rel=0.01)
    assert result.latencies_ms[10] == pytest.approx(10.0)
    mismatched = Play(sent, np.full(100, 11), applied)
    assert not mismatched.aligned


def test_the_notebook_workload_is_fixed_and_timed() -> None:
    from benchmarks.responsive import workload

    run = workload(0.05)
    first, second = run(), run()
    assert first > 0 and second > 0


# -- history (Parquet dataset and DuckDB) ------------------------------------------------------


@pytest.mark.timeout(120)
def test_the_vwap_contenders_get_the_same_rows_and_agree(tmp_path: Path) -> None:
    from benchmarks.history import VWAP_SQL, check_vwap, pandas_vwap
    from benchmarks.synthetic_trades import SYMBOL, cached_dataset, float_frame
    from kraken_nb.history import History

    settings = Settings(quick=True, corpus_dir=tmp_path)
    root, records = cached_dataset(settings)
    frame = float_frame(records)
    assert len(frame) == settings.vwap_trades
    assert {p.parent.name for p in root.rglob("*.parquet")} == {"date=2024-12-31", "date=2025-01-01"}
    with History(root) as history:
        recorded = history.trades(SYMBOL)
        pd.testing.assert_frame_equal(recorded, frame)
        duck = history.sql(VWAP_SQL, {"symbol": SYMBOL}, exact=False)
    vwap = pandas_vwap(frame)
    assert len(vwap) == settings.vwap_span_s // 60
    check_vwap(duck, vwap, "pandas")  # raises when they differ
    with pytest.raises(RuntimeError, match="disagree on the VWAP"):
        check_vwap(duck, vwap * (1 + 1e-6), "pandas")
    again, _ = cached_dataset(settings)
    assert again == root and (root / "complete").exists()  # written once, then reused


def test_peak_rss_sees_what_numpy_and_duckdb_allocate() -> None:
    import duckdb

    from benchmarks.memory import peak_rss

    total, _, peak = peak_rss(lambda: float(np.ones(40_000_000).sum()))  # 320 MB, freed on return
    assert total == 40_000_000 and peak >= 250e6
    _, _, small = peak_rss(lambda: sum(range(1000)))
    assert small < 50e6
    con = duckdb.connect()
    sort = "SELECT max(x) FROM (SELECT range AS x FROM range(8000000) ORDER BY hash(range) LIMIT 7999999)"
    top, _, duck = peak_rss(lambda: con.execute(sort).fetchall())
    assert top is not None and duck >= 40e6  # DuckDB's own buffers, which tracemalloc cannot see
