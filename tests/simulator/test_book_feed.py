"""Book updates composed per book event and depth, checked without sockets."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.simulator import MarketModel
from kraken_nb.simulator.book_feed import BookFeed
from kraken_nb.simulator.connection import Subscription
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.feeds import Feeds
from kraken_nb.simulator.market import BookChanged


class Recorder:
    """Stands in for a connection: its subscriptions and every frame sent to it."""

    def __init__(self) -> None:
        self.subscriptions: dict = {}
        self.frames: list[str] = []

    def send(self, text: str, *, update: bool = True) -> None:
        self.frames.append(text)


def small_feed() -> BookFeed:
    """Asks at ticks 101..112, bids at 99..88 (12 a side), 5 units each, 2 decimals for both."""
    asks = [(101 + i, 5) for i in range(12)]
    bids = [(99 - i, 5) for i in range(12)]
    return BookFeed("T/USD", 2, 2, bids, asks)


def levels(text: str) -> list[tuple[str, str]]:
    return [(str(lv["price"]), str(lv["qty"])) for lv in json.loads(text, parse_float=Decimal)]


def test_a_deletion_inside_the_window_is_followed_by_the_level_entering_from_below():
    feed = small_feed()
    ((depth, bids, asks, checksum),) = feed.updates([(("asks", 103, 0),)], [10])
    assert depth == 10 and levels(bids) == []
    assert levels(asks) == [("1.03", "0.00"), ("1.11", "0.05")]  # 1.11 was the 11th ask
    assert checksum == feed.checksum()


def test_an_insert_that_pushes_a_level_out_sends_no_deletion():
    feed = small_feed()
    ((_, bids, asks, _),) = feed.updates([(("bids", 100, 7),)], [10])
    assert levels(bids) == [("1.00", "0.07")] and levels(asks) == []
    assert feed.levels("bids", 11)[-1] == (90, 5)  # still held by the feed, only out of the window


def test_changes_outside_a_window_reach_only_the_deeper_depths():
    feed = small_feed()
    updates = feed.updates([(("asks", 111, 9),), (("bids", 99, 6),)], [10, 25])
    assert [(depth, levels(asks), levels(bids)) for depth, bids, asks, _ in updates] == [
        (25, [("1.11", "0.09")], []),
        (10, [], [("0.99", "0.06")]),
        (25, [], [("0.99", "0.06")]),
    ]
    assert updates[1][3] == updates[2][3], "one checksum per event, whatever the depth"


def test_one_event_of_several_fills_is_one_message_and_no_op_changes_send_nothing():
    feed = small_feed()
    sweep = (("asks", 101, 0), ("asks", 102, 0), ("asks", 103, 2))
    ((_, _, asks, _),) = feed.updates([sweep, (("asks", 104, 5),)], [10])
    assert levels(asks) == [
        ("1.01", "0.00"),
        ("1.11", "0.05"),
        ("1.02", "0.00"),
        ("1.12", "0.05"),
        ("1.03", "0.02"),
    ]


@pytest.mark.parametrize("depth", [10, 100, 1000])
def test_a_client_following_the_feed_verifies_every_update_and_holds_the_market(depth):
    market = MarketModel(seed=13, pairs=["BTC/USD", "ADA/USD"])
    feeds, recorder = Feeds(market, Faults()), Recorder()
    books = {}
    for symbol in market.symbols:
        sub = Subscription("book", symbol, {"depth": depth, "snapshot": True})
        recorder.subscriptions[("book", symbol, 0)] = sub
        spec = market.spec(symbol)
        books[symbol] = OrderBook(
            symbol, depth, price_precision=spec.price_precision, qty_precision=spec.qty_precision
        )
        assert books[symbol].apply(json.loads(feeds.snapshot(sub))["data"][0])
    for _ in range(120):
        feeds.publish(market.step(0.5), [recorder])
    assert len(recorder.frames) > 200
    for frame in recorder.frames:
        entry = json.loads(frame, parse_float=Decimal)["data"][0]
        assert books[entry["symbol"]].apply(entry), "a per-message client saw a wrong checksum"
        assert bool(entry["bids"]) != bool(entry["asks"]), "an update touched both sides"
    for symbol in market.symbols:
        assert books[symbol].levels_exact("bid") == [
            (market.price_of(symbol, t), market.qty_of(symbol, u))
            for t, u in market.levels(symbol, "bids", depth)
        ]
        feed = feeds.book_feed(symbol)
        assert feed is not None
        assert feed.levels("bids", 5000) == market.levels(symbol, "bids", 5000)
        assert feed.levels("asks", 5000) == market.levels(symbol, "asks", 5000)


def test_the_journal_replays_to_the_market_and_groups_a_taker_order():
    market = MarketModel(seed=2, pairs=["ETH/USD"])
    before = {side: market.levels("ETH/USD", side, 5000) for side in ("bids", "asks")}
    events = []
    for _ in range(40):
        events.extend(e for e in market.step(0.5) if isinstance(e, BookChanged))
    feed = BookFeed("ETH/USD", 2, 8, before["bids"], before["asks"])
    book_events = [event for changed in events for event in changed.events]
    feed.updates(book_events, [1000])
    assert feed.levels("bids", 5000) == market.levels("ETH/USD", "bids", 5000)
    assert feed.levels("asks", 5000) == market.levels("ETH/USD", "asks", 5000)
    assert all(len({side for side, _, _ in event}) == 1 for event in book_events)
    assert max(len(event) for event in book_events) > 1, "no taker order took several levels"


def test_book_feeds_are_dropped_without_subscribers_and_restart_from_the_market():
    market = MarketModel(seed=4, pairs=["SOL/USD"])
    feeds, recorder = Feeds(market, Faults()), Recorder()
    sub = Subscription("book", "SOL/USD", {"depth": 10, "snapshot": False})
    recorder.subscriptions[("book", "SOL/USD", 0)] = sub
    assert feeds.snapshot(sub) is None and feeds.book_feed("SOL/USD") is not None
    recorder.subscriptions.clear()
    feeds.publish(market.step(1.0), [recorder])
    assert feeds.book_feed("SOL/USD") is None
    for _ in range(5):
        feeds.publish(market.step(1.0), [])
    recorder.subscriptions[("book", "SOL/USD", 0)] = sub
    feeds.snapshot(sub)
    feeds.publish(market.step(1.0), [recorder])
    feed = feeds.book_feed("SOL/USD")
    assert feed is not None and feed.levels("asks", 5000) == market.levels("SOL/USD", "asks", 5000)
