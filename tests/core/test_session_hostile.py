"""Hostile frames fed to the session: it never raises, bad items never become rows or books."""

from __future__ import annotations

import json
import logging
import math
from decimal import Decimal

import pytest

from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.core.taps import Tap
from kraken_nb.errors import MalformedMessage

from .test_session import INSTRUMENT, T0, answer_all, connected_session, recorded_book, trade, trades_frame


def trade_session() -> Session:
    session = connected_session()
    session.subscribe(validate_subscription("trade", "BTC/USD"))
    answer_all(session)
    return session


def book_session() -> Session:
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(session)
    session.feed(INSTRUMENT, T0)
    session.feed(json.dumps(recorded_book()["snapshot"]), T0)
    assert session.books["BTC/USD"].valid
    session.data_to_send()
    return session


def trade_ids(session: Session) -> list[int]:
    return session.trades.to_frame()["trade_id"].tolist()


def deep_list() -> str:
    return "[" * 100_000 + "]" * 100_000


# Every frame issues 13 and 19 found raising out of Session.feed (and a few more of the kind).
RAISED_BEFORE = {
    "deep list": deep_list(),
    "deep object": '{"a":' * 5000 + "1" + "}" * 5000,
    "channel is a list": '{"channel":["trade"],"type":"update","data":[]}',
    "channel is an object": '{"channel":{"a":1},"type":"update","data":[]}',
    "ack interval is a list": (
        '{"method":"subscribe","success":true,"result":{"channel":"ohlc","symbol":"BTC/USD","interval":[1]}}'
    ),
    "ack symbol is a list": '{"method":"subscribe","success":false,"symbol":["BTC/USD"],"error":"x"}',
    "instrument assets [1]": '{"channel":"instrument","type":"snapshot","data":{"assets":[1],"pairs":[]}}',
    "truncated utf-8": b'{"channel":"trade","type":"update","data":[{"symbol":"\xe2\x82"}]}',
    "binary junk": bytes(range(256)),
    "5 MB of text": "x" * 5_000_000,
}


@pytest.mark.parametrize("frame", RAISED_BEFORE.values(), ids=RAISED_BEFORE.keys())
def test_hostile_frame_is_an_error_event_and_the_stream_goes_on(frame):
    session = trade_session()
    session.subscribe(validate_subscription("ohlc", "BTC/USD", interval=1))
    session.data_to_send()
    session.feed(trades_frame(range(1, 3)), T0)
    events = session.feed(frame, T0)
    assert "error" in [e.kind for e in events]
    assert all(isinstance(e.data, MalformedMessage) for e in events if e.kind == "error")
    assert session.counters["malformed"] == 1
    assert session.counters["internal_errors"] == 0, "a hostile frame reached the safety net"
    session.feed(trades_frame(range(3, 5)), T0)
    assert trade_ids(session) == [1, 2, 3, 4]


@pytest.mark.parametrize("text", [None, 5, 1.5, object(), ["a"]])
def test_feed_of_something_that_is_not_a_frame_does_not_raise(text):
    session = trade_session()
    [event] = session.feed(text, T0)  # type: ignore[arg-type]
    assert event.kind == "error" and "text or bytes" in event.data.reason
    assert session.counters["malformed"] == 1 and session.counters["internal_errors"] == 0


def test_a_pair_with_a_bad_precision_never_reaches_a_book():
    """Issue 19: price_precision "x" used to raise ValueError later, on the next book frame."""
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(session)
    bad = json.loads(INSTRUMENT)
    bad["data"]["pairs"][0]["price_precision"] = "x"
    events = session.feed(json.dumps(bad), T0)
    assert [e.kind for e in events] == ["error", "instrument"]
    assert session.pairs == {} and session.counters["rejected_items"] == 1
    assert session.feed(json.dumps(recorded_book()["snapshot"]), T0) == []  # queued until precisions arrive
    session.feed(INSTRUMENT, T0)
    assert session.books["BTC/USD"].valid
    assert session.counters["internal_errors"] == 0


def test_book_entries_for_a_symbol_nobody_subscribed_are_not_queued():
    session = book_session()
    for n in range(50):
        entry = {"symbol": f"X{n}/USD", "bids": [], "asks": [], "checksum": 0}
        session.feed(json.dumps({"channel": "book", "type": "snapshot", "data": [entry]}), T0)
    assert session._queued_book == {}


def test_a_frame_of_10000_trades_with_one_bad_item_keeps_the_other_9999():
    session = trade_session()
    rows = [trade(i) for i in range(1, 10_001)]
    rows[5000]["price"] = float("nan")
    events = session.feed(json.dumps({"channel": "trade", "type": "update", "data": rows}), T0)
    assert trade_ids(session) == [i for i in range(1, 10_001) if i != 5001]
    errors = [e for e in events if e.kind == "error"]
    assert len(errors) == 1 and errors[0].symbol == "BTC/USD"
    assert "price" in errors[0].data.reason
    assert session.counters["malformed"] == 1 and session.counters["rejected_items"] == 1
    assert session.counters["trades"] == 9999
    # the id of the rejected trade shows as a gap, not as a silent hole
    assert [(g.after_id, g.before_id) for g in session.trades.gaps] == [(5000, 5002)]


@pytest.mark.parametrize(
    "change",
    [
        {"price": 1e999},
        {"price": 1e36},  # finite, but no exact column can hold it: not market data
        {"qty": 1e20},
        {"price": float("nan")},
        {"price": -100.5},
        {"price": "100.5"},
        {"qty": -1},
        {"qty": 0},
        {"side": "sideways"},
        {"ord_type": "iceberg"},
        {"trade_id": "7"},
        {"trade_id": True},
        {"timestamp": "2023-09-25 09:04"},
        {"symbol": 42},
    ],
    ids=str,
)
def test_bad_trades_never_become_rows(change):
    session = trade_session()
    bad = {**trade(2), **change}
    session.feed(json.dumps({"channel": "trade", "type": "update", "data": [trade(1), bad, trade(3)]}), T0)
    frame = session.trades.to_frame()
    assert frame["trade_id"].tolist() == [1, 3]
    assert set(frame["side"]) == {"buy"} and set(frame["ord_type"]) == {"limit"}
    assert list(frame["side"].cat.categories) == ["buy", "sell"], "an unknown side became a category"
    assert (frame["price"] > 0).all() and frame["price"].map(math.isfinite).all()
    assert session.counters["rejected_items"] == 1 and session.counters["malformed"] == 1


def test_the_largest_accepted_amounts_stay_exact_rows():
    """Just below ``MAX_AMOUNT`` at ``MAX_PRECISION`` decimals still fits an exact column, digit for digit."""
    session = trade_session()
    big = {**trade(2), "price": 9.9e19, "qty": 1e-18}
    session.feed(json.dumps({"channel": "trade", "type": "update", "data": [trade(1), big, trade(3)]}), T0)
    assert session.counters["rejected_items"] == 0
    frame = session.trades.to_frame(exact=True)
    assert frame["trade_id"].tolist() == [1, 2, 3]
    assert float(frame["price"].iloc[1]) == big["price"]
    assert frame["qty"].iloc[1] == Decimal("1E-18")


def ticker_row(**change: object) -> dict:
    row = dict.fromkeys(("bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high"), 2.5)
    return {"symbol": "BTC/USD", **row, "change": -0.5, "change_pct": -2.0, **change}


def candle_row(**change: object) -> dict:
    row = dict.fromkeys(("open", "high", "low", "close", "vwap", "volume"), 3.5)
    stamp = "2023-09-25T09:04:00.000000Z"
    return {
        "symbol": "BTC/USD",
        **row,
        "trades": 4,
        "interval": 1,
        "interval_begin": stamp,
        "timestamp": stamp,
        **change,
    }


def test_bad_ticker_and_candle_rows_never_become_rows():
    session = connected_session()
    tickers = [ticker_row(), ticker_row(bid=float("inf")), ticker_row(last=None), ticker_row(volume=-1)]
    events = session.feed(json.dumps({"channel": "ticker", "type": "update", "data": tickers}), T0)
    assert [e.kind for e in events] == ["error", "error", "error", "ticker"]
    frame = session.tickers.to_frame()
    assert len(frame) == 1 and frame["change"].tolist() == [-0.5]
    candles = [candle_row(), candle_row(low=float("nan"), interval_begin="2023-09-25T09:05:00Z")]
    candles.append(candle_row(trades=-3, interval_begin="2023-09-25T09:06:00Z"))
    session.feed(json.dumps({"channel": "ohlc", "type": "update", "data": candles}), T0)
    assert len(session.candles.to_frame()) == 1
    assert session.counters["malformed"] == 2 and session.counters["rejected_items"] == 5


def book_update(bids: list, asks: list | None = None, checksum: object = 1) -> str:
    entry = {"symbol": "BTC/USD", "bids": bids, "asks": asks or [], "checksum": checksum}
    return json.dumps({"channel": "book", "type": "update", "data": [entry]})


BAD_BOOK_FRAMES = {
    "NaN price": book_update([{"price": float("nan"), "qty": 1.0}]),
    "inf price": book_update([{"price": float("inf"), "qty": 1.0}]),
    "1e999 price": book_update([]).replace('"bids": []', '"bids": [{"price": 1e999, "qty": 1.0}]'),
    "1e308 price": book_update([{"price": 1e308, "qty": 1.0}]),
    "1e20 price": book_update([{"price": 1e20, "qty": 1.0}]),
    "negative price": book_update([{"price": -26000.0, "qty": 1.0}]),
    "zero price": book_update([{"price": 0.0, "qty": 1.0}]),
    "NaN qty": book_update([{"price": 26000.0, "qty": float("nan")}]),
    "inf qty": book_update([{"price": 26000.0, "qty": float("inf")}]),
    "1e308 qty": book_update([{"price": 26000.0, "qty": 1e308}]),
    "negative qty": book_update([{"price": 26000.0, "qty": -0.5}]),
    "string price": book_update([{"price": "26000.0", "qty": 1.0}]),
    "bool qty": book_update([{"price": 26000.0, "qty": True}]),
    "list qty": book_update([{"price": 26000.0, "qty": [1]}]),
    "level without qty": book_update([{"price": 26000.0}]),
    "level is a list": book_update([[26000.0, 1.0]]),
    "bids is an object": book_update([]).replace('"bids": []', '"bids": {}'),
    "string checksum": book_update([], checksum="123"),
    "float checksum": book_update([], checksum=1.5),
    "bool checksum": book_update([], checksum=True),
    "negative checksum": book_update([], checksum=-1),
    "checksum past 32 bits": book_update([], checksum=2**32),
    "timestamp is a number": book_update([]).replace('"checksum": 1', '"checksum": 1, "timestamp": 5'),
}


@pytest.mark.parametrize("frame", BAD_BOOK_FRAMES.values(), ids=BAD_BOOK_FRAMES.keys())
def test_a_bad_book_level_invalidates_and_resyncs_that_book(frame):
    session = book_session()
    vector = recorded_book()
    events = session.feed(frame, T0)
    assert [e.kind for e in events] == ["error"], events
    assert events[0].symbol == "BTC/USD" and isinstance(events[0].data, MalformedMessage)
    book = session.books["BTC/USD"]
    assert not book.valid and len(book) == 0
    assert session.counters["malformed"] == 1 and session.counters["rejected_items"] == 1
    assert session.counters["internal_errors"] == 0
    assert [(r["method"], r["params"]["symbol"]) for r in session.data_to_send()] == [
        ("unsubscribe", ["BTC/USD"]),
        ("subscribe", ["BTC/USD"]),
    ]
    assert session.book_tops.to_frame()["valid"].tolist()[-1:] == [True], "the bad book was recorded"
    session.feed(json.dumps(vector["snapshot"]), T0)
    assert session.books["BTC/USD"].valid


def test_a_bug_while_handling_a_frame_is_contained_counted_and_logged_once_with_traceback(caplog):
    class Buggy(Session):
        def _on_ticker(self, message, received_ns, text):
            raise ZeroDivisionError("a bug")

    session = Buggy()
    session.connection_made(T0)
    ticker = json.dumps({"channel": "ticker", "type": "update", "data": [ticker_row()]})
    with caplog.at_level(logging.ERROR, logger="kraken_nb.core.session"):
        for _ in range(3):
            [event] = session.feed(ticker, T0)
            assert event.kind == "error" and isinstance(event.data, MalformedMessage)
            assert isinstance(event.data.__cause__, ZeroDivisionError)
    assert session.counters["internal_errors"] == 3 and session.counters["malformed"] == 3
    records = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(records) == 2, "ThrottledLog logs the 1st and 2nd of 3"
    assert records[0].exc_info and "ZeroDivisionError" in records[0].getMessage()
    assert not records[1].exc_info
    session.feed(json.dumps({"channel": "heartbeat"}), T0 + 1)
    assert session.last_heartbeat_ns == T0 + 1


def test_a_flood_of_bad_items_is_logged_throttled(caplog):
    session = trade_session()
    rows = [{**trade(i), "qty": -1} for i in range(1, 1001)]
    with caplog.at_level(logging.WARNING, logger="kraken_nb.core.session"):
        events = session.feed(json.dumps({"channel": "trade", "type": "update", "data": rows}), T0)
    assert len(events) == 1000 and session.counters["rejected_items"] == 1000
    assert session.counters["malformed"] == 1 and len(session.trades) == 0
    assert len(caplog.records) == 10  # 1st, 2nd, 4th … 512th


def test_taps_see_only_the_good_items_as_data():
    seen = []

    class Recorder(Tap):
        def frame(self, text, message, received_ns, events) -> None:
            seen.append((message, [e.kind for e in events]))

    session = trade_session()
    session.add_tap(Recorder())
    bad = {**trade(2), "price": float("nan")}
    session.feed(json.dumps({"channel": "trade", "type": "update", "data": [trade(1), bad]}), T0)
    [(message, kinds)] = seen
    assert [row["trade_id"] for row in message.data] == [1]
    assert len(message.rejected) == 1 and kinds == ["error", "trade"]


def test_an_ack_with_a_wrongly_typed_interval_leaves_the_call_waiting_and_the_session_working():
    session = connected_session()
    call_id = session.subscribe(validate_subscription("ohlc", "BTC/USD", interval=5))
    [request] = session.data_to_send()
    bad = {"method": "subscribe", "req_id": request["req_id"], "success": True}
    bad["result"] = {"channel": "ohlc", "symbol": "BTC/USD", "interval": [5]}
    [event] = session.feed(json.dumps(bad), T0)
    assert event.kind == "error" and not session.call(call_id).done
    bad["result"]["interval"] = 5
    session.feed(json.dumps(bad), T0)
    assert session.call(call_id).done and session.is_subscribed("ohlc", "BTC/USD", 5)


@pytest.mark.parametrize("stamp", ["9999-12-31T23:59:59Z", "1900-01-01T00:00:00Z", "not a time"])
def test_a_book_timestamp_out_of_range_keeps_the_book_and_records_no_time(stamp):
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(session)
    session.feed(INSTRUMENT, T0)
    snapshot = recorded_book()["snapshot"]
    snapshot["data"][0]["timestamp"] = stamp
    events = session.feed(json.dumps(snapshot), T0)
    assert [e.kind for e in events] == ["book"]
    assert session.counters["internal_errors"] == 0
    assert session.books["BTC/USD"].valid
    tops = session.book_tops.to_frame()
    assert len(tops) == 1 and tops.time.isna().all() and tops.received.notna().all()
