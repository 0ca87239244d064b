"""The client against a server that misbehaves on purpose: the reader survives any frame.

Each hostile frame is sent between two valid trades over a real loopback
socket (``tests/hostile.py``). Afterwards the client holds exactly the valid
trades, answers a ping, has counted every bad frame, is still on its first
connection, and no traceback reached stderr unlogged. Faults in the reader
itself are injected at the lowest seam: a session whose ``feed`` raises, a
reader that fails.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FAST_RECONNECT
from core.test_session import INSTRUMENT, recorded_book
from hostile import HostileServer, TextBytes, book_frame, trade_frame, trade_row

from kraken_nb import KrakenClient
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.errors import ConnectionFailed
from kraken_nb.transport import Backoff, Transport

VECTOR = recorded_book()
DEEP_LIST = "[" * 100_000 + "]" * 100_000
QUIET = 120.0  # the scripted server sends no heartbeats: never call it silent


def deep_nesting(n: int) -> list:
    outer: list = []
    inner = outer
    for _ in range(n):
        inner.append([])
        inner = inner[0]
    return outer


def hostile_trade_frames(first_id: int) -> tuple[list[Any], list[int], int, int]:
    """The hostile frames, each between two valid trades.

    Returns what to send, the trade ids that must be kept (in order), and
    how many frames are malformed and how many items rejected.
    """
    whole_frames: list[Any] = [
        DEEP_LIST,
        '{"a":' * 5000 + "1" + "}" * 5000,
        b'{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD\xe2\x82',  # truncated UTF-8 (binary)
        "x" * 5_000_000,  # 5 MB of text
        bytes(range(256)) * 4,  # binary junk
        '{"channel":["trade"],"type":"update","data":[]}',
        '{"channel":"trade","type":"update","data":{"symbol":"BTC/USD"}}',
        '{"channel":"trade","type":"sideways","data":[]}',
        '{"method":"subscribe","success":true,"result":{"channel":"ohlc","interval":[1]}}',
        '{"channel":"instrument","type":"update","data":{"assets":{},"pairs":[]}}',
        "",
        "null",
        "[1, 2, 3]",
    ]
    bad_items: list[dict[str, Any]] = [
        {"price": 1e999},
        {"price": float("nan")},
        {"price": float("inf")},
        {"price": -60000.0},
        {"price": "60000.0"},
        {"side": "sideways"},
        {"qty": -1},
        {"qty": 0},
        {"qty": True},
        {"ord_type": "stop"},
        {"trade_id": "9"},
        {"timestamp": "yesterday"},
        {"symbol": deep_nesting(900)},
    ]
    frames: list[Any] = []
    kept: list[int] = []
    next_id = first_id

    def valid() -> str:
        nonlocal next_id
        kept.append(next_id)
        next_id += 1
        return trade_frame(trade_row(next_id - 1))

    for frame in whole_frames:
        frames += [valid(), frame, valid()]
    for change in bad_items:  # a frame of good, bad, good
        before = valid()
        good_before, bad, good_after = next_id, next_id + 1, next_id + 2
        next_id += 3
        kept += [good_before, good_after]
        rows = [trade_row(good_before), trade_row(bad, **change), trade_row(good_after)]
        frames += [before, trade_frame(*rows), valid()]
    # 10,000 trades with one bad item in the middle
    before = valid()
    big = [trade_row(next_id + i) for i in range(10_000)]
    big[5_000]["price"] = float("nan")
    kept += [row["trade_id"] for i, row in enumerate(big) if i != 5_000]
    next_id += 10_000
    frames += [before, trade_frame(*big), valid()]
    return frames, kept, len(whole_frames) + len(bad_items) + 1, len(bad_items) + 1


def after_subscribe(request: dict[str, Any]) -> list[Any]:
    """Right after the trade subscribe's ack: a hostile frame, then a valid trade."""
    channel = request["params"]["channel"]
    if channel == "trade":
        return [DEEP_LIST, trade_frame(trade_row(1))]
    if channel == "instrument":
        return [INSTRUMENT]
    if channel == "book":
        return [json.dumps(VECTOR["snapshot"])]
    return []


@pytest.fixture
def server() -> Iterator[HostileServer]:
    with HostileServer(after_subscribe=after_subscribe) as server:
        yield server


@pytest.fixture
def client(server: HostileServer) -> Iterator[KrakenClient]:
    with KrakenClient(server.url, backoff=FAST_RECONNECT, silence_timeout=QUIET, timeout=10.0) as client:
        client.wait_connected(10)
        yield client


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_the_reader_survives_every_hostile_frame_and_keeps_exactly_the_valid_trades(
    server: HostileServer, client: KrakenClient, capfd, caplog
):
    caplog.set_level(logging.WARNING)
    client.subscribe("trade", "BTC/USD")  # its ack is followed at once by a deeply nested frame
    wait_for(lambda: client.stats()["trades"] == 1, what="the trade after the hostile frame")
    assert client.stats()["malformed"] == 1

    frames, kept, malformed, rejected = hostile_trade_frames(first_id=2)
    for start in range(0, len(frames), 3):
        server.send(*frames[start : start + 3])
    wait_for(lambda: client.stats()["trades"] == 1 + len(kept), what="every valid trade")
    stats = client.stats()
    trades = client.trades("BTC/USD")
    assert trades["trade_id"].tolist() == [1, *kept], "not exactly the valid trades"
    assert trades["price"].map(math.isfinite).all() and (trades["price"] > 0).all()
    assert (trades["qty"] > 0).all()
    assert list(trades["side"].cat.categories) == ["buy", "sell"]
    assert list(trades["ord_type"].cat.categories) == ["limit", "market"]
    assert stats["malformed"] == 1 + malformed, stats
    assert stats["rejected_items"] == rejected
    assert stats["internal_errors"] == 0
    assert stats["reconnects"] == 0 and server.connections == 1
    assert client.connection_state == "live"
    assert client.ping(5) < 5
    assert "Traceback" not in capfd.readouterr().err
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


BAD_LEVELS: dict[str, Any] = {
    "NaN price": [{"price": float("nan"), "qty": 1.0}],
    "inf price": [{"price": float("inf"), "qty": 1.0}],
    "negative price": [{"price": -29430.0, "qty": 1.0}],
    "1e308 price": [{"price": 1e308, "qty": 1.0}],
    "NaN qty": [{"price": 29430.0, "qty": float("nan")}],
    "inf qty": [{"price": 29430.0, "qty": float("inf")}],
    "negative qty": [{"price": 29430.0, "qty": -1.0}],
    "string qty": [{"price": 29430.0, "qty": "1.0"}],
    "level is a list": [[29430.0, 1.0]],
}


def test_bad_book_levels_invalidate_and_resync_the_book_which_comes_back_valid(
    server: HostileServer, client: KrakenClient, caplog
):
    caplog.set_level(logging.WARNING)
    client.subscribe("book", "BTC/USD")
    wait_for(lambda: (book := client.book("BTC/USD")) is not None and book.valid, what="a valid book")
    entry = VECTOR["snapshot"]["data"][0]
    hostile = [
        book_frame({"symbol": "BTC/USD", "bids": bids, "asks": [], "checksum": 1})
        for bids in BAD_LEVELS.values()
    ]
    hostile += [
        book_frame({"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": "1"}),
        book_frame({"symbol": "BTC/USD", "bids": [], "asks": [], "checksum": 2.5}),
        book_frame({**entry, "checksum": None}),
    ]
    for count, frame in enumerate(hostile, start=1):
        server.send(frame)
        wait_for(
            lambda n=count: client.stats()["resyncs"] == n and client.book("BTC/USD").valid,
            what=f"the resync after hostile book frame {count}",
        )
    stats = client.stats()
    assert stats["malformed"] == stats["rejected_items"] == len(hostile)
    assert stats["internal_errors"] == 0 and stats["reconnects"] == 0
    assert client.book("BTC/USD").best_bid()[0] == entry["bids"][0]["price"]
    tops = client.book_history("BTC/USD")
    valid = tops[tops["valid"]]
    assert valid[["bid", "ask"]].map(math.isfinite).all().all() and (valid[["bid", "ask"]] > 0).all().all()
    assert (valid["bid"] < valid["ask"]).all()
    resubscribes = [r for r in server.requests_of("subscribe") if r["params"]["channel"] == "book"]
    assert len(resubscribes) == 1 + len(hostile), "each bad book must resync that book"


def test_an_invalid_utf8_text_frame_closes_the_connection_and_the_client_comes_back(
    server: HostileServer, client: KrakenClient
):
    """The WebSocket layer refuses it (close code 1007); the client reconnects and resubscribes."""
    client.subscribe("trade", "BTC/USD")
    wait_for(lambda: client.stats()["trades"] == 1)
    server.send(TextBytes(b'{"channel":"trade","data":"\xe2\x82"}'))
    wait_for(lambda: server.connections == 2 and client.connection_state == "live", what="the reconnect")
    wait_for(lambda: len(server.requests_of("subscribe")) == 2, what="the resubscribe")
    server.send(trade_frame(trade_row(2)))
    wait_for(lambda: client.stats()["trades"] == 2)
    assert client.stats()["reconnects"] == 1


# -- faults at the lowest seam: the transport with a session or reader that fails --


class Harness:
    """A transport connected to the hostile server, with events collected."""

    def __init__(
        self, url: str, session: Session, transport_class: type[Transport] = Transport, **options: Any
    ):
        self.session = session
        self.lock = threading.Condition(threading.RLock())
        self.events: list[Any] = []
        session.subscribe(validate_subscription("trade", "BTC/USD"))
        options.setdefault("backoff", FAST_RECONNECT)
        self.transport = transport_class(
            url, session, self.lock, self.events.extend, silence_timeout=QUIET, **options
        )
        self.transport.start()

    def trade_ids(self) -> list[int]:
        with self.lock:
            return self.session.trades.to_frame()["trade_id"].tolist()

    def close(self) -> None:
        self.transport.close()


class FeedRaisesOnMarker(Session):
    """A session whose ``feed`` raises on one specific frame, as a bug would."""

    def feed(self, text, received_ns):
        if "marker" in (text if isinstance(text, str) else text.decode("latin-1")):
            raise RuntimeError("feed failed on the marker frame")
        return super().feed(text, received_ns)


def test_an_exception_escaping_feed_is_contained_counted_logged_once_and_reading_goes_on(
    server: HostileServer, caplog, capfd
):
    caplog.set_level(logging.ERROR, logger="kraken_nb.transport")
    harness = Harness(server.url, FeedRaisesOnMarker())
    try:
        wait_for(lambda: harness.trade_ids() == [1], what="the first trade")
        marker = '{"channel":"heartbeat","marker":1}'
        for n in range(2, 6):
            server.send(marker, trade_frame(trade_row(n)))
        wait_for(lambda: harness.trade_ids() == [1, 2, 3, 4, 5], what="the trades after the marker frames")
        assert harness.transport.state == "live" and server.connections == 1
        counters = harness.session.counters
        assert counters["internal_errors"] == 4 and counters["malformed"] == 1 + 4  # + the deep list
        records = [r for r in caplog.records if r.name == "kraken_nb.transport"]
        assert [bool(r.exc_info) for r in records] == [True, False, False], "1st (traceback), 2nd, 4th"
        assert "RuntimeError" in records[0].getMessage()
    finally:
        harness.close()
    assert "Traceback" not in capfd.readouterr().err


class ReaderFailsOnMarker(Transport):
    """A transport whose reader itself fails (not the session): the read task ends with an error."""

    failures = 0

    def _handle_frame(self, frame):
        if isinstance(frame, str) and "reader-bug" in frame and not self.failures:
            self.failures += 1
            raise ValueError("the reader failed")
        return super()._handle_frame(frame)


def test_a_reader_that_fails_closes_the_connection_says_so_and_reconnects(server: HostileServer, caplog):
    caplog.set_level(logging.ERROR, logger="kraken_nb.transport")
    slow = Backoff(initial=1.5, maximum=1.5, jitter=0.0)  # a window in which nothing reads
    harness = Harness(server.url, Session(), ReaderFailsOnMarker, backoff=slow)
    try:
        wait_for(lambda: harness.trade_ids() == [1], what="the first trade")
        assert harness.transport.state == "live"
        server.send('{"channel":"heartbeat","reader-bug":1}')
        wait_for(lambda: harness.transport.state != "live", timeout=5, what="the state to stop saying live")
        assert harness.transport.state == "reconnecting"
        assert "reader failed: ValueError" in (harness.transport.last_error or "")
        wait_for(lambda: server.connections == 2 and harness.transport.state == "live", what="the reconnect")
        wait_for(lambda: len(server.requests_of("subscribe")) == 2, what="the resubscribe")
        server.send(trade_frame(trade_row(2)))
        wait_for(lambda: harness.trade_ids() == [1, 2], what="a trade on the new connection")
        [record] = [r for r in caplog.records if "reader failed" in r.getMessage()]
        assert record.exc_info and record.exc_info[0] is ValueError
    finally:
        harness.close()


class ConnectionMadeRaises(Session):
    def connection_made(self, now_ns):
        raise RuntimeError("bookkeeping bug")


def test_a_network_thread_that_dies_says_failed_not_live(server: HostileServer, caplog):
    caplog.set_level(logging.ERROR, logger="kraken_nb.transport")
    harness = Harness(server.url, ConnectionMadeRaises())
    try:
        wait_for(lambda: harness.transport.state == "failed", timeout=10, what="the failed state")
        assert "network thread failed: RuntimeError" in (harness.transport.last_error or "")
        assert any(r.exc_info for r in caplog.records)
        failure = harness.transport.failure
        assert isinstance(failure, ConnectionFailed) and failure.code is None
        assert "bookkeeping bug" in str(failure)
        wait_for(lambda: any(e.kind == "failed" for e in harness.events), what="the failed event")
    finally:
        harness.close()
