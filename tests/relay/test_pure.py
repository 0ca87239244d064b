"""The relay's pure parts fed plain values: subjects, ids, snapshot frames, manifests, gap records."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.core.messages import parse
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.wire import loads_exact
from kraken_nb.errors import InvalidParams, MalformedMessage
from kraken_nb.relay.command import parse_duration, parse_size
from kraken_nb.relay.gaps import GapRecord
from kraken_nb.relay.manifest import Carried, Catalog, Manifest, carried_of
from kraken_nb.relay.snapshot import book_snapshot_frame
from kraken_nb.relay.source import parse_start
from kraken_nb.relay.subjects import (
    GAP_SUBJECT,
    MAIN_SUBJECTS,
    OTHER_SUBJECT,
    SNAPSHOT_SUBJECTS,
    STATUS_SUBJECT,
    Occurrences,
    book_snapshot_subject,
    data_subject,
    routes,
    symbol_token,
)

VECTORS = Path(__file__).resolve().parents[1] / "core" / "vectors"


def frame(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload)


def ticker_row(**change: float) -> dict[str, Any]:
    """A ticker row that passes the schema (every field Kraken sends)."""
    row = dict.fromkeys(("bid", "bid_qty", "ask", "ask_qty", "last", "volume", "vwap", "low", "high"), 2.5)
    return {"symbol": "BTC/USD", **row, "change": -0.5, "change_pct": -2.0, **change}


def trade_frame(symbol: str, *ids: int) -> bytes:
    rows = [
        {
            "symbol": symbol,
            "side": "buy",
            "price": 100.5,
            "qty": 0.25,
            "ord_type": "market",
            "trade_id": i,
            "timestamp": "2024-01-01T00:00:00.000000Z",
        }
        for i in ids
    ]
    return frame({"channel": "trade", "type": "update", "data": rows})


# -- subjects and message ids -------------------------------------------------------------


def test_symbols_become_one_subject_token() -> None:
    assert symbol_token("BTC/USD") == "BTC-USD"
    assert symbol_token("AAPL.X/USD") == "AAPL_X-USD"
    assert data_subject("trade", "BTC/USD") == "kraken.v2.trade.BTC-USD"
    assert book_snapshot_subject("ETH/USD") == "kraken.v2.book.snapshot.ETH-USD"


def test_the_two_streams_never_claim_the_same_subject() -> None:
    """JetStream refuses overlapping streams: a snapshot subject must match no main-stream pattern."""

    def matches(pattern: str, subject: str) -> bool:
        p, s = pattern.split("."), subject.split(".")
        if p[-1] == ">":
            return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False))
        return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True))

    snapshot_examples = [
        book_snapshot_subject("BTC/USD"),
        "kraken.v2.instrument.snapshot",
        "kraken.v2.manifest.r1",
    ]
    main_examples = [data_subject(c, "BTC/USD") for c in ("trade", "book", "ticker", "ohlc")]
    main_examples += [STATUS_SUBJECT, GAP_SUBJECT, OTHER_SUBJECT, "kraken.v2.instrument"]
    for subject in snapshot_examples:
        assert not any(matches(p, subject) for p in MAIN_SUBJECTS), subject
        assert any(matches(p, subject) for p in SNAPSHOT_SUBJECTS), subject
    for subject in main_examples:
        assert any(matches(p, subject) for p in MAIN_SUBJECTS), subject
        assert not any(matches(p, subject) for p in SNAPSHOT_SUBJECTS), subject


def test_a_trade_frame_is_identified_by_its_newest_trade() -> None:
    batched = trade_frame("BTC/USD", 7, 8, 9)
    split = trade_frame("BTC/USD", 9)
    (first,) = routes(batched, parse(batched))
    (second,) = routes(split, parse(split))
    assert first.subject == "kraken.v2.trade.BTC-USD"
    assert first.msg_id == second.msg_id == "trade:BTC/USD:9"
    assert routes(trade_frame("BTC/USD", 10), parse(trade_frame("BTC/USD", 10)))[0].msg_id != first.msg_id


def test_other_frames_are_identified_by_their_exact_text() -> None:
    update = {
        "channel": "book",
        "type": "update",
        "data": [{"symbol": "BTC/USD", "bids": [{"price": 1.0, "qty": 2.0}], "asks": [], "checksum": 5}],
    }
    text = frame(update)
    (route,) = routes(text, parse(text))
    assert route.subject == "kraken.v2.book.BTC-USD" and route.channel == "book" and route.symbol == "BTC/USD"
    assert routes(frame(update), parse(text))[0].msg_id == route.msg_id  # the same text, the same id
    update["data"][0]["checksum"] = 6
    changed = frame(update)
    assert routes(changed, parse(changed))[0].msg_id != route.msg_id


def test_the_same_text_again_is_a_new_message_numbered_alike_on_every_relay() -> None:
    """A text that repeats (a level set, removed, set again in one timestamp) is stored each time."""
    set_level = frame({"channel": "ticker", "type": "update", "data": [ticker_row(last=1.0)]})
    other = frame({"channel": "ticker", "type": "update", "data": [ticker_row(last=2.0)]})
    texts = [set_level, other, set_level, set_level]
    primary: dict[str, Occurrences] = {}
    standby: dict[str, Occurrences] = {}
    ids = [routes(t, parse(t), primary)[0].msg_id for t in texts]
    assert len(set(ids)) == 4  # no frame is mistaken for an earlier one
    assert ids == [routes(t, parse(t), standby)[0].msg_id for t in texts]  # a second relay agrees
    assert ids[0].endswith(":0") and ids[2].endswith(":1") and ids[3].endswith(":2")


def test_answers_to_the_relays_own_requests_are_not_published() -> None:
    for payload in (
        {
            "method": "subscribe",
            "success": True,
            "req_id": 1,
            "result": {"channel": "trade", "symbol": "X/Y"},
        },
        {"method": "pong", "req_id": 2},
        {"channel": "heartbeat"},
    ):
        text = frame(payload)
        assert routes(text, parse(text)) == []
    status = frame({"channel": "status", "type": "update", "data": [{"system": "online"}]})
    assert routes(status, parse(status))[0].subject == STATUS_SUBJECT
    assert routes(b"{not json", None)[0].subject == OTHER_SUBJECT


def test_a_data_frame_without_one_valid_item_is_kept_on_the_other_subject() -> None:
    """Its items name no trustworthy symbol; it is stored as it came rather than dropped."""
    bad = frame({"channel": "ticker", "type": "update", "data": [ticker_row(last=-1.0)]})
    message = parse(bad)
    assert message is not None and message.rejected and not message.symbols()
    (route,) = routes(bad, message)
    assert route.subject == OTHER_SUBJECT and route.symbol is None
    mixed = frame({"channel": "ticker", "type": "update", "data": [ticker_row(last=-1.0), ticker_row()]})
    assert [r.subject for r in routes(mixed, parse(mixed))] == ["kraken.v2.ticker.BTC-USD"]


# -- book snapshots -----------------------------------------------------------------------


def recorded_book() -> OrderBook:
    vector = json.loads((VECTORS / "btcusd_book10_snapshot.json").read_text())
    book = OrderBook(
        "BTC/USD", 10, price_precision=vector["price_precision"], qty_precision=vector["qty_precision"]
    )
    assert book.apply(loads_exact(json.dumps(vector["snapshot"]))["data"][0], snapshot=True)
    for update in vector["updates"]:
        assert book.apply(loads_exact(json.dumps(update))["data"][0], snapshot=False)
    return book


def test_a_snapshot_frame_rebuilds_the_same_checksum_valid_book() -> None:
    book = recorded_book()
    text = book_snapshot_frame(book)
    message = parse(text)
    assert message.channel == "book" and message.snapshot
    entry = message.data[0]
    assert set(entry) == {"symbol", "bids", "asks", "checksum"}  # Kraken's snapshot shape: no timestamp
    assert entry["checksum"] == book.checksum()
    again = OrderBook("BTC/USD", 10, price_precision=1, qty_precision=8)
    assert again.apply(entry, snapshot=True)
    assert again.valid and again.checksum_text() == book.checksum_text()
    assert again.levels_exact("bid") == book.levels_exact("bid")
    assert [p for p, _ in again.asks()] == sorted(p for p, _ in again.asks())  # asks best (lowest) first
    # written at the pair's precision, trailing zeros kept
    assert re.findall(rb'"qty":\d+\.(\d+)', text) and all(
        len(d) == 8 for d in re.findall(rb'"qty":\d+\.(\d+)', text)
    )
    assert all(len(d) == 1 for d in re.findall(rb'"price":\d+\.(\d+)', text))


def test_a_snapshot_frame_keeps_digits_a_float_cannot_hold() -> None:
    book = OrderBook("DOGE/USD", 10, price_precision=8, qty_precision=8)
    entry = loads_exact(
        '{"symbol":"DOGE/USD","bids":[{"price":0.12345678,"qty":12345678.12345678}],'
        '"asks":[{"price":0.12345679,"qty":87654321.87654321}],"checksum":0}'
    )
    book.apply(entry, snapshot=True)  # the checksum is made up: only the digits matter here
    text = book_snapshot_frame(book)
    assert b'"qty":12345678.12345678' in text and b'"qty":87654321.87654321' in text
    again = OrderBook("DOGE/USD", 10, price_precision=8, qty_precision=8)
    again.apply(loads_exact(text)["data"][0], snapshot=True)
    assert again.valid and again.checksum_text() == book.checksum_text()


# -- manifests and what is carried ------------------------------------------------------------


def catalog(*relays: tuple[str, list[Any]], now_ns: int = 10**18, since: int | None = 0) -> Catalog:
    return Catalog(
        Manifest(name, "KRAKEN", carried_of(subs), 0, now_ns, connected_since_ns=since)
        for name, subs in relays
    )


def test_carried_records_fill_in_krakens_defaults() -> None:
    carried = carried_of(
        [validate_subscription("book", ["BTC/USD"]), validate_subscription("trade", ["BTC/USD"])]
    )
    assert carried == (Carried("book", "BTC/USD", {"depth": 10}), Carried("trade", "BTC/USD", {}))


def test_the_catalog_rejects_what_no_relay_carries_and_names_what_is_carried() -> None:
    shard_a = (
        "a",
        [validate_subscription("book", ["BTC/USD"], depth=25), validate_subscription("trade", ["BTC/USD"])],
    )
    shard_b = (
        "b",
        [validate_subscription("ohlc", ["ETH/USD"], interval=5), validate_subscription("instrument")],
    )
    cat = catalog(shard_a, shard_b)
    assert cat.check(validate_subscription("trade", ["BTC/USD"])) == {"BTC/USD": None}
    verdict = cat.check(validate_subscription("trade", ["BTC/USD", "SOL/USD"]))
    assert verdict["BTC/USD"] is None
    assert verdict["SOL/USD"] == "trade SOL/USD is not carried by the relay (it carries trade for BTC/USD)"
    depth = cat.check(validate_subscription("book", ["BTC/USD"]))["BTC/USD"]
    assert depth is not None and "depth=10 (the default)" in depth and "depth=25" in depth
    assert cat.check(validate_subscription("book", ["BTC/USD"], depth=25)) == {"BTC/USD": None}
    interval = cat.check(validate_subscription("ohlc", ["ETH/USD"], interval=1))["ETH/USD"]
    assert interval is not None and "interval=5" in interval
    assert cat.check(validate_subscription("ohlc", ["ETH/USD"], interval=5)) == {"ETH/USD": None}
    assert "no ticker" in (cat.check(validate_subscription("ticker", ["ETH/USD"]))["ETH/USD"] or "")
    assert cat.check(validate_subscription("instrument")) == {"": None}
    assert "no relay" in (Catalog().check(validate_subscription("trade", ["BTC/USD"]))["BTC/USD"] or "")


def test_a_stream_is_covered_only_by_another_live_relay_connected_throughout() -> None:
    subs = [validate_subscription("trade", ["BTC/USD"])]
    now = 10**18
    live = catalog(("a", subs), ("b", subs), now_ns=now, since=now - 10**10)
    assert live.covered("trade", "BTC/USD", now - 10**9, now, besides="a")  # b was connected
    assert not live.covered("trade", "BTC/USD", now - 10**11, now, besides="a")  # b connected later
    assert not live.covered("trade", "ETH/USD", now - 10**9, now, besides="a")  # b does not carry it
    alone = catalog(("a", subs), now_ns=now, since=now - 10**10)
    assert not alone.covered("trade", "BTC/USD", now - 10**9, now, besides="a")
    stale = catalog(("a", subs), ("b", subs), now_ns=now - 60 * 10**9, since=0)
    assert not stale.covered("trade", "BTC/USD", now - 10**9, now, besides="a")  # b stopped refreshing


def test_manifests_and_gap_records_survive_json_and_refuse_garbage() -> None:
    manifest = Manifest(
        "r1", "KRAKEN", carried_of([validate_subscription("book", ["BTC/USD"])]), 1, 2, 3, 2.5, "ws://x"
    )
    assert Manifest.from_json(manifest.to_json()) == manifest
    record = GapRecord("r1", 10, 20, "because", (("trade", "BTC/USD"), ("book", "BTC/USD")))
    assert GapRecord.from_json(record.to_json()) == record
    for garbage in (b"not json", b"{}", b'{"relay": 1}'):
        with pytest.raises(MalformedMessage):
            Manifest.from_json(garbage)
        with pytest.raises(MalformedMessage):
            GapRecord.from_json(garbage)


# -- options ------------------------------------------------------------------------------------


def test_start_points() -> None:
    assert parse_start("first").policy == "first" and not parse_start("first").live
    assert parse_start("new").live and parse_start("last").live
    assert parse_start(42).seq == 42
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_start(moment).time == moment
    for bad in ("yesterday", 0, -3, True, 1.5, datetime(2024, 1, 1), None):
        with pytest.raises(InvalidParams):
            parse_start(bad)


def test_durations_and_sizes() -> None:
    assert parse_duration("90") == 90 and parse_duration("30m") == 1800 and parse_duration("24h") == 86400
    assert parse_duration("250ms") == 0.25 and parse_duration("7d") == 7 * 86400
    assert parse_size("1000") == 1000 and parse_size("500MB") == 500 * 10**6 and parse_size("1GiB") == 2**30
    for bad in ("soon", "-1h", "1 parsec"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(bad)
        with pytest.raises(argparse.ArgumentTypeError):
            parse_size(bad)
