"""CandleChart and DepthHeatmap drawn from a recorded range: once, no client, no ticks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from kraken_nb import History, InvalidParams, KrakenClient
from kraken_nb.widgets import CandleChart, DepthHeatmap
from kraken_nb.widgets.depth import bin_levels

from .helpers import ready, record_sends, wait_for


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A dataset of DOGE/USD candles and a BTC/USD depth-10 book, recorded from the simulator."""
    root = tmp_path_factory.mktemp("dataset")
    with KrakenClient.simulated(seed=7, speed=20.0) as client:
        recorder = client.record_to(root, roll_seconds=0.3)
        client.subscribe("ohlc", ["DOGE/USD"], interval=1)
        client.subscribe("book", ["BTC/USD"], depth=10)
        wait_for(lambda: len(client.candles("DOGE/USD")) >= 3 and recorder.stats()["rolls"] >= 3, 30)
        client.close()
        live = client.candles("DOGE/USD", interval=1)
    return {"root": root, "live": live}


def test_a_candle_chart_of_a_range_shows_its_candles_once(recorded: dict[str, Any]) -> None:
    live = recorded["live"]
    with History(recorded["root"]) as history:
        chart = CandleChart(history.range(), "DOGE/USD", interval=1, window=50)
        try:
            sent = record_sends(chart)
            ready(chart)
            assert chart.status == "history" and not chart.ticking
            assert chart.price_precision == 7  # from the recorded instrument data
            ((content, _),) = sent
            assert content["type"] == "snapshot"
            expected = [
                [
                    int(row.interval_begin.timestamp() * 1000),
                    row.open,
                    row.high,
                    row.low,
                    row.close,
                    row.volume,
                ]
                for row in live.tail(50).itertuples()
            ]
            assert content["candles"] == expected
            chart.tick()  # nothing changes, nothing is sent
            assert len(sent) == 1
        finally:
            chart.close()
        with pytest.raises(InvalidParams, match="last"):  # checked as the client checks it
            history.range().candles("DOGE/USD", 1, last=-1)
        first, last = live["interval_begin"].iloc[0], live["interval_begin"].iloc[-1]
        part = CandleChart(history.range(first, last), "DOGE/USD", interval=1)
        try:
            sent = record_sends(part)
            ready(part)
            begins = [candle[0] for candle in sent[0][0]["candles"]]
            assert begins == [int(t.timestamp() * 1000) for t in live["interval_begin"] if first <= t < last]
            assert "UTC" in part.status_detail
        finally:
            part.close()


def test_a_depth_heatmap_of_a_range_shows_books_sampled_over_it(recorded: dict[str, Any]) -> None:
    with History(recorded["root"]) as history:
        source = history.range()
        heatmap = DepthHeatmap(source, "BTC/USD", depth=10, columns=12, price_rows=40)
        try:
            sent = record_sends(heatmap)
            ready(heatmap)
            assert heatmap.status == "history" and not heatmap.ticking
            columns = heatmap.history
            # the last instant is the end of the stream, where the book was lost (the client closed)
            every = source.book_samples("BTC/USD", 12)
            first = history.sql("SELECT epoch_ns(min(received)) AS ns FROM book_snapshots")["ns"].iloc[0]
            assert every[0][0] == first and every[0][1] is not None  # to the ns: the first snapshot's book
            samples = [(t, book) for t, book in every if book is not None and book.valid]
            assert len(columns) == len(samples) >= 10
            assert [column.t for column in columns] == [t // 1_000_000 for t, _ in samples]
            for column, (_, book) in zip(columns, samples, strict=True):
                bid_px, _, ask_px, _ = book.depth_arrays(10)
                assert column.best_bid == bid_px[0] and column.best_ask == ask_px[0]
            # the newest column is on the final grid (older ones moved with it as the mid moved)
            bid_px, bid_qty, ask_px, ask_qty = samples[-1][1].depth_arrays(10)
            grid = (heatmap.price_lo, heatmap.price_step, 40)
            assert np.array_equal(columns[-1].bids, bin_levels(bid_px, bid_qty, *grid))
            assert np.array_equal(columns[-1].asks, bin_levels(ask_px, ask_qty, *grid))
            assert columns[-1].bids.sum() > 0
            ((content, buffers),) = sent
            assert content["type"] == "snapshot" and len(content["columns"]) == len(columns)
            assert len(buffers[0]) == len(columns) * 40 * 4
        finally:
            heatmap.close()


def test_a_range_must_run_forwards(recorded: dict[str, Any]) -> None:
    now = pd.Timestamp.now(tz="UTC")
    with History(recorded["root"]) as history:
        with pytest.raises(InvalidParams, match="end"):
            history.range(now, now)
        empty = DepthHeatmap(history.range(end="2000-01-01"), "BTC/USD", depth=10)  # no book then
        try:
            assert empty.history == [] and empty.status == "history"
        finally:
            empty.close()
