"""The request/response protocol over a raw socket: status, acks, ping, every rejection."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from kraken_nb.core.params import BOOK_DEPTHS, OHLC_INTERVALS
from kraken_nb.simulator.protocol import RequestError, parse_request

from .wire import WireClient

OHLC_WARNING = "timestamp is deprecated, use interval_begin"


def is_rfc3339(text: str) -> bool:
    return (
        text.endswith("Z") and len(text.split(".")[-1]) == 7 and datetime.fromisoformat(text[:-1]) is not None
    )


def test_status_on_connect(sim):
    client = WireClient(sim.url)
    try:
        status = client.status
        assert status["channel"] == "status" and status["type"] == "update"
        (data,) = status["data"]
        assert data["api_version"] == "v2"
        assert data["system"] == "online"
        assert isinstance(data["connection_id"], int) and data["connection_id"] >= 0
        assert isinstance(data["version"], str) and data["version"]
        assert sim.connection_count >= 1
    finally:
        client.close()


def test_url_is_loopback_v2(sim):
    assert sim.url == f"ws://127.0.0.1:{sim.port}/v2"
    assert sim.port > 0


def test_ping_pong(wire):
    wire.send({"method": "ping", "req_id": 42})
    pong = wire.recv()
    assert pong["method"] == "pong" and pong["req_id"] == 42
    assert is_rfc3339(pong["time_in"]) and is_rfc3339(pong["time_out"])
    assert pong["time_in"] <= pong["time_out"]
    wire.send({"method": "ping"})
    assert wire.recv()["method"] == "pong"


def test_one_ack_per_symbol_before_the_snapshots(wire):
    req_id = wire.subscribe("ticker", ["BTC/USD", "ETH/USD", "BTC/XYZ"])
    frames = [wire.recv() for _ in range(5)]
    acks = [f for f in frames if f.get("req_id") == req_id]
    assert [a["success"] for a in acks] == [True, True, False]
    assert [a["result"]["symbol"] for a in acks[:2]] == ["BTC/USD", "ETH/USD"]
    assert acks[2]["symbol"] == "BTC/XYZ" and acks[2]["error"] == "Currency pair not supported BTC/XYZ"
    assert acks[0]["result"] == {
        "channel": "ticker",
        "symbol": "BTC/USD",
        "event_trigger": "trades",
        "snapshot": True,
    }
    assert all(is_rfc3339(a["time_in"]) and is_rfc3339(a["time_out"]) for a in acks)
    snapshots = [f for f in frames if f.get("type") == "snapshot"]
    assert [s["data"][0]["symbol"] for s in snapshots] == ["BTC/USD", "ETH/USD"]
    assert frames.index(snapshots[0]) > frames.index(acks[0])


@pytest.mark.parametrize(
    ("channel", "params", "result"),
    [
        ("book", {}, {"depth": 10, "snapshot": True}),
        ("book", {"depth": 100, "snapshot": False}, {"depth": 100, "snapshot": False}),
        ("ohlc", {}, {"interval": 1, "snapshot": True, "warnings": [OHLC_WARNING]}),
        ("ohlc", {"interval": 240}, {"interval": 240, "snapshot": True, "warnings": [OHLC_WARNING]}),
        ("trade", {}, {"snapshot": False}),
        ("ticker", {"event_trigger": "bbo", "snapshot": False}, {"event_trigger": "bbo", "snapshot": False}),
    ],
)
def test_ack_echoes_the_parameters_in_force(wire, channel, params, result):
    req_id = wire.subscribe(channel, ["SOL/USD"], **params)
    (ack,), _ = wire.acks(req_id, 1)
    assert ack["success"] is True and ack["method"] == "subscribe"
    assert ack["result"] == {"channel": channel, "symbol": "SOL/USD", **result}


def test_unsubscribe_acks_and_stops_the_feed(wire):
    req_id = wire.subscribe("trade", ["BTC/USD"])
    wire.acks(req_id, 1)
    wire.until(lambda m: m.get("channel") == "trade")
    req_id = wire.unsubscribe("trade", ["BTC/USD"])
    (ack,), _ = wire.acks(req_id, 1)
    assert ack == {
        **ack,
        "method": "unsubscribe",
        "success": True,
        "result": {"channel": "trade", "symbol": "BTC/USD"},
    }
    later = wire.collect(0.6)
    assert not [m for m in later if m.get("channel") == "trade"]
    assert [m for m in later if m.get("channel") == "heartbeat"] == []


def test_unsubscribe_book_needs_the_subscribed_depth(wire):
    wire.acks(wire.subscribe("book", ["ETH/BTC"], depth=25), 1)
    (wrong,), _ = wire.acks(wire.unsubscribe("book", ["ETH/BTC"], depth=10), 1)
    assert wrong["success"] is False and wrong["error"] == "Subscription Not Found"
    (right,), _ = wire.acks(wire.unsubscribe("book", ["ETH/BTC"], depth=25), 1)
    assert right["success"] is True and right["result"] == {
        "channel": "book",
        "symbol": "ETH/BTC",
        "depth": 25,
    }


def test_ohlc_intervals_are_separate_subscriptions(wire):
    (first,), _ = wire.acks(wire.subscribe("ohlc", ["LTC/EUR"], interval=5), 1)
    (second,), _ = wire.acks(wire.subscribe("ohlc", ["LTC/EUR"], interval=15), 1)
    assert first["success"] and second["success"]
    (gone,), _ = wire.acks(wire.unsubscribe("ohlc", ["LTC/EUR"], interval=5), 1)
    assert gone["result"] == {"channel": "ohlc", "symbol": "LTC/EUR", "interval": 5}


def request(params: dict) -> dict:
    return {"method": "subscribe", "params": params, "req_id": 7}


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (request({"channel": "book", "symbol": ["BTC/USD"], "depth": 7}), "Subscription depth not supported"),
        (
            request({"channel": "book", "symbol": ["BTC/USD"], "depth": True}),
            "Subscription depth not supported",
        ),
        (
            request({"channel": "book", "symbol": ["BTC/USD"], "depth": "10"}),
            "Subscription depth not supported",
        ),
        (
            request({"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 2}),
            "Subscription interval not supported",
        ),
        (request({"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "fast"}), "event_trigger"),
        (request({"channel": "trade", "symbol": ["BTC/USD"], "snapshot": "yes"}), "snapshot"),
        (request({"channel": "trade", "symbol": ["BTC/USD"], "depth": 10}), "Unsupported field: 'depth'"),
        (request({"channel": "book", "symbol": ["BTC/USD"], "colour": "red"}), "Unsupported field: 'colour'"),
        (request({"channel": "book"}), "Missing field: 'symbol'"),
        (request({"channel": "book", "symbol": []}), "symbol"),
        (request({"channel": "book", "symbol": "BTC/USD"}), "symbol"),
        (request({"channel": "book", "symbol": [1]}), "symbol"),
        (request({"channel": "candles", "symbol": ["BTC/USD"]}), "Subscription name invalid"),
        (request({"channel": "executions"}), "ws-auth.kraken.com"),
        (request({"symbol": ["BTC/USD"]}), "Missing field: 'channel'"),
        (request({"channel": "instrument", "symbol": ["BTC/USD"]}), "Unsupported field: 'symbol'"),
        (request({"channel": "instrument", "execution_venue": "moon"}), "execution_venue"),
        ({"method": "subscribe", "req_id": 7}, "Missing field: 'params'"),
        ({"method": "subscribe", "params": [], "req_id": 7}, "params"),
        ({"method": "fly", "req_id": 7}, "Method not found"),
        ({"req_id": 7}, "Missing field: 'method'"),
        ({"method": "ping", "params": {}, "req_id": 7}, "Unsupported field: 'params'"),
        ({"method": "ping", "req_id": "seven"}, "req_id"),
        ("this is not json", "not valid JSON"),
        ("[1, 2, 3]", "JSON object"),
        ('{"method": "subscribe", "params": {"channel": "book", "symbol": ["BTC', "not valid JSON"),
    ],
)
def test_bad_requests_are_rejected_and_the_connection_lives_on(wire, frame, error):
    wire.send(frame)
    reply = wire.recv()
    assert reply["success"] is False
    assert error in reply["error"]
    assert is_rfc3339(reply["time_in"]) and is_rfc3339(reply["time_out"])
    if isinstance(frame, dict) and isinstance(frame.get("req_id"), int):
        assert reply["req_id"] == frame["req_id"]
    if isinstance(frame, dict) and frame.get("method") in ("subscribe", "ping"):
        assert reply["method"] == frame["method"]
    assert "symbol" not in reply
    wire.send({"method": "ping", "req_id": 8})
    pong, _ = wire.until(lambda m: m.get("method") == "pong")
    assert pong["req_id"] == 8


def test_binary_frames_are_read_as_text(wire):
    wire.ws.send(json.dumps({"method": "ping", "req_id": 5}).encode())
    assert wire.recv()["req_id"] == 5
    wire.ws.send(b"\xff\xfe garbage")
    reply = wire.recv()
    assert reply["success"] is False and "JSON" in reply["error"]


def test_already_subscribed_and_not_subscribed_are_per_symbol(wire):
    wire.acks(wire.subscribe("trade", ["ADA/USD"]), 1)
    acks, _ = wire.acks(wire.subscribe("trade", ["ADA/USD", "XRP/EUR"]), 2)
    assert (acks[0]["success"], acks[0]["symbol"], acks[0]["error"]) == (
        False,
        "ADA/USD",
        "Already subscribed",
    )
    assert acks[1]["success"] is True and acks[1]["result"]["symbol"] == "XRP/EUR"
    acks, _ = wire.acks(wire.unsubscribe("trade", ["ADA/USD", "DOGE/USD"]), 2)
    assert acks[0]["success"] is True
    assert (acks[1]["success"], acks[1]["symbol"], acks[1]["error"]) == (
        False,
        "DOGE/USD",
        "Subscription Not Found",
    )
    (again,), _ = wire.acks(wire.unsubscribe("instrument"), 1)
    assert again["success"] is False and again["error"] == "Subscription Not Found"


def test_param_enums_match_the_core(wire):
    for depth in BOOK_DEPTHS:
        (ack,), _ = wire.acks(wire.subscribe("book", ["XRP/EUR"], depth=depth, snapshot=False), 1)
        assert ack["success"] is True
        wire.acks(wire.unsubscribe("book", ["XRP/EUR"], depth=depth), 1)
    req_ids = [wire.subscribe("ohlc", ["XRP/EUR"], interval=i, snapshot=False) for i in OHLC_INTERVALS]
    for req_id in req_ids:
        (ack,), _ = wire.acks(req_id, 1)
        assert ack["success"] is True


@pytest.mark.parametrize("frame", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000])
def test_deeply_nested_request_is_answered_not_raised(frame):
    with pytest.raises(RequestError, match="not valid JSON"):
        parse_request(frame)


def test_server_answers_a_deeply_nested_request_and_keeps_serving(wire):
    wire.send("[" * 100_000 + "]" * 100_000)
    error, _ = wire.until(lambda m: isinstance(m, dict) and m.get("success") is False)
    assert error["error"] == "Malformed request: not valid JSON"
    wire.send({"method": "ping", "req_id": 3})
    pong, _ = wire.until(lambda m: isinstance(m, dict) and m.get("method") == "pong")
    assert pong["req_id"] == 3
