"""Request builders and validation of every subscribe parameter."""

from __future__ import annotations

import pytest

from kraken_nb.core.params import (
    BOOK_DEPTHS,
    OHLC_INTERVALS,
    RequestIds,
    ping_request,
    subscribe_request,
    unsubscribe_request,
    validate_subscription,
)
from kraken_nb.errors import InvalidParams


@pytest.mark.parametrize(
    ("channel", "params", "expected"),
    [
        ("ticker", {"event_trigger": "bbo", "snapshot": False}, {"event_trigger": "bbo", "snapshot": False}),
        ("book", {"depth": 1000}, {"depth": 1000}),
        ("ohlc", {"interval": 21600, "snapshot": True}, {"interval": 21600, "snapshot": True}),
        ("trade", {"snapshot": True}, {"snapshot": True}),
        ("trade", {}, {}),
    ],
)
def test_subscribe_request_carries_symbols_and_params(channel, params, expected):
    request = subscribe_request(channel, ["BTC/USD", "ETH/USD"], req_id=7, **params)
    assert request == {
        "method": "subscribe",
        "params": {"channel": channel, "symbol": ["BTC/USD", "ETH/USD"], **expected},
        "req_id": 7,
    }


def test_instrument_request_has_no_symbol_and_takes_its_params():
    request = subscribe_request(
        "instrument", execution_venue="bitnomial-exchange", include_tokenized_assets=True, snapshot=False
    )
    assert request == {
        "method": "subscribe",
        "params": {
            "channel": "instrument",
            "execution_venue": "bitnomial-exchange",
            "include_tokenized_assets": True,
            "snapshot": False,
        },
    }


def test_unsubscribe_keeps_identifying_params_only():
    request = unsubscribe_request("book", "BTC/USD", depth=25, snapshot=False, req_id=3)
    assert request["params"] == {"channel": "book", "symbol": ["BTC/USD"], "depth": 25}
    request = unsubscribe_request("ohlc", "BTC/USD", interval=5)
    assert request["params"] == {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 5}


def test_one_symbol_string_and_duplicates():
    sub = validate_subscription("trade", "BTC/USD")
    assert sub.symbols == ("BTC/USD",)
    assert validate_subscription("trade", ["ETH/USD", "BTC/USD", "ETH/USD"]).symbols == ("ETH/USD", "BTC/USD")


def test_none_params_mean_server_default():
    assert subscribe_request("book", "BTC/USD", depth=None)["params"] == {
        "channel": "book",
        "symbol": ["BTC/USD"],
    }


@pytest.mark.parametrize(
    ("channel", "symbols", "params", "name", "value"),
    [
        ("book", "BTC/USD", {"depth": 11}, "depth", 11),
        ("book", "BTC/USD", {"depth": "10"}, "depth", "10"),
        ("book", "BTC/USD", {"depth": True}, "depth", True),
        ("ohlc", "BTC/USD", {"interval": 2}, "interval", 2),
        ("ohlc", "BTC/USD", {"interval": 60.0}, "interval", 60.0),
        ("ticker", "BTC/USD", {"event_trigger": "trade"}, "event_trigger", "trade"),
        ("ticker", "BTC/USD", {"snapshot": "yes"}, "snapshot", "yes"),
        ("trade", "BTC/USD", {"snapshot": 1}, "snapshot", 1),
        ("instrument", None, {"execution_venue": "us"}, "execution_venue", "us"),
        ("instrument", None, {"include_tokenized_assets": "true"}, "include_tokenized_assets", "true"),
        ("book", "BTC/USD", {"interval": 1}, "parameter", "interval"),
        ("trade", "BTC/USD", {"depth": 10}, "parameter", "depth"),
        ("level3", "BTC/USD", {}, "channel", "level3"),
        ("trade", "XBTUSD", {}, "symbol", "XBTUSD"),
        ("trade", "btc/usd", {}, "symbol", "btc/usd"),
        ("trade", ["BTC/USD", 5], {}, "symbol", 5),
        ("trade", None, {}, "symbol", None),
        ("trade", [], {}, "symbol", []),
        ("instrument", ["BTC/USD"], {}, "symbol", ["BTC/USD"]),
    ],
)
def test_every_bad_value_is_named_with_the_allowed_ones(channel, symbols, params, name, value):
    with pytest.raises(InvalidParams) as caught:
        subscribe_request(channel, symbols, **params)
    error = caught.value
    assert error.name == name
    assert error.value == value
    assert repr(value) in str(error) or str(value) in str(error)
    assert "allowed" in str(error)


def test_allowed_values_are_listed():
    with pytest.raises(InvalidParams) as caught:
        subscribe_request("book", "BTC/USD", depth=7)
    assert caught.value.allowed == BOOK_DEPTHS
    with pytest.raises(InvalidParams) as caught:
        subscribe_request("ohlc", "BTC/USD", interval=7)
    assert caught.value.allowed == OHLC_INTERVALS


def test_request_ids_are_unique_and_increasing():
    ids = RequestIds()
    seen = [ids.next() for _ in range(1000)]
    assert seen == sorted(set(seen))
    assert all(isinstance(i, int) and i > 0 for i in seen)


def test_ping_request():
    assert ping_request(5) == {"method": "ping", "req_id": 5}
    assert ping_request() == {"method": "ping"}
