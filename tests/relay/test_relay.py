"""A relay and its clients over a real nats-server: the relay's rows, valid books, late joiners, gaps."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pandas as pd

from kraken_nb import KrakenClient
from kraken_nb.core.session import Event
from kraken_nb.core.taps import Tap
from kraken_nb.relay.local import LocalNatsServer
from kraken_nb.relay.relay import Relay
from kraken_nb.relay.source import EXPIRED_REASON
from kraken_nb.relay.streams import StreamSettings
from kraken_nb.simulator import Simulator

from .conftest import SYMBOLS, book_is_valid, caught_up, market, start_relay, wait_for
from .proxy import Partition

RUN_SECONDS = 30.0


def same_rows(mine: pd.DataFrame, theirs: pd.DataFrame, *, same_receiver: bool = True) -> None:
    """The same rows in the same order (category codes may differ: symbols arrive in another order).

    ``received`` is the relay's receive time, carried in each message; with two
    relays it is the time of whichever relay's copy was stored, so
    ``same_receiver=False`` leaves it out.
    """
    if not same_receiver:
        mine, theirs = mine.drop(columns="received"), theirs.drop(columns="received")
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), theirs.reset_index(drop=True), check_categorical=False
    )


def books_match(client: KrakenClient, relay: Relay, symbol: str) -> bool:
    assert relay.client is not None
    mine, theirs = client.book(symbol), relay.client.book(symbol)
    return (
        mine is not None
        and theirs is not None
        and mine.valid
        and mine.checksum_text() == theirs.checksum_text()
    )


def test_three_clients_see_exactly_what_the_relay_saw(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    """Relay + 3 clients for 30 s: the same trades, tickers, candles; no duplicate; every checksum valid."""
    channels = market("trade", "book", "ticker") + market("ohlc", symbols=("BTC/USD",))
    mismatches: list[tuple[str, Event]] = []

    def subscribe(client: KrakenClient, name: str) -> KrakenClient:
        client.on("checksum_mismatch", lambda event: mismatches.append((name, event)))
        client.subscribe("trade", SYMBOLS)
        client.subscribe("book", SYMBOLS, depth=10)
        client.subscribe("ticker", SYMBOLS)
        client.subscribe("ohlc", "BTC/USD", interval=1)
        return client

    with start_relay(nats_server, simulator, channels) as relay:
        assert relay.client is not None
        started = time.monotonic()
        first = subscribe(KrakenClient.from_nats(nats_server.url, start="first"), "first")
        live = subscribe(KrakenClient.from_nats(nats_server.url, start="new", durable="team-b"), "live")
        time.sleep(RUN_SECONDS / 3)
        late = subscribe(
            KrakenClient.from_nats(nats_server.url, start="first"), "late"
        )  # replays the history
        clients = (first, live, late)
        try:
            while time.monotonic() - started < RUN_SECONDS:
                time.sleep(1.0)
                for client in clients:  # a valid book at every look, never a wrong one
                    assert (
                        all(client.book(s) is None or client.book(s).valid for s in SYMBOLS) or client is late
                    )
            simulator.pause()
            caught_up(relay, *clients)
            for client in clients:
                wait_for(
                    lambda c=client: all(books_match(c, relay, s) for s in SYMBOLS),
                    20,
                    "books like the relay's",
                )
            ours = relay.client
            for symbol in SYMBOLS:
                relay_trades = ours.trades(symbol)
                assert relay_trades.trade_id.is_unique and relay_trades.trade_id.diff().dropna().eq(1).all()
                for client in (first, late):
                    same_rows(client.trades(symbol), relay_trades)
                    same_rows(client.ticker(symbol), ours.ticker(symbol))
                joined = live.trades(symbol)
                assert len(joined) > 10
                same_rows(joined, relay_trades.tail(len(joined)))
            for client in (first, late):
                same_rows(client.candles("BTC/USD", interval=1), ours.candles("BTC/USD", interval=1))
            assert mismatches == []
            for client in clients:
                stats = client.stats()
                assert stats["duplicate_trades"] == 0 and stats["checksum_mismatches"] == 0, stats
                assert stats["resyncs"] == 0 and stats["malformed"] == 0 and stats["redelivered"] == 0, stats
                assert client.gaps().empty, client.gaps()
                history = client.book_history()
                for symbol in SYMBOLS:  # once valid, valid at every recorded top of book
                    valid = history[history.symbol == symbol].valid.tolist()
                    assert valid and all(valid[valid.index(True) :]), symbol
                assert stats["system_status"] == "online"
            relay_stats = relay.stats()
            assert relay_stats["dropped"] == 0 and relay_stats["failures"] == 0, relay_stats
            assert relay_stats["duplicates"] == 0, relay_stats  # no frame was taken for an earlier one
        finally:
            for client in clients:
                client.close()


class BookEvents(Tap):
    """What each book frame did to each book of the client, in order, seen under the client's lock."""

    def __init__(self) -> None:
        self.kinds: dict[str, list[str]] = {}

    def frame(self, text: str | bytes, message: Any, received_ns: int, events: list[Any]) -> None:
        if getattr(message, "channel", None) == "book":
            for event in events:
                if event.kind in ("book", "checksum_mismatch", "error"):
                    self.kinds.setdefault(event.symbol, []).append(event.kind)


def test_a_late_joiner_has_a_checksum_valid_book_within_one_update(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    with start_relay(
        nats_server, simulator, market("book", symbols=("BTC/USD", "ETH/USD"), depth=25)
    ) as relay:
        wait_for(lambda: relay.stats()["snapshots"] >= 4, 15, "the relay's first snapshots")
        time.sleep(2.5)  # the stream moves on past the last snapshot
        for start in ("new", "last", "first"):
            taps = BookEvents()
            with KrakenClient.from_nats(nats_server.url, start=start, taps=[taps]) as client:
                client.subscribe("book", ["BTC/USD", "ETH/USD"], depth=25)
                wait_for(
                    lambda t=taps: all(len(t.kinds.get(s, [])) >= 3 for s in ("BTC/USD", "ETH/USD")),
                    20,
                    f"book updates ({start})",
                )
                for symbol in ("BTC/USD", "ETH/USD"):
                    assert client.book(symbol).valid, (start, symbol)
                    # the first book frame applied is a checksum-valid snapshot, and every one after it
                    assert set(taps.kinds[symbol]) == {"book"}, (start, symbol, taps.kinds[symbol][:5])
                stats = client.stats()
                assert stats["checksum_mismatches"] == 0, (start, stats)
                if start == "first":  # the relay's own first snapshot frame is still in the stream
                    assert stats["snapshot_loads"] == 0
                simulator.pause()
                relay.wait_published()
                wait_for(
                    lambda c=client: all(books_match(c, relay, s) for s in ("BTC/USD", "ETH/USD")), 15, start
                )
                simulator.resume()


def test_a_checksum_mismatch_reloads_the_latest_snapshot(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    """A frame that breaks the client's book (not the relay's) is survived by loading the relay's snapshot."""
    with (
        start_relay(nats_server, simulator, market("book", symbols=("BTC/USD",))) as relay,
        KrakenClient.from_nats(nats_server.url, start="new") as client,
    ):
        client.subscribe("book", "BTC/USD")
        wait_for(
            lambda: book_is_valid(client, "BTC/USD") and client.stats()["messages"] > 20, 15, "a valid book"
        )
        bogus = orjson.dumps(
            {
                "channel": "book",
                "type": "update",
                "data": [
                    {
                        "symbol": "BTC/USD",
                        "bids": [{"price": 1.0, "qty": 1.0}],
                        "asks": [],
                        "checksum": 12345,
                        "timestamp": "2024-01-01T00:00:00.000000Z",
                    }
                ],
            }
        )
        relay._publisher.call(relay._link.js.publish("kraken.v2.book.BTC-USD", bogus))
        wait_for(lambda: client.stats()["checksum_mismatches"] >= 1, 10, "the client's mismatch")
        time.sleep(2.0)  # the relay's next snapshots come after the bogus frame
        wait_for(lambda: books_match(client, relay, "BTC/USD"), 10, "the relay's book while it moves")
        stats = client.stats()
        assert stats["snapshot_loads"] >= 1 and stats["resyncs"] >= 1, stats
        simulator.pause()
        relay.wait_published()
        wait_for(lambda: books_match(client, relay, "BTC/USD"), 15, "the relay's book")
        assert relay.client.stats()["checksum_mismatches"] == 0  # the relay never saw the bogus frame


def test_a_subscribe_is_answered_while_the_data_connection_is_stalled(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    """API requests have a connection of their own: messages queued on the data one do not delay them."""
    with (
        start_relay(nats_server, simulator, market("trade", "ticker", symbols=("BTC/USD",))),
        Partition(nats_server.port) as partition,
        KrakenClient.from_nats(partition.url, start="first", timeout=10.0) as client,
    ):
        client.subscribe("trade", "BTC/USD")
        wait_for(lambda: len(client.trades()) > 0, 15, "trades")
        partition.stall(1)  # the data connection: the client opens the API one first
        trades = len(client.trades())
        client.subscribe("ticker", "BTC/USD")  # a RequestTimeout if its answer waited behind the data
        states = {(s.channel, s.symbol): s.state for s in client.subscriptions()}
        assert states[("ticker", "BTC/USD")] == "confirmed", states
        assert len(client.trades()) == trades  # the data connection really is stalled
        partition.flow(1)
        wait_for(lambda: not client.ticker().empty and len(client.trades()) > trades, 15, "data again")
        assert client.stats()["duplicate_trades"] == 0


def test_messages_that_expired_before_they_were_read_are_gaps(tmp_path: Any, simulator: Simulator) -> None:
    """A stream keeping 1 s, a client cut off from NATS for 3 s: what expired meanwhile is in gaps()."""
    with LocalNatsServer(store_dir=tmp_path / "nats") as server, Partition(server.port) as partition:
        settings = StreamSettings(max_age=1.0, duplicate_window=0.5)
        channels = market("trade", "book", symbols=("BTC/USD",))
        with (
            Relay(server.url, channels, upstream=simulator.url, name="r1", stream=settings) as relay,
            KrakenClient.from_nats(partition.url, start="new") as client,
        ):
            client.subscribe("trade", "BTC/USD")
            client.subscribe("book", "BTC/USD")
            wait_for(lambda: len(client.trades()) > 3 and book_is_valid(client, "BTC/USD"), 15, "data")
            partition.cut()  # the relay goes on publishing; the client's durable consumers wait
            wait_for(lambda: client.connection_state == "reconnecting", 5, "the client to notice")
            time.sleep(3.0)
            partition.heal()
            wait_for(lambda: client.stats()["expired_gaps"] >= 2, 15, "expired-message gaps")
            gaps = client.gaps()
            expired = gaps[gaps.reason == EXPIRED_REASON]
            assert set(zip(expired.channel, expired.symbol, strict=True)) == {
                ("trade", "BTC/USD"),
                ("book", "BTC/USD"),
            }
            assert (expired.end - expired.start).dt.total_seconds().min() > 1.5  # the stretch that expired
            assert not gaps[gaps.reason == "trade ids skipped"].empty  # the trades themselves say so too
            wait_for(lambda: book_is_valid(client, "BTC/USD"), 15, "the book reloaded")
            stats = client.stats()
            assert stats["snapshot_loads"] >= 1 and stats["reconnects"] >= 1, stats
            simulator.pause()
            relay.wait_published()
            wait_for(lambda: books_match(client, relay, "BTC/USD"), 15, "the relay's book")
            assert relay.client.gaps().empty  # the relay itself lost nothing


def test_a_hot_standby_relay_stores_nothing_twice(nats_server: LocalNatsServer, simulator: Simulator) -> None:
    channels = market("trade", "book", "ticker", symbols=("BTC/USD",))
    with (
        start_relay(nats_server, simulator, channels, name="primary") as primary,
        start_relay(nats_server, simulator, channels, name="standby") as standby,
        KrakenClient.from_nats(nats_server.url, start="first") as client,
    ):
        client.subscribe("trade", "BTC/USD")
        client.subscribe("book", "BTC/USD")
        time.sleep(5)
        simulator.pause()
        caught_up(primary, client)
        assert standby.wait_published(10)
        stats = client.stats()
        assert stats["duplicate_trades"] == 0 and stats["checksum_mismatches"] == 0, stats
        # both published the same frames; whichever came second for a frame was told it was a duplicate
        # (which one that is depends on thread timing, so only the sum is sure to be positive)
        first, second = primary.stats(), standby.stats()
        assert first["published"] > 0 and second["published"] > 0, (first, second)
        assert first["duplicates"] + second["duplicates"] > 0, (first, second)
        same_rows(client.trades("BTC/USD"), primary.client.trades("BTC/USD"), same_receiver=False)
        backup = standby.client.trades("BTC/USD")
        same_rows(backup, client.trades("BTC/USD").tail(len(backup)), same_receiver=False)
        assert sorted(stats["relays"]) == ["primary", "standby"]
        stored = primary.stream_info().state.messages
        published = primary.stats()["published"] + standby.stats()["published"]
        duplicates = primary.stats()["duplicates"] + standby.stats()["duplicates"]
        assert (
            stored == published - duplicates + primary.stats()["gap_records"] + standby.stats()["gap_records"]
        )


def test_widgets_run_on_a_relay_client_and_show_a_nats_outage(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    """The widgets only read the client: a relay-fed one ticks the same, and shows NATS going away."""
    from kraken_nb.widgets import DepthHeatmap, TradeTape

    with (
        start_relay(nats_server, simulator, market("trade", "book", symbols=("BTC/USD",))),
        KrakenClient.from_nats(nats_server.url, start="first") as client,
    ):
        client.subscribe("trade", "BTC/USD")
        client.subscribe("book", "BTC/USD")
        tape = TradeTape(client, "BTC/USD", rows=500, rate_hz=0.001)
        heatmap = DepthHeatmap(client, "BTC/USD", depth=10, rate_hz=0.001)
        sent: list[dict[str, Any]] = []
        tape.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
        try:
            wait_for(lambda: len(client.trades()) > 20 and book_is_valid(client, "BTC/USD"), 20, "data")
            tape.tick()
            heatmap.tick()
            assert tape.status == heatmap.status == "live"
            shown = [
                entry[4] for content in sent if content.get("type") == "trades" for entry in content["trades"]
            ]
            assert shown and set(shown) <= set(client.trades("BTC/USD").trade_id)
            nats_server.kill()
            wait_for(lambda: client.connection_state == "reconnecting", 10, "the client to notice")
            tape.tick()
            assert tape.status == "reconnecting"
            nats_server.start()
            wait_for(lambda: client.connection_state == "live", 20, "the client back")
            tape.tick()
            assert tape.status == "live"
        finally:
            tape.close()
            heatmap.close()
