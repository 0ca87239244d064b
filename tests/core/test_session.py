"""The sans-I/O session: fed strings, checked through its requests and state."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.errors import ChecksumMismatch, InvalidParams

VECTORS = Path(__file__).parent / "vectors"
T0 = 1_700_000_000_000_000_000
INSTRUMENT = json.dumps(
    {
        "channel": "instrument",
        "type": "snapshot",
        "data": {
            "assets": [{"id": "BTC", "precision": 10}],
            "pairs": [
                {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "price_precision": 1, "qty_precision": 8}
            ],
        },
    }
)


def recorded_book() -> dict:
    return json.loads((VECTORS / "btcusd_book10_snapshot.json").read_text())


def ack(request: dict, symbol: str | None = None, **result) -> str:
    params = request["params"]
    body = {"channel": params["channel"], **result}
    if symbol:
        body["symbol"] = symbol
    return json.dumps(
        {"method": request["method"], "req_id": request["req_id"], "success": True, "result": body}
    )


def trade(trade_id: int, symbol: str = "BTC/USD") -> dict:
    return {
        "symbol": symbol,
        "side": "buy",
        "price": 100.5,
        "qty": 0.25,
        "ord_type": "limit",
        "trade_id": trade_id,
        "timestamp": "2023-09-25T09:04:31.742599Z",
    }


def trades_frame(ids: range, kind: str = "update") -> str:
    return json.dumps({"channel": "trade", "type": kind, "data": [trade(i) for i in ids]})


def connected_session() -> Session:
    session = Session()
    session.connection_made(T0)
    return session


def answer_all(session: Session) -> list[dict]:
    """Send success acks for every queued subscribe/unsubscribe; return the requests."""
    sent = session.data_to_send()
    for request in sent:
        if request["method"] in ("subscribe", "unsubscribe"):
            symbols = request["params"].get("symbol") or [None]
            for symbol in symbols:
                session.feed(ack(request, symbol), T0)
    return sent


def test_subscribe_queues_request_and_ack_completes_call():
    session = connected_session()
    call_id = session.subscribe(validate_subscription("trade", ["BTC/USD", "ETH/USD"]))
    [request] = session.data_to_send()
    assert request["params"] == {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD"]}
    session.feed(ack(request, "BTC/USD"), T0)
    assert not session.call(call_id).done
    session.feed(ack(request, "ETH/USD"), T0)
    call = session.call(call_id)
    assert call.done and not call.rejections
    assert set(call.results) == {"BTC/USD", "ETH/USD"}
    assert session.is_subscribed("trade", "BTC/USD")


def test_rejected_symbol_is_reported_and_forgotten():
    session = connected_session()
    call_id = session.subscribe(validate_subscription("trade", ["BTC/USD", "BTC/XYZ"]))
    [request] = session.data_to_send()
    session.feed(ack(request, "BTC/USD"), T0)
    session.feed(
        json.dumps(
            {
                "method": "subscribe",
                "req_id": request["req_id"],
                "success": False,
                "symbol": "BTC/XYZ",
                "error": "Currency pair not supported BTC/XYZ",
            }
        ),
        T0,
    )
    call = session.call(call_id)
    assert call.done
    assert call.rejections == {"BTC/XYZ": "Currency pair not supported BTC/XYZ"}
    assert [s.symbol for s in session.subscriptions()] == ["BTC/USD"]
    assert session.counters["rejected"] == 1


def test_rejection_without_symbol_applies_to_every_symbol_of_the_request():
    session = connected_session()
    call_id = session.subscribe(validate_subscription("book", ["BTC/USD", "ETH/USD"], depth=25))
    requests = session.data_to_send()
    book_request = next(r for r in requests if r["params"]["channel"] == "book")
    session.feed(
        json.dumps(
            {"method": "subscribe", "req_id": book_request["req_id"], "success": False, "error": "nope"}
        ),
        T0,
    )
    assert session.call(call_id).rejections == {"BTC/USD": "nope", "ETH/USD": "nope"}


def test_subscribe_is_idempotent_and_conflicting_params_are_refused():
    session = connected_session()
    assert session.subscribe(validate_subscription("trade", "BTC/USD")) is not None
    assert session.subscribe(validate_subscription("trade", "BTC/USD")) is None
    session.subscribe(validate_subscription("book", "BTC/USD", depth=10))
    with pytest.raises(InvalidParams):
        session.subscribe(validate_subscription("book", "BTC/USD", depth=25))


def test_book_subscription_brings_the_instrument_channel_first():
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    channels = [r["params"]["channel"] for r in session.data_to_send()]
    assert channels == ["instrument", "book"]


def test_nothing_is_sent_while_disconnected_and_everything_on_connect():
    session = Session()
    session.subscribe(validate_subscription("ohlc", ["BTC/USD"], interval=5))
    session.subscribe(validate_subscription("book", ["BTC/USD"], depth=100))
    assert session.data_to_send() == []
    session.connection_made(T0)
    sent = session.data_to_send()
    assert next(r["params"]["channel"] for r in sent) == "instrument"
    params = {r["params"]["channel"]: r["params"] for r in sent}
    assert params["ohlc"]["interval"] == 5
    assert params["book"]["depth"] == 100


def book_session() -> tuple[Session, dict]:
    vector = recorded_book()
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(session)
    session.feed(INSTRUMENT, T0)
    return session, vector


def test_recorded_book_is_valid_through_every_update():
    session, vector = book_session()
    session.feed(json.dumps(vector["snapshot"]), T0)
    for i, update in enumerate(vector["updates"]):
        events = session.feed(json.dumps(update), T0 + i)
        assert [e.kind for e in events] == ["book"]
    book = session.books["BTC/USD"]
    assert book.valid and book.version == 1 + len(vector["updates"])
    assert session.counters["checksum_mismatches"] == 0
    tops = session.book_tops.to_frame()
    assert 1 < len(tops) <= 1 + len(vector["updates"])  # one row per change of the top of book
    columns = ["bid", "bid_qty", "ask", "ask_qty"]
    assert not tops[columns].diff().eq(0).all(axis=1).iloc[1:].any(), "an unchanged top was recorded"
    assert tops["valid"].all()
    assert tuple(tops[columns].iloc[-1]) == (*book.best_bid(), *book.best_ask())


def test_book_before_instrument_is_queued_then_applied():
    vector = recorded_book()
    session = connected_session()
    session.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(session)
    session.feed(json.dumps(vector["snapshot"]), T0)
    session.feed(json.dumps(vector["updates"][0]), T0)
    assert "BTC/USD" not in session.books or not session.books["BTC/USD"].valid
    session.feed(INSTRUMENT, T0)
    book = session.books["BTC/USD"]
    assert book.valid and book.version == 2


def test_checksum_mismatch_resubscribes_only_that_symbol_and_recovers():
    session, vector = book_session()
    session.feed(json.dumps(vector["snapshot"]), T0)
    bad = json.loads(json.dumps(vector["updates"][0]))
    bad["data"][0]["checksum"] ^= 1
    events = session.feed(json.dumps(bad), T0)
    assert [e.kind for e in events] == ["checksum_mismatch"]
    mismatch = events[0].data
    assert isinstance(mismatch, ChecksumMismatch)
    assert mismatch.symbol == "BTC/USD" and mismatch.expected == bad["data"][0]["checksum"]
    assert mismatch.actual == session.books["BTC/USD"].checksum() != mismatch.expected
    assert not session.books["BTC/USD"].valid
    assert session.counters["checksum_mismatches"] == 1 and session.counters["resyncs"] == 1
    requests = session.data_to_send()
    assert [(r["method"], r["params"]["channel"], r["params"]["symbol"]) for r in requests] == [
        ("unsubscribe", "book", ["BTC/USD"]),
        ("subscribe", "book", ["BTC/USD"]),
    ]
    # further bad news while the resync is in flight does not queue another one
    session.feed(json.dumps(bad), T0)
    assert session.data_to_send() == []
    # updates for the stale book are ignored; the fresh snapshot restores validity
    session.feed(json.dumps(vector["updates"][1]), T0)
    assert not session.books["BTC/USD"].valid
    for request in requests:
        session.feed(ack(request, "BTC/USD"), T0)
    session.feed(json.dumps(vector["snapshot"]), T0)
    assert session.books["BTC/USD"].valid
    assert session.is_subscribed("book", "BTC/USD")
    assert [s.channel for s in session.subscriptions()].count("book") == 1


def test_malformed_frames_are_counted_not_raised():
    session = connected_session()
    events = session.feed("{broken", T0)
    assert [e.kind for e in events] == ["error"]
    assert session.counters["malformed"] == 1
    session.feed('{"channel":"heartbeat"}', T0 + 5)
    assert session.last_heartbeat_ns == T0 + 5


def test_malformed_book_entry_resyncs_the_book():
    session, vector = book_session()
    session.feed(json.dumps(vector["snapshot"]), T0)
    session.data_to_send()
    events = session.feed(
        '{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":-1,"qty":1}],'
        '"asks":[],"checksum":1}]}',
        T0,
    )
    assert [e.kind for e in events] == ["error"]
    assert not session.books["BTC/USD"].valid
    assert [r["method"] for r in session.data_to_send()] == ["unsubscribe", "subscribe"]


def test_trades_deduplicated_and_gaps_recorded():
    session = connected_session()
    session.subscribe(validate_subscription("trade", "BTC/USD"))
    answer_all(session)
    session.feed(trades_frame(range(1, 51), "snapshot"), T0)
    session.feed(trades_frame(range(1, 51), "snapshot"), T0)
    assert len(session.trades) == 50
    assert session.counters["duplicate_trades"] == 50
    events = session.feed(trades_frame(range(55, 57)), T0)
    assert [e.kind for e in events] == ["trade", "trade", "gap"]
    assert list(session.trades.to_frame()["trade_id"]) == [*range(1, 51), 55, 56]


def test_reconnect_resubscribes_with_trade_snapshot_and_records_the_outage():
    session = connected_session()
    session.subscribe(validate_subscription("trade", "BTC/USD"))
    session.subscribe(validate_subscription("ticker", "BTC/USD", event_trigger="bbo"))
    answer_all(session)
    session.feed(trades_frame(range(1, 11)), T0)
    events = session.connection_lost(T0 + 10, "dropped")
    assert [e.kind for e in events] == ["disconnected"]
    assert not session.is_subscribed("trade", "BTC/USD")
    session.connection_made(T0 + 20)
    sent = {r["params"]["channel"]: r["params"] for r in session.data_to_send()}
    assert sent["trade"] == {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True}
    assert sent["ticker"] == {"channel": "ticker", "symbol": ["BTC/USD"], "event_trigger": "bbo"}
    # the snapshot overlaps what we had: only the new trades are added, no gap
    session.feed(trades_frame(range(5, 15), "snapshot"), T0 + 21)
    assert list(session.trades.to_frame()["trade_id"]) == list(range(1, 15))
    assert session.trades.gaps == []
    gaps = session.gaps_frame()
    assert set(gaps["channel"]) == {"trade", "ticker"}
    assert (gaps["end"] - gaps["start"]).dt.total_seconds().tolist() == pytest.approx([1e-8, 1e-8])


def test_unsubscribe_forgets_and_acks():
    session = connected_session()
    session.subscribe(validate_subscription("ohlc", "BTC/USD", interval=15))
    answer_all(session)
    call_id = session.unsubscribe(validate_subscription("ohlc", "BTC/USD", interval=15))
    [request] = session.data_to_send()
    assert request["params"] == {"channel": "ohlc", "symbol": ["BTC/USD"], "interval": 15}
    session.feed(ack(request, "BTC/USD", interval=15), T0)
    assert session.call(call_id).done
    assert session.subscriptions() == []
    assert session.unsubscribe(validate_subscription("ohlc", "BTC/USD", interval=15)) is None


def test_status_ping_and_versions():
    session = connected_session()
    events = session.feed('{"channel":"status","type":"update","data":[{"system":"maintenance"}]}', T0)
    assert session.system_status == "maintenance" and events[0].kind == "status"
    req_id = session.ping()
    assert session.data_to_send() == [{"method": "ping", "req_id": req_id}]
    assert session.ping_pending(req_id)
    session.feed(json.dumps({"method": "pong", "req_id": req_id}), T0)
    assert not session.ping_pending(req_id) and session.take_pong(req_id)
    session.feed(
        '{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":1,"bid_qty":1,"ask":2,'
        '"ask_qty":1,"last":1.5,"volume":3,"vwap":1.4,"low":1,"high":2,"change":0.5,"change_pct":50}]}',
        T0,
    )
    assert session.versions[("ticker", "BTC/USD")] == 1
    assert session.tickers.latest().loc["BTC/USD", "last"] == 1.5


def test_long_quantities_stay_exact_through_feed_and_mix_with_float_frames():
    """A frame with 8+8-digit quantities is decoded exactly; later float frames hit the same levels."""
    import zlib
    from decimal import Decimal

    pair = {"symbol": "DOGE/USD", "price_precision": 7, "qty_precision": 8}
    session = connected_session()
    session.subscribe(validate_subscription("book", "DOGE/USD"))
    answer_all(session)
    instrument = {"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [pair]}}
    session.feed(json.dumps(instrument), T0)

    def text(price: str, qty: str) -> str:
        p = f"{Decimal(price):.7f}".replace(".", "").lstrip("0")
        return p + f"{Decimal(qty):.8f}".replace(".", "").lstrip("0")

    bids = [("0.1234567", "12345678.12345679"), ("0.1234566", "87654321.98765432")]
    asks = [("0.1234570", "23456789.23456789")]
    checksum = zlib.crc32("".join(text(*a) for a in asks).encode() + "".join(text(*b) for b in bids).encode())
    levels = lambda pairs: ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in pairs)  # noqa: E731
    snapshot = (
        '{"channel":"book","type":"snapshot","data":[{"symbol":"DOGE/USD",'
        f'"bids":[{levels(bids)}],"asks":[{levels(asks)}],"checksum":{checksum}}}]}}'
    )
    session.feed(snapshot, T0)
    book = session.books["DOGE/USD"]
    assert book.valid, "exact quantities must reproduce the checksum"
    assert book.levels_exact("bid", 1) == [(Decimal("0.1234567"), Decimal("12345678.12345679"))]
    assert session.counters["exact_decodes"] == 1
    # a compact float frame deleting the best bid: the float key finds the level stored from a Decimal frame
    bids = bids[1:]
    checksum = zlib.crc32("".join(text(*a) for a in asks).encode() + "".join(text(*b) for b in bids).encode())
    update = (
        '{"channel":"book","type":"update","data":[{"symbol":"DOGE/USD",'
        f'"bids":[{{"price":0.1234567,"qty":0.0}}],"asks":[],"checksum":{checksum}}}]}}'
    )
    session.feed(update, T0)
    assert book.valid and len(book.bids()) == 1
    assert session.counters["exact_decodes"] == 1, "a frame of short numbers stays on the float path"
    # An update whose second level is too long for a float: the first level is undone,
    # the frame decoded again with Decimals and applied once.
    sent = [("0.1234568", "1.5"), ("0.1234565", "76543210.12345678")]
    bids = sorted([*sent, *bids], key=lambda level: Decimal(level[0]), reverse=True)
    checksum = zlib.crc32("".join(text(*a) for a in asks).encode() + "".join(text(*b) for b in bids).encode())
    update = (
        '{"channel":"book","type":"update","data":[{"symbol":"DOGE/USD",'
        f'"bids":[{levels(sent)}],"asks":[],"checksum":{checksum}}}]}}'
    )
    events = session.feed(update, T0)
    assert [event.kind for event in events] == ["book"]
    assert session.counters["exact_decodes"] == 2
    assert book.valid and book.levels_exact("bid") == [(Decimal(p), Decimal(q)) for p, q in bids]
    assert session.counters["malformed"] == 0 and session.counters["checksum_mismatches"] == 0


def wire_number(value: float, precision: int) -> str:
    """A value as Kraken prints it: at the pair's precision, trailing zeros kept."""
    return format(Decimal(repr(value)).quantize(Decimal(1).scaleb(-precision)), "f")


def wire_book_frame(frame: dict, price_precision: int, qty_precision: int) -> str:
    """A recorded book frame as Kraken's wire text (the recording lost the trailing zeros)."""
    text = json.dumps(frame, separators=(",", ":"))

    def level(match: re.Match) -> str:
        price, qty = float(match.group(1)), float(match.group(2))
        return f'{{"price":{wire_number(price, price_precision)},"qty":{wire_number(qty, qty_precision)}}}'

    return re.sub(r'\{"price":([0-9.e-]+),"qty":([0-9.e-]+)\}', level, text)


def test_frames_shaped_like_krakens_keep_the_client_working():
    """No snapshot timestamp, exponent-form instrument values, warnings in acks, trailing zeros."""
    session = connected_session()
    book_call = session.subscribe(validate_subscription("book", "BTC/USD"))
    ohlc_call = session.subscribe(validate_subscription("ohlc", "BTC/USD", interval=1))
    for request in session.data_to_send():
        params = request["params"]
        result: dict = {"channel": params["channel"], "snapshot": True}
        if params["channel"] == "instrument":
            result["warnings"] = ["tick_size is deprecated, use price_increment"]
        else:
            result.update(symbol="BTC/USD", **{k: v for k, v in params.items() if k in ("depth", "interval")})
        if params["channel"] == "ohlc":
            result["warnings"] = ["timestamp is deprecated, use interval_begin"]
        reply = {"method": "subscribe", "req_id": request["req_id"], "result": result, "success": True}
        session.feed(json.dumps(reply, sort_keys=True), T0)
    assert session.call(ohlc_call).acks["BTC/USD"].warnings == (
        "timestamp is deprecated, use interval_begin",
    )
    assert session.call(book_call).done
    # The instrument pair as Kraken prints it (docs example and live captures): exponent-form floats.
    session.feed(
        '{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC","status":"enabled",'
        '"precision":10,"precision_display":5,"borrowable":true,"collateral_value":1.0,"margin_rate":0.01}],'
        '"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,'
        '"qty_increment":1e-08,"price_precision":1,"cost_precision":5,"marginable":true,"has_index":true,'
        '"cost_min":0.5,"margin_initial":0.2,"position_limit_long":250,"position_limit_short":200,'
        '"tick_size":0.1,"price_increment":0.1,"qty_min":5e-05}]}}',
        T0,
    )
    assert session.pairs["BTC/USD"]["qty_increment"] == 1e-08 and session.pairs["BTC/USD"]["qty_min"] == 5e-05
    vector = recorded_book()
    assert "timestamp" not in vector["snapshot"]["data"][0], "the recorded snapshot has none, as Kraken's"
    frames = [vector["snapshot"], *vector["updates"]]
    texts = [wire_book_frame(frame, 1, 8) for frame in frames]
    assert any('"qty":0.00000000}' in text for text in texts) and any("0}" in text for text in texts)
    for i, text in enumerate(texts):
        assert [e.kind for e in session.feed(text, T0 + i)] == ["book"]
    book = session.books["BTC/USD"]
    assert book.valid and book.timestamp == vector["updates"][-1]["data"][0]["timestamp"]
    assert session.counters["checksum_mismatches"] == 0
    session.feed(
        '{"channel":"ohlc","type":"update","timestamp":"2026-10-06T18:06:02.264627814Z","data":[{'
        '"symbol":"BTC/USD","open":85754.8,"high":85754.8,"low":85754.7,"close":85754.8,"trades":5,'
        '"volume":0.00126522,"vwap":85754.7,"interval_begin":"2026-10-06T18:06:00.000000000Z","interval":1,'
        '"timestamp":"2026-10-06T18:07:00.000000Z"}]}',
        T0,
    )
    candles = session.candles.to_frame()
    assert len(candles) == 1 and candles["close"].iloc[0] == 85754.8
