"""``HistoryRange``: a fixed stretch of a dataset that widgets read the way they read a client.

The widgets read a client through a few calls (``candles``, ``instrument``,
``versions``, ``subscribe``, the connection state); a ``HistoryRange``
answers them from a :class:`~kraken_nb.history.History`, and says
``live = False``, so a widget draws it once instead of ticking, with the
status ``history``::

    history = History("data/")
    CandleChart(history.range("2024-05-01", "2024-05-02"), "BTC/USD", interval=5)
    DepthHeatmap(history.range("2024-05-01 12:00", "2024-05-01 13:00"), "BTC/USD")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers.columnar import check_last
from kraken_nb.errors import InvalidParams

if TYPE_CHECKING:
    from kraken_nb.history.reader import History, Time

__all__ = ["HistoryRange"]


class HistoryRange:
    """``history`` between ``start`` and ``end`` (each None: from the first, to the last recorded row)."""

    live = False
    """Nothing changes: widgets draw it once."""
    connection_state = "history"
    system_status: str | None = None
    failure: Any = None

    def __init__(self, history: History, start: Time | None = None, end: Time | None = None) -> None:
        from kraken_nb.history.reader import to_ns

        self.history = history
        self.start = None if start is None else to_ns(start, "start")
        self.end = None if end is None else to_ns(end, "end")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise InvalidParams("end", end, f"a time after start ({start})")

    @property
    def detail(self) -> str:
        """The range, as the widgets' status line shows it."""
        shown = [
            "…" if ns is None else pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%d %H:%M:%S")
            for ns in (self.start, self.end)
        ]
        return f"{shown[0]} – {shown[1]} UTC"

    # -- what widgets call on a client ------------------------------------------

    def subscribe(
        self, channel: str, symbols: str | Iterable[str] | None = None, **params: Any
    ) -> dict[str, Any]:
        """Nothing to subscribe: the data is recorded."""
        return {}

    def subscriptions(self) -> list[Any]:
        """No subscriptions."""
        return []

    def versions(self) -> dict[tuple[str, str], int]:
        """Nothing changes."""
        return {}

    def instrument(self, symbol: str) -> dict[str, Any] | None:
        """The pair's recorded reference data (precisions), or None."""
        pairs = self.history.instruments()
        return None if symbol not in pairs.index else pairs.loc[symbol].to_dict()

    def candles(
        self,
        symbol: str | None = None,
        interval: int | None = None,
        last: int | None = None,
        *,
        exact: bool = False,
    ) -> pd.DataFrame:
        """The range's candles (recorded, or aggregated from trades), the newest ``last`` of them."""
        last = check_last(last)
        frame = self.history.candles(symbol, interval, self.start, self.end, exact=exact)
        return frame if last is None else frame.iloc[max(0, len(frame) - last) :].reset_index(drop=True)

    def book_samples(self, symbol: str, count: int) -> list[tuple[int, OrderBook | None]]:
        """``count`` books of ``symbol`` at instants (ns) spread evenly over the range's book data."""
        start, end = self._book_span(symbol)
        if start is None or end is None:
            return []
        if count < 1:
            return []
        if end > start and count > 1:  # integers: a float of ns since 1970 is off by up to 128 ns
            instants = [start + (end - start) * i // (count - 1) for i in range(count)]
        else:
            instants = [end]
        return [(int(at.value), book) for at, book in self.history.books(symbol, instants)]

    def _book_span(self, symbol: str) -> tuple[int | None, int | None]:
        span = self.history.sql(
            """SELECT epoch_ns(min(received)) AS first, epoch_ns(max(received)) AS last
               FROM (SELECT received FROM book_snapshots WHERE symbol = $s
                     UNION ALL SELECT received FROM book_updates WHERE symbol = $s)""",
            {"s": symbol},
        )
        first, last = span["first"].iloc[0], span["last"].iloc[0]
        if pd.isna(first):
            return None, None
        first, last = int(first), int(last)
        if self.start is not None:
            first = max(first, self.start)
        if self.end is not None:
            last = min(last, self.end - 1)
        return (first, last) if last >= first else (None, None)

    def __repr__(self) -> str:
        return f"<HistoryRange {self.history.directory} {self.detail}>"
