"""Columnar buffers: dtypes, growth, max_rows, trade dedupe and gaps, candle upserts, caching, slicing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kraken_nb.core.buffers import (
    BookTopBuffer,
    CandleBuffer,
    ColumnarBuffer,
    DepthBuffer,
    TickerBuffer,
    TradeBuffer,
    TradeGap,
)
from kraken_nb.core.timestamps import format_rfc3339_ns, parse_rfc3339_ns
from kraken_nb.errors import InvalidParams, MalformedMessage

pytestmark = pytest.mark.timeout(30)

BASE = datetime(2023, 9, 25, 9, 4, 31, 742599, tzinfo=UTC)
UTC_NS = "datetime64[ns, UTC]"


def stamp(ms: int) -> str:
    """An RFC3339 text ``ms`` milliseconds after BASE, in Kraken's 6-digit style."""
    return (BASE + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stamp_ns(ms: int) -> int:
    delta = BASE + timedelta(milliseconds=ms) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def trade(trade_id: int, symbol: str = "BTC/USD", price: Any = None, **extra: Any) -> dict[str, Any]:
    row = {
        "symbol": symbol,
        "side": "buy" if trade_id % 2 else "sell",
        "price": Decimal(26000) + Decimal(trade_id) / 10 if price is None else price,
        "qty": Decimal("0.00011621"),
        "ord_type": "limit" if trade_id % 3 else "market",
        "trade_id": trade_id,
        "timestamp": stamp(trade_id),
    }
    row.update(extra)
    return row


def ticker(symbol: str, price: float, **extra: Any) -> dict[str, Any]:
    row = {
        "symbol": symbol,
        "bid": price - 1,
        "bid_qty": Decimal("1.5"),
        "ask": price + 1,
        "ask_qty": Decimal("2.5"),
        "last": price,
        "volume": Decimal("100.25"),
        "vwap": price - 0.5,
        "low": price - 10,
        "high": price + 10,
        "change": Decimal("12.5"),
        "change_pct": Decimal("0.05"),
    }
    row.update(extra)
    return row


def candle(minute: int, close: float, symbol: str = "BTC/USD", interval: int = 1, trades: int = 3) -> dict:
    return {
        "symbol": symbol,
        "open": close - 1,
        "high": close + 2,
        "low": close - 2,
        "close": close,
        "vwap": close - 0.25,
        "trades": trades,
        "volume": Decimal("1.25"),
        "interval_begin": (BASE.replace(second=0, microsecond=0) + timedelta(minutes=minute)).strftime(
            "%Y-%m-%dT%H:%M:%S.000000000Z"
        ),
        "interval": interval,
        "timestamp": stamp(minute * 60_000 + 5),
    }


def fill(buffer: ColumnarBuffer, count: int, symbols: tuple[str, ...] = ("BTC/USD",)) -> None:
    """Append ``count`` rows to any buffer kind, cycling through ``symbols``."""
    for i in range(count):
        symbol = symbols[i % len(symbols)]
        if isinstance(buffer, TradeBuffer):
            buffer.append(trade(i, symbol))
        elif isinstance(buffer, TickerBuffer):
            buffer.append(ticker(symbol, 100.0 + i), received_ns=i)
        elif isinstance(buffer, CandleBuffer):
            buffer.append(candle(i, 100.0 + i, symbol))
        elif isinstance(buffer, BookTopBuffer):
            buffer.append(symbol, i, i + 1, 100.0 + i, 1.0, 101.0 + i, 2.0, True)
        elif isinstance(buffer, DepthBuffer):
            buffer.append(symbol, i, i + 1, [100.0 + i], [1.0], [101.0 + i], [2.0])


# -- dtypes ---------------------------------------------------------------------------

EXPECTED_DTYPES: dict[type[ColumnarBuffer], dict[str, str]] = {
    TradeBuffer: {
        "time": UTC_NS,
        "symbol": "category",
        "side": "category",
        "price": "float64",
        "qty": "float64",
        "ord_type": "category",
        "trade_id": "int64",
        "received": UTC_NS,
    },
    TickerBuffer: {
        "time": UTC_NS,
        "symbol": "category",
        **dict.fromkeys(
            [
                "bid",
                "bid_qty",
                "ask",
                "ask_qty",
                "last",
                "volume",
                "vwap",
                "low",
                "high",
                "change",
                "change_pct",
            ],
            "float64",
        ),
        "received": UTC_NS,
    },
    CandleBuffer: {
        "symbol": "category",
        "interval": "int64",
        "interval_begin": UTC_NS,
        **dict.fromkeys(["open", "high", "low", "close", "vwap"], "float64"),
        "trades": "int64",
        "volume": "float64",
        "time": UTC_NS,
        "received": UTC_NS,
    },
    BookTopBuffer: {
        "time": UTC_NS,
        "symbol": "category",
        **dict.fromkeys(["bid", "bid_qty", "ask", "ask_qty", "mid", "spread"], "float64"),
        "valid": "bool",
        "received": UTC_NS,
    },
    DepthBuffer: {
        "time": UTC_NS,
        "symbol": "category",
        "side": "category",
        "price": "float64",
        "qty": "float64",
        "received": UTC_NS,
    },
}


@pytest.mark.parametrize("kind", list(EXPECTED_DTYPES), ids=lambda kind: kind.__name__)
@pytest.mark.parametrize("rows", [0, 5])
def test_columns_and_dtypes(kind: type[ColumnarBuffer], rows: int) -> None:
    buffer = kind()
    fill(buffer, rows, ("BTC/USD", "ETH/USD"))
    frame = buffer.to_frame()
    assert {name: str(dtype) for name, dtype in frame.dtypes.items()} == EXPECTED_DTYPES[kind]
    assert list(frame.columns) == list(EXPECTED_DTYPES[kind])
    assert isinstance(frame.index, pd.RangeIndex)
    assert len(frame) == len(buffer) == (rows if kind is not DepthBuffer else 2 * rows)
    for sliced in (buffer.to_frame(symbol="BTC/USD"), buffer.to_frame(last=2), buffer.to_frame("XX/YY")):
        assert dict(sliced.dtypes) == dict(frame.dtypes)
        assert isinstance(sliced.index, pd.RangeIndex)


def test_empty_trade_frame_knows_sides_and_order_types() -> None:
    frame = TradeBuffer().to_frame()
    assert list(frame["side"].cat.categories) == ["buy", "sell"]
    assert list(frame["ord_type"].cat.categories) == ["limit", "market"]
    assert list(frame["symbol"].cat.categories) == []


# -- growth and max_rows --------------------------------------------------------------


def test_growth_past_initial_capacity_keeps_every_row_in_order() -> None:
    buffer = TradeBuffer(capacity=4)
    assert buffer.capacity == 4
    for i in range(1000):
        assert buffer.append(trade(i))
    frame = buffer.to_frame()
    assert len(frame) == len(buffer) == 1000
    assert buffer.capacity >= 1000
    assert frame["trade_id"].tolist() == list(range(1000))
    assert frame["price"].tolist() == [26000 + i / 10 for i in range(1000)]
    assert frame["time"].tolist() == [pd.Timestamp(stamp_ns(i), tz="UTC") for i in range(1000)]
    assert frame["side"].tolist() == ["buy" if i % 2 else "sell" for i in range(1000)]


@pytest.mark.parametrize("max_rows", [1, 7, 64])
def test_max_rows_keeps_newest_rows_with_bounded_capacity(max_rows: int) -> None:
    buffer = TradeBuffer(capacity=4, max_rows=max_rows)
    for i in range(1000):
        buffer.append(trade(i))
        assert len(buffer) == min(i + 1, max_rows)
        assert buffer.capacity <= 2 * max_rows
        if i % 97 == 0 or i == 999:
            ids = buffer.to_frame()["trade_id"].tolist()
            assert ids == list(range(max(0, i + 1 - max_rows), i + 1))
    assert buffer.to_frame(last=3)["trade_id"].tolist() == list(range(1000 - min(3, max_rows), 1000))


def test_max_rows_counts_levels_for_depth() -> None:
    buffer = DepthBuffer(capacity=2, max_rows=10)
    for sample in range(50):
        added = buffer.append(
            "BTC/USD", sample, None, [100.0, 99.0], [1.0, 2.0], [101.0, 102.0, 103.0], [3, 4, 5]
        )
        assert added == 5
        assert len(buffer) == min(5 * (sample + 1), 10)
        assert buffer.capacity <= 20
    frame = buffer.to_frame()
    assert frame["time"].tolist() == [pd.Timestamp(t, tz="UTC") for t in (48,) * 5 + (49,) * 5]
    assert frame["side"].tolist() == ["bid", "bid", "ask", "ask", "ask"] * 2
    assert frame["price"].tolist() == [100.0, 99.0, 101.0, 102.0, 103.0] * 2
    assert frame["qty"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0] * 2


def test_depth_sample_larger_than_max_rows_keeps_its_tail() -> None:
    buffer = DepthBuffer(max_rows=3)
    assert buffer.append("BTC/USD", 1, 2, [10.0, 9.0], [1.0, 1.0], [11.0, 12.0], [1.0, 1.0]) == 3
    assert buffer.to_frame()["price"].tolist() == [9.0, 11.0, 12.0]


def test_depth_rejects_mismatched_levels_and_bad_symbols() -> None:
    buffer = DepthBuffer()
    with pytest.raises(InvalidParams):
        buffer.append("BTC/USD", 1, 2, [10.0, 9.0], [1.0], [11.0], [1.0])
    with pytest.raises(InvalidParams):
        buffer.append(None, 1, 2, [10.0], [1.0], [11.0], [1.0])  # type: ignore[arg-type]
    assert len(buffer) == 0
    assert buffer.append("BTC/USD", 1, 2, [], [], [], []) == 0
    assert buffer.version == 0


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "10"])
def test_bad_sizes_are_rejected(bad: Any) -> None:
    with pytest.raises(InvalidParams):
        TradeBuffer(capacity=bad)
    with pytest.raises(InvalidParams):
        TradeBuffer(max_rows=bad)


# -- trades: dedupe and gaps ----------------------------------------------------------


def test_replayed_snapshot_adds_nothing() -> None:
    buffer = TradeBuffer()
    snapshot = [trade(i) for i in range(1000, 1050)]
    assert buffer.extend(snapshot) == 50
    version = buffer.version
    assert buffer.extend(snapshot) == 0
    assert len(buffer) == 50
    assert buffer.duplicates == 50
    assert buffer.version == version
    assert buffer.gaps == []
    assert buffer.last_trade_id("BTC/USD") == 1049


def test_overlapping_snapshot_after_reconnect_adds_only_new_trades() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(1000, 1050))
    buffer.append(trade(1050))
    # After a reconnect the snapshot overlaps the last 30 trades already seen.
    assert buffer.extend([trade(i) for i in range(1021, 1071)]) == 20
    assert buffer.to_frame()["trade_id"].tolist() == list(range(1000, 1071))
    assert buffer.duplicates == 30
    assert buffer.gaps == []


def test_missing_trades_record_a_gap_and_are_still_kept() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(10, 20))
    assert buffer.extend(trade(i) for i in range(25, 30)) == 5
    assert buffer.gaps == [TradeGap("BTC/USD", 19, 25, stamp_ns(25))]
    assert buffer.gaps[0].missing == 5
    assert len(buffer) == 15
    assert buffer.last_trade_id("BTC/USD") == 29


def test_a_single_missing_trade_is_a_gap() -> None:
    buffer = TradeBuffer()
    buffer.extend([trade(1), trade(2), trade(4), trade(5)])
    assert buffer.gaps == [TradeGap("BTC/USD", 2, 4, stamp_ns(4))]
    assert buffer.gaps[0].missing == 1


def test_gap_list_is_bounded_but_counted() -> None:
    class SmallGapBuffer(TradeBuffer):
        MAX_GAPS = 3

    buffer = SmallGapBuffer()
    buffer.extend(trade(i) for i in range(0, 20, 2))  # nine gaps of one missing trade each
    assert buffer.gap_count == 9
    assert [gap.before_id for gap in buffer.gaps] == [14, 16, 18]


def test_dedupe_is_per_symbol_and_first_trade_never_gaps() -> None:
    buffer = TradeBuffer()
    assert buffer.last_trade_id("ETH/USD") is None
    assert buffer.append(trade(500, "BTC/USD"))
    assert buffer.append(trade(7, "ETH/USD"))  # a lower id on another book is not a duplicate
    assert buffer.append(trade(8, "ETH/USD"))
    assert not buffer.append(trade(500, "BTC/USD"))
    assert buffer.gaps == []
    assert buffer.last_trade_id("ETH/USD") == 8
    assert buffer.symbols() == ["BTC/USD", "ETH/USD"]


def test_dedupe_survives_trimming() -> None:
    buffer = TradeBuffer(capacity=2, max_rows=5)
    snapshot = [trade(i) for i in range(50)]
    assert buffer.extend(snapshot) == 50
    assert buffer.extend(snapshot) == 0
    assert buffer.to_frame()["trade_id"].tolist() == [45, 46, 47, 48, 49]


def test_version_counters() -> None:
    buffer = TradeBuffer()
    assert (buffer.version, buffer.version_of("BTC/USD")) == (0, 0)
    buffer.append(trade(1, "BTC/USD"))
    buffer.append(trade(1, "ETH/USD"))
    buffer.append(trade(2, "ETH/USD"))
    assert buffer.version == 3
    assert buffer.version_of("BTC/USD") == 1
    assert buffer.version_of("ETH/USD") == 2
    buffer.append(trade(2, "ETH/USD"))  # duplicate: nothing changed
    assert buffer.version == 3
    assert buffer.version_of("ETH/USD") == 2
    assert buffer.version_of("SOL/USD") == 0


# -- conversions and malformed rows ---------------------------------------------------


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        (Decimal("26000.1"), 26000.1),
        ("26000.1", 26000.1),
        (26000.1, 26000.1),
        (26000, 26000.0),
        (Decimal("0.00011621"), 0.00011621),
        ("0.00011621", 0.00011621),
    ],
)
def test_number_kinds_give_the_same_float(price: Any, expected: float) -> None:
    buffer = TradeBuffer()
    buffer.append(trade(1, price=price, qty=price))
    assert buffer.to_frame()["price"].tolist() == [expected]
    assert buffer.to_frame()["qty"].tolist() == [expected]
    tickers = TickerBuffer()
    tickers.append(ticker("BTC/USD", 1.0, last=price), received_ns=1)
    assert tickers.to_frame()["last"].tolist() == [expected]
    candles = CandleBuffer()
    candles.append({**candle(0, 1.0), "close": price})
    assert candles.to_frame()["close"].tolist() == [expected]


@pytest.mark.parametrize(
    "row",
    [
        {k: v for k, v in trade(1).items() if k != "price"},
        trade(1, price="abc"),
        trade(1, timestamp="2023-09-25 09:04:31Z"),
        {**trade(1), "trade_id": "12"},
        {**trade(1), "symbol": None},
        {**trade(1), "symbol": ""},
        trade(1, side=["buy"]),
        "not a row",
    ],
)
def test_malformed_trade_rows_raise_and_add_nothing(row: Any) -> None:
    buffer = TradeBuffer()
    buffer.append(trade(0))
    with pytest.raises(MalformedMessage):
        buffer.extend([trade(1), row])
    assert len(buffer) == 1
    assert buffer.version == 1
    assert buffer.last_trade_id("BTC/USD") == 0


def test_malformed_ticker_and_candle_rows_raise() -> None:
    with pytest.raises(MalformedMessage, match="lacks 'ask'"):
        TickerBuffer().append({k: v for k, v in ticker("X/Y", 1.0).items() if k != "ask"}, received_ns=1)
    with pytest.raises(MalformedMessage):
        CandleBuffer().append({**candle(0, 1.0), "interval_begin": "yesterday"})
    with pytest.raises(InvalidParams):
        TickerBuffer().append(ticker("X/Y", 1.0), received_ns="now")  # type: ignore[arg-type]


def test_unknown_side_values_become_new_categories() -> None:
    buffer = TradeBuffer()
    buffer.append(trade(1, side="sell", ord_type="iceberg"))
    frame = buffer.to_frame()
    assert frame["ord_type"].tolist() == ["iceberg"]
    assert list(frame["ord_type"].cat.categories) == ["limit", "market", "iceberg"]


# -- to_frame: caching, copies, slicing -----------------------------------------------


def test_full_frame_is_cached_until_the_next_append() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(10))
    first, second = buffer.to_frame(), buffer.to_frame()
    assert first is not second
    pd.testing.assert_frame_equal(first, second)
    # Served from one cached frame: the shallow copies share their data until written.
    assert np.shares_memory(first["price"].to_numpy(), second["price"].to_numpy())
    buffer.append(trade(10))
    third = buffer.to_frame()
    assert len(third) == 11
    assert len(first) == 10
    assert third["trade_id"].iloc[-1] == 10


def test_mutating_a_frame_does_not_touch_the_buffer_or_later_frames() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(10))
    expected = buffer.to_frame(symbol="BTC/USD")
    for frame in (buffer.to_frame(), buffer.to_frame(last=5), buffer.to_frame(symbol="BTC/USD")):
        frame.loc[frame.index[0], "price"] = -1.0
        frame["qty"] = 0.0
        del frame["side"]
    pd.testing.assert_frame_equal(buffer.to_frame(), expected)
    pd.testing.assert_frame_equal(buffer.to_frame(symbol="BTC/USD"), expected)


def test_frames_are_copies_not_views_of_the_storage() -> None:
    # Upserts write into existing rows and trimming moves rows: earlier frames must not see either.
    candles = CandleBuffer(capacity=2, max_rows=3)
    candles.extend(candle(i, 100.0 + i) for i in range(3))
    frames = [candles.to_frame(), candles.to_frame(symbol="BTC/USD"), candles.to_frame(last=2)]
    before = [frame.copy(deep=True) for frame in frames]
    candles.append(candle(2, 555.0))
    for i in range(3, 20):
        candles.append(candle(i, 100.0 + i))
    for frame, copy in zip(frames, before, strict=True):
        pd.testing.assert_frame_equal(frame, copy)
    trades = TradeBuffer(capacity=2, max_rows=4)
    trades.extend(trade(i) for i in range(4))
    frame = trades.to_frame(last=4)
    trades.extend(trade(i) for i in range(4, 40))
    assert frame["trade_id"].tolist() == [0, 1, 2, 3]


def test_symbol_and_last_slicing_match_a_filtered_full_frame() -> None:
    symbols = ("BTC/USD", "ETH/USD", "SOL/USD")
    rng = np.random.default_rng(7)
    buffer = TradeBuffer(capacity=8)
    ids = dict.fromkeys(symbols, 0)
    # Sparse SOL/USD trades among many others make `last` scan more than one chunk.
    picks = rng.choice(3, size=6000, p=[0.6, 0.399, 0.001])
    for pick in picks:
        symbol = symbols[pick]
        ids[symbol] += 1
        buffer.append(trade(ids[symbol], symbol))
    full = buffer.to_frame()
    for symbol in symbols:
        mine = full[full["symbol"] == symbol].reset_index(drop=True)
        pd.testing.assert_frame_equal(buffer.to_frame(symbol=symbol), mine)
        for last in (0, 1, 3, 50, 10_000):
            expected = mine.iloc[len(mine) - min(last, len(mine)) :].reset_index(drop=True)
            pd.testing.assert_frame_equal(buffer.to_frame(symbol=symbol, last=last), expected)
    pd.testing.assert_frame_equal(buffer.to_frame(last=25), full.iloc[-25:].reset_index(drop=True))
    unknown = buffer.to_frame(symbol="XX/YY", last=3)
    assert unknown.empty
    assert list(unknown.columns) == list(full.columns)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_last_is_rejected(bad: Any) -> None:
    buffer = TradeBuffer()
    buffer.append(trade(1))
    with pytest.raises(InvalidParams):
        buffer.to_frame(last=bad)
    with pytest.raises(InvalidParams):
        CandleBuffer().to_frame(last=bad)


# -- tickers --------------------------------------------------------------------------


def test_ticker_latest_holds_each_symbols_newest_values() -> None:
    buffer = TickerBuffer(max_rows=2)
    buffer.append(ticker("ETH/USD", 1600.0), received_ns=1)
    buffer.append(ticker("BTC/USD", 26000.0, vwap=None), received_ns=2)
    buffer.append(ticker("BTC/USD", 26010.0), received_ns=3)
    assert buffer.extend([ticker("BTC/USD", 26020.0), ticker("BTC/USD", 26030.0)], received_ns=4) == 2
    latest = buffer.latest()
    assert latest.index.name == "symbol"
    assert latest.index.tolist() == ["ETH/USD", "BTC/USD"]
    assert latest.loc["BTC/USD", "last"] == 26030.0
    assert latest.loc["BTC/USD", "bid"] == 26029.0
    assert latest.loc["ETH/USD", "last"] == 1600.0  # trimmed from the history, still latest
    assert latest.loc["ETH/USD", "received"] == pd.Timestamp(1, tz="UTC")
    assert latest["time"].isna().all()  # these rows carry no timestamp
    assert str(latest["time"].dtype) == str(latest["received"].dtype) == UTC_NS
    assert (latest.drop(columns=["time", "received"]).dtypes == "float64").all()
    assert buffer.to_frame()["symbol"].tolist() == ["BTC/USD", "BTC/USD"]
    assert buffer.to_frame(symbol="ETH/USD").empty
    latest.loc["ETH/USD", "last"] = 0.0
    assert buffer.latest().loc["ETH/USD", "last"] == 1600.0


def test_ticker_none_becomes_nan_and_empty_latest_has_columns() -> None:
    buffer = TickerBuffer()
    empty = buffer.latest()
    assert empty.empty
    assert list(empty.columns) == [c for c in EXPECTED_DTYPES[TickerBuffer] if c != "symbol"]
    buffer.append(ticker("BTC/USD", 1.0, vwap=None), received_ns=5)
    assert np.isnan(buffer.to_frame()["vwap"].iloc[0])
    assert np.isnan(buffer.latest().loc["BTC/USD", "vwap"])


# -- candles --------------------------------------------------------------------------


def test_candle_same_key_overwrites_new_key_appends() -> None:
    buffer = CandleBuffer()
    assert buffer.append(candle(0, 100.0))
    assert buffer.append(candle(1, 101.0))
    assert not buffer.append(candle(1, 105.0, trades=9))  # the current candle re-sent
    assert buffer.append(candle(1, 200.0, interval=5))  # same begin, other interval
    assert buffer.append(candle(1, 300.0, symbol="ETH/USD"))  # same begin, other symbol
    assert (buffer.appends, buffer.upserts, len(buffer)) == (4, 1, 4)
    frame = buffer.to_frame(symbol="BTC/USD", interval=1)
    assert frame["close"].tolist() == [100.0, 105.0]
    assert frame["trades"].tolist() == [3, 9]
    assert frame["high"].tolist() == [102.0, 107.0]
    assert buffer.to_frame(interval=5)["close"].tolist() == [200.0]
    assert buffer.to_frame(symbol="ETH/USD")["close"].tolist() == [300.0]
    assert buffer.to_frame(symbol="BTC/USD", interval=1, last=1)["close"].tolist() == [105.0]


def test_candle_upsert_bumps_versions() -> None:
    buffer = CandleBuffer()
    buffer.append(candle(0, 100.0))
    before = (buffer.version, buffer.version_of("BTC/USD"))
    cached = buffer.to_frame()
    buffer.append(candle(0, 101.0))
    assert (buffer.version, buffer.version_of("BTC/USD")) == (before[0] + 1, before[1] + 1)
    assert buffer.to_frame()["close"].tolist() == [101.0]
    assert cached["close"].tolist() == [100.0]


def test_candle_index_stays_correct_across_trimming() -> None:
    buffer = CandleBuffer(capacity=2, max_rows=4)
    for minute in range(40):
        buffer.append(candle(minute, 100.0 + minute))
        # Re-send the current and the previous candle, as Kraken does while a candle is open.
        assert not buffer.append(candle(minute, 1000.0 + minute))
        if minute >= 1:
            assert not buffer.append(candle(minute - 1, 2000.0 + minute - 1))
        assert buffer.capacity <= 8
        frame = buffer.to_frame()
        assert frame["interval_begin"].is_unique
        assert len(frame) == min(minute + 1, 4)
    frame = buffer.to_frame()
    assert frame["close"].tolist() == [2036.0, 2037.0, 2038.0, 1039.0]
    # A candle whose row was trimmed comes back as a new row, ordered by interval_begin.
    assert buffer.append(candle(30, 7.0))
    frame = buffer.to_frame()
    assert frame["close"].tolist() == [7.0, 2037.0, 2038.0, 1039.0]
    assert frame["interval_begin"].is_monotonic_increasing


def test_candle_resent_after_its_row_was_trimmed_is_appended() -> None:
    buffer = CandleBuffer(capacity=8, max_rows=4)
    buffer.extend(candle(i, 100.0 + i) for i in range(5))  # candle 0 is trimmed, not yet compacted
    assert buffer.to_frame()["close"].tolist() == [101.0, 102.0, 103.0, 104.0]
    assert buffer.append(candle(0, 7.0))
    assert buffer.to_frame()["close"].tolist() == [7.0, 102.0, 103.0, 104.0]


def test_late_old_candles_keep_each_series_chronological() -> None:
    buffer = CandleBuffer()
    buffer.extend(candle(i, 100.0 + i, symbol="BTC/USD") for i in range(5, 10))
    # A second subscription's snapshot brings older candles of another symbol, then an old BTC one.
    buffer.extend(candle(i, 50.0 + i, symbol="ETH/USD") for i in range(0, 8))
    buffer.append(candle(2, 102.0, symbol="BTC/USD"))
    frame = buffer.to_frame()
    assert frame["interval_begin"].is_monotonic_increasing
    for symbol, group in frame.groupby("symbol", observed=True):
        assert group["interval_begin"].is_monotonic_increasing, symbol
    btc = buffer.to_frame(symbol="BTC/USD")
    assert btc["close"].tolist() == [102.0, 105.0, 106.0, 107.0, 108.0, 109.0]
    assert buffer.to_frame(symbol="BTC/USD", last=2)["close"].tolist() == [108.0, 109.0]
    assert buffer.to_frame(symbol="ETH/USD", last=2)["close"].tolist() == [56.0, 57.0]
    assert isinstance(btc.index, pd.RangeIndex)


def test_candle_times_keep_nanoseconds() -> None:
    buffer = CandleBuffer()
    row = {**candle(0, 1.0), "timestamp": "2023-09-25T09:05:00.123456789Z"}
    buffer.append(row)
    frame = buffer.to_frame()
    assert frame["time"].iloc[0] == pd.Timestamp("2023-09-25T09:05:00.123456789Z")
    assert frame["interval_begin"].iloc[0] == pd.Timestamp("2023-09-25T09:04:00Z")


# -- book tops ------------------------------------------------------------------------


def test_book_top_mid_spread_and_validity() -> None:
    buffer = BookTopBuffer()
    buffer.append("BTC/USD", None, 10, 100.0, 1.0, 101.0, 2.0, True)
    buffer.append("BTC/USD", 15, 20, Decimal("100.5"), 1.0, None, None, False)
    frame = buffer.to_frame()
    assert frame["mid"].iloc[0] == 100.5
    assert frame["spread"].iloc[0] == 1.0
    assert frame["valid"].tolist() == [True, False]
    assert frame["bid"].iloc[1] == 100.5
    assert np.isnan(frame["ask"].iloc[1]) and np.isnan(frame["mid"].iloc[1])
    assert frame["received"].tolist() == [pd.Timestamp(10, tz="UTC"), pd.Timestamp(20, tz="UTC")]
    assert frame["time"].isna().tolist() == [True, False]
    assert frame["time"].iloc[1] == pd.Timestamp(15, tz="UTC")
    with pytest.raises(InvalidParams):
        buffer.append("BTC/USD", 30, 30, "x", 1.0, 2.0, 1.0, True)
    assert len(buffer) == 2


# -- timestamps -----------------------------------------------------------------------

KRAKEN_NS = int(pd.Timestamp("2023-09-25T09:04:31.742599Z").value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-25T09:04:31.742599Z", KRAKEN_NS),
        ("2023-09-25T09:04:31.742599123Z", KRAKEN_NS + 123),
        ("2023-09-25T09:04:31.742599123999Z", KRAKEN_NS + 123),
        ("2023-09-25T09:04:31Z", KRAKEN_NS - 742_599_000),
        ("2023-09-25T09:04:31.742599+00:00", KRAKEN_NS),
        ("2023-09-25T11:34:31.742599+02:30", KRAKEN_NS),
        ("2023-09-25T07:04:31.7425991-02:00", KRAKEN_NS + 100),
        ("2023-09-25T09:04:31.7z", KRAKEN_NS - 42_599_000),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_rfc3339_parsing(text: str, expected: int) -> None:
    assert parse_rfc3339_ns(text) == expected


def test_rfc3339_matches_datetime_for_six_digits() -> None:
    for ms in (0, 1, 999, 86_400_000, 10**10):
        assert parse_rfc3339_ns(stamp(ms)) == stamp_ns(ms)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2023-09-25",
        "2023-09-25 09:04:31Z",
        "2023-09-25T09:04:31",
        "2023-09-25T09:04:31.Z",
        "2023-09-25T09:04:31.1_2Z",
        "2023-09-25T09:04:31.１Z",
        "2023-09-25T09:04:31+0000",
        "2023-09-25T09:04:31+24:00",
        "2023-13-25T09:04:31Z",
        "2023-02-30T09:04:31Z",
        "20230925T090431Z",
        None,
        1695632671,
    ],
)
def test_invalid_timestamps_raise_malformed_message(text: Any) -> None:
    with pytest.raises(MalformedMessage, match="RFC3339"):
        parse_rfc3339_ns(text)


def test_rfc3339_formatting_round_trips() -> None:
    assert format_rfc3339_ns(KRAKEN_NS) == "2023-09-25T09:04:31.742599Z"
    assert format_rfc3339_ns(KRAKEN_NS + 123, digits=9) == "2023-09-25T09:04:31.742599123Z"
    assert format_rfc3339_ns(KRAKEN_NS, digits=0) == "2023-09-25T09:04:31Z"
    for ns in (0, KRAKEN_NS + 5, -1):
        assert parse_rfc3339_ns(format_rfc3339_ns(ns, digits=9)) == ns
    with pytest.raises(InvalidParams):
        format_rfc3339_ns(0, digits=10)
