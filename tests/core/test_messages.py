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
    assert parse('{"method":"pong","req_id":3,"time_in":"a","time_out":"b"}') == Pong(3, "a", "b")
    status = parse(
        '{"channel":"status","type":"update","data":[{"api_version":"v2","connection_id":123,'
        '"system":"maintenance","version":"2.0.10"}]}'
    )
    assert status == Status("maintenance", "v2", 123, "2.0.10")
    assert parse('{"channel":"heartbeat"}') == Heartbeat()


@pytest.mark.parametrize(
    ("channel", "record", "row"),
    [
        ("ticker", TickerMessage, {"symbol": "BTC/USD", "bid": 1.5, "last": 2}),
        ("book", BookMessage, {"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 1}),
        ("ohlc", OhlcMessage, {"symbol": "BTC/USD", "open": 1.0, "interval_begin": T}),
        ("trade", TradeMessage, {"symbol": "BTC/USD", "price": 1.0, "trade_id": 5}),
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
    trade = parse('{"channel":"trade","type":"update","data":[{"symbol":"X/Y","qty":12345678.12345679}]}')
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
        '{"channel":"trade","type":"update","data":[{"price":1}]}',
        '{"channel":"trade","type":"update","data":[5]}',
        '{"channel":"book","type":"delta","data":[]}',
        '{"channel":"status","type":"update","data":[]}',
        '{"channel":"status","type":"update","data":[{"system":5}]}',
        '{"channel":"instrument","type":"snapshot","data":[]}',
        '{"channel":"instrument","type":"snapshot","data":{"pairs":[{"base":"BTC"}]}}',
        '{"method":"subscribe","success":"yes"}',
        '{"method":"subscribe","success":true,"result":[1]}',
        '{"method":"pong","req_id":"abc"}',
    ],
)
def test_malformed_frames_raise_typed_error(frame):
    with pytest.raises(MalformedMessage) as caught:
        parse(frame)
    assert caught.value.reason
