"""DepthHeatmap: columns are the book's depth arrays binned on the synced price grid."""

from __future__ import annotations

import numpy as np
import pytest

from kraken_nb.errors import InvalidParams
from kraken_nb.widgets import DepthHeatmap
from kraken_nb.widgets.depth import DepthColumn, bin_levels, grid_step

from .helpers import MANUAL, message_bytes, ready, record_sends, wait_for

SYMBOL = "BTC/USD"


def _record_books(monkeypatch: pytest.MonkeyPatch, client: object) -> list:
    books: list = []
    original = client.book

    def book(symbol):
        copy = original(symbol)
        books.append(copy)
        return copy

    monkeypatch.setattr(client, "book", book)
    return books


def _rows_by_ticks(prices, qtys, lo: float, step: float, rows: int, precision: int) -> np.ndarray:
    """Bin levels with integer tick arithmetic (independent of the widget's float binning)."""
    scale = 10**precision
    out = np.zeros(rows)
    lo_ticks, step_ticks = round(lo * scale), round(step * scale)
    for price, qty in zip(prices, qtys, strict=True):
        row = (round(price * scale) - lo_ticks) // step_ticks
        if 0 <= row < rows:
            out[row] += qty
    return out


def test_columns_match_the_books_depth_arrays(client, monkeypatch) -> None:
    heatmap = DepthHeatmap(client, SYMBOL, depth=25, rate_hz=MANUAL)
    sent = record_sends(heatmap)
    try:
        wait_for(lambda: (b := client.book(SYMBOL)) is not None and b.valid, what="a valid book")
        books = _record_books(monkeypatch, client)
        for _ in range(3):
            version = client.versions()[("book", SYMBOL)]
            wait_for(lambda v=version: client.versions()[("book", SYMBOL)] != v, what="a book change")
            heatmap.tick()
        rows, step = heatmap.price_rows, heatmap.price_step
        precision = books[0].price_precision
        assert step > 0 and round(step * 10**precision) == pytest.approx(step * 10**precision)
        # The grid's low edge at each column: replay the recentre messages sent before it.
        shifts = sum(content["shift"] for content, _ in sent.of_type("recentre"))
        lo = heatmap.price_lo - shifts * step
        columns, lows = [], []
        for content, buffers in sent:
            if content["type"] == "recentre":
                lo += content["shift"] * step
                assert lo == pytest.approx(content["price_lo"])
            elif content["type"] == "column":
                columns.append((content, buffers))
                lows.append(lo)
        assert len(columns) == 3 == len(books)
        for (content, buffers), book, lo in zip(columns, books, lows, strict=True):
            bid_px, bid_qty, ask_px, ask_qty = book.depth_arrays(25)
            bids = np.frombuffer(buffers[0], dtype=np.float32)
            asks = np.frombuffer(buffers[1], dtype=np.float32)
            assert bids.shape == asks.shape == (rows,)
            expected_bids = _rows_by_ticks(bid_px, bid_qty, lo, step, rows, precision)
            expected_asks = _rows_by_ticks(ask_px, ask_qty, lo, step, rows, precision)
            np.testing.assert_allclose(bids, expected_bids, rtol=1e-6)
            np.testing.assert_allclose(asks, expected_asks, rtol=1e-6)
            assert content["best_bid"] == bid_px[0] and content["best_ask"] == ask_px[0]
            assert content["mid"] == pytest.approx((bid_px[0] + ask_px[0]) / 2)
            # The mid stays inside the grid (it recentres when the price leaves the middle).
            assert lo <= content["mid"] < lo + rows * step
            # One column: two float32 rows of qty and a small header.
            assert message_bytes(content, buffers) <= 2 * 4 * rows + 200
    finally:
        heatmap.close()


def test_unchanged_book_version_is_not_sampled(client, monkeypatch) -> None:
    heatmap = DepthHeatmap(client, SYMBOL, depth=10, rate_hz=MANUAL)
    sent = record_sends(heatmap)
    try:
        wait_for(lambda: (b := client.book(SYMBOL)) is not None and b.valid, what="a valid book")
        heatmap.tick()
        frozen = client.versions()
        monkeypatch.setattr(client, "versions", lambda: dict(frozen))
        books = _record_books(monkeypatch, client)
        heatmap.tick()
        heatmap.tick()
        assert books == []
        assert len(sent.of_type("column")) <= 1
    finally:
        heatmap.close()


def test_history_is_bounded_and_a_new_view_gets_it(client) -> None:
    heatmap = DepthHeatmap(client, SYMBOL, depth=10, columns=4, rate_hz=MANUAL)
    sent = record_sends(heatmap)
    try:
        wait_for(lambda: (b := client.book(SYMBOL)) is not None and b.valid, what="a valid book")
        for _ in range(6):
            version = client.versions()[("book", SYMBOL)]
            wait_for(lambda v=version: client.versions()[("book", SYMBOL)] != v, what="a book change")
            heatmap.tick()
        assert len(heatmap.history) == 4
        ready(heatmap)
        (snapshot, buffers), *_ = sent.of_type("snapshot")
        assert len(snapshot["columns"]) == 4
        assert len(buffers[0]) == len(buffers[1]) == 4 * heatmap.price_rows * 4
        last_column, last_buffers = sent.of_type("column")[-1]
        assert snapshot["columns"][-1]["t"] == last_column["t"]
        assert buffers[0][-len(last_buffers[0]) :] == last_buffers[0]
    finally:
        heatmap.close()


def test_bin_levels_sums_per_row_and_drops_outside() -> None:
    prices = np.array([100.0, 100.4, 100.5, 101.9, 99.9, 103.0])
    qtys = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    binned = bin_levels(prices, qtys, price_lo=100.0, step=0.5, rows=6)
    assert binned.dtype == np.float32
    assert binned.tolist() == [3.0, 4.0, 0.0, 8.0, 0.0, 0.0]


def test_grid_step_is_a_round_multiple_of_the_tick() -> None:
    assert grid_step(100.0, 120, 1) == 1.0
    assert grid_step(190.0, 120, 1) == 2.0
    assert grid_step(0.0, 120, 2) == 0.01
    assert grid_step(0.0013, 100, 6) == 0.00002


def test_columns_shift_with_the_grid() -> None:
    column = DepthColumn(0, 1.0, 2.0, 1.5, np.arange(5, dtype=np.float32), np.arange(5, dtype=np.float32), 1)
    column.shift(2)
    assert column.bids.tolist() == [2.0, 3.0, 4.0, 0.0, 0.0]
    column.shift(-3)
    assert column.asks.tolist() == [0.0, 0.0, 0.0, 2.0, 3.0]


@pytest.mark.parametrize(("depth", "columns"), [(50, 200), (100, 1), (True, 200)])
def test_bad_depth_or_columns_is_rejected(client, depth, columns) -> None:
    with pytest.raises(InvalidParams):
        DepthHeatmap(client, SYMBOL, depth=depth, columns=columns)


def test_a_book_held_at_another_depth_is_used(client) -> None:
    client.subscribe("book", ["ETH/USD"], depth=10)
    heatmap = DepthHeatmap(client, "ETH/USD", depth=25, rate_hz=MANUAL)
    try:
        assert heatmap.depth == 10
    finally:
        heatmap.close()
