"""Exact values: ``decimal_array``, the arrival check, ``exact=True`` on every frame, fed through Session."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import (
    CandleBuffer,
    DepthBuffer,
    Precisions,
    TickerBuffer,
    TradeBuffer,
    decimal_array,
)
from kraken_nb.core.buffers.exact import ExactValues, coefficient, same_number, wire_numbers
from kraken_nb.core.messages import parse
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.core.wire import checksum_of, level_text

pytestmark = pytest.mark.timeout(60)

T0 = 1_700_000_000_000_000_000
SYMBOL = "DOGE/USD"
LONG = "92146638.43575985"  # 16 digits: the float is 92146638.43575986
STAMP = "2024-03-01T12:00:00.123456Z"
STAMP_NS = int(pd.Timestamp(STAMP).value)


def decimal_type(scale: int, digits: int = 18) -> pd.ArrowDtype:
    return pd.ArrowDtype(pa.decimal128(digits, scale))


def instrument(price_precision: int = 7, qty_precision: int = 8) -> str:
    pair = {
        "symbol": SYMBOL,
        "base": "DOGE",
        "quote": "USD",
        "price_precision": price_precision,
        "qty_precision": qty_precision,
    }
    return json.dumps({"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [pair]}})


def trade_text(trade_id: int, qty: str, price: str = "0.1612345", kind: str = "update") -> str:
    return (
        f'{{"channel":"trade","type":"{kind}","data":[{{"symbol":"{SYMBOL}","side":"buy","price":{price},'
        f'"qty":{qty},"ord_type":"limit","trade_id":{trade_id},"timestamp":"{STAMP}"}}]}}'
    )


def ticker_text(volume: str, timestamp: str | None = STAMP) -> str:
    stamp = "" if timestamp is None else f',"timestamp":"{timestamp}"'
    return (
        f'{{"channel":"ticker","type":"update","data":[{{"symbol":"{SYMBOL}","bid":0.1612340,'
        f'"bid_qty":1500.5,"ask":0.1612350,"ask_qty":2500.25,"last":0.1612345,"volume":{volume},'
        f'"vwap":0.1600001,"low":0.1500000,"high":0.1700000,"change":-0.0012345,"change_pct":-0.76{stamp}}}]}}'
    )


def candle_text(volume: str, close: str = "0.1612345") -> str:
    return (
        f'{{"channel":"ohlc","type":"update","data":[{{"symbol":"{SYMBOL}","open":0.1600000,'
        f'"high":0.1700000,"low":0.1500000,"close":{close},"vwap":0.1612000,"trades":12,'
        f'"volume":{volume},"interval_begin":"2024-03-01T12:00:00.000000000Z","interval":1,'
        f'"timestamp":"2024-03-01T12:01:00.000000Z"}}]}}'
    )


Levels = list[tuple[str, str]]


def book_text(
    bids: Levels, asks: Levels, kind: str, stamp: str | None, book: tuple[Levels, Levels] = ()
) -> str:
    """A DOGE/USD book frame (precisions 7 and 8), numbers written verbatim.

    Its checksum is that of ``book`` (the bids and asks after the frame, best
    first), by default the frame's own levels.
    """
    after_bids, after_asks = book or (bids, asks)
    checksum = checksum_of(
        [level_text(Decimal(p), Decimal(q), 7, 8) for p, q in after_asks[:10]],
        [level_text(Decimal(p), Decimal(q), 7, 8) for p, q in after_bids[:10]],
    )

    def levels(side: list[tuple[str, str]]) -> str:
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side)

    time = "" if stamp is None else f',"timestamp":"{stamp}"'
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}","bids":[{levels(bids)}],'
        f'"asks":[{levels(asks)}],"checksum":{checksum}{time}}}]}}'
    )


def session_with(*channels: str, precisions: bool = True) -> Session:
    session = Session()
    session.connection_made(T0)
    for channel in channels:
        session.subscribe(validate_subscription(channel, [SYMBOL]))
    session.data_to_send()
    if precisions:
        session.feed(instrument(), T0)
    return session


# -- decimal_array --------------------------------------------------------------------


def test_decimal_array_is_exact_for_every_short_decimal() -> None:
    rng = random.Random(5)
    for precision in (0, 1, 2, 5, 8, 10):
        texts = []
        for _ in range(3000):
            digits = rng.randint(1, 15)
            units = rng.randrange(10 ** (digits - 1), 10**digits) * rng.choice((1, -1))
            texts.append(Decimal(units).scaleb(-precision))
        array = decimal_array(np.array([float(t) for t in texts]), {}, precision)
        assert array.dtype == decimal_type(precision)
        assert array.tolist() == texts


def test_decimal_array_overrides_widens_and_marks_missing() -> None:
    values = np.array([1.5, float("nan"), float(LONG), -0.25, float("inf")])
    array = decimal_array(values, {2: Decimal(LONG)}, 1)
    # 1.5 fits scale 1, but the exact entry and -0.25 need 8 and 2 decimals: the scale grows to 8
    assert array.dtype == decimal_type(8)
    assert array.tolist()[0] == Decimal("1.5")
    assert pd.isna(array[1]) and pd.isna(array[4])
    assert array[2] == Decimal(LONG)
    assert array[3] == Decimal("-0.25")


def test_decimal_array_widens_to_38_digits_only_when_a_value_needs_it() -> None:
    assert decimal_array(np.array([1.0]), {}, 0).dtype == decimal_type(0)
    huge = Decimal("1234567890123.12345678")  # 21 digits
    array = decimal_array(np.array([1.0, float(huge)]), {1: huge}, 8)
    assert array.dtype == decimal_type(8, 38)
    assert array.tolist() == [Decimal("1.00000000"), huge]
    assert decimal_array(np.array([], dtype=np.float64), {}, 3).dtype == decimal_type(3)


def test_exact_columns_sum_multiply_and_group_in_pandas() -> None:
    frame = pd.DataFrame(
        {
            "side": pd.Categorical(["buy", "sell", "buy"]),
            "price": decimal_array(np.array([0.1612345, 0.1612346, 0.1612344]), {}, 7),
            "qty": decimal_array(np.array([float(LONG), 0.1, 0.2]), {0: Decimal(LONG)}, 8),
        }
    )
    assert frame.qty.sum() == Decimal(LONG) + Decimal("0.3")
    grouped = frame.groupby("side", observed=True).qty.sum()
    assert grouped["buy"] == Decimal(LONG) + Decimal("0.2")
    assert grouped["sell"] == Decimal("0.1")
    notional = (frame.price * frame.qty).sum()
    expected = sum(
        Decimal(p) * q
        for p, q in zip(["0.1612345", "0.1612346", "0.1612344"], frame.qty.tolist(), strict=True)
    )
    assert notional == expected
    assert isinstance(notional / frame.qty.sum(), Decimal)


def test_wire_numbers_reads_each_rows_number_or_refuses() -> None:
    text = '{"data":[{"note":"qty","qty" : 92146638.43575985},{"qty":null},{"qty":1e-08}]}'
    assert wire_numbers(text, "qty", 3) == [LONG, "null", "1e-08"]
    assert wire_numbers(text, "qty", 2) is None  # another count than rows: ambiguous
    assert wire_numbers(text, "volume", 0) == []


@pytest.mark.parametrize(
    ("text", "value", "same"),
    [
        ("100000000.00000000", 1e8, True),
        ("0.50", 0.5, True),
        ("-0.0026094", -0.0026094, True),
        ("5", 5.0, True),
        ("1e-08", 1e-08, True),
        ("12345678901234567", 1.2345678901234568e16, False),
        (LONG, float(LONG), False),
        ("92146638.43575986", float(LONG), True),
    ],
)
def test_same_number_tells_whether_a_float_gives_the_wire_back(text: str, value: float, same: bool) -> None:
    assert same_number(text, value) is same
    assert same is (Decimal(text) == Decimal(repr(value)))


def test_exact_values_are_compact_and_exact() -> None:
    values = ExactValues()
    values.put(10, Decimal(LONG))
    values.put(11, Decimal("-0.00000001"))
    values.put(12, Decimal("123456789012345678901.5"), None)  # past int64: kept as a Decimal
    values.put(13, Decimal("92146638.43575989"), "92146638.43575989")
    assert len(values) == 4 and len(values.serials) == 3
    assert [values.get(i) for i in (10, 11, 12, 13, 14)] == [
        Decimal(LONG),
        Decimal("-1E-8"),
        Decimal("123456789012345678901.5"),
        Decimal("92146638.43575989"),
        None,
    ]
    values.discard(11)
    values.prune(12)
    assert [serial for serial, _ in values.items()] == [13, 12]
    assert coefficient("1e-08") == (1, -8) and coefficient(Decimal("-12.50")) == (-1250, -2)


# -- the arrival check ------------------------------------------------------------------


def long_trade(**extra: Any) -> dict[str, Any]:
    row = {
        "symbol": SYMBOL,
        "side": "sell",
        "price": 0.1612345,
        "qty": float(LONG),
        "ord_type": "limit",
        "trade_id": 1,
        "timestamp": STAMP,
    }
    row.update(extra)
    return row


def test_a_float_past_the_limit_is_stored_once_and_noted_for_its_exact_digits() -> None:
    precisions = Precisions()
    precisions.set(SYMBOL, 7, 8)
    buffer = TradeBuffer(precisions=precisions)
    buffer.append(long_trade(qty=0.5, trade_id=1))
    assert buffer.take_suspects() == []
    assert buffer.extend([long_trade(qty=0.5, trade_id=2), long_trade(trade_id=3)]) == 2
    [(serial, position, field, value)] = buffer.take_suspects()
    assert (position, field, value) == (1, "qty", float(LONG)) and buffer.take_suspects() == []
    assert buffer.stored(serial, "qty") == float(LONG)
    assert buffer.to_frame(exact=True).qty.iloc[-1] == Decimal("92146638.43575986")  # the float, unresolved
    buffer.resolve(serial, "qty", Decimal(LONG))
    assert buffer.exact_values == 1
    exact = buffer.to_frame(exact=True)
    assert exact.qty.tolist() == [Decimal("0.5"), Decimal("0.5"), Decimal(LONG)]
    assert buffer.to_frame().qty.iloc[-1] == float(LONG) == 92146638.43575986
    # An exact value the float does give back needs no entry.
    buffer.append(long_trade(qty=100000000.0, trade_id=4))
    [(serial, _, _, _)] = buffer.take_suspects()
    buffer.resolve(serial, "qty", Decimal("100000000.00000000"))
    assert buffer.exact_values == 1


def test_a_decimal_a_float_holds_needs_no_side_entry() -> None:
    buffer = TradeBuffer()
    buffer.append(long_trade(qty=Decimal("100000000.00000000")))  # past the limit, but a float holds it
    assert buffer.exact_values == 0
    assert buffer.to_frame(exact=True).qty.iloc[0] == Decimal("100000000")


def test_unknown_precision_is_conservative_and_inferred() -> None:
    buffer = TradeBuffer()
    buffer.append(long_trade(qty=123456.5))  # past the fallback limit (precision 10): to be read exactly
    assert [field for _, _, field, _ in buffer.take_suspects()] == ["qty"]
    buffer.append(long_trade(qty=0.125, price=0.1612345, trade_id=2))
    assert buffer.take_suspects() == []
    frame = buffer.to_frame(exact=True)
    assert frame.price.dtype == decimal_type(7) and frame.qty.dtype == decimal_type(3)
    assert frame.qty.tolist() == [Decimal("123456.5"), Decimal("0.125")]
    buffer.precisions.set(SYMBOL, 7, 8)
    assert buffer.to_frame(exact=True).qty.dtype == decimal_type(8)


def test_exact_entries_follow_rows_through_trimming_and_upserts() -> None:
    buffer = TradeBuffer(capacity=2, max_rows=3)
    for trade_id in range(1, 40):
        qty = Decimal(LONG) + trade_id if trade_id % 4 == 0 else Decimal(trade_id)
        buffer.append(long_trade(trade_id=trade_id, qty=qty))
        frame = buffer.to_frame(exact=True)
        expected = [
            Decimal(LONG) + i if i % 4 == 0 else Decimal(i) for i in range(max(1, trade_id - 2), trade_id + 1)
        ]
        assert frame.qty.tolist() == expected
        assert buffer.to_frame(symbol=SYMBOL, last=2, exact=True).qty.tolist() == expected[-2:]
    assert buffer.exact_values <= 6  # entries of rows dropped by compaction are forgotten
    candles = CandleBuffer()
    long_candle = json.loads(candle_text("1"), parse_float=Decimal)["data"][0]
    candles.append({**long_candle, "volume": Decimal(LONG)})
    assert candles.to_frame(exact=True).volume.tolist() == [Decimal(LONG)]
    candles.append({**long_candle, "volume": Decimal("12.5")})  # the candle re-sent: its volume changed
    assert candles.exact_values == 0
    assert candles.to_frame(exact=True).volume.tolist() == [Decimal("12.5")]


# -- through Session.feed ----------------------------------------------------------------


def test_trade_with_16_digits_round_trips_exactly_through_feed() -> None:
    session = session_with("trade")
    session.feed(trade_text(7, "0.5"), T0 + 1)
    events = session.feed(trade_text(8, LONG), T0 + 2)
    assert [event.kind for event in events] == ["trade"]
    assert session.counters["exact_reads"] == 1  # read from the text, no second decode
    assert session.counters["exact_decodes"] == 0
    floats = session.trades.to_frame()
    exact = session.trades.to_frame(exact=True)
    assert floats.trade_id.tolist() == [7, 8]  # appended once, nothing counted twice
    assert session.counters["trades"] == 2 and session.counters["duplicate_trades"] == 0
    assert floats.qty.tolist() == [0.5, 92146638.43575986]  # the float default rounds (documented)
    assert exact.qty.tolist() == [Decimal("0.5"), Decimal(LONG)]
    assert exact.qty.dtype == decimal_type(8) and exact.price.dtype == decimal_type(7)
    assert exact.price.tolist() == [Decimal("0.1612345")] * 2
    assert (exact.time == pd.Timestamp(STAMP)).all()
    assert exact.received.tolist() == [pd.Timestamp(T0 + 1, tz="UTC"), pd.Timestamp(T0 + 2, tz="UTC")]
    assert exact.qty.sum() == Decimal(LONG) + Decimal("0.5")


@pytest.mark.parametrize("volume", [LONG, "92146638.43575989", "123456789.12345678"])
def test_ticker_volume_with_16_or_17_digits_round_trips_exactly(volume: str) -> None:
    session = session_with("ticker")
    session.feed(ticker_text(volume), T0 + 5)
    floats = session.tickers.to_frame()
    exact = session.tickers.to_frame(exact=True)
    assert floats.volume.iloc[0] == float(volume)
    assert exact.volume.iloc[0] == Decimal(volume)
    assert exact.change.iloc[0] == Decimal("-0.0012345")
    assert exact.change_pct.iloc[0] == Decimal("-0.76") and exact.change_pct.dtype == decimal_type(2)
    latest = session.tickers.latest(exact=True)
    assert latest.loc[SYMBOL, "volume"] == Decimal(volume)
    assert latest.loc[SYMBOL, "bid_qty"] == Decimal("1500.5")
    assert (session.counters["exact_reads"], session.counters["exact_decodes"]) == (1, 0)


def test_values_of_a_multi_row_frame_are_read_from_their_own_rows() -> None:
    session = session_with("trade")
    rows = [
        (1, LONG),
        (2, "0.5"),
        (3, "92146638.43575989"),
        (4, "123456789.12345678"),
    ]
    data = ",".join(
        f'{{"symbol":"{SYMBOL}","side":"buy","price":0.1612345,"qty":{qty},"ord_type":"limit",'
        f'"trade_id":{trade_id},"timestamp":"{STAMP}"}}'
        for trade_id, qty in rows
    )
    session.feed(f'{{"channel":"trade","type":"snapshot","data":[{data}]}}', T0)
    assert session.trades.to_frame(exact=True).qty.tolist() == [Decimal(qty) for _, qty in rows]
    assert (session.counters["exact_reads"], session.counters["exact_decodes"]) == (3, 0)


def test_an_ambiguous_text_is_decoded_whole_instead() -> None:
    session = session_with("ticker")
    # "volume" twice in the row (JSON keeps the last): the text cannot be read by position.
    text = ticker_text(LONG).replace('"bid":', '"volume":1.5,"bid":', 1)
    session.feed(text, T0)
    assert session.tickers.to_frame(exact=True).volume.tolist() == [Decimal(LONG)]
    assert (session.counters["exact_reads"], session.counters["exact_decodes"]) == (1, 1)


def test_handle_without_the_text_counts_what_it_could_not_read() -> None:
    session = session_with("ticker")
    session.handle(parse(ticker_text(LONG)), T0)
    assert session.counters["exact_unresolved"] == 1
    assert session.tickers.to_frame(exact=True).volume.tolist() == [Decimal("92146638.43575986")]
    session.handle(parse(ticker_text(LONG)), T0, ticker_text(LONG))
    assert session.tickers.to_frame(exact=True).volume.tolist()[-1] == Decimal(LONG)


def test_ticker_rows_carry_krakens_timestamp_and_the_receive_time() -> None:
    session = session_with("ticker")
    session.feed(ticker_text("100.5"), T0 + 9)
    session.feed(ticker_text("100.5", timestamp=None), T0 + 10)
    frame = session.tickers.to_frame()
    assert frame.time.iloc[0] == pd.Timestamp(STAMP) and pd.isna(frame.time.iloc[1])
    assert frame.received.tolist() == [pd.Timestamp(T0 + 9, tz="UTC"), pd.Timestamp(T0 + 10, tz="UTC")]
    assert (frame.received.iloc[0] - frame.time.iloc[0]) == pd.Timedelta(T0 + 9 - STAMP_NS)
    latest = session.tickers.latest()
    assert pd.isna(latest.loc[SYMBOL, "time"]) and latest.loc[SYMBOL, "received"] == pd.Timestamp(
        T0 + 10, tz="UTC"
    )


def test_candle_volume_round_trips_and_candles_carry_both_times() -> None:
    session = session_with("ohlc")
    session.feed(candle_text(LONG), T0 + 3)
    frame = session.candles.to_frame(exact=True)
    assert frame.volume.tolist() == [Decimal(LONG)]
    assert frame.close.tolist() == [Decimal("0.1612345")]
    assert frame.time.tolist() == [pd.Timestamp("2024-03-01T12:01:00Z")]
    assert frame.interval_begin.tolist() == [pd.Timestamp("2024-03-01T12:00:00Z")]
    assert frame.received.tolist() == [pd.Timestamp(T0 + 3, tz="UTC")]
    assert session.candles.to_frame().volume.tolist() == [float(LONG)]


BIDS = [("0.1612340", LONG), ("0.1612330", "1500.5")]
ASKS = [("0.1612350", "2500.25"), ("0.1612360", "92146638.43575989")]


def test_book_quantities_with_16_digits_are_exact_in_every_book_frame() -> None:
    session = session_with("book")
    session.feed(book_text(BIDS, ASKS, "snapshot", None), T0 + 1)
    update = [("0.1612330", "0"), ("0.1612320", "7.5")]
    after = ([BIDS[0], update[1]], ASKS)
    session.feed(book_text(update, [], "update", STAMP, after), T0 + 2)
    book = session.books[SYMBOL]
    assert book.valid and session.counters["checksum_mismatches"] == 0
    levels = book.to_frame(exact=True)
    assert levels.side.tolist() == ["bid", "bid", "ask", "ask"]
    assert levels.price.tolist() == [Decimal(p) for p in ("0.1612340", "0.1612320", "0.1612350", "0.1612360")]
    assert levels.qty.tolist() == [
        Decimal(LONG),
        Decimal("7.5"),
        Decimal("2500.25"),
        Decimal("92146638.43575989"),
    ]
    assert levels.cum_qty.tolist() == [
        Decimal(LONG),
        Decimal(LONG) + Decimal("7.5"),
        Decimal("2500.25"),
        Decimal("2500.25") + Decimal("92146638.43575989"),
    ]
    assert levels.price.dtype == decimal_type(7) and levels.qty.dtype == decimal_type(8)
    assert book.to_frame().qty.tolist()[0] == float(LONG)

    tops = session.book_tops.to_frame(exact=True)
    assert tops.bid_qty.tolist() == [Decimal(LONG)]  # the update left the best bid alone: one sample
    assert tops.mid.iloc[0] == Decimal("0.16123450") and tops.spread.iloc[0] == Decimal("0.0000010")
    assert pd.isna(tops.time.iloc[0])  # a snapshot without a timestamp, as Kraken's
    assert tops.received.iloc[0] == pd.Timestamp(T0 + 1, tz="UTC")

    depth = session.depths.to_frame(exact=True)
    assert depth.qty.tolist() == [
        Decimal(LONG),
        Decimal("1500.5"),
        Decimal("2500.25"),
        Decimal("92146638.43575989"),
    ]
    assert pd.isna(depth.time).all()


def test_book_times_are_the_messages_timestamps() -> None:
    session = Session(depth_sample_ns=1)
    session.connection_made(T0)
    session.subscribe(validate_subscription("book", [SYMBOL]))
    session.feed(instrument(), T0)
    session.feed(book_text(BIDS, ASKS, "snapshot", STAMP), T0 + 1)
    better = ("0.1612345", "3")
    after = ([better, *BIDS], ASKS)
    session.feed(book_text([better], [], "update", "2024-03-01T12:00:01Z", after), T0 + 5)
    tops = session.book_tops.to_frame()
    assert tops.time.tolist() == [pd.Timestamp(STAMP), pd.Timestamp("2024-03-01T12:00:01Z")]
    assert tops.received.tolist() == [pd.Timestamp(T0 + 1, tz="UTC"), pd.Timestamp(T0 + 5, tz="UTC")]
    depth = session.depths.to_frame()
    assert depth.groupby("received").time.first().tolist() == tops.time.tolist()


def test_buffers_without_a_session_accept_the_receive_time_or_none() -> None:
    tickers, depth = TickerBuffer(), DepthBuffer()
    tickers.append(json.loads(ticker_text("1.5"))["data"][0])
    assert pd.isna(tickers.to_frame().received.iloc[0])
    depth.append(SYMBOL, None, T0, [1.0], [Decimal(LONG)], [2.0], [1.0])
    assert depth.to_frame(exact=True).qty.tolist() == [Decimal(LONG), Decimal(1)]
    assert OrderBook(SYMBOL, 10, price_precision=7, qty_precision=8).to_frame(exact=True).empty
