"""Every channel over a raw socket: snapshots, updates, checksums, consistency with the market."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal

import pytest

from kraken_nb.core.params import BOOK_DEPTHS
from kraken_nb.simulator import PAIR_SPECS, Simulator

from .wire import WireClient, exact_levels, new_book

DEPTH_SYMBOLS = {10: "DOGE/USD", 25: "BTC/USD", 100: "ETH/USD", 500: "ADA/USD", 1000: "XRP/EUR"}


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize("depth", BOOK_DEPTHS)
def test_book_at_every_depth_verifies_and_matches_the_market(sim, wire, depth):
    symbol = DEPTH_SYMBOLS[depth]
    book = new_book(sim, symbol, depth)
    wire.acks(wire.subscribe("book", [symbol], depth=depth), 1)
    snapshot, _ = wire.until(lambda m: m.get("channel") == "book")
    assert snapshot["type"] == "snapshot"
    (entry,) = snapshot["data"]
    assert len(entry["bids"]) == len(entry["asks"]) == depth
    assert [lv["price"] for lv in entry["bids"]] == sorted(
        (lv["price"] for lv in entry["bids"]), reverse=True
    )
    assert [lv["price"] for lv in entry["asks"]] == sorted(lv["price"] for lv in entry["asks"])
    assert book.apply(entry) and book.valid

    updates = 0
    deletes = 0
    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline or updates < 5:
        message, _ = wire.until(lambda m: m.get("channel") == "book", timeout=5)
        assert message["type"] == "update"
        (entry,) = message["data"]
        assert entry["symbol"] == symbol and isinstance(entry["timestamp"], str)
        deletes += sum(lv["qty"] == 0 for lv in entry["bids"] + entry["asks"])
        assert book.apply(entry), f"checksum mismatch in update {updates}"
        assert len(book.levels_exact("bid")) <= depth and len(book.levels_exact("ask")) <= depth
        updates += 1
    assert deletes > 0

    # Freeze the market, read everything sent so far, and compare every level.
    sim.pause()
    try:
        for message in wire.drain():
            if message.get("channel") == "book":
                assert book.apply(message["data"][0])
        assert book.valid
        assert book.levels_exact("bid") == exact_levels(sim, symbol, "bids", depth)
        assert book.levels_exact("ask") == exact_levels(sim, symbol, "asks", depth)
    finally:
        sim.resume()


def test_book_without_snapshot_sends_only_incremental_updates(sim, wire):
    wire.acks(wire.subscribe("book", ["LTC/EUR"], snapshot=False), 1)
    books = [m for m in wire.collect(0.6) if m.get("channel") == "book"]
    assert len(books) >= 3
    assert all(m["type"] == "update" for m in books)
    for message in books:
        (entry,) = message["data"]
        assert 1 <= len(entry["bids"]) + len(entry["asks"]) <= 10


def test_several_books_on_one_connection(sim, wire):
    symbols = ["BTC/USD", "DOGE/USD", "ETH/BTC"]
    books = {s: new_book(sim, s, 10) for s in symbols}
    wire.acks(wire.subscribe("book", symbols), 3)
    checked: dict[str, int] = defaultdict(int)
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline or min(checked.values(), default=0) < 3:
        message, _ = wire.until(lambda m: m.get("channel") == "book")
        for entry in message["data"]:
            assert books[entry["symbol"]].apply(entry)
            checked[entry["symbol"]] += 1
    assert set(checked) == set(symbols)


def test_ticker_on_trades_follows_the_last_trade(sim, wire):
    symbol = "BTC/USD"
    wire.acks(wire.subscribe("trade", [symbol]), 1)
    wire.acks(wire.subscribe("ticker", [symbol]), 1)
    snapshot, _ = wire.until(lambda m: m.get("channel") == "ticker")
    assert snapshot["type"] == "snapshot"
    fields = {
        "symbol",
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
    }
    assert fields <= set(snapshot["data"][0])
    last_trade = None
    tickers = 0
    seen_trades = []
    for message in wire.collect(0.8):
        if message.get("channel") == "trade":
            seen_trades.extend(message["data"])
            last_trade = message["data"][-1]
        elif message.get("channel") == "ticker":
            assert last_trade is not None, "a trades-triggered ticker came before any trade"
            (ticker,) = message["data"]
            assert ticker["last"] == last_trade["price"]
            assert ticker["low"] <= ticker["last"] <= ticker["high"]
            assert ticker["bid"] < ticker["ask"]
            tickers += 1
            last_trade = None  # the next ticker needs new trades
    assert tickers >= 3
    log = {t["trade_id"]: t for t in sim.trade_log(symbol)}
    assert [log[t["trade_id"]] for t in seen_trades] == seen_trades


def test_ticker_on_bbo_follows_the_best_levels(sim, wire):
    symbol = "SOL/USD"
    book = new_book(sim, symbol, 10)
    wire.subscribe("book", [symbol])
    wire.subscribe("ticker", [symbol], event_trigger="bbo")
    previous = None
    tickers = 0
    for message in wire.collect(0.8):
        channel = message.get("channel")
        if channel == "book":
            assert book.apply(message["data"][0])
        elif channel == "ticker":
            (ticker,) = message["data"]
            bid = book.levels_exact("bid", 1)[0]
            ask = book.levels_exact("ask", 1)[0]
            assert (ticker["bid"], ticker["bid_qty"]) == bid
            assert (ticker["ask"], ticker["ask_qty"]) == ask
            bbo = (bid, ask)
            if message["type"] == "update":
                assert bbo != previous, "a bbo ticker update without a bbo change"
            previous = bbo
            tickers += 1
    assert tickers >= 3


def test_trade_snapshot_and_updates_are_the_trade_log(sim, wire):
    symbol = "ETH/USD"
    wire.acks(wire.subscribe("trade", [symbol], snapshot=True), 1)
    snapshot, _ = wire.until(lambda m: m.get("channel") == "trade")
    assert snapshot["type"] == "snapshot"
    trades = list(snapshot["data"])
    assert len(trades) == 50
    for message in wire.collect(0.6):
        if message.get("channel") == "trade":
            assert message["type"] == "update"
            trades.extend(message["data"])
    ids = [t["trade_id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "trade ids must increase by one without gaps"
    assert len(ids) > 60
    log = {t["trade_id"]: t for t in sim.trade_log(symbol)}
    assert [log[i] for i in ids] == trades
    spec = PAIR_SPECS[symbol]
    assert all(t["price"] == t["price"].quantize(spec.price_increment) for t in trades)


def test_trade_without_snapshot_starts_with_updates(wire):
    wire.acks(wire.subscribe("trade", ["DOGE/USD"]), 1)
    first, _ = wire.until(lambda m: m.get("channel") == "trade")
    assert first["type"] == "update"


@pytest.fixture(scope="module")
def fast_sim():
    """One minute of market per wall second, two pairs."""
    with Simulator(seed=3, speed=60, pairs=["BTC/USD", "LTC/EUR"]).running() as simulator:
        yield simulator


@pytest.mark.parametrize(("symbol", "interval"), [("BTC/USD", 1), ("LTC/EUR", 1)])
def test_ohlc_candles_agree_with_the_trades_and_roll(fast_sim, symbol, interval):
    client = WireClient(fast_sim.url)
    try:
        (ack,), _ = client.acks(client.subscribe("ohlc", [symbol], interval=interval), 1)
        assert ack["result"]["interval"] == interval
        snapshot, _ = client.until(lambda m: m.get("channel") == "ohlc")
        assert snapshot["type"] == "snapshot"
        history = snapshot["data"]
        assert 2 <= len(history) <= 100
        begins = [seconds(c["interval_begin"]) for c in history]
        assert begins == sorted(set(begins))
        candles = {c["interval_begin"]: c for c in history}
        rolls = 0
        last_begin = history[-1]["interval_begin"]
        for message in client.collect(1.4 * interval):
            if message.get("channel") != "ohlc":
                continue
            assert message["type"] == "update"
            for candle in message["data"]:
                assert candle["symbol"] == symbol and candle["interval"] == interval
                assert candle["interval_begin"] >= last_begin, "an update went back to an older candle"
                if candle["interval_begin"] > last_begin:
                    rolls += 1
                    last_begin = candle["interval_begin"]
                candles[candle["interval_begin"]] = candle
        assert rolls >= 1, "no new candle in more than an interval of market time"

        fast_sim.pause()
        try:
            for message in client.drain():
                if message.get("channel") == "ohlc":
                    candles.update((c["interval_begin"], c) for c in message["data"])
            log = fast_sim.trade_log(symbol)
        finally:
            fast_sim.resume()
    finally:
        client.close()

    span = interval * 60
    groups: dict[float, list[dict]] = defaultdict(list)
    for trade in log:
        ts = seconds(trade["timestamp"])
        groups[ts - ts % span].append(trade)
    increment = PAIR_SPECS[symbol].price_increment
    compared = 0
    for begin_text, candle in candles.items():
        begin = seconds(begin_text)
        if begin < min(groups):
            continue  # synthetic history from before the first trade
        trades = groups[begin]
        prices = [t["price"] for t in trades]
        volume = sum(t["qty"] for t in trades)
        assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
        )
        assert candle["volume"] == volume and candle["trades"] == len(trades)
        assert abs(candle["vwap"] - sum(t["price"] * t["qty"] for t in trades) / volume) <= increment / 2
        assert seconds(candle["timestamp"]) == begin + span
        compared += 1
    assert compared >= 2
    assert candles[max(candles)]["close"] == log[-1]["price"]


def test_instrument_snapshot_lists_pairs_and_precisions(sim, wire):
    req_id = wire.subscribe("instrument")
    (ack,), _ = wire.acks(req_id, 1)
    assert ack["success"] is True and ack["result"] == {
        "channel": "instrument",
        "snapshot": True,
        "warnings": ["tick_size is deprecated, use price_increment"],
    }
    assert "symbol" not in ack["result"]
    message, _ = wire.until(lambda m: m.get("channel") == "instrument")
    assert message["type"] == "snapshot"
    pairs = {p["symbol"]: p for p in message["data"]["pairs"]}
    assert set(pairs) == set(sim.market.symbols)
    for symbol, pair in pairs.items():
        spec = PAIR_SPECS[symbol]
        assert pair["price_precision"] == spec.price_precision
        assert pair["qty_precision"] == spec.qty_precision
        assert pair["price_increment"] == Decimal(1).scaleb(-spec.price_precision)
        assert pair["qty_min"] == spec.qty_min and pair["status"] == "online"
        assert {
            "base",
            "quote",
            "cost_min",
            "cost_precision",
            "qty_increment",
            "marginable",
            "has_index",
        } <= set(pair)
    assets = {a["id"]: a for a in message["data"]["assets"]}
    assert {"BTC", "USD", "DOGE", "EUR"} <= set(assets)
    assert {
        "status",
        "precision",
        "precision_display",
        "borrowable",
        "collateral_value",
        "margin_rate",
    } <= set(assets["BTC"])


def test_heartbeats_only_while_subscribed(sim, wire):
    assert not [m for m in wire.collect(0.5) if m.get("channel") == "heartbeat"]
    wire.acks(wire.subscribe("instrument"), 1)
    beats = [m for m in wire.collect(0.6) if m.get("channel") == "heartbeat"]
    assert beats and all(m == {"channel": "heartbeat"} for m in beats)
