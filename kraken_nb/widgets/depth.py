"""DepthHeatmap: order-book depth over time, drawn on a canvas.

Each tick samples ``client.book(symbol)`` (skipped while the book's version is
unchanged or the book is not valid) and bins its levels onto a fixed price grid
of ``price_rows`` rows starting at ``price_lo``, ``price_step`` apart: a level at
price ``p`` lands in row ``floor((p - price_lo) / price_step)``; levels outside
the grid are left out. One column is sent per sample as
``{"type": "column", "t": ms, "best_bid", "best_ask", "mid"}`` with two float32
buffers (resting bid and ask qty per row, ~4 bytes per row each). When the mid
price leaves the middle 60% of the grid it is shifted by whole rows
(``{"type": "recentre", "price_lo", "shift"}``) so existing columns move
instead of being resent. The view draws the columns as a heatmap (green bids,
red asks, brightness = qty), best bid/ask and mid lines over time, and the
cumulative depth curve of the latest column.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any

import numpy as np
import traitlets

from kraken_nb.core.params import BOOK_DEPTHS, validate_symbol
from kraken_nb.errors import InvalidParams
from kraken_nb.widgets.base import StreamWidget, client_status, frontend, is_static

__all__ = ["DepthColumn", "DepthHeatmap", "bin_levels", "grid_step"]

logger = logging.getLogger(__name__)

_ESM, _CSS = frontend("depth")

GRID_SPAN = 1.6
"""The grid covers this multiple of the first valid book's price span."""

RECENTRE_MARGIN = 0.2
"""The mid may move within the middle ``1 - 2 * RECENTRE_MARGIN`` of the grid before it shifts."""


def grid_step(span: float, rows: int, price_precision: int) -> float:
    """The smallest 1-2-5 multiple of the price tick with ``rows`` of them covering ``span``."""
    tick = 10.0**-price_precision
    target = max(span / rows, tick)
    exponent = math.floor(math.log10(target / tick))
    for power in (exponent, exponent + 1):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**power * tick
            if step >= target * (1 - 1e-9):
                return round(step, price_precision)
    return round(target, price_precision)


def bin_levels(prices: np.ndarray, qtys: np.ndarray, price_lo: float, step: float, rows: int) -> np.ndarray:
    """Sum ``qtys`` into ``rows`` price rows of width ``step`` from ``price_lo`` (float32)."""
    out = np.zeros(rows, dtype=np.float32)
    if len(prices) == 0:
        return out
    index = np.floor((np.asarray(prices, dtype=np.float64) - price_lo) / step + 1e-7).astype(np.int64)
    inside = (index >= 0) & (index < rows)
    np.add.at(out, index[inside], np.asarray(qtys, dtype=np.float64)[inside].astype(np.float32))
    return out


class DepthColumn:
    """One sampled column: time, best bid/ask, mid and the binned bid/ask qty."""

    __slots__ = ("asks", "best_ask", "best_bid", "bids", "mid", "t", "version")

    def __init__(
        self,
        t: int,
        best_bid: float | None,
        best_ask: float | None,
        mid: float | None,
        bids: np.ndarray,
        asks: np.ndarray,
        version: int,
    ) -> None:
        self.t = t
        self.best_bid = best_bid
        self.best_ask = best_ask
        self.mid = mid
        self.bids = bids
        self.asks = asks
        self.version = version

    def header(self) -> dict[str, Any]:
        """The JSON part of this column's message."""
        return {"t": self.t, "best_bid": self.best_bid, "best_ask": self.best_ask, "mid": self.mid}

    def shift(self, rows: int) -> None:
        """Move the binned qty down by ``rows`` rows (the grid moved up by as many), zero-filling."""
        self.bids = _shifted(self.bids, rows)
        self.asks = _shifted(self.asks, rows)


def _shifted(values: np.ndarray, rows: int) -> np.ndarray:
    out = np.zeros_like(values)
    n = len(values)
    if abs(rows) < n:
        if rows >= 0:
            out[: n - rows] = values[rows:]
        else:
            out[-rows:] = values[: n + rows]
    return out


class DepthHeatmap(StreamWidget):
    """Resting book qty over time × price for ``symbol``, with best bid/ask, mid and a depth curve.

    Parameters: ``client``, ``symbol`` (subscribes to its book at ``depth``),
    ``depth`` (levels per side, one of Kraken's book depths, default 100),
    ``columns`` (time samples kept, default 200), ``rate_hz`` (default 5) and
    ``price_rows`` (price grid rows, default 120). A book the client already
    holds at another depth is used at that depth. Synced state: ``symbol``,
    ``depth``, ``columns``, ``price_rows``, ``price_lo``, ``price_step``,
    ``price_precision``, ``qty_precision``, ``status`` (``book invalid`` while the
    book is not valid).

    ``client`` may be a recorded range (``History(DIR).range(start, end)``):
    the heatmap then shows ``columns`` books sampled evenly over it, once.
    """

    _esm = _ESM
    _css = _CSS

    symbol = traitlets.Unicode().tag(sync=True)
    depth = traitlets.Int(100).tag(sync=True)
    columns = traitlets.Int(200).tag(sync=True)
    price_rows = traitlets.Int(120).tag(sync=True)
    price_lo = traitlets.Float(0.0).tag(sync=True)
    price_step = traitlets.Float(0.0).tag(sync=True)
    price_precision = traitlets.Int(2).tag(sync=True)
    qty_precision = traitlets.Int(8).tag(sync=True)

    def __init__(
        self,
        client: Any,
        symbol: str,
        *,
        depth: int = 100,
        columns: int = 200,
        rate_hz: float = 5,
        price_rows: int = 120,
    ) -> None:
        validate_symbol(symbol)
        if depth not in BOOK_DEPTHS or isinstance(depth, bool):
            raise InvalidParams("depth", depth, BOOK_DEPTHS)
        if isinstance(columns, bool) or not isinstance(columns, int) or not 2 <= columns <= 2000:
            raise InvalidParams("columns", columns, "an integer from 2 to 2000")
        if isinstance(price_rows, bool) or not isinstance(price_rows, int) or not 10 <= price_rows <= 1000:
            raise InvalidParams("price_rows", price_rows, "an integer from 10 to 1000")
        super().__init__(client, symbol=symbol, depth=depth, columns=columns, price_rows=price_rows)
        self._version: int | None = None
        self._book_valid = False
        self._history: deque[DepthColumn] = deque(maxlen=columns)
        self._pending: DepthColumn | None = None
        self.depth = self._subscribe_book(symbol, depth)
        if is_static(client):  # a recorded range: its columns, sampled evenly over the range
            for t_ns, book in client.book_samples(symbol, columns):
                if book is not None:
                    self._book_valid = bool(book.valid)
                    self._add_column(book, t_ns // 1_000_000)
            self._pending = None
        self._start(rate_hz)

    def _subscribe_book(self, symbol: str, depth: int) -> int:
        """Subscribe the book at ``depth``; when it is already subscribed at another depth, use that one."""
        try:
            self._client.subscribe("book", [symbol], depth=depth)
            return depth
        except InvalidParams:
            held = next(
                (
                    subscription
                    for subscription in self._client.subscriptions()
                    if subscription.channel == "book" and subscription.symbol == symbol
                ),
                None,
            )
            if held is None:
                raise
        existing = int(held.params.get("depth", 10))
        logger.info("%s book already subscribed at depth %d; the heatmap uses that depth", symbol, existing)
        return existing

    @property
    def history(self) -> list[DepthColumn]:
        """The columns kept for new views, oldest first."""
        with self._lock:
            return list(self._history)

    def _status(self) -> str:
        status = client_status(self._client)
        if status == "live" and not self._book_valid:
            return "book invalid"
        return status

    def tick(self) -> None:
        """Sample the book if it changed, then refresh ``status`` and send the new column."""
        with self._lock:
            if self._closed:
                return
            if self._client.connection_state == "live":
                self._sample()
            super().tick()

    def _sample(self) -> None:
        version = self._client.versions().get(("book", self.symbol), 0)
        if version == self._version:
            return
        book = self._client.book(self.symbol)
        if book is None:
            self._book_valid = False
            return
        self._version = version
        self._book_valid = bool(book.valid)
        self._add_column(book, time.time_ns() // 1_000_000)

    def _add_column(self, book: Any, t_ms: int) -> None:
        """Bin a valid book's levels into a new column at ``t_ms`` (ms since the epoch)."""
        if not book.valid:
            return
        bid_px, bid_qty, ask_px, ask_qty = book.depth_arrays(self.depth)
        if len(bid_px) == 0 or len(ask_px) == 0:
            return
        best_bid, best_ask = float(bid_px[0]), float(ask_px[0])
        mid = (best_bid + best_ask) / 2
        if self.price_step <= 0:
            self._make_grid(book, float(bid_px[-1]), float(ask_px[-1]), mid)
        else:
            self._recentre(mid)
        column = DepthColumn(
            t=t_ms,
            best_bid=best_bid,
            best_ask=best_ask,
            mid=mid,
            bids=bin_levels(bid_px, bid_qty, self.price_lo, self.price_step, self.price_rows),
            asks=bin_levels(ask_px, ask_qty, self.price_lo, self.price_step, self.price_rows),
            version=int(book.version),
        )
        self._history.append(column)
        self._pending = column

    def _update(self) -> None:
        column = self._pending
        if column is None:
            return
        self._pending = None
        self.send({"type": "column", **column.header()}, [column.bids.tobytes(), column.asks.tobytes()])

    def _make_grid(self, book: Any, worst_bid: float, worst_ask: float, mid: float) -> None:
        precision = int(book.price_precision)
        self.price_precision = precision
        self.qty_precision = int(book.qty_precision)
        step = grid_step(max(worst_ask - worst_bid, 0.0) * GRID_SPAN, self.price_rows, precision)
        lo = math.floor((mid - step * self.price_rows / 2) / step) * step
        self.price_lo = round(lo, precision)
        self.price_step = step

    def _recentre(self, mid: float) -> None:
        span = self.price_step * self.price_rows
        low, high = self.price_lo + span * RECENTRE_MARGIN, self.price_lo + span * (1 - RECENTRE_MARGIN)
        if low <= mid <= high:
            return
        shift = round((mid - (self.price_lo + span / 2)) / self.price_step)
        if shift == 0:
            return
        for column in self._history:
            column.shift(shift)
        self.price_lo = round(self.price_lo + shift * self.price_step, self.price_precision)
        self.send({"type": "recentre", "price_lo": self.price_lo, "shift": shift})

    def _snapshot(self) -> None:
        columns = list(self._history)
        content = {
            "type": "snapshot",
            "price_lo": self.price_lo,
            "price_step": self.price_step,
            "price_rows": self.price_rows,
            "columns": [column.header() for column in columns],
        }
        bids = np.concatenate([c.bids for c in columns]) if columns else np.zeros(0, np.float32)
        asks = np.concatenate([c.asks for c in columns]) if columns else np.zeros(0, np.float32)
        self.send(content, [bids.tobytes(), asks.tobytes()])

    def __repr__(self) -> str:
        return (
            f"DepthHeatmap({self.symbol!r}, depth={self.depth}, columns={len(self._history)}/{self.columns}, "
            f"status={self.status!r})"
        )
