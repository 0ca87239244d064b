"""KrakenClient against the embedded simulator over a real loopback socket."""

from __future__ import annotations

import asyncio
import threading
import time

import pandas as pd
import pytest

from kraken_nb import (
    ChecksumMismatch,
    ClientClosed,
    InvalidParams,
    KrakenClient,
    RequestTimeout,
    SubscriptionRejected,
)

SYMBOL = "BTC/USD"


def wait(client: KrakenClient, predicate, timeout: float = 10.0) -> None:
    client.wait_until(lambda c: predicate(), timeout=timeout)


def assert_trades_match_simulator(client: KrakenClient, symbol: str) -> None:
    """Every trade the client holds is the simulator's, once, in order, with no silent hole."""
    ids = client.trades(symbol)["trade_id"].tolist()
    assert ids == sorted(set(ids)), "duplicated or reordered trades"
    log_ids = [t["trade_id"] for t in client.simulator.trade_log(symbol)]
    start = log_ids.index(ids[0])
    expected = log_ids[start : start + len(ids)]
    gaps = client.gaps()
    skipped = gaps[(gaps["symbol"] == symbol) & gaps["after_trade_id"].notna()]
    if skipped.empty:
        assert ids == expected, "trades lost without a recorded gap"
    else:
        missing = set(expected) - set(ids)
        for _, gap in skipped.iterrows():
            missing -= set(range(gap["after_trade_id"] + 1, gap["before_trade_id"]))
        assert not missing, f"unrecorded missing trades {sorted(missing)[:5]}"


def test_every_channel_streams_into_frames(client: KrakenClient) -> None:
    client.subscribe("trade", [SYMBOL, "ETH/USD"], snapshot=True)
    client.subscribe("ticker", SYMBOL)
    client.subscribe("ticker", "ETH/USD", event_trigger="bbo")
    client.subscribe("ohlc", SYMBOL, interval=1)
    client.subscribe("ohlc", SYMBOL, interval=5)
    client.subscribe("book", SYMBOL, depth=100)
    wait(client, lambda: len(client.trades(SYMBOL)) > 60 and len(client.ticker("ETH/USD")) > 3)

    trades = client.trades()
    assert list(trades.columns) == [
        "time",
        "symbol",
        "side",
        "price",
        "qty",
        "ord_type",
        "trade_id",
        "received",
    ]
    assert isinstance(trades["time"].dtype, pd.DatetimeTZDtype)
    assert isinstance(trades["received"].dtype, pd.DatetimeTZDtype)
    assert set(trades["symbol"]) == {SYMBOL, "ETH/USD"}
    assert set(trades["side"]) <= {"buy", "sell"}
    assert_trades_match_simulator(client, SYMBOL)

    latest = client.ticker_latest()
    assert set(latest.index) == {SYMBOL, "ETH/USD"}
    assert (latest["ask"] >= latest["bid"]).all()

    candles_1 = client.candles(SYMBOL, interval=1)
    candles_5 = client.candles(SYMBOL, interval=5)
    assert len(candles_1) > 1 and len(candles_5) > 1
    assert candles_1["interval_begin"].is_monotonic_increasing
    assert not candles_1.duplicated(["interval_begin"]).any()
    assert (candles_1["high"] >= candles_1[["open", "close"]].max(axis=1)).all()

    book = client.book(SYMBOL)
    assert book is not None and book.valid and len(book.bids()) == 100
    assert book.best_bid()[0] < book.best_ask()[0]
    frame = book.to_frame()
    assert set(frame["side"]) == {"bid", "ask"}

    pairs = client.instruments()
    assert pairs.loc[SYMBOL, "price_precision"] == book.price_precision
    assert not client.assets().empty
    assert client.instrument(SYMBOL)["qty_precision"] == book.qty_precision

    history = client.book_history(SYMBOL)
    assert history["valid"].all() and (history["spread"] > 0).all()
    depth = client.depth_history(SYMBOL)
    assert set(depth["side"]) == {"bid", "ask"}


def test_ping_measures_a_round_trip(client: KrakenClient) -> None:
    rtt = client.ping()
    assert 0 < rtt < 5


def test_invalid_params_never_reach_the_server(client: KrakenClient) -> None:
    before = client.stats()["messages"]
    with pytest.raises(InvalidParams, match="depth"):
        client.subscribe("book", SYMBOL, depth=7)
    with pytest.raises(InvalidParams, match="interval"):
        client.subscribe("ohlc", SYMBOL, interval=2)
    with pytest.raises(InvalidParams, match="symbol"):
        client.subscribe("trade", "XBTUSD")
    assert client.subscriptions() == []
    assert client.stats()["messages"] == before


def test_unknown_symbol_is_rejected_by_name(client: KrakenClient) -> None:
    with pytest.raises(SubscriptionRejected) as caught:
        client.subscribe("trade", [SYMBOL, "BTC/XYZ"])
    assert list(caught.value.rejections) == ["BTC/XYZ"]
    assert "BTC/XYZ" in str(caught.value)
    assert [s.symbol for s in client.subscriptions()] == [SYMBOL]


def test_server_side_rejection_switch(client: KrakenClient) -> None:
    client.simulator.reject_next_subscribe("EService:Unavailable")
    with pytest.raises(SubscriptionRejected, match="EService:Unavailable"):
        client.subscribe("ticker", SYMBOL)
    assert client.stats()["rejected"] == 1
    client.subscribe("ticker", SYMBOL)  # the next one goes through
    wait(client, lambda: len(client.ticker(SYMBOL)) > 0)


def test_unsubscribe_stops_the_stream(client: KrakenClient) -> None:
    client.subscribe("ticker", SYMBOL, event_trigger="bbo")
    wait(client, lambda: len(client.ticker(SYMBOL)) > 2)
    client.unsubscribe("ticker", SYMBOL, event_trigger="bbo")
    time.sleep(0.3)  # let frames already in flight land
    count = len(client.ticker(SYMBOL))
    time.sleep(1.0)
    assert len(client.ticker(SYMBOL)) == count
    assert client.subscriptions() == []


def test_corrupted_checksum_resyncs_only_that_book(client: KrakenClient) -> None:
    client.subscribe("book", [SYMBOL, "ETH/USD"], depth=10)
    wait(
        client, lambda: all(client.book(s) is not None and client.book(s).valid for s in (SYMBOL, "ETH/USD"))
    )
    other_version = client.book("ETH/USD").version
    invalid_seen = threading.Event()
    seen: list = []
    remove = client.on("checksum_mismatch", lambda event: (seen.append(event.data), invalid_seen.set()))
    client.simulator.corrupt_next_checksum(SYMBOL)
    wait(client, lambda: client.stats()["checksum_mismatches"] == 1)
    assert invalid_seen.wait(5)
    assert isinstance(seen[0], ChecksumMismatch) and seen[0].symbol == SYMBOL
    remove()
    wait(client, lambda: client.book(SYMBOL).valid and client.stats()["resyncs"] == 1)
    stats = client.stats()
    assert stats["resyncs"] == 1 and stats["reconnects"] == 0
    assert client.book("ETH/USD").version > other_version  # the other book kept streaming
    history = client.book_history(SYMBOL)
    assert history["valid"].all(), "a book known to be wrong was recorded as valid"


def test_dropped_connection_recovers_without_losing_or_duplicating_trades(client: KrakenClient) -> None:
    client.subscribe("trade", [SYMBOL, "ETH/USD"], snapshot=True)
    client.subscribe("book", SYMBOL, depth=25)
    wait(client, lambda: len(client.trades(SYMBOL)) > 55)
    disconnected = threading.Event()
    client.on("disconnected", lambda event: disconnected.set())
    for _ in range(2):
        client.simulator.drop_connections()
        assert disconnected.wait(5)
        disconnected.clear()
        client.wait_connected()
    wait(client, lambda: client.stats()["reconnects"] >= 2 and client.book(SYMBOL).valid)
    count = len(client.trades(SYMBOL))
    wait(client, lambda: len(client.trades(SYMBOL)) > count + 5)
    for symbol in (SYMBOL, "ETH/USD"):
        assert_trades_match_simulator(client, symbol)
    gaps = client.gaps()
    outages = gaps[gaps["after_trade_id"].isna()]
    assert len(outages[outages["channel"] == "trade"]) == 4  # two outages x two symbols
    assert outages["end"].notna().all()


def test_drop_after_n_messages_reconnects_with_backoff(client: KrakenClient) -> None:
    client.subscribe("trade", SYMBOL)
    client.simulator.drop_after(3)
    wait(client, lambda: client.stats()["reconnects"] >= 1 and client.connection_state == "live")
    assert client.subscriptions()[0].channel == "trade"
    count = len(client.trades(SYMBOL))
    wait(client, lambda: len(client.trades(SYMBOL)) > count)
    assert_trades_match_simulator(client, SYMBOL)


def test_malformed_frame_is_counted_and_the_stream_goes_on(client: KrakenClient) -> None:
    client.subscribe("ticker", SYMBOL)
    errors: list = []
    client.on("error", errors.append)
    client.simulator.send_malformed()
    wait(client, lambda: client.stats()["malformed"] == 1)
    count = len(client.ticker(SYMBOL))
    wait(client, lambda: len(client.ticker(SYMBOL)) > count)
    assert client.connection_state == "live"
    client.wait_until(lambda c: bool(errors), timeout=5)
    assert "not JSON" in str(errors[0].data)


def test_maintenance_status_is_surfaced(client: KrakenClient) -> None:
    assert client.system_status == "online"
    client.simulator.set_status("maintenance")
    wait(client, lambda: client.system_status == "maintenance")
    assert client.stats()["system_status"] == "maintenance"
    client.simulator.set_status("online")
    wait(client, lambda: client.system_status == "online")


def test_stalled_heartbeats_trigger_a_reconnect(client: KrakenClient) -> None:
    client.subscribe("instrument")  # after its snapshot only heartbeats flow
    wait(client, lambda: client.stats()["heartbeats"] >= 1)
    client.simulator.stop_heartbeats()
    wait(client, lambda: client.stats()["reconnects"] >= 1, timeout=10)
    assert "no message" in client.stats()["last_error"]
    client.simulator.resume_heartbeats()
    client.wait_connected()
    wait(client, lambda: client.stats()["heartbeats"] >= 2)


def test_callbacks_are_bounded_and_count_drops() -> None:
    with KrakenClient.simulated(speed=40, client_options={"callback_queue_size": 5}) as client:
        release = threading.Event()
        seen: list = []

        def slow(event) -> None:
            seen.append(event)
            release.wait(5)

        client.on("trade", slow)
        client.subscribe("trade", [SYMBOL, "ETH/USD", "SOL/USD"], snapshot=True)
        wait(client, lambda: client.stats()["callbacks_dropped"] > 0)
        release.set()
        assert client.connection_state == "live"
        assert len(client.trades()) > len(seen)


def test_async_stream_yields_events(client: KrakenClient) -> None:
    client.subscribe("trade", SYMBOL, snapshot=True)

    async def first_trades() -> list:
        stream = client.stream("trade")
        out = []
        async for event in stream:
            out.append(event)
            if len(out) == 3:
                stream.close()
        return out

    events = asyncio.run(asyncio.wait_for(first_trades(), 10))
    assert [e.kind for e in events] == ["trade"] * 3
    assert all(e.symbol == SYMBOL for e in events)


def test_closed_client_refuses_requests_and_stops_threads() -> None:
    client = KrakenClient.simulated(speed=5)
    client.subscribe("ticker", SYMBOL)
    client.close()
    client.close()  # idempotent
    assert client.connection_state == "closed"
    with pytest.raises(ClientClosed):
        client.subscribe("trade", SYMBOL)
    assert not any(t.name.startswith("kraken-nb-transport") and t.is_alive() for t in threading.enumerate())


def test_unreachable_server_times_out_clearly() -> None:
    with (
        KrakenClient("ws://127.0.0.1:9", timeout=1.0) as client,
        pytest.raises(RequestTimeout, match="state"),
    ):
        client.subscribe("trade", SYMBOL)
    assert client.connection_state == "closed"


def test_max_rows_bounds_the_history() -> None:
    with KrakenClient.simulated(speed=40, client_options={"max_rows": 100}) as client:
        client.subscribe("trade", [SYMBOL, "ETH/USD", "SOL/USD"], snapshot=True)
        wait(client, lambda: client.stats()["trades"] > 300)
        assert len(client.trades()) == 100


def test_long_book_quantities_are_decoded_exactly_over_the_socket(client: KrakenClient) -> None:
    # DOGE/USD has "whale" levels of 8+ integer digits at qty precision 8: too long for floats.
    client.subscribe("book", "DOGE/USD", depth=100)
    wait(client, lambda: client.book("DOGE/USD") is not None and client.book("DOGE/USD").valid)
    book = client.book("DOGE/USD")
    long_levels = [
        (price, qty)
        for side in ("bid", "ask")
        for price, qty in book.levels_exact(side)
        if qty >= 10**7 and qty != qty.to_integral_value()
    ]
    assert long_levels, "the simulator's DOGE/USD book should hold 8+8-digit quantities"
    stats = client.stats()
    assert stats["exact_decodes"] >= 1
    assert stats["checksum_mismatches"] == 0 and stats["malformed"] == 0 and stats["resyncs"] == 0
