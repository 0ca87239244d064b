"""Every message kind parses into its record; bad frames raise a typed error."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from kraken_nb.core.messages import (
    Ack,
    BookMessage,
    Heartbeat,
    InstrumentMessage,
    OhlcMessage,
    Pong,
    Status,
    TickerMessage,
    TradeMessage,
    Unknown,
    parse,
)
from kraken_nb.errors import MalformedMessage

T = "2023-09-25T09:04:31.742599Z"
TRADE = {
    "symbol": "BTC/USD",
    "side": "buy",
    "price": 1.0,
    "qty": 0.5,
    "ord_type": "limit",
    "trade_id": 5,
    "timestamp": T,
}
TICKER = {
    "symbol": "BTC/USD",
    **dict.fromkeys(("bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high"), 1.5),
    "change": -0.5,
    "change_pct": -25.0,
}
CANDLE = {
    "symbol": "BTC/USD",
    **dict.fromkeys(("open", "high", "low", "close", "vwap", "volume"), 2.0),
    "trades": 3,
    "interval": 1,
    "interval_begin": T,
    "timestamp": T,
}


def test_success_ack():
    ack = parse(
        '{"method":"subscribe","req_id":4,"result":{"channel":"book","depth":10,"snapshot":true,'
        '"symbol":"BTC/USD"},"success":true,"time_in":"' + T + '","time_out":"' + T + '"}'
    )
    assert ack == Ack(
        method="subscribe",
        success=True,
        req_id=4,
        result={"channel": "book", "depth": 10, "snapshot": True, "symbol": "BTC/USD"},
        symbol="BTC/USD",
        time_in=T,
        time_out=T,
    )
    assert ack.channel == "book"


def test_ack_warnings_are_read_from_the_result_where_kraken_puts_them():
    # As recorded from wss://ws.kraken.com/v2 (quoted by python-kraken-sdk and other clients).
    ack = parse(
        '{"method":"subscribe","req_id":121,"result":{"channel":"ohlc","interval":60,"snapshot":true,'
        '"symbol":"ETH/USD","warnings":["timestamp is deprecated, use interval_begin"]},"success":true,'
        '"time_in":"2024-05-19T19:06:57.002983Z","time_out":"2024-05-19T19:06:57.003037Z"}'
    )
    assert isinstance(ack, Ack) and ack.success
    assert ack.warnings == ("timestamp is deprecated, use interval_begin",)
    assert (ack.channel, ack.symbol, ack.result["interval"]) == ("ohlc", "ETH/USD", 60)
    top_level = parse(
        '{"method":"subscribe","result":{"channel":"instrument"},"success":true,"warnings":["w"]}'
    )
    assert isinstance(top_level, Ack) and top_level.warnings == ("w",)


def test_error_ack_names_symbol_and_reason():
    ack = parse(
        '{"error":"Currency pair not supported BTC/XYZ","method":"subscribe","req_id":9,'
        '"success":false,"symbol":"BTC/XYZ","time_in":"' + T + '","time_out":"' + T + '"}'
    )
    assert isinstance(ack, Ack)
    assert not ack.success
    assert ack.symbol == "BTC/XYZ"
    assert ack.error == "Currency pair not supported BTC/XYZ"
    assert ack.channel is None


def test_error_without_reason_gets_one():
    ack = parse('{"method":"subscribe","success":false}')
    assert isinstance(ack, Ack) and ack.error


def test_pong_status_heartbeat():
    pong = '{"method":"pong","req_id":3,"time_in":"' + T + '","time_out":"' + T + '"}'
    assert parse(pong) == Pong(3, T, T)
    status = parse(
        '{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":123,'
        '"system":"maintenance","version":"2.0.10"}]}'
    )
    assert status == Status("maintenance", "v2", 123, "2.0.10")
    assert parse('{"channel":"heartbeat"}') == Heartbeat()


@pytest.mark.parametrize(
    ("channel", "record", "row"),
    [
        ("ticker", TickerMessage, TICKER),
        ("book", BookMessage, {"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 1}),
        ("ohlc", OhlcMessage, CANDLE),
        ("trade", TradeMessage, TRADE),
    ],
)
def test_data_channels(channel, record, row):
    for kind in ("snapshot", "update"):
        message = parse(json.dumps({"channel": channel, "type": kind, "data": [row, row]}))
        assert type(message) is record
        assert message.snapshot == (kind == "snapshot")
        assert len(message.data) == 2
        assert message.symbols() == ["BTC/USD"]


def test_numbers_are_floats_unless_exact_decoding_is_asked_for():
    frame = (
        '{"channel":"book","type":"update","data":[{"symbol":"X/Y","bids":[{"price":1.5,'
        '"qty":12345678.12345679}],"asks":[],"checksum":1}]}'
    )
    assert parse(frame).data[0]["bids"][0]["qty"] == float("12345678.12345679")
    assert parse(frame, exact=True).data[0]["bids"][0]["qty"] == Decimal("12345678.12345679")
    row = json.dumps({**TRADE, "symbol": "X/Y"}).replace('"qty": 0.5', '"qty": 12345678.12345679')
    trade = parse('{"channel":"trade","type":"update","data":[' + row + "]}")
    assert trade.data[0]["qty"] == float("12345678.12345679")


def test_instrument():
    message = parse(
        '{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC"}],'
        '"pairs":[{"symbol":"BTC/USD","price_precision":1,"qty_precision":8}]}}'
    )
    assert isinstance(message, InstrumentMessage)
    assert message.snapshot
    assert message.pairs[0]["symbol"] == "BTC/USD"
    assert message.assets[0]["id"] == "BTC"


def test_bytes_frames_are_decoded():
    assert parse(b'{"channel":"heartbeat"}') == Heartbeat()


def test_unknown_kinds_are_records_not_errors():
    assert isinstance(parse('{"channel":"level3","type":"update","data":[]}'), Unknown)
    assert isinstance(parse('{"hello":"world"}'), Unknown)
    assert isinstance(parse('{"channel":"executions","type":"whatever"}'), Unknown)


@pytest.mark.parametrize(
    "frame",
    [
        "",
        "{not json",
        "[1, 2]",
        '"text"',
        b"\xff\xfe",
        '{"channel":"trade","type":"update","data":{"symbol":"X/Y"}}',
        '{"channel":["trade"],"type":"update","data":[]}',
        '{"channel":"book","type":"delta","data":[]}',
        '{"channel":"status","type":"update","data":[]}',
        '{"channel":"status","type":"update","data":[{"system":5}]}',
        '{"channel":"instrument","type":"snapshot","data":[]}',
        '{"method":"subscribe","success":"yes"}',
        '{"method":"subscribe","success":true,"result":[1]}',
        '{"method":"pong","req_id":"abc"}',
        '{"method":"pong","req_id":1,"time_in":"yesterday"}',
        '{"method":"subscribe","success":true,"result":{"channel":"ohlc","interval":[1]}}',
        '{"method":"subscribe","success":true,"result":{"channel":"book","depth":"10"}}',
        '{"method":"subscribe","success":true,"result":{"channel":5}}',
        '{"method":"subscribe","success":false,"error":["nope"]}',
        '{"method":"subscribe","success":true,"warnings":[1]}',
        '{"method":"subscribe","success":true,"result":{"channel":"trade","warnings":"old"}}',
        '{"method":7,"success":true}',
        '{"channel":"status","type":"update","data":[{"system":"sideways"}]}',
        '{"channel":"status","type":"update","data":[{"system":"online","connection_id":"x"}]}',
        '{"channel":"instrument","type":"snapshot","data":{"assets":{},"pairs":[]}}',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 5000 + "1" + "}" * 5000,
        b'{"channel":"heartbeat","x":"\xe2\x82"}',
    ],
)
def test_malformed_frames_raise_typed_error(frame):
    with pytest.raises(MalformedMessage) as caught:
        parse(frame)
    assert caught.value.reason


def frame_of(channel: str, *items: object) -> str:
    return json.dumps({"channel": channel, "type": "update", "data": list(items)})


BAD_ITEMS = {
    "trade": [
        5,
        {**TRADE, "price": float("nan")},
        {**TRADE, "price": float("inf")},
        {**TRADE, "price": -1.0},
        {**TRADE, "price": 0},
        {**TRADE, "price": "1.5"},
        {**TRADE, "price": True},
        {**TRADE, "qty": -1},
        {**TRADE, "qty": 0.0},
        {**TRADE, "side": "sideways"},
        {**TRADE, "side": ["buy"]},
        {**TRADE, "ord_type": "stop"},
        {**TRADE, "trade_id": 1.0},
        {**TRADE, "trade_id": -1},
        {**TRADE, "trade_id": 2**63},
        {**TRADE, "timestamp": "not a time"},
        {**TRADE, "timestamp": "9999-01-01T00:00:00Z"},
        {**TRADE, "timestamp": 1695632671},
        {**TRADE, "symbol": ""},
        {**TRADE, "symbol": ["BTC/USD"]},
        {key: value for key, value in TRADE.items() if key != "qty"},
    ],
    "ticker": [
        {**TICKER, "bid": float("nan")},
        {**TICKER, "volume": -1.0},
        {**TICKER, "last": None},
        {**TICKER, "change": float("-inf")},
        {**TICKER, "ask_qty": "1"},
        {key: value for key, value in TICKER.items() if key != "vwap"},
    ],
    "ohlc": [
        {**CANDLE, "open": float("inf")},
        {**CANDLE, "low": -2.0},
        {**CANDLE, "trades": -1},
        {**CANDLE, "trades": 1.5},
        {**CANDLE, "interval": 7},
        {**CANDLE, "interval": [1]},
        {**CANDLE, "interval_begin": "2023-13-45T00:00:00Z"},
        {key: value for key, value in CANDLE.items() if key != "timestamp"},
    ],
    "book": [
        5,
        {"bids": [], "asks": [], "checksum": 1},
        {"symbol": 3, "bids": [], "asks": [], "checksum": 1},
    ],
}


@pytest.mark.parametrize(
    ("channel", "bad"),
    [(channel, bad) for channel, items in BAD_ITEMS.items() for bad in items],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_item_is_rejected_and_the_good_items_of_its_frame_are_kept(channel, bad):
    good = {"trade": TRADE, "ticker": TICKER, "ohlc": CANDLE}.get(
        channel, {"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 1}
    )
    message = parse(frame_of(channel, good, bad, good))
    assert [as_json(item) for item in message.data] == [as_json(good)] * 2
    [error] = message.rejected
    assert isinstance(error, MalformedMessage) and error.reason.startswith(f"{channel} item: ")
    assert as_json(error.frame) == as_json(bad)


def as_json(item: object) -> str:
    """Items compared as text: a NaN is not equal to itself, and NaN frames decode with Decimals."""
    return json.dumps(item, default=float, sort_keys=True)


def test_signed_ticker_changes_and_zero_volumes_are_valid():
    row = {**TICKER, "change": -3.25, "change_pct": -1.5, "volume": 0, "vwap": 0.0}
    assert parse(frame_of("ticker", row)).rejected == ()
    candle = {**CANDLE, "trades": 0, "volume": 0.0}
    assert parse(frame_of("ohlc", candle)).rejected == ()


def test_exactly_decoded_numbers_pass_the_schema():
    message = parse(
        frame_of("trade", TRADE).replace('"price": 1.0', '"price": 12345678.12345678'), exact=True
    )
    assert message.rejected == () and message.data[0]["price"] == Decimal("12345678.12345678")
    assert parse(
        '{"channel":"trade","type":"update","data":['
        + json.dumps(TRADE).replace('"price": 1.0', '"price": 1e999')
        + "]}"
    ).rejected


@pytest.mark.parametrize(
    "bad",
    [
        1,
        {"symbol": "ETH/USD", "price_precision": "x", "qty_precision": 8},
        {"symbol": "ETH/USD", "price_precision": 2, "qty_precision": -1},
        {"symbol": "ETH/USD", "price_precision": 2, "qty_precision": 10**6},
        {"symbol": "ETH/USD", "price_precision": True, "qty_precision": 8},
        {"symbol": "ETH/USD", "qty_precision": 8},
        {"symbol": "ETH/USD", "price_precision": 2, "qty_precision": 8, "qty_min": float("nan")},
        {"symbol": "ETH/USD", "price_precision": 2, "qty_precision": 8, "base": 5},
        {"symbol": "ETH/USD", "price_precision": 2, "qty_precision": 8, "marginable": "yes"},
        {"base": "BTC", "price_precision": 2, "qty_precision": 8},
    ],
)
def test_a_bad_instrument_pair_is_rejected_alone(bad):
    good = {"symbol": "BTC/USD", "price_precision": 1, "qty_precision": 8, "qty_increment": 1e-08}
    data = {"assets": [{"id": "BTC", "precision": 10}], "pairs": [good, bad]}
    message = parse(json.dumps({"channel": "instrument", "type": "snapshot", "data": data}))
    assert [as_json(pair) for pair in message.pairs] == [as_json(good)] and len(message.assets) == 1
    [error] = message.rejected
    assert error.reason.startswith("instrument pair item: ")


@pytest.mark.parametrize(
    "bad", [1, {"precision": 10}, {"id": ""}, {"id": "BTC", "precision": -1}, {"id": "X", "borrowable": 1}]
)
def test_a_bad_instrument_asset_is_rejected_alone(bad):
    data = {"assets": [bad, {"id": "ETH"}], "pairs": []}
    message = parse(json.dumps({"channel": "instrument", "type": "update", "data": data}))
    assert message.assets == ({"id": "ETH"},)
    [error] = message.rejected
    assert error.reason.startswith("instrument asset item: ")


def test_errors_about_huge_or_deep_values_stay_short():
    deep: list = []
    inner = deep
    for _ in range(900):
        inner.append([])
        inner = inner[0]
    message = parse(frame_of("trade", {**TRADE, "symbol": deep}, {**TRADE, "side": "x" * 1_000_000}))
    assert len(message.rejected) == 2
    assert all(len(str(error)) < 700 for error in message.rejected)


def test_ack_warnings_come_from_the_result_or_the_top_level():
    in_result = (
        '{"method":"subscribe","success":true,"result":{"channel":"ticker","warnings":["deprecated"]}}'
    )
    assert parse(in_result).warnings == ("deprecated",)
    assert parse('{"method":"subscribe","success":true,"warnings":["old"]}').warnings == ("old",)
