"""History: recording into the Parquet dataset against the gzip JSON-lines recorder, and DuckDB queries.

Recording: the generated trade corpus (every default pair) and the depth-10
book corpus are fed through a ``Session`` as ``kraken-nb record`` does,
receive times 10 ms apart (100 frames/s), three ways, interleaved, best
round each:

* ``Session.feed`` alone (what both recorders add to);
* the gzip JSON-lines recorder (``RecordingWriter.write`` per frame, then close);
* the Parquet recorder (``Recorder`` on the session, rolling as ``kraken-nb
  convert`` does on the frames' receive times; its final roll and the files'
  fsyncs are timed too).

Each starts from the instrument frame (and, for the book, the snapshot),
written untimed; bytes on disk are the whole file or dataset divided by the
trades, or book update frames, fed.

Query: a 1-minute VWAP over ``Settings.vwap_trades`` synthetic trades
(:mod:`benchmarks.synthetic_trades`), interleaved rounds, best time and
highest resident-memory rise (:mod:`benchmarks.memory`) of each:

* DuckDB through ``History.sql`` over the dataset, ``memory_limit`` fixed at
  256 MB whatever the dataset's size;
* pandas over the same rows already in memory, as ``client.trades()`` holds
  them (float64), grouped by ``time.dt.floor("1min")``; its peak counts the
  frame too;
* pandas reading the dataset first (``pyarrow.parquet.read_table``, decimals
  cast to float64 in Arrow), then the same grouping.

The answers are checked equal (to 1e-9 relative) before any figure counts.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.corpus import BOOK_SYMBOL, Corpus, load_corpora
from benchmarks.memory import peak_rss
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from benchmarks.synthetic_trades import SYMBOL, cached_dataset, float_frame
from benchmarks.timing import interleaved
from kraken_nb.core.params import Subscription
from kraken_nb.core.session import Session
from kraken_nb.history import History, Recorder
from kraken_nb.history.layout import encode_symbol
from kraken_nb.recording import RecordingHeader, RecordingWriter
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.market import MarketModel

__all__ = ["NAME", "VWAP_SQL", "check_vwap", "pandas_vwap", "run"]

NAME = "history"
_FRAME_NS = 10_000_000
_START_NS = 1_735_689_600 * 1_000_000_000
_MEMORY_LIMIT = "256MB"
_MEMORY_BOUND = 256 * 1024 * 1024
_TARGET_BYTES = 0.5
_TARGET_SPEED = 5.0
_MB = 1e6

VWAP_SQL = """
    SELECT epoch_ns(time) // 60000000000 * 60000000000 AS minute_ns, sum(price * qty) / sum(qty) AS vwap
    FROM trades WHERE symbol = $symbol GROUP BY minute_ns ORDER BY minute_ns"""
"""The 1-minute VWAP in DuckDB (exact decimal products and sums, one division per minute)."""


# -- recording -----------------------------------------------------------------------


@dataclass(slots=True)
class _Recorded:
    """The last round of one way of recording a corpus."""

    bytes: int = 0
    rows: dict[str, int] | None = None


def _preamble(corpus: Corpus, seed: int) -> list[str]:
    """The frames a recording starts with: the instrument frame, and the book snapshot."""
    if corpus.channel == "book":
        assert corpus.instrument is not None and corpus.snapshot is not None
        return [corpus.instrument, corpus.snapshot]
    return [dumps({"channel": "instrument", "type": "snapshot", "data": MarketModel(seed).instrument()})]


def _session(corpus: Corpus) -> Session:
    session = Session()
    if corpus.channel == "book":
        session.subscribe(Subscription("book", (BOOK_SYMBOL,), {"depth": corpus.depth}))
    session.connection_made(_START_NS)
    return session


def _timed(frames: list[str], first_ns: int, handle: Callable[[str, int], None]) -> float:
    """Seconds ``handle(frame, received)`` takes over ``frames`` (received 10 ms apart)."""
    received = first_ns
    started = time.perf_counter()
    for frame in frames:
        handle(frame, received)
        received += _FRAME_NS
    return time.perf_counter() - started


def _contenders(corpus: Corpus, seed: int, folder: Path, last: dict[str, _Recorded]) -> dict[str, Any]:
    preamble = _preamble(corpus, seed)
    frames = list(corpus.frames)

    after = _START_NS + len(preamble) * _FRAME_NS  # the measured frames' first receive time

    def feed_only() -> float:
        session = _session(corpus)
        _timed(preamble, _START_NS, session.feed)
        return _timed(frames, after, session.feed)

    def jsonl() -> float:
        session = _session(corpus)
        path = folder / f"{corpus.name}.jsonl.gz"
        header = RecordingHeader("wss://ws.kraken.com/v2", ({"channel": corpus.channel},), _START_NS)
        writer = RecordingWriter(path, header)

        def record(frame: str, received: int) -> None:
            writer.write(received, frame)
            session.feed(frame, received)

        _timed(preamble, _START_NS, record)
        started = time.perf_counter()
        _timed(frames, after, record)
        writer.close()
        seconds = time.perf_counter() - started
        last["jsonl"] = _Recorded(path.stat().st_size)
        path.unlink()
        return seconds

    def parquet() -> float:
        session = _session(corpus)
        root = folder / corpus.name
        recorder = Recorder(session, root, background=False)

        def record(frame: str, received: int) -> None:
            session.feed(frame, received)
            recorder.poll(received)

        _timed(preamble, _START_NS, record)
        started = time.perf_counter()
        _timed(frames, after, record)
        recorder.stop()
        seconds = time.perf_counter() - started
        stats = recorder.stats()
        if stats["rows_lost"] or stats["state"] != "stopped":
            raise RuntimeError(f"the Parquet recorder failed on {corpus.name}: {stats}")
        if len(session.trades) != stats["rows"]["trades"]:
            raise RuntimeError(f"recorded {stats['rows']['trades']} of {len(session.trades)} trades")
        last["parquet"] = _Recorded(sum(p.stat().st_size for p in root.rglob("*.parquet")), stats["rows"])
        shutil.rmtree(root)
        return seconds

    return {"Session.feed": feed_only, "jsonl": jsonl, "parquet": parquet}


def _recording(settings: Settings, report: Report) -> None:
    corpora = load_corpora(settings, ["trade", "book10"])
    rounds = min(settings.rounds, 3)
    with tempfile.TemporaryDirectory(prefix="kraken-nb-history-") as scratch:
        for name, unit in (("trade", "trade"), ("book10", "book update")):
            corpus = corpora[name]
            last: dict[str, _Recorded] = {}
            best = interleaved(_contenders(corpus, settings.seed, Path(scratch), last), rounds)
            frames = len(corpus.frames)
            rates = {way: frames / seconds for way, seconds in best.items()}
            parquet, jsonl = last["parquet"], last["jsonl"]
            rows = parquet.rows or {}
            count = rows["trades"] if name == "trade" else frames
            report.rows.append(
                Row(
                    f"{NAME}.record_{name}",
                    NAME,
                    f"recording {frames:,} {name} frames into the Parquet dataset",
                    rates["parquet"],
                    "frames/s",
                    ratio=rates["parquet"] / rates["jsonl"],
                    compare=(
                        f"{{ratio}}× the gzip JSON-lines recorder ({rates['jsonl']:,.0f} frames/s; "
                        f"Session.feed alone {rates['Session.feed']:,.0f})"
                    ),
                )
            )
            per_parquet, per_jsonl = parquet.bytes / count, jsonl.bytes / count
            ratio = per_parquet / per_jsonl
            report.rows.append(
                Row(
                    f"{NAME}.bytes_per_{unit.replace(' ', '_')}",
                    NAME,
                    f"bytes on disk per {unit} ({count:,} {unit}s, whole dataset)",
                    per_parquet,
                    "B",
                    ratio=ratio,
                    compare=f"{{ratio}}× gzip JSON-lines ({per_jsonl:.1f} B)",
                    target=f"≤ {_TARGET_BYTES:g}×",
                    status="met" if ratio <= _TARGET_BYTES else "missed",
                )
            )
            report.data[f"record_{name}"] = {
                "frames": frames,
                "counted": count,
                "seconds": best,
                "parquet_bytes": parquet.bytes,
                "jsonl_bytes": jsonl.bytes,
                "parquet_rows": rows,
            }
            if name == "book10":
                levels = rows.get("book_updates", 0)
                report.details.append(
                    f"- book10: {frames:,} update frames are {levels:,} level rows in `book_updates` "
                    f"({parquet.bytes / max(levels, 1):.1f} B a level, whole dataset)."
                )


# -- VWAP --------------------------------------------------------------------------------


def pandas_vwap(frame: pd.DataFrame) -> pd.Series:
    """The 1-minute VWAP of a trades frame (float64 price and qty), indexed by the minute."""
    minute = frame["time"].dt.floor("1min")
    sums = pd.DataFrame({"notional": frame["price"] * frame["qty"], "qty": frame["qty"]})
    sums = sums.groupby(minute).sum()
    return sums["notional"] / sums["qty"]


def _loaded_frame(root: Path) -> pd.DataFrame:
    """The dataset's trades of :data:`SYMBOL` read into pandas as a pandas user would (decimals as floats)."""
    table = pq.read_table(
        root / "trades", columns=["time", "price", "qty"], filters=[("symbol", "=", encode_symbol(SYMBOL))]
    )
    for name in ("price", "qty"):
        table = table.set_column(table.schema.get_field_index(name), name, pc.cast(table[name], pa.float64()))
    return table.to_pandas()


def check_vwap(duck: pd.DataFrame, pandas: pd.Series, what: str) -> None:
    minutes = pandas.index.as_unit("ns").asi8
    if not np.array_equal(duck["minute_ns"].to_numpy(), minutes):
        raise RuntimeError(f"DuckDB and {what} disagree on the minutes")
    if not np.allclose(duck["vwap"].to_numpy(), pandas.to_numpy(), rtol=1e-9, atol=0):
        raise RuntimeError(f"DuckDB and {what} disagree on the VWAP")


def _vwap(settings: Settings, report: Report) -> None:
    root, records = cached_dataset(settings)
    frame = float_frame(records)
    del records
    frame_bytes = int(frame.memory_usage(deep=True).sum())
    dataset_bytes = sum(p.stat().st_size for p in root.rglob("*.parquet"))
    files = sum(1 for _ in root.rglob("*.parquet"))
    rounds = max(settings.rounds, 2)
    best = {"duckdb": np.inf, "pandas": np.inf, "load": np.inf}
    peaks = dict.fromkeys(best, 0)
    answers: dict[str, Any] = {}
    with History(root, memory_limit=_MEMORY_LIMIT) as history:
        runs: dict[str, Callable[[], Any]] = {
            "duckdb": lambda: history.sql(VWAP_SQL, {"symbol": SYMBOL}, exact=False),
            "pandas": lambda: pandas_vwap(frame),
            "load": lambda: pandas_vwap(_loaded_frame(root)),
        }
        for round_ in range(rounds):
            for name, call in runs.items():
                if name == "load" and round_ >= 2:
                    continue  # the slow one: two rounds are enough
                answers[name], seconds, peak = peak_rss(call)
                best[name] = min(best[name], seconds)
                peaks[name] = max(peaks[name], peak)
        candles, candles_s, candles_peak = peak_rss(lambda: history.candles(SYMBOL, 1, source="trades"))
    check_vwap(answers["duckdb"], answers["pandas"], "pandas")
    check_vwap(answers["duckdb"], answers["load"], "pandas reading the dataset")
    if len(candles) != len(answers["pandas"]):
        raise RuntimeError("History.candles(source='trades') and pandas disagree on the minutes")
    count = len(frame)
    speedup = best["pandas"] / best["duckdb"]
    pandas_peak = frame_bytes + peaks["pandas"]
    pandas_ms = best["pandas"] * 1e3
    report.rows += [
        Row(
            f"{NAME}.vwap_duckdb",
            NAME,
            f"1-minute VWAP of {count:,} trades: DuckDB over the dataset (History.sql)",
            best["duckdb"] * 1e3,
            "ms",
            ratio=speedup,
            compare=f"pandas over the rows in memory takes {{ratio}}× as long ({pandas_ms:,.0f} ms)",
            target=f"≥ {_TARGET_SPEED:g}×",
            status="met" if speedup >= _TARGET_SPEED else "missed",
        ),
        Row(
            f"{NAME}.vwap_duckdb_memory",
            NAME,
            f"that DuckDB query: peak resident memory rise (memory_limit {_MEMORY_LIMIT})",
            peaks["duckdb"] / _MB,
            "MB",
            ratio=peaks["duckdb"] / pandas_peak,
            compare="{ratio}× pandas' peak (its frame and its work)",
            target=f"≤ {_MEMORY_LIMIT}",
            status="met" if peaks["duckdb"] <= _MEMORY_BOUND else "missed",
        ),
        Row(
            f"{NAME}.vwap_pandas_memory",
            NAME,
            "pandas over the rows in memory: the frame plus its work's peak",
            pandas_peak / _MB,
            "MB",
            note=f"frame {frame_bytes / _MB:,.0f} MB + work {peaks['pandas'] / _MB:,.0f} MB",
        ),
        Row(
            f"{NAME}.vwap_pandas_load",
            NAME,
            "pandas reading the dataset (pyarrow) and then grouping",
            best["load"] * 1e3,
            "ms",
            ratio=best["load"] / best["duckdb"],
            compare="{ratio}× the DuckDB query",
            note=f"peak rise {peaks['load'] / _MB:,.0f} MB",
        ),
        Row(
            f"{NAME}.candles_from_trades",
            NAME,
            f"History.candles(interval=1, source='trades'): OHLC, volume, vwap of {count:,} trades",
            candles_s * 1e3,
            "ms",
            ratio=candles_s / best["duckdb"],
            compare="{ratio}× the VWAP query",
            note=f"peak rise {candles_peak / _MB:,.0f} MB",
        ),
    ]
    report.details.append(
        f"- VWAP dataset: {count:,} trades of {SYMBOL} over {settings.vwap_span_s / 3600:g} h "
        f"in {files} parts "
        f"(one per 300 s roll), {dataset_bytes / _MB:,.1f} MB ({dataset_bytes / count:.1f} B a trade); "
        f"{len(answers['pandas']):,} minutes."
    )
    report.data["vwap"] = {
        "trades": count,
        "files": files,
        "dataset_bytes": dataset_bytes,
        "frame_bytes": frame_bytes,
        "seconds": best,
        "peak_rise_bytes": peaks,
        "candles_seconds": candles_s,
        "candles_peak_bytes": candles_peak,
    }


def run(settings: Settings) -> Report:
    """Measure recording throughput and bytes of both formats, then the VWAP query of both engines."""
    report = Report(NAME)
    _recording(settings, report)
    _vwap(settings, report)
    return report
