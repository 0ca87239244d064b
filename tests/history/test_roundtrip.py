"""Live → dataset → History: the same frames as the live client, digits and dtypes included.

The client records a real simulator stream over a real socket (trades,
tickers, candles and depth-10 books of BTC/USD and DOGE/USD, whose whale
quantities and 24 h volumes have 16–17 digits), with rolls every 0.3 s so the
data spans many part files. ``client.close()`` stops the stream and the
recorder at one instant, so the live frames and the dataset hold the same rows.
"""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kraken_nb import History
from kraken_nb.core.buffers.exact import EXACT_UNITS

from .helpers import SYMBOLS, compare, parts


def test_the_recorder_rolled_into_many_hive_partitioned_parts(recorded: dict[str, Any]) -> None:
    root: Path = recorded["root"]
    stats = recorded["stats"]
    assert stats["state"] == "stopped" and stats["error"] is None and stats["rows_lost"] == 0
    for table in ("trades", "ticker", "candles", "book_updates", "book_snapshots", "instruments"):
        assert parts(root, table), table
    assert {p.parent.parent.name for p in parts(root, "trades")} == {"symbol=BTC-USD", "symbol=DOGE-USD"}
    assert len(parts(root, "trades")) >= 6
    assert not list(root.rglob("*.tmp"))
    # the files do not repeat the partition columns
    import pyarrow.parquet as pq

    for path in parts(root, "trades")[:2]:
        names = pq.read_schema(path).names
        assert "symbol" not in names and "date" not in names and "seq" in names


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("symbol", SYMBOLS)
@pytest.mark.parametrize("name", ["trades", "ticker"])
def test_history_frames_equal_the_live_frames(
    recorded: dict[str, Any], name: str, symbol: str, exact: bool
) -> None:
    live = recorded["live"][(name, symbol, exact)]
    with History(recorded["root"]) as history:
        stored = getattr(history, name)(symbol, exact=exact)
    assert len(live) > 20
    compare(stored, live)


@pytest.mark.parametrize("exact", [True, False])
@pytest.mark.parametrize("symbol", SYMBOLS)
def test_history_candles_equal_the_live_candles(recorded: dict[str, Any], symbol: str, exact: bool) -> None:
    live = recorded["live"][("candles", symbol, exact)]
    with History(recorded["root"]) as history:
        stored = history.candles(symbol, 1, exact=exact, source="ohlc")
        assert_same = history.candles(symbol, 1, exact=exact)  # auto: ohlc was recorded at 1 minute
    assert len(live) >= 1
    compare(stored, live)
    compare(assert_same, live)


def test_whale_values_keep_every_digit(recorded: dict[str, Any]) -> None:
    """DOGE/USD quantities and volumes past 15 digits are in the dataset exactly, not float-rounded."""
    with History(recorded["root"]) as history:
        trades = history.trades("DOGE/USD", exact=True)
        ticker = history.ticker("DOGE/USD", exact=True)
    long_qty = [q for q in trades["qty"].tolist() if abs(q) * 10**8 >= EXACT_UNITS]
    long_volume = [v for v in ticker["volume"].tolist() if abs(v) * 10**8 >= EXACT_UNITS]
    assert long_volume, "the simulator's DOGE/USD volumes should exceed 15 digits"
    live_volume = recorded["live"][("ticker", "DOGE/USD", True)]["volume"].tolist()
    assert ticker["volume"].tolist() == live_volume
    for value in long_qty + long_volume:
        assert isinstance(value, Decimal)
        assert (
            Decimal(repr(float(value))) != value or value == value.normalize()
        )  # no float rounding slipped in
    assert any(Decimal(repr(float(v))) != v for v in long_volume), "no value a float would have rounded"


def test_a_frame_of_every_symbol_equals_the_live_one(recorded: dict[str, Any]) -> None:
    live = recorded["live"]["all trades"]
    with History(recorded["root"]) as history:
        stored = history.trades(exact=True)
    compare(stored, live)


def test_book_at_reproduces_the_checksums_the_stream_carried(recorded: dict[str, Any]) -> None:
    """At 100 random instants, a rebuilt book's CRC32 is the checksum of the last message received by then."""
    carried = recorded["carried"]
    rng = random.Random(5)
    with History(recorded["root"]) as history:
        for symbol in SYMBOLS:
            stream = [(t, checksum) for t, s, checksum in carried if s == symbol]
            assert len(stream) > 100, symbol
            first, last = stream[0][0], stream[-1][0]
            instants = sorted(rng.randrange(first, last + 1) for _ in range(50))
            expected = []
            at = 0
            for instant in instants:
                while at + 1 < len(stream) and stream[at + 1][0] <= instant:
                    at += 1
                expected.append(stream[at][1])
            replayed = list(history.books(symbol, instants))
            if symbol == "DOGE/USD":  # levels a float cannot hold were recorded, and replayed exactly
                long = history.sql(
                    "SELECT count(*) AS n FROM book_updates WHERE symbol = $s AND qty >= $limit",
                    {"s": symbol, "limit": EXACT_UNITS / 10**8},
                )
                assert long["n"].iloc[0] > 0
            assert [book.checksum() for _, book in replayed] == expected
            assert all(book.valid for _, book in replayed)
            # book_at alone, at a few of them
            for instant, checksum in list(zip(instants, expected, strict=True))[::10]:
                book = history.book_at(symbol, pd.Timestamp(instant, unit="ns", tz="UTC"))
                assert book is not None and book.valid and book.checksum() == checksum


def test_the_book_after_the_stream_ended_is_not_valid(recorded: dict[str, Any]) -> None:
    """``close()`` dropped the connection: the live book was lost, and the dataset says so."""
    last = recorded["carried"][-1][0]
    with History(recorded["root"]) as history:
        book = history.book_at("BTC/USD", pd.Timestamp.now(tz="UTC"))
        before = history.book_at("BTC/USD", last)
    assert book is not None and not book.valid and len(book) == 0
    assert before is not None and before.valid


def test_views_use_krakens_symbols_and_reduce_inside_duckdb(recorded: dict[str, Any]) -> None:
    live = recorded["live"]["all trades"]
    with History(recorded["root"]) as history:
        counts = history.sql(
            "SELECT symbol, count(*) AS n, sum(qty) AS volume FROM trades GROUP BY symbol ORDER BY symbol"
        )
        tables = history.sql("SELECT table_name FROM information_schema.tables ORDER BY 1")
    assert counts["symbol"].tolist() == SYMBOLS
    for _, row in counts.iterrows():
        rows = live[live["symbol"] == row["symbol"]]
        assert row["n"] == len(rows)
        assert row["volume"] == sum(rows["qty"].tolist())
    assert set(tables["table_name"]) >= {
        "trades",
        "ticker",
        "candles",
        "book_updates",
        "book_snapshots",
        "instruments",
    }
