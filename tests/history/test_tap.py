"""The recorder's tap on a Session fed strings: what it collects, and the tables it becomes (no I/O).

Kraken's own recorded BTC/USD depth-10 book (with its checksums) drives the
book cases: a clean stream, a checksum mismatch, entries queued until the
instrument data arrives, a frame of several entries for one symbol, a tap
attached mid-stream.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.errors import DatasetError
from kraken_nb.history.tables import tables_of
from kraken_nb.history.tap import HistoryTap, Pending, Prior

VECTORS = Path(__file__).parents[1] / "core" / "vectors"
T0 = 1_700_000_000_000_000_000
INSTRUMENT = json.dumps(
    {
        "channel": "instrument",
        "type": "snapshot",
        "data": {
            "assets": [],
            "pairs": [
                {
                    "symbol": "BTC/USD",
                    "base": "BTC",
                    "quote": "USD",
                    "price_precision": 1,
                    "qty_precision": 8,
                },
                {
                    "symbol": "DOGE/USD",
                    "base": "DOGE",
                    "quote": "USD",
                    "price_precision": 7,
                    "qty_precision": 8,
                },
            ],
        },
    }
)


def book_vector() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    vector = json.loads((VECTORS / "btcusd_book10_snapshot.json").read_text())
    return vector["snapshot"], vector["updates"]


def trade(symbol: str, trade_id: int, qty: str = "0.5", price: str = "64000.1") -> str:
    return (
        f'{{"symbol":"{symbol}","side":"buy","price":{price},"qty":{qty},"ord_type":"limit",'
        f'"trade_id":{trade_id},"timestamp":"2024-01-01T00:00:{trade_id % 60:02d}.000001Z"}}'
    )


def trades_frame(*rows: str, snapshot: bool = False) -> str:
    kind = "snapshot" if snapshot else "update"
    return f'{{"channel":"trade","type":"{kind}","data":[{",".join(rows)}]}}'


def session_with(*subscriptions: tuple[str, Any, dict[str, Any]], max_rows: int | None = None) -> Session:
    session = Session(max_rows=max_rows)
    for channel, symbols, params in subscriptions:
        session.subscribe(validate_subscription(channel, symbols, **params))
    session.connection_made(T0)
    session.data_to_send()
    return session


def tapped(session: Session, prior: dict[tuple[str, str], Prior] | None = None) -> HistoryTap:
    tap = HistoryTap(session, prior)
    tap.attach()
    return tap


def book_kinds(pending: Pending, symbol: str = "BTC/USD") -> list[str]:
    return [block.kind for block in pending.books[symbol]]


def table(pending: Pending, session: Session, name: str, symbol: str = "BTC/USD") -> pa.Table:
    """The part ``pending`` makes for one table and symbol (one day)."""
    buffers = {"trades": session.trades, "ticker": session.tickers, "candles": session.candles}
    (rows,) = [
        rows
        for table_name, sym, _, rows in tables_of(pending, buffers)
        if (table_name, sym) == (name, symbol)
    ]
    return rows


def test_trades_are_the_rows_the_buffer_kept_with_their_exact_values() -> None:
    session = session_with(("trade", ["BTC/USD", "DOGE/USD"], {}))
    tap = tapped(session)
    session.feed(trades_frame(trade("DOGE/USD", 1, qty="92146638.43575985", price="0.1612335")), T0 + 1)
    session.feed(trades_frame(trade("BTC/USD", 7), trade("DOGE/USD", 2), trade("BTC/USD", 8)), T0 + 2)
    session.feed(trades_frame(trade("BTC/USD", 8)), T0 + 3)  # a repeat: the buffer drops it
    pending = tap.take()
    assert pending.rows == 4 and tap.pending_rows == 0
    doge = table(pending, session, "trades", "DOGE/USD")
    assert doge.column_names == ["time", "side", "price", "qty", "ord_type", "trade_id", "received", "seq"]
    by_symbol = {
        symbol: [b.records["trade_id"].tolist() for b in blocks]
        for (_, symbol), blocks in pending.columns.items()
    }
    assert by_symbol == {"DOGE/USD": [[1], [2]], "BTC/USD": [[7, 8]]}
    assert doge.column("qty").to_pylist()[0] == Decimal("92146638.43575985")  # not the float's ...86
    assert doge.column("seq").to_pylist() == [0, 1]


def test_a_restarted_tap_skips_what_the_dataset_holds_and_continues_the_numbers() -> None:
    session = session_with(("trade", ["BTC/USD"], {}))
    prior = {("trades", "BTC/USD"): Prior(seq=41, received=T0 + 5, trade_ids=frozenset({7, 8, 9}))}
    tap = tapped(session, prior)
    session.feed(
        trades_frame(trade("BTC/USD", 6), trade("BTC/USD", 7), snapshot=True), T0 + 4
    )  # received before
    session.feed(trades_frame(*(trade("BTC/USD", i) for i in (8, 9, 10, 11)), snapshot=True), T0 + 9)
    session.feed(trades_frame(trade("BTC/USD", 12)), T0 + 10)
    pending = tap.take()
    assert tap.counters["skipped_recorded"] == 4
    blocks = pending.columns[("trades", "BTC/USD")]
    assert [b.records["trade_id"].tolist() for b in blocks] == [[10, 11], [12]]
    assert [b.first_seq for b in blocks] == [42, 44]


def test_each_candle_version_is_a_row() -> None:
    session = session_with(("ohlc", ["BTC/USD"], {"interval": 1}))
    tap = tapped(session)

    def candle(close: str, trades: int) -> str:
        row = (
            f'{{"symbol":"BTC/USD","open":64000.0,"high":64010.0,"low":63990.0,"close":{close},'
            f'"vwap":64001.5,"trades":{trades},"volume":1.5,"interval_begin":"2024-01-01T00:00:00.000000000Z",'
            f'"interval":1,"timestamp":"2024-01-01T00:00:30.000000000Z"}}'
        )
        return f'{{"channel":"ohlc","type":"update","data":[{row}]}}'

    for i, close in enumerate(("64001.0", "64002.0", "64003.0")):
        session.feed(candle(close, i + 1), T0 + i)
    assert len(session.candles) == 1  # upserted live
    rows = table(tap.take(), session, "candles")
    assert [float(x) for x in rows.column("close").to_pylist()] == [64001.0, 64002.0, 64003.0]
    assert rows.column("seq").to_pylist() == [0, 1, 2]


def test_a_clean_book_stream_is_a_kraken_snapshot_then_updates_with_their_checksums() -> None:
    snapshot, updates = book_vector()
    session = session_with(("book", ["BTC/USD"], {"depth": 10}))
    tap = tapped(session)
    session.feed(INSTRUMENT, T0)
    session.feed(json.dumps(snapshot), T0 + 1)
    for i, update in enumerate(updates[:10]):
        session.feed(json.dumps(update), T0 + 2 + i)
    pending = tap.take()
    # the roll's own snapshot closes the batch
    assert book_kinds(pending) == ["kraken"] + ["update"] * 10 + ["recorder"]
    blocks = pending.books["BTC/USD"]
    assert [b.checksum for b in blocks[1:11]] == [u["data"][0]["checksum"] for u in updates[:10]]
    assert [b.seq for b in blocks] == [*range(11), 10]  # the roll snapshot is the state after seq 10
    snapshots = table(pending, session, "book_snapshots")
    assert snapshots.column("kind").to_pylist().count("recorder") == 20  # ten levels a side
    assert str(snapshots.schema.field("price").type) == "decimal128(18, 1)"
    assert tap.take().books == {}  # nothing new: no snapshot at the next roll


def test_a_checksum_mismatch_records_a_reset_until_the_fresh_snapshot() -> None:
    snapshot, updates = book_vector()
    session = session_with(("book", ["BTC/USD"], {"depth": 10}))
    tap = tapped(session)
    session.feed(INSTRUMENT, T0)
    session.feed(json.dumps(snapshot), T0 + 1)
    bad = json.loads(json.dumps(updates[0]))
    bad["data"][0]["checksum"] ^= 1
    session.feed(json.dumps(bad), T0 + 2)
    session.feed(json.dumps(updates[1]), T0 + 3)  # stale while resyncing: not applied, not recorded
    session.feed(json.dumps(snapshot), T0 + 4)
    assert book_kinds(tap.take()) == ["kraken", "reset", "kraken"]


def test_a_disconnect_records_a_reset_of_every_book() -> None:
    snapshot, _ = book_vector()
    session = session_with(("book", ["BTC/USD"], {"depth": 10}))
    tap = tapped(session)
    session.feed(INSTRUMENT, T0)
    session.feed(json.dumps(snapshot), T0 + 1)
    session.connection_lost(T0 + 2)
    session.connection_lost(T0 + 3)  # already down: nothing more
    pending = tap.take()
    assert book_kinds(pending) == ["kraken", "reset"]
    assert pending.books["BTC/USD"][1].received_ns == T0 + 2


def test_entries_it_cannot_follow_one_by_one_become_the_books_state() -> None:
    snapshot, updates = book_vector()
    session = session_with(("book", ["BTC/USD"], {"depth": 10}))
    tap = tapped(session)
    session.feed(json.dumps(snapshot), T0)  # before the precisions: queued by the session
    session.feed(json.dumps(updates[0]), T0 + 1)
    session.feed(INSTRUMENT, T0 + 2)  # the queued entries are applied now
    two = {"channel": "book", "type": "update", "data": [updates[1]["data"][0], updates[2]["data"][0]]}
    session.feed(json.dumps(two), T0 + 3)
    pending = tap.take()
    assert book_kinds(pending) == ["recorder", "recorder"]
    assert pending.books["BTC/USD"][-1].checksum == updates[2]["data"][0]["checksum"]


def test_a_tap_attached_mid_stream_starts_from_the_books_state() -> None:
    snapshot, updates = book_vector()
    session = session_with(("book", ["BTC/USD"], {"depth": 10}))
    session.feed(INSTRUMENT, T0)
    session.feed(json.dumps(snapshot), T0 + 1)
    tap = tapped(session)
    session.feed(json.dumps(updates[0]), T0 + 2)
    session.feed(json.dumps(updates[1]), T0 + 3)
    assert book_kinds(tap.take()) == ["recorder", "update", "recorder"]


def test_rows_max_rows_dropped_before_the_copy_are_counted_as_lost() -> None:
    session = session_with(("trade", ["BTC/USD"], {}), max_rows=2)
    tap = tapped(session)
    session.feed(trades_frame(*(trade("BTC/USD", i) for i in range(1, 9))), T0)
    assert tap.counters["rows_lost"] > 0
    assert tap.pending_rows + tap.counters["rows_lost"] == 8


def test_one_tap_per_session() -> None:
    session = session_with()
    tap = tapped(session)
    with pytest.raises(DatasetError, match="already has a recorder"):
        HistoryTap(session).attach()
    tap.detach()
    tap.detach()  # idempotent
    HistoryTap(session).attach()
