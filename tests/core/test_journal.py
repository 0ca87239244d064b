"""The cursor journal: fed frames through a real Session, read back with cursors, no sockets."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.core.journal import INSTRUMENT, PING, Journal, stream_key
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.core.wire import loads_exact

VECTORS = Path(__file__).parent / "vectors"
T0 = 1_700_000_000_000_000_000
BOOK = stream_key("book", "BTC/USD")
TRADES = stream_key("trade", "BTC/USD")

PAIRS = [
    {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "price_precision": 1, "qty_precision": 8},
    {"symbol": "ETH/USD", "base": "ETH", "quote": "USD", "price_precision": 2, "qty_precision": 8},
]
INSTRUMENT_TEXT = (
    '{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC","precision":10,'
    '"margin_rate":0.20000}],"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD",'
    '"price_precision":1,"qty_precision":8,"qty_increment":1e-08},{"symbol":"ETH/USD","base":"ETH",'
    '"quote":"USD","price_precision":2,"qty_precision":8,"qty_increment":1e-08}]}}'
)


def trade_text(*ids: int, symbol: str = "BTC/USD", kind: str = "update") -> str:
    rows = ",".join(
        f'{{"symbol":"{symbol}","side":"buy","price":64000.10,"qty":12345678.12345678,'
        f'"ord_type":"limit","trade_id":{i},"timestamp":"2024-01-01T00:00:0{i % 10}.000001Z"}}'
        for i in ids
    )
    return f'{{"channel":"trade","type":"{kind}","data":[{rows}]}}'


def ack_text(request: dict[str, Any], symbol: str | None) -> str:
    params = request["params"]
    result = {k: v for k, v in params.items() if k != "symbol"}
    if symbol:
        result["symbol"] = symbol
    return json.dumps(
        {
            "method": request["method"],
            "req_id": request["req_id"],
            "success": True,
            "result": result,
            "time_in": "2024-01-01T00:00:00.000001Z",
            "time_out": "2024-01-01T00:00:00.000002Z",
        }
    )


def answer(session: Session) -> None:
    for request in session.data_to_send():
        if request["method"] in ("subscribe", "unsubscribe"):
            for symbol in request["params"].get("symbol") or [None]:
                session.feed(ack_text(request, symbol), T0)


def journaled(*subscriptions: tuple[str, Any, dict[str, Any]], retain: int = 1000) -> tuple[Session, Journal]:
    session = Session()
    journal = Journal(retain=retain, start=100)
    session.add_tap(journal)
    session.connection_made(T0)
    for channel, symbols, params in subscriptions:
        session.subscribe(validate_subscription(channel, symbols, **params))
    answer(session)
    return session, journal


def recorded_book() -> dict[str, Any]:
    return json.loads((VECTORS / "btcusd_book10_snapshot.json").read_text())


class BookReader:
    """What a REST reader does: apply the snapshot, then every update; check each checksum."""

    def __init__(self, depth: int = 10, price_precision: int = 1, qty_precision: int = 8) -> None:
        self.book = OrderBook("BTC/USD", depth, price_precision=price_precision, qty_precision=qty_precision)
        self.applied = 0

    def apply(self, text: str | bytes) -> None:
        message = loads_exact(text)
        for entry in message["data"]:
            if message["type"] == "snapshot":
                self.book.reset()
            assert self.book.apply(entry, snapshot=message["type"] == "snapshot"), entry["checksum"]
            self.applied += 1


# -- exact texts --------------------------------------------------------------------------


def test_a_one_stream_frame_is_kept_as_the_very_text_received() -> None:
    session, journal = journaled(("trade", "BTC/USD", {}))
    start = journal.cursor
    text = trade_text(1)
    session.feed(text, T0)
    page = journal.read([TRADES], start, 10)
    assert page.messages == [text]
    assert page.cursor == journal.cursor == start + 1
    assert not page.gap
    again = journal.read([TRADES], page.cursor, 10)
    assert again.messages == [] and again.cursor == page.cursor


def test_a_frame_of_several_symbols_is_split_with_exact_digits() -> None:
    session, journal = journaled(("ticker", ["BTC/USD", "ETH/USD"], {}))
    row = (
        '{{"symbol":"{0}","bid":64000.10,"bid_qty":12345678.12345678,"ask":64000.20,"ask_qty":0.50000000,'
        '"last":64000.1,"volume":1.00000000,"vwap":64000.0,"low":63000.0,"high":65000.0,'
        '"change":10.0,"change_pct":0.02}}'
    )
    rows = ",".join(row.format(symbol) for symbol in ("BTC/USD", "ETH/USD"))
    text = f'{{"channel":"ticker","type":"snapshot","data":[{rows}]}}'
    session.feed(text, T0)
    btc = journal.read([stream_key("ticker", "BTC/USD")], 100, 10).messages
    eth = journal.read([stream_key("ticker", "ETH/USD")], 100, 10).messages
    assert len(btc) == len(eth) == 1
    assert b'"bid":64000.10,"bid_qty":12345678.12345678,"ask":64000.20,"ask_qty":0.50000000' in btc[0]
    original = loads_exact(text)["data"]
    assert loads_exact(btc[0])["data"] == [original[0]] and loads_exact(eth[0])["data"] == [original[1]]
    assert loads_exact(btc[0])["type"] == "snapshot"
    assert journal.counters["rebuilt"] == 1


def test_after_a_reconnect_only_the_trades_the_session_kept_are_journaled() -> None:
    session, journal = journaled(("trade", "BTC/USD", {}))
    session.feed(trade_text(1, 2, 3), T0)
    session.connection_lost(T0 + 1)
    session.connection_made(T0 + 2)
    answer(session)
    replay = trade_text(2, 3, 4, 5, kind="snapshot")  # the snapshot repeats trades already kept
    session.feed(replay, T0 + 3)
    session.feed(trade_text(3, 4), T0 + 4)  # nothing new: not journaled at all
    messages = journal.read([TRADES], 100, 10).messages
    served = [row["trade_id"] for text in messages for row in loads_exact(text)["data"]]
    assert served == [1, 2, 3, 4, 5] == list(session.trades.to_frame().trade_id)
    assert b'"qty":12345678.12345678' in messages[1]
    assert loads_exact(messages[1])["type"] == "snapshot"
    assert journal.counters["trades_filtered"] == 2 + 2


# -- books ----------------------------------------------------------------------------------


def book_session(retain: int = 1000) -> tuple[Session, Journal, dict[str, Any]]:
    session, journal = journaled(("book", "BTC/USD", {"depth": 10}), retain=retain)
    session.feed(INSTRUMENT_TEXT, T0)
    return session, journal, recorded_book()


def test_a_reader_applying_every_page_reproduces_every_kraken_checksum() -> None:
    session, journal, vector = book_session()
    texts = [json.dumps(vector["snapshot"]), *(json.dumps(u) for u in vector["updates"])]
    for i, text in enumerate(texts):
        session.feed(text, T0 + i)
    reader = BookReader()
    cursor, pages = 100, 0
    while True:
        page = journal.read([BOOK], cursor, 7)
        if not page.entries:
            break
        assert [c for c, _ in page.entries] == sorted(c for c, _ in page.entries)
        assert page.entries[0][0] > cursor
        for text in page.messages:
            reader.apply(text)
        cursor, pages = page.cursor, pages + 1
    assert reader.applied == len(texts) and pages == 6
    assert reader.book.checksum() == session.books["BTC/USD"].checksum()
    assert journal.read([BOOK], 100, 100).messages == texts


def test_rejected_and_stale_book_messages_are_not_served_and_the_resync_snapshot_is() -> None:
    session, journal, vector = book_session()
    updates = [json.dumps(u) for u in vector["updates"]]
    snapshot = json.dumps(vector["snapshot"])
    session.feed(snapshot, T0)
    session.feed(updates[0], T0)
    bad = json.loads(updates[1])
    bad["data"][0]["checksum"] ^= 1
    session.feed(json.dumps(bad), T0)  # mismatch: the session resyncs
    session.feed(updates[2], T0)  # stale, ignored until the fresh snapshot
    assert session.counters["checksum_mismatches"] == 1
    answer(session)
    session.feed(snapshot, T0)  # the resync's snapshot
    for update in updates[:5]:
        session.feed(update, T0)
    served = journal.read([BOOK], 100, 100).messages
    assert served == [snapshot, updates[0], snapshot, *updates[:5]]
    reader = BookReader()
    for text in served:
        reader.apply(text)
    assert reader.book.checksum() == session.books["BTC/USD"].checksum()
    assert journal.counters["book_not_applied"] == 2


def test_book_frames_queued_before_the_precisions_are_released_when_they_arrive() -> None:
    session, journal = journaled(("book", "BTC/USD", {"depth": 10}))
    vector = recorded_book()
    texts = [
        json.dumps(vector["snapshot"]),
        json.dumps(vector["updates"][0]),
        json.dumps(vector["updates"][1]),
    ]
    for text in texts:
        session.feed(text, T0)
    assert journal.read([BOOK], 100, 10).messages == []
    session.feed(INSTRUMENT_TEXT, T0)
    assert session.books["BTC/USD"].valid
    assert journal.read([BOOK], 100, 10).messages == texts


def test_a_book_value_too_long_for_a_float_is_served_verbatim() -> None:
    session, journal, vector = book_session()
    snapshot = vector["snapshot"]
    session.feed(json.dumps(snapshot), T0)
    entry = {"symbol": "BTC/USD", "bids": [], "asks": [{"price": 29430.6, "qty": "QTY"}], "checksum": 0}
    book = session.books["BTC/USD"].copy()
    book.apply({**entry, "asks": [{"price": 29430.6, "qty": Decimal("12345678.12345678")}]})
    entry["checksum"] = book.checksum()
    text = json.dumps({"channel": "book", "type": "update", "data": [entry]}).replace(
        '"QTY"', "12345678.12345678"
    )
    session.feed(text, T0)
    assert session.counters["exact_decodes"] == 1
    assert journal.read([BOOK], 100, 10).messages[-1] == text


def test_the_book_snapshot_carries_current_levels_exact_digits_and_checksum() -> None:
    session, journal, vector = book_session()
    session.feed(json.dumps(vector["snapshot"]), T0)
    for update in vector["updates"][:10]:
        session.feed(json.dumps(update), T0)
    snapshot = journal.snapshot("book", [BOOK], session.books)
    session.feed(json.dumps(vector["updates"][10]), T0)  # rendering later uses the captured copy
    assert snapshot.cursor == journal.cursor - 1 and snapshot.missing == ()
    text = snapshot.message()
    message = loads_exact(text)
    assert message["channel"] == "book" and message["type"] == "snapshot"
    assert b'"qty":4.00000000' in text or b'"qty":0.00100000' in text  # padded to qty_precision
    reader = BookReader()
    reader.apply(text)
    for page_text in journal.read([BOOK], snapshot.cursor, 10).messages:
        reader.apply(page_text)
    assert reader.book.checksum() == session.books["BTC/USD"].checksum()


def test_an_invalid_book_is_reported_missing_from_the_snapshot() -> None:
    session, journal, vector = book_session()
    assert journal.snapshot("book", [BOOK], session.books).missing == ("BTC/USD",)
    session.feed(json.dumps(vector["snapshot"]), T0)
    assert journal.snapshot("book", [BOOK], session.books).missing == ()
    session.connection_lost(T0)
    assert journal.snapshot("book", [BOOK], session.books).missing == ("BTC/USD",)


# -- cursors and gaps ---------------------------------------------------------------------


def test_gap_is_reported_exactly_when_the_retained_window_was_exceeded() -> None:
    session, journal = journaled(("trade", "BTC/USD", {}), retain=5)
    for i in range(1, 11):
        session.feed(trade_text(i), T0)
    # cursors 101..110; 101..105 were evicted
    page = journal.read([TRADES], 100, 100)
    assert page.gap and [c for c, _ in page.entries] == [106, 107, 108, 109, 110]
    assert journal.read([TRADES], 104, 100).gap
    assert not journal.read([TRADES], 105, 100).gap  # everything after 105 is still there
    assert not journal.read([TRADES], 109, 100).gap
    assert journal.stats()["evicted"] == 5


def test_a_cursor_not_from_this_journal_is_a_gap() -> None:
    session, journal = journaled(("trade", "BTC/USD", {}))
    session.feed(trade_text(1), T0)
    assert journal.read([TRADES], 99, 10).gap  # before this journal's start
    assert journal.read([TRADES], journal.cursor + 1, 10).gap  # from the future (another run)
    assert not journal.read([TRADES], journal.cursor, 10).gap


def test_pages_over_several_streams_lose_nothing_and_repeat_nothing() -> None:
    session, journal = journaled(("trade", ["BTC/USD", "ETH/USD"], {}))
    eth = stream_key("trade", "ETH/USD")
    expected = []
    for i in range(1, 30):
        symbol = "ETH/USD" if i % 3 == 0 else "BTC/USD"
        text = trade_text(i, symbol=symbol)
        session.feed(text, T0)
        expected.append(text)
    session.feed(trade_text(30, 31), T0)  # BTC/USD
    expected.append(trade_text(30, 31))
    got, cursor = [], 100
    while page := journal.read([TRADES, eth], cursor, 4).entries:
        got.extend(text for _, text in page)
        cursor = journal.read([TRADES, eth], cursor, 4).cursor
    assert got == expected
    only_eth = journal.read([eth], 100, 100).messages
    assert only_eth == [t for t in expected if "ETH/USD" in t]


def test_wake_is_called_for_journaled_frames_and_connection_changes_only() -> None:
    calls = []
    session = Session()
    session.add_tap(Journal(wake=lambda: calls.append(1)))
    session.connection_made(T0)
    session.subscribe(validate_subscription("trade", "BTC/USD"))
    answer(session)
    assert len(calls) == 1  # connected
    session.feed('{"channel":"heartbeat"}', T0)
    session.feed('{"channel":"status","type":"update","data":[{"system":"online"}]}', T0)
    assert len(calls) == 1
    session.feed(trade_text(1), T0)
    assert len(calls) == 2
    session.feed(trade_text(1), T0)  # a duplicate: nothing journaled
    assert len(calls) == 2


# -- snapshots of the other channels ---------------------------------------------------------


def test_ticker_candle_trade_and_instrument_snapshots_keep_exact_digits() -> None:
    session, journal = journaled(
        ("ticker", "BTC/USD", {}), ("ohlc", "BTC/USD", {"interval": 5}), ("trade", "BTC/USD", {})
    )
    session.feed(INSTRUMENT_TEXT, T0)
    journal.trades_kept = 2
    ticker = (
        '{"channel":"ticker","type":"update","data":[{"symbol":"BTC/USD","bid":1.10,"bid_qty":2.00000000,'
        '"ask":1.20,"ask_qty":3.5,"last":1.15,"volume":9.0,"vwap":1.1,"low":1.0,"high":1.3,"change":0.1,'
        '"change_pct":1.00}]}'
    )
    session.feed(ticker.replace("1.10", "1.05"), T0)
    session.feed(ticker, T0)

    def candle(begin: str, close: str) -> str:
        return (
            '{"channel":"ohlc","type":"update","data":[{"symbol":"BTC/USD","open":1.00,"high":1.30,'
            f'"low":0.90,"close":{close},"vwap":1.0,"trades":3,"volume":4.00000000,'
            f'"interval_begin":"{begin}","interval":5,"timestamp":"{begin}"}}]}}'
        )

    session.feed(candle("2024-01-01T00:05:00.000000000Z", "1.10"), T0)
    session.feed(candle("2024-01-01T00:00:00.000000000Z", "1.00"), T0)  # a late older candle
    session.feed(candle("2024-01-01T00:05:00.000000000Z", "1.20"), T0)  # the current one, upserted
    for i in range(1, 4):
        session.feed(trade_text(i), T0)
    text = journal.snapshot("ticker", [stream_key("ticker", "BTC/USD")]).message()
    assert b'"bid":1.10,"bid_qty":2.00000000' in text and b'"change_pct":1.00' in text
    ohlc = journal.snapshot("ohlc", [stream_key("ohlc", "BTC/USD", 5)]).message()
    closes = [row["close"] for row in loads_exact(ohlc)["data"]]
    assert closes == [Decimal("1.00"), Decimal("1.20")] and b'"volume":4.00000000' in ohlc
    trades = loads_exact(journal.snapshot("trade", [TRADES]).message())["data"]
    assert [row["trade_id"] for row in trades] == [2, 3]
    assert trades[0]["qty"] == Decimal("12345678.12345678")
    instrument = journal.snapshot("instrument", [INSTRUMENT]).message()
    assert b'"margin_rate":0.20000' in instrument and b'"qty_increment":0.00000001' in instrument
    assert [p["symbol"] for p in loads_exact(instrument)["data"]["pairs"]] == ["BTC/USD", "ETH/USD"]
    assert journal.snapshot("ticker", [stream_key("ticker", "ETH/USD")]).missing == ("ETH/USD",)


def test_acks_and_pongs_are_kept_verbatim() -> None:
    session, journal = journaled(("trade", "BTC/USD", {}))
    subscribed = journal.ack("subscribe", TRADES)
    assert subscribed is not None and json.loads(subscribed)["result"]["symbol"] == "BTC/USD"
    assert json.loads(subscribed)["time_in"] == "2024-01-01T00:00:00.000001Z"
    session.unsubscribe(validate_subscription("trade", "BTC/USD"))
    answer(session)
    assert journal.ack("subscribe", TRADES) is None
    assert journal.ack("unsubscribe", TRADES) is not None
    req_id = session.ping()
    pong = (
        f'{{"method":"pong","req_id":{req_id},"time_in":"2024-01-01T00:00:01.000000Z",'
        '"time_out":"2024-01-01T00:00:01.000001Z"}'
    )
    session.feed(pong, T0)
    assert journal.last_pong == pong
    assert journal.read([PING], 100, 10).messages == [pong]


def test_the_journal_is_bounded_and_refuses_nonsense_sizes() -> None:
    with pytest.raises(ValueError):
        Journal(retain=0)
    session, journal = journaled(("trade", "BTC/USD", {}), retain=3)
    for i in range(1, 200):
        session.feed(trade_text(i), T0)
    assert journal.stats()["retained"] == 3
    assert len(journal._logs[TRADES].cursors) <= 2 * 3  # compacted as it goes


def test_book_outcomes_pair_with_entries_in_order_and_skip_stale_updates() -> None:
    from kraken_nb.core.journal import _accepted

    assert _accepted([False, False], ["book", "book"]) == [True, True]
    assert _accepted([False, False, False], ["book", "checksum_mismatch"]) == [True, False, False]
    assert _accepted([False, False], []) == [False, False]
    # after a failure, updates are stale until a snapshot, which pairs with the next outcome
    assert _accepted([False, False, True], ["checksum_mismatch", "book"]) == [False, False, True]
    assert _accepted([True, True], ["error", "book"]) == [False, True]
