"""DataFrame cost: trade appends, ``to_frame()`` (float and exact), memory per million rows, ``max_rows``.

Rows are the trade dicts ``Session.feed`` hands the buffer (decoded by
``loads_exact``: ``Decimal`` price and qty, RFC 3339 timestamp text), taken
from the generated trade corpus and repeated with consecutive per-symbol
trade ids until there are enough. The buffer knows the pairs' precisions, as
a session does once the instrument channel answered. The comparisons, measured in the same run:

* appending: the same per-row conversions appended to seven Python lists;
* ``to_frame()``: ``pd.DataFrame`` built once from those lists with the same
  dtypes (checked equal to ``to_frame()``'s result);
* ``to_frame(exact=True)``: against ``to_frame()``, both the first call after
  an append (the exact frame is checked equal to one built from Decimals);
* memory: ``tracemalloc`` of the buffer's storage (``TradeBuffer(capacity=n)``)
  against ``DataFrame.memory_usage(deep=True)``;
* ``max_rows``: the peak traced memory of a long run against its peak after
  the first fifth of it (flat memory means a ratio near 1).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections import Counter
from functools import partial
from operator import index as as_int
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.corpus import load_corpora
from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from kraken_nb.core.buffers import Precisions, TradeBuffer, decimal_array
from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.core.wire import loads_exact
from kraken_nb.simulator.pairs import PAIR_SPECS

__all__ = ["NAME", "run", "trade_rows"]

NAME = "dataframes"
_FLAT = 1.1
_RECEIVED_NS = 1_700_000_000_000_000_000
"""The receive time given to every appended trade."""


def trade_rows(settings: Settings, count: int) -> list[dict[str, Any]]:
    """``count`` decoded trade rows with consecutive trade ids per symbol (values shared, dicts not)."""
    corpus = load_corpora(settings, ["trade"])["trade"]
    templates = [row for frame in corpus.frames for row in loads_exact(frame)["data"]]
    next_id = {row["symbol"]: 1 for row in templates}
    rows: list[dict[str, Any]] = []
    for position in range(count):
        row = dict(templates[position % len(templates)])
        symbol = row["symbol"]
        row["trade_id"] = next_id[symbol]
        next_id[symbol] += 1
        rows.append(row)
    return rows


def _precisions() -> Precisions:
    """The simulator pairs' precisions, as the instrument channel gives them."""
    precisions = Precisions()
    for symbol, spec in PAIR_SPECS.items():
        precisions.set(symbol, spec.price_precision, spec.qty_precision)
    return precisions


def _append_seconds(rows: list[dict[str, Any]]) -> tuple[float, TradeBuffer]:
    buffer = TradeBuffer(precisions=_precisions())
    append = buffer.append
    received = _RECEIVED_NS
    started = time.perf_counter()
    for row in rows:
        append(row, received)
    return time.perf_counter() - started, buffer


def _lists_seconds(rows: list[dict[str, Any]]) -> tuple[float, dict[str, list[Any]]]:
    """The same conversions as the buffer's, appended to plain lists."""
    times: list[int] = []
    symbols: list[str] = []
    sides: list[str] = []
    prices: list[float] = []
    qtys: list[float] = []
    ord_types: list[str] = []
    trade_ids: list[int] = []
    started = time.perf_counter()
    for row in rows:
        times.append(parse_rfc3339_ns(row["timestamp"]))
        symbols.append(row["symbol"])
        sides.append(row["side"])
        prices.append(float(row["price"]))
        qtys.append(float(row["qty"]))
        ord_types.append(row["ord_type"])
        trade_ids.append(as_int(row["trade_id"]))
    seconds = time.perf_counter() - started
    columns = {
        "time": times,
        "symbol": symbols,
        "side": sides,
        "price": prices,
        "qty": qtys,
        "ord_type": ord_types,
        "trade_id": trade_ids,
    }
    return seconds, columns


def _frame_from_lists(columns: dict[str, list[Any]], like: pd.DataFrame) -> pd.DataFrame:
    """One ``pd.DataFrame`` from Python lists, with the dtypes (and category order) of ``like``."""

    def categorical(name: str) -> pd.Categorical:
        return pd.Categorical(columns[name], categories=like[name].cat.categories)

    return pd.DataFrame(
        {
            "time": pd.to_datetime(np.array(columns["time"], dtype=np.int64), unit="ns", utc=True),
            "symbol": categorical("symbol"),
            "side": categorical("side"),
            "price": np.array(columns["price"], dtype=np.float64),
            "qty": np.array(columns["qty"], dtype=np.float64),
            "ord_type": categorical("ord_type"),
            "trade_id": np.array(columns["trade_id"], dtype=np.int64),
            "received": pd.to_datetime(np.full(len(columns["time"]), _RECEIVED_NS), unit="ns", utc=True),
        }
    )


def _check_exact(frame: pd.DataFrame, rows: list[dict[str, Any]]) -> None:
    """The exact frame's prices and quantities are the rows' Decimals (the benchmark's answer check)."""
    for name in ("price", "qty"):
        column = frame[name]
        expected = decimal_array(
            np.zeros(len(rows)),
            {i: row[name] for i, row in enumerate(rows)},
            column.dtype.pyarrow_dtype.scale,
        )
        if not (column.array == expected).all():
            raise RuntimeError(f"to_frame(exact=True) changed {name} values")


def _exact_seconds(buffer: TradeBuffer, rows: list[dict[str, Any]]) -> tuple[float, float]:
    """First calls of ``to_frame()`` and ``to_frame(exact=True)`` after an append, best of three each."""
    extra = dict(rows[-1], trade_id=rows[-1]["trade_id"] + 1)  # the next id of its symbol
    floats, exacts = [], []
    for round_ in range(3):
        buffer.append(dict(extra, trade_id=extra["trade_id"] + 2 * round_), _RECEIVED_NS)
        floats.append(_timed(buffer.to_frame)[0])
        buffer.append(dict(extra, trade_id=extra["trade_id"] + 2 * round_ + 1), _RECEIVED_NS)
        seconds, frame = _timed(partial(buffer.to_frame, exact=True))
        exacts.append(seconds)
    _check_exact(frame.iloc[: len(rows)], rows)
    return min(floats), min(exacts)


def _timed(function: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def _warm_up(rows: list[dict[str, Any]]) -> None:
    """Run every measured path once on a few rows, so first-call costs stay out of the figures."""
    _, buffer = _append_seconds(rows)
    _, columns = _lists_seconds(rows)
    _frame_from_lists(columns, buffer.to_frame())


def _storage_bytes_per_row(rows: int) -> float:
    """Traced bytes of a ``TradeBuffer`` holding ``rows`` rows, per row."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        buffer = TradeBuffer(capacity=rows)
        size = tracemalloc.get_traced_memory()[0] - before
        del buffer
    finally:
        tracemalloc.stop()
    return size / rows


def _long_run(rows: list[dict[str, Any]], total: int, max_rows: int) -> dict[str, float]:
    """Append ``total`` rows to a ``max_rows`` buffer under ``tracemalloc``: peaks early and overall."""
    per_symbol = Counter(row["symbol"] for row in rows)
    passes = -(-total // len(rows))
    # every pass's trade ids exist before tracing starts, so swapping them in allocates nothing
    ids = [[row["trade_id"] + k * per_symbol[row["symbol"]] for row in rows] for k in range(passes)]
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        buffer = TradeBuffer(max_rows=max_rows)
        append = buffer.append
        done = 0
        early_peak = 0
        started = time.perf_counter()
        for pass_ids in ids:
            for row, trade_id in zip(rows, pass_ids, strict=True):
                if done == total:
                    break
                row["trade_id"] = trade_id
                append(row)
                done += 1
            if not early_peak and done >= total // 5:
                early_peak = tracemalloc.get_traced_memory()[1] - base
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] - base
        kept = len(buffer)
    finally:
        tracemalloc.stop()
        for row, trade_id in zip(rows, ids[0], strict=True):
            row["trade_id"] = trade_id
    return {"peak": peak, "early_peak": early_peak or peak, "kept": kept, "seconds": seconds, "rows": done}


def run(settings: Settings) -> Report:
    """Measure appends, ``to_frame()``, memory and a bounded long run."""
    report = Report(NAME)
    count = settings.trade_rows
    rows = trade_rows(settings, count)
    _warm_up(rows[:2_000])
    gc.collect()
    append_s, buffer = _append_seconds(rows)
    lists_s, columns = _lists_seconds(rows)
    if len(buffer) != count:
        raise RuntimeError(f"the buffer kept {len(buffer)} of {count} trades")
    frame_s, frame = _timed(buffer.to_frame)
    cached_s, _ = _timed(buffer.to_frame)
    lists_frame_s, from_lists = _timed(partial(_frame_from_lists, columns, frame))
    pd.testing.assert_frame_equal(frame, from_lists)
    frame_bytes = float(frame.memory_usage(deep=True).sum())
    storage = _storage_bytes_per_row(count)
    del columns, from_lists, frame
    float_s, exact_s = _exact_seconds(buffer, rows)
    long_total, max_rows = settings.long_run_rows, settings.long_run_max_rows
    long = _long_run(rows, long_total, max_rows)
    if long["kept"] != max_rows:
        raise RuntimeError(f"max_rows={max_rows} kept {long['kept']} rows")
    million = 1_000_000
    report.rows = [
        Row(
            f"{NAME}.append",
            NAME,
            f"TradeBuffer.append, {count:,} decoded trades (amortised)",
            append_s / count * 1e6,
            "µs/row",
            ratio=append_s / lists_s,
            compare="{ratio}× the same conversions appended to Python lists",
        ),
        Row(
            f"{NAME}.to_frame",
            NAME,
            f"to_frame() of {count:,} trades (first call after the appends)",
            frame_s * 1e3,
            "ms",
            ratio=frame_s / lists_frame_s,
            compare="{ratio}× the time of pd.DataFrame built once from Python lists",
        ),
        Row(
            f"{NAME}.to_frame_cached",
            NAME,
            f"to_frame() of {count:,} trades again, unchanged buffer (cached)",
            cached_s * 1e3,
            "ms",
            ratio=cached_s / frame_s,
            compare="{ratio}× the first call",
        ),
        Row(
            f"{NAME}.to_frame_exact",
            NAME,
            f"to_frame(exact=True) of {count:,} trades (decimal128 price and qty, first call)",
            exact_s * 1e3,
            "ms",
            ratio=exact_s / float_s,
            compare=f"{{ratio}}× to_frame() ({float_s * 1e3:.1f} ms), first call after an append",
        ),
        Row(
            f"{NAME}.memory",
            NAME,
            "TradeBuffer storage per 1M trade rows (tracemalloc)",
            storage * million / 1e6,
            "MB",
            ratio=storage * count / frame_bytes,
            compare="{ratio}× the DataFrame's memory_usage(deep=True)",
            note="doubling growth can hold up to 2× this",
        ),
        Row(
            f"{NAME}.max_rows_peak",
            NAME,
            f"max_rows={max_rows:,}, {long['rows']:,} appends: peak traced memory",
            long["peak"] / 1e6,
            "MB",
            ratio=long["peak"] / long["early_peak"],
            compare=f"{{ratio}}× the peak after the first {long_total // 5:,} appends",
            target=f"≤ {_FLAT:g}× (flat)",
            status="met" if long["peak"] <= _FLAT * long["early_peak"] else "missed",
            note=f"unbounded storage would need {storage * long_total / 1e6:,.0f} MB",
        ),
    ]
    report.data = {
        "rows": count,
        "append_s": append_s,
        "lists_append_s": lists_s,
        "to_frame_s": frame_s,
        "to_frame_cached_s": cached_s,
        "to_frame_float_after_append_s": float_s,
        "to_frame_exact_s": exact_s,
        "frame_from_lists_s": lists_frame_s,
        "frame_bytes": frame_bytes,
        "storage_bytes_per_row": storage,
        "long_run": long,
    }
    return report
