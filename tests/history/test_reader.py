"""The reader on bad and awkward input, bounds, re-aggregated candles, and a dataset still being written."""

from __future__ import annotations

import logging
import shutil
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from kraken_nb import DatasetError, History, InvalidParams
from kraken_nb.core.buffers import CandleBuffer, TickerBuffer, TradeBuffer
from kraken_nb.history.layout import decode_symbol, encode_symbol

from .helpers import SYMBOLS, parts, simulated, wait_for

TABLES = ("trades", "ticker", "candles", "book_updates", "book_snapshots", "instruments")


@pytest.fixture
def copy(recorded: dict[str, Any], tmp_path: Path) -> Path:
    """A copy of the recorded dataset, free to damage."""
    target = tmp_path / "copy"
    shutil.copytree(recorded["root"], target)
    return target


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist") as raised:
        History(tmp_path / "nowhere")
    assert raised.value.path == tmp_path / "nowhere"
    (tmp_path / "file").write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        History(tmp_path / "file")


@pytest.mark.parametrize("exact", [True, False])
def test_a_symbol_never_recorded_gives_empty_frames_with_the_live_columns(
    recorded: dict[str, Any], tmp_path: Path, exact: bool
) -> None:
    empty_dataset = tmp_path / "empty"
    empty_dataset.mkdir()
    expected = {
        "trades": TradeBuffer().to_frame("NEVER/USD", exact=exact),
        "ticker": TickerBuffer().to_frame("NEVER/USD", exact=exact),
        "candles": CandleBuffer().to_frame("NEVER/USD", exact=exact),
    }
    for root in (recorded["root"], empty_dataset):
        with History(root) as history:
            frames = {
                "trades": history.trades("NEVER/USD", exact=exact),
                "ticker": history.ticker("NEVER/USD", exact=exact),
                "candles": history.candles("NEVER/USD", 1, exact=exact, source="ohlc"),
            }
            for name, frame in frames.items():
                assert frame.empty
                assert list(frame.columns) == list(expected[name].columns), name
                assert [str(t) for t in frame.dtypes] == [str(t) for t in expected[name].dtypes], name
            aggregated = history.candles("NEVER/USD", 5, exact=exact)
            assert aggregated.empty and list(aggregated.columns) == list(expected["candles"].columns)
            assert history.book_at("NEVER/USD", pd.Timestamp.now(tz="UTC")) is None
            for table in TABLES:  # every view exists, with its columns, even with no file behind it
                assert "symbol" in history.sql(f"SELECT * FROM {table} LIMIT 0").columns


def test_damaged_parts_are_skipped_with_a_warning_naming_each(
    copy: Path, recorded: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    files = parts(copy, "trades")
    truncated, corrupt = files[0], files[-1]
    lost = pq.read_metadata(truncated).num_rows + pq.read_metadata(corrupt).num_rows
    truncated.write_bytes(truncated.read_bytes()[:200])  # a copy cut short
    data = corrupt.read_bytes()
    corrupt.write_bytes(data[: len(data) - 40] + b"\xa5" * 32 + data[-8:])  # a damaged footer, magic intact
    total = sum(len(recorded["live"][("trades", symbol, False)]) for symbol in SYMBOLS)
    with caplog.at_level(logging.WARNING), History(copy) as history:
        trades = history.trades()
        assert sorted(history.skipped) == sorted([truncated.resolve(), corrupt.resolve()])
        again = history.sql("SELECT count(*) AS n FROM trades")["n"].iloc[0]
    assert len(trades) == again == total - lost
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(str(truncated.resolve()) in message for message in warned)
    assert any(str(corrupt.resolve()) in message for message in warned)


def test_start_and_end_bound_the_receive_time(recorded: dict[str, Any]) -> None:
    live = recorded["live"][("trades", "BTC/USD", True)]
    start, end = live["received"].iloc[10], live["received"].iloc[60]
    with History(recorded["root"]) as history:
        window = history.trades("BTC/USD", start=start, end=end, exact=True)
        naive = history.trades("BTC/USD", start=start.tz_localize(None).isoformat(), exact=True)
        as_ns = history.trades("BTC/USD", end=int(end.value), exact=True)
        ticks = history.ticker("BTC/USD", start=start, end=end)
        with pytest.raises(InvalidParams, match="start"):
            history.trades("BTC/USD", start="not a time")
        with pytest.raises(InvalidParams, match="start"):
            history.trades("BTC/USD", start=True)
    expected = live[(live["received"] >= start) & (live["received"] < end)].reset_index(drop=True)
    pd.testing.assert_frame_equal(window.astype({"symbol": str}), expected.astype({"symbol": str}))
    assert len(naive) == (live["received"] >= start).sum()
    assert len(as_ns) == (live["received"] < end).sum()
    assert ticks["received"].between(start, end, inclusive="left").all()


@pytest.mark.parametrize("interval", [1, "2min", pd.Timedelta(minutes=3)])
def test_candles_aggregated_from_trades_inside_duckdb(recorded: dict[str, Any], interval: Any) -> None:
    """Open, high, low, close, VWAP, count and volume per bucket, as pandas computes them from the trades."""
    minutes = pd.Timedelta(interval).seconds // 60 if not isinstance(interval, int) else interval
    with History(recorded["root"]) as history:
        for symbol in SYMBOLS:
            candles = history.candles(symbol, interval, exact=True, source="trades")
            trades = history.trades(symbol, exact=True)
            buckets = trades["time"].dt.floor(f"{minutes}min")
            assert len(candles) == buckets.nunique() >= 1
            scale = trades["price"].dtype.pyarrow_dtype.scale
            for (begin, group), (_, row) in zip(trades.groupby(buckets), candles.iterrows(), strict=True):
                prices, qtys = group["price"].tolist(), group["qty"].tolist()
                assert row["interval_begin"] == begin and row["interval"] == minutes
                assert (row["open"], row["close"]) == (prices[0], prices[-1])
                assert (row["high"], row["low"]) == (max(prices), min(prices))
                assert row["trades"] == len(group) and row["volume"] == sum(qtys)
                vwap = sum(p * q for p, q in zip(prices, qtys, strict=True)) / sum(qtys)
                assert row["vwap"] == vwap.quantize(Decimal(1).scaleb(-scale), ROUND_HALF_EVEN)
                assert row["time"] == group["time"].max() and row["received"] == group["received"].max()
            assert list(candles.columns) == list(CandleBuffer().to_frame().columns)
            floats = history.candles(symbol, interval, source="trades")
            assert floats["vwap"].dtype == "float64"
            assert floats["vwap"].tolist() == [float(v) for v in candles["vwap"]]


def test_candles_refuse_what_they_cannot_do(recorded: dict[str, Any]) -> None:
    with History(recorded["root"]) as history:
        with pytest.raises(InvalidParams, match="whole number of minutes"):
            history.candles("BTC/USD", "30s")
        with pytest.raises(InvalidParams, match="source"):
            history.candles("BTC/USD", 1, source="magic")
        with pytest.raises(InvalidParams, match="interval"):
            history.candles("BTC/USD", source="trades")
        with pytest.raises(InvalidParams, match="interval"):
            history.candles("BTC/USD", 0)


def test_sql_gives_exact_decimals_or_floats_and_takes_parameters(recorded: dict[str, Any]) -> None:
    live = recorded["live"][("trades", "DOGE/USD", True)]
    query = "SELECT qty, received FROM trades WHERE symbol = $symbol ORDER BY received, seq"
    with History(recorded["root"]) as history:
        exact = history.sql(query, {"symbol": "DOGE/USD"})
        floats = history.sql(query, {"symbol": "DOGE/USD"}, exact=False)
        positional = history.sql("SELECT count(*) AS n FROM trades WHERE symbol = ?", ["DOGE/USD"])
    assert exact["qty"].tolist() == live["qty"].tolist()
    assert str(exact["received"].dtype) == "datetime64[ns, UTC]"
    assert floats["qty"].tolist() == recorded["live"][("trades", "DOGE/USD", False)]["qty"].tolist()
    assert positional["n"].iloc[0] == len(live)


def test_a_history_sees_what_a_running_recorder_adds(tmp_path: Path) -> None:
    with simulated() as client:
        recorder = client.record_to(tmp_path, roll_seconds=0.2)
        client.subscribe("trade", ["BTC/USD"])
        wait_for(lambda: parts(tmp_path, "trades"))
        with History(tmp_path) as history:
            first = len(history.trades())
            assert history.symbols["trades"] == ["BTC/USD"]
            client.subscribe("trade", ["ETH/USD"])  # a new symbol folder appears
            wait_for(lambda: len(history.trades()) > first and "ETH/USD" in history.symbols["trades"])
            assert not history.skipped
        recorder.stop()


@pytest.mark.parametrize("symbol", ["BTC/USD", "ETH2.S/ETH", "A-B/USD", "X%Y/Z", "ÄÖ/€", "NOSLASH"])
def test_symbol_folder_names_map_back_to_exactly_one_symbol(symbol: str) -> None:
    value = encode_symbol(symbol)
    assert decode_symbol(value) == symbol
    assert "/" not in value and set(value) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%"
    )
    assert encode_symbol("BTC/USD") == "BTC-USD"
