"""The buffers' write log and the frames of rows copied out of them (what the Parquet recorder uses)."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd

from kraken_nb.core.buffers import TICKER_FIELDS, CandleBuffer, Precisions, TickerBuffer, TradeBuffer


def trade(trade_id: int, qty: object = 0.5) -> dict[str, object]:
    return {
        "symbol": "DOGE/USD",
        "side": "sell",
        "price": 0.1612335,
        "qty": qty,
        "ord_type": "market",
        "trade_id": trade_id,
        "timestamp": "2024-01-01T00:00:00.000001Z",
    }


def test_the_log_is_off_until_asked_and_lists_each_write_once() -> None:
    buffer = TradeBuffer()
    buffer.append(trade(1), 10)
    assert not buffer.logging_writes and not buffer.take_writes()
    buffer.log_writes()
    buffer.append(trade(2), 11)
    buffer.append(trade(2), 12)  # a duplicate: not written
    buffer.append(trade(3, Decimal("92146638.43575985")), 13)
    log = buffer.take_writes()
    assert log.serials == [1, 2]
    assert [(serial, name) for serial, name, _ in log.exact] == [(2, "qty")]
    assert not buffer.take_writes()
    buffer.log_writes(False)
    buffer.append(trade(4), 14)
    assert not buffer.take_writes()


def test_copied_rows_make_the_same_frames_as_the_buffer() -> None:
    precisions = Precisions()
    precisions.set("DOGE/USD", 7, 8)
    buffer = TradeBuffer(precisions=precisions)
    buffer.log_writes()
    for trade_id in range(1, 6):
        buffer.append(trade(trade_id, Decimal("92146638.43575985") if trade_id == 3 else 0.25), trade_id)
    log = buffer.take_writes()
    records, serials = buffer.stored_rows(log.serials)
    exact = {"qty": {serials.tolist().index(serial): value for serial, _, value in log.exact}}
    scales = {kind: precisions.scale(kind, ["DOGE/USD"]) for kind in ("price", "qty", "percent")}
    pd.testing.assert_frame_equal(buffer.rows_frame(records, buffer.categories()), buffer.to_frame())
    pd.testing.assert_frame_equal(
        buffer.rows_frame(records, buffer.categories(), exact, scales), buffer.to_frame(exact=True)
    )


def test_rows_dropped_by_max_rows_are_left_out_of_a_copy() -> None:
    buffer = TradeBuffer(max_rows=2)
    buffer.log_writes()
    for trade_id in range(1, 9):
        buffer.append(trade(trade_id), trade_id)
    log = buffer.take_writes()
    records, serials = buffer.stored_rows(log.serials)
    assert len(log.serials) == 8
    assert records["trade_id"].tolist() == buffer.to_frame()["trade_id"].tolist()[-len(records) :]
    assert len(serials) == len(records) < 8


def test_an_upserted_candle_and_a_resolved_ticker_value_are_logged() -> None:
    candles = CandleBuffer()
    candles.log_writes()
    row = {
        "symbol": "BTC/USD",
        "open": 1.0,
        "high": 2.0,
        "low": 0.5,
        "close": 1.5,
        "vwap": 1.2,
        "trades": 3,
        "volume": 9.0,
        "interval_begin": "2024-01-01T00:00:00Z",
        "interval": 1,
        "timestamp": "2024-01-01T00:00:30Z",
    }
    candles.append(row, 1)
    candles.append({**row, "close": 1.75}, 2)
    assert candles.take_writes().serials == [0, 0]
    tickers = TickerBuffer()
    tickers.log_writes()
    row = {"symbol": "DOGE/USD", **dict.fromkeys(TICKER_FIELDS, 1.0), "volume": 92146638.43575985}
    tickers.append(row, 1)
    (serial, _, _, _), *_ = tickers.take_suspects()
    tickers.keep_wire(serial, "volume", "92146638.43575985")
    log = tickers.take_writes()
    assert log.serials == [0] and [(s, n) for s, n, _ in log.exact] == [(0, "volume")]
