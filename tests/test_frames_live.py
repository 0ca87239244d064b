"""DataFrames over a real socket: exact values of DOGE/USD whales, Kraken's times, and replays of them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from test_cli import read_url  # the tests folder is on sys.path (no package)

from kraken_nb import KrakenClient
from kraken_nb.core.session import Session
from kraken_nb.core.taps import Tap
from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.core.wire import loads_exact
from kraken_nb.recording import RecordingHeader, RecordingReader, RecordingWriter, replay

pytestmark = pytest.mark.timeout(120)

SYMBOL = "DOGE/USD"
FRAMES = ("trades", "ticker", "candles", "book_history", "depth_history")


class Recorder(Tap):
    """Keeps every frame the session handled, with its receive time."""

    def __init__(self) -> None:
        self.frames: list[tuple[int, str]] = []

    def frame(self, text: str | bytes, message: Any, received_ns: int, events: list[Any]) -> None:
        self.frames.append((received_ns, text if isinstance(text, str) else text.decode()))


def long_value(value: Any) -> bool:
    """A wire number that a float rounds (16 or 17 significant digits)."""
    return isinstance(value, Decimal) and Decimal(repr(float(value))) != value


def rows_of(recorder: Recorder, channel: str) -> list[tuple[int, dict[str, Any]]]:
    """``(received_ns, row)`` of every data row of ``channel``, decoded exactly, in arrival order."""
    out = []
    for received_ns, text in recorder.frames:
        frame = loads_exact(text)
        if frame.get("channel") == channel and frame.get("type") in ("snapshot", "update"):
            out.extend((received_ns, row) for row in frame["data"])
    return out


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[KrakenClient, Recorder]]:
    """A client on a DOGE/USD simulator (whale orders) with every channel, its frames recorded.

    It runs until the frames hold values a float rounds in trades, ticker
    volumes and book quantities, then the market is paused.
    """
    client = KrakenClient.simulated(speed=20, seed=11, pairs=[SYMBOL])
    recorder = Recorder()
    client.add_tap(recorder)
    try:
        client.subscribe("book", SYMBOL, depth=25)
        client.subscribe("trade", SYMBOL, snapshot=True)
        client.subscribe("ticker", SYMBOL)
        client.subscribe("ohlc", SYMBOL, interval=1)

        def long_everywhere(_: KrakenClient) -> bool:
            trades = client.trades(SYMBOL, exact=True)
            tops = client.book_history(SYMBOL, exact=True)
            volumes = client.ticker(SYMBOL, exact=True).volume
            return (
                any(map(long_value, trades.qty))
                and any(map(long_value, volumes))
                and any(map(long_value, [*tops.bid_qty.dropna(), *tops.ask_qty.dropna()]))
            )

        client.wait_until(long_everywhere, timeout=90)
        client.simulator.pause()
        yield client, recorder
    finally:
        client.close()


def test_trades_are_the_simulators_exactly(live: tuple[KrakenClient, Recorder]) -> None:
    client, _ = live
    exact = client.trades(SYMBOL, exact=True)
    floats = client.trades(SYMBOL)
    log = {t["trade_id"]: t for t in client.simulator.trade_log(SYMBOL)}
    assert exact.qty.dtype == pd.ArrowDtype(pa.decimal128(18, 8))
    assert exact.trade_id.is_unique and exact.trade_id.is_monotonic_increasing
    for trade_id, price, qty, time, float_qty in zip(
        exact.trade_id, exact.price, exact.qty, exact.time, floats.qty, strict=True
    ):
        wire = log[trade_id]
        assert (price, qty) == (wire["price"], wire["qty"])
        assert time.value == parse_rfc3339_ns(wire["timestamp"])
        assert float_qty == float(wire["qty"])  # the float default: the nearest float
    assert any(map(long_value, exact.qty)), "no whale quantity that a float rounds"
    assert client.stats()["exact_decodes"] > 0


def test_ticker_rows_carry_krakens_timestamp_and_exact_volumes(live: tuple[KrakenClient, Recorder]) -> None:
    client, recorder = live
    rows = rows_of(recorder, "ticker")
    frame = client.ticker(SYMBOL, exact=True)
    assert len(frame) == len(rows) > 0
    assert frame.time.tolist() == [pd.Timestamp(row["timestamp"]) for _, row in rows]
    assert frame.received.tolist() == [pd.Timestamp(t, tz="UTC") for t, _ in rows]
    assert frame.time.is_monotonic_increasing  # the market clock (20x wall time at this speed)
    for name in ("volume", "bid_qty", "ask_qty", "bid", "ask", "last", "vwap", "change"):
        assert frame[name].tolist() == [row[name] for _, row in rows], name
    assert any(map(long_value, frame.volume))
    latest = client.ticker_latest(exact=True)
    assert latest.loc[SYMBOL, "volume"] == rows[-1][1]["volume"]


def test_candles_carry_both_times_and_exact_volumes(live: tuple[KrakenClient, Recorder]) -> None:
    client, recorder = live
    newest: dict[str, dict[str, Any]] = {}
    for _, row in rows_of(recorder, "ohlc"):
        newest[row["interval_begin"]] = row  # the last version of each candle
    frame = client.candles(SYMBOL, exact=True)
    assert frame.interval_begin.tolist() == [pd.Timestamp(begin) for begin in sorted(newest)]
    wire = [newest[begin] for begin in sorted(newest)]
    assert frame.time.tolist() == [pd.Timestamp(row["timestamp"]) for row in wire]
    assert frame.volume.tolist() == [row["volume"] for row in wire]
    assert frame.close.tolist() == [row["close"] for row in wire]


def test_the_book_frame_is_the_simulators_book_exactly(live: tuple[KrakenClient, Recorder]) -> None:
    client, _ = live
    market = client.simulator.market

    def expected() -> list[tuple[str, Decimal, Decimal]]:
        levels = []
        for side, name in (("bid", "bids"), ("ask", "asks")):
            for tick, units in market.levels(SYMBOL, name, 25):
                levels.append((side, market.price_of(SYMBOL, tick), market.qty_of(SYMBOL, units)))
        return levels

    def settled(c: KrakenClient) -> bool:
        book = c.book(SYMBOL)
        if book is None or not book.valid:
            return False
        frame = book.to_frame(exact=True)
        return list(zip(frame.side, frame.price, frame.qty, strict=True)) == expected()

    client.wait_until(settled, timeout=20)
    book = client.book(SYMBOL)
    frame = book.to_frame(exact=True)
    assert frame.cum_qty.tolist()[-1] == sum(q for side, _, q in expected() if side == "ask")
    tops = client.book_history(SYMBOL, exact=True)
    # Kraken stamps book updates but (as the simulator by default) not snapshots
    assert pd.isna(tops.time.iloc[0]) and tops.time.iloc[1:].notna().all()
    assert tops.mid.dtype == pd.ArrowDtype(pa.decimal128(19, 8))
    depth = client.depth_history(SYMBOL, exact=True)
    assert depth.groupby("received").size().max() <= 2 * 25


def record(recorder: Recorder, client: KrakenClient, path: Path) -> RecordingHeader:
    header = RecordingHeader(
        url=client.url,
        subscriptions=tuple(
            {"channel": s.channel, "symbol": [s.symbol], **s.params}
            for s in client.subscriptions()
            if s.channel != "instrument"
        ),
        started_ns=recorder.frames[0][0],
        version="test",
    )
    with RecordingWriter(path, header) as writer:
        for received_ns, text in recorder.frames:
            writer.write(received_ns, text)
    return header


def test_replaying_the_recording_gives_the_same_frames(
    live: tuple[KrakenClient, Recorder], tmp_path: Path
) -> None:
    client, recorder = live
    path = tmp_path / "doge.jsonl.gz"
    with client._lock:  # a consistent cut: the frames so far and the frames they made
        frames = list(recorder.frames)
        recorder_copy = Recorder()
        recorder_copy.frames = frames
        live_frames = {
            (name, exact): getattr(client, name)(SYMBOL, exact=exact)
            for name in FRAMES
            for exact in (False, True)
        }
    record(recorder_copy, client, path)
    session = Session()
    with RecordingReader(path) as reader:
        summary = replay(reader.header, reader, session)
    assert summary.frames == len(frames)
    replayed = {
        ("trades", False): session.trades.to_frame(SYMBOL),
        ("ticker", False): session.tickers.to_frame(SYMBOL),
        ("candles", False): session.candles.to_frame(SYMBOL),
        ("book_history", False): session.book_tops.to_frame(SYMBOL),
        ("depth_history", False): session.depths.to_frame(SYMBOL),
    }
    for name, _ in list(replayed):
        buffer = {
            "trades": session.trades,
            "ticker": session.tickers,
            "candles": session.candles,
            "book_history": session.book_tops,
            "depth_history": session.depths,
        }[name]
        replayed[(name, True)] = buffer.to_frame(SYMBOL, exact=True)
    for key, frame in live_frames.items():
        assert len(frame) > 0, key
        # Same rows, same exchange times, same receive times, same exact values.
        pd.testing.assert_frame_equal(replayed[key], frame, obj=str(key))


def test_serving_the_recording_gives_the_same_exchange_times(
    live: tuple[KrakenClient, Recorder], tmp_path: Path
) -> None:
    client, recorder = live
    path = tmp_path / "doge.jsonl.gz"
    with client._lock:
        recorder_copy = Recorder()
        recorder_copy.frames = list(recorder.frames)
        trades = client.trades(SYMBOL)
        tickers = client.ticker(SYMBOL)
    record(recorder_copy, client, path)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kraken_nb.cli",
            "replay",
            str(path),
            "--serve",
            "--port",
            "0",
            "--speed",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = read_url(server)
        with KrakenClient(url, timeout=10) as replayed:
            replayed.wait_connected()
            replayed.subscribe("trade", SYMBOL, snapshot=True)
            replayed.subscribe("ticker", SYMBOL)
            replayed.wait_until(
                lambda c: len(c.trades(SYMBOL)) >= len(trades) and len(c.ticker(SYMBOL)) >= len(tickers),
                timeout=60,
            )
            got = replayed.trades(SYMBOL)
            got_ticker = replayed.ticker(SYMBOL)
    finally:
        server.terminate()
        server.wait(timeout=15)
    pd.testing.assert_series_equal(got.time, trades.time)
    pd.testing.assert_series_equal(got.trade_id, trades.trade_id)
    pd.testing.assert_series_equal(got_ticker.time, tickers.time)
    assert (got.received > trades.received.max()).all()  # received again, later
