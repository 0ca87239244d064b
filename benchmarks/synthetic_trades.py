"""Millions of synthetic trades of one pair: as a recorder's Parquet dataset, and as the live float frame.

The trades are seeded random numbers shaped like a busy market: times spread
over ``span`` seconds across a UTC midnight, a price random walk on the pair's
tick, log-normal quantities, buy/sell and limit/market at random, consecutive
trade ids, and receive times 20-80 ms after the trade. They are stored as the
:class:`~kraken_nb.core.buffers.TradeBuffer` holds rows, so the same records
give both contenders their input:

* the dataset, written as the recorder writes it: one part per 300 s of
  receive time (the default roll), converted by the recorder's own
  :func:`~kraken_nb.history.tables.column_table` and written by its
  :class:`~kraken_nb.history.files.PartWriter`;
* the frame ``client.trades()`` would hold (float64 prices and quantities).

The dataset is cached in the corpus folder, keyed by size, span, seed and a
hash of the code that writes it.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

import kraken_nb.history as history_package
from benchmarks.settings import Settings
from kraken_nb.core.buffers import TradeBuffer
from kraken_nb.history.files import PartWriter
from kraken_nb.history.layout import NS_PER_DAY, day_of
from kraken_nb.history.recorder import DEFAULT_ROLL_SECONDS
from kraken_nb.history.tables import column_table
from kraken_nb.simulator.pairs import PAIR_SPECS

__all__ = ["SYMBOL", "cached_dataset", "float_frame", "synthetic_records"]

SYMBOL = "BTC/USD"
_MIDNIGHT_NS = 1_735_689_600 * 1_000_000_000
"""2025-01-01T00:00:00Z: the span is centred on it."""
_CATEGORIES = {"symbol": [SYMBOL], "side": ["buy", "sell"], "ord_type": ["limit", "market"]}
_WRITERS = ("files.py", "tables.py", "layout.py")
_COMPLETE = "complete"


def synthetic_records(count: int, span_s: int, seed: int) -> np.ndarray:
    """``count`` trades of :data:`SYMBOL` in the trade buffer's storage dtype, in arrival order."""
    spec = PAIR_SPECS[SYMBOL]
    rng = np.random.default_rng(seed)
    start = _MIDNIGHT_NS - span_s * 1_000_000_000 // 2
    times = np.sort(rng.integers(start, start + span_s * 1_000_000_000, count))
    received = times + rng.integers(20_000_000, 80_000_000, count)
    order = np.argsort(received, kind="stable")
    tick = 10.0**-spec.price_precision
    walk = np.cumsum(rng.integers(-3, 4, count)) * tick
    lot = 10.0**-spec.qty_precision
    records = np.zeros(count, TradeBuffer().stored_rows([])[0].dtype)
    records["time"] = times
    records["received"] = received
    records["price"] = np.round(64_000.0 + walk, spec.price_precision)
    records["qty"] = np.maximum(np.round(rng.lognormal(-4.0, 1.5, count), spec.qty_precision), lot)
    records["side"] = rng.integers(0, 2, count)
    records["ord_type"] = rng.random(count) < 0.2
    records["trade_id"] = np.arange(1, count + 1)
    return records[order]


def float_frame(records: np.ndarray) -> pd.DataFrame:
    """The frame ``client.trades()`` would hold for these rows (float64 prices and quantities)."""
    return TradeBuffer().rows_frame(records, _CATEGORIES)


def _write(records: np.ndarray, root: Path) -> int:
    """Write ``records`` as a recorder does, one part per roll interval; return the bytes written."""
    spec = PAIR_SPECS[SYMBOL]
    scales = {"price": spec.price_precision, "qty": spec.qty_precision, "percent": 2}
    buffer = TradeBuffer()
    writer = PartWriter(root)
    roll = int(DEFAULT_ROLL_SECONDS * 1e9)
    received = records["received"]
    edges = np.arange(received[0] - received[0] % roll, received[-1] + roll + 1, roll)
    bounds = np.searchsorted(received, edges)
    for low, high in itertools.pairwise(bounds):
        if low == high:
            continue
        rows = column_table(
            buffer, records[low:high], _CATEGORIES, {}, scales, np.arange(low, high, dtype=np.int64)
        )
        days = received[low:high] // NS_PER_DAY
        for day in np.unique(days):
            chosen = rows if days[0] == days[-1] else rows.filter(pa.array(days == day))
            writer.write("trades", SYMBOL, day_of(int(day) * NS_PER_DAY), chosen)
    return writer.bytes


def _writer_hash() -> str:
    folder = Path(history_package.__file__).parent
    digest = hashlib.sha1(Path(__file__).read_bytes())
    for name in _WRITERS:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:10]


def cached_dataset(settings: Settings) -> tuple[Path, np.ndarray]:
    """The dataset of ``settings.vwap_trades`` synthetic trades (written once, cached) and their records."""
    count, span = settings.vwap_trades, settings.vwap_span_s
    stem = f"vwap-n{count}-s{span}-seed{settings.seed}"
    root = settings.corpus_dir / f"{stem}-{_writer_hash()}"
    records = synthetic_records(count, span, settings.seed)
    for stale in settings.corpus_dir.glob(f"{stem}-*"):
        if stale != root:
            shutil.rmtree(stale, ignore_errors=True)
    if not (root / _COMPLETE).exists():
        shutil.rmtree(root, ignore_errors=True)
        _write(records, root)
        (root / _COMPLETE).write_text(f"{count} trades\n")
    return root, records
