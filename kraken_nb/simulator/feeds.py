"""Channel messages: snapshots for new subscriptions, and the fan-out of each market step.

Book updates are computed per subscriber as the difference between the
top-``depth`` view it last saw and the new one: changed or new levels carry
their quantity, levels gone from the book carry ``qty: 0``, and levels that
merely fell below the depth are left to the client's truncation. Every book
message carries the CRC32 of the new top 10 levels per side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kraken_nb.simulator.connection import Connection, Subscription
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.market import MarketEvent, MarketModel, TradesExecuted

__all__ = ["Feeds"]

_View = tuple[dict[int, int], dict[int, int]]


class Feeds:
    """Builds the frames of every channel from a :class:`MarketModel`."""

    def __init__(self, market: MarketModel, faults: Faults) -> None:
        self.market = market
        self.faults = faults

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self, sub: Subscription) -> str | None:
        """The snapshot frame of a new subscription (None when it asked for none).

        Also records what the subscriber has seen, so later updates are diffs
        against it.
        """
        market, symbol, options = self.market, sub.symbol, sub.options
        if not options.get("snapshot", True):
            return None
        if sub.channel == "instrument":
            return _frame("instrument", "snapshot", market.instrument())
        assert symbol is not None
        if sub.channel == "book":
            depth = options["depth"]
            sub.bids = dict(market.levels(symbol, "bids", depth))
            sub.asks = dict(market.levels(symbol, "asks", depth))
            entry = market.book(symbol, depth)
            if self.faults.take_corruption(symbol):
                entry["checksum"] ^= 1
            return _frame("book", "snapshot", [entry])
        if sub.channel == "ticker":
            sub.bbo = market.bbo(symbol)
            return _frame("ticker", "snapshot", [market.ticker(symbol)])
        if sub.channel == "ohlc":
            return _frame("ohlc", "snapshot", market.candles(symbol, options["interval"]))
        return _frame("trade", "snapshot", market.recent_trades(symbol))

    # -- updates ----------------------------------------------------------------------

    def publish(self, events: Iterable[MarketEvent], connections: Iterable[Connection]) -> None:
        """Send the updates that ``events`` (one market step) cause to every subscriber."""
        connections = tuple(connections)
        if not connections:
            return
        views: dict[tuple[str, int], _View] = {}
        for event in events:
            if isinstance(event, TradesExecuted):
                self._publish_trades(event, connections)
            else:
                self._publish_book(event.symbol, connections, views)

    def _publish_trades(self, event: TradesExecuted, connections: tuple[Connection, ...]) -> None:
        symbol = event.symbol
        texts: dict[Any, str] = {}

        def text(key: Any, build: Callable[[], str]) -> str:
            if key not in texts:
                texts[key] = build()
            return texts[key]

        for connection in connections:
            for sub in tuple(connection.subscriptions.values()):
                if sub.symbol != symbol:
                    continue
                if sub.channel == "trade":
                    connection.send(text("trade", lambda: _frame("trade", "update", event.trades)))
                elif sub.channel == "ticker" and sub.options["event_trigger"] == "trades":
                    connection.send(text("ticker", lambda: self._ticker_frame(symbol)))
                elif sub.channel == "ohlc":
                    interval = sub.options["interval"]
                    connection.send(text(interval, lambda i=interval: self._candle_frame(event, i)))

    def _publish_book(
        self, symbol: str, connections: tuple[Connection, ...], views: dict[Any, _View]
    ) -> None:
        market = self.market
        checksum = market.checksum(symbol)
        timestamp = market.now
        bbo = market.bbo(symbol)
        ticker_text: str | None = None
        for connection in connections:
            for sub in tuple(connection.subscriptions.values()):
                if sub.symbol != symbol:
                    continue
                if sub.channel == "book":
                    depth = sub.options["depth"]
                    view = views.get((symbol, depth))
                    if view is None:
                        view = views[symbol, depth] = (
                            dict(market.levels(symbol, "bids", depth)),
                            dict(market.levels(symbol, "asks", depth)),
                        )
                    bids = self._diff(symbol, "bids", sub.bids, view[0])
                    asks = self._diff(symbol, "asks", sub.asks, view[1])
                    if not bids and not asks:
                        continue
                    sub.bids, sub.asks = view
                    sent = checksum ^ 1 if self.faults.take_corruption(symbol) else checksum
                    entry = {
                        "symbol": symbol,
                        "bids": bids,
                        "asks": asks,
                        "checksum": sent,
                        "timestamp": timestamp,
                    }
                    connection.send(_frame("book", "update", [entry]))
                elif sub.channel == "ticker" and sub.options["event_trigger"] == "bbo" and sub.bbo != bbo:
                    sub.bbo = bbo
                    ticker_text = ticker_text or self._ticker_frame(symbol)
                    connection.send(ticker_text)

    def _diff(self, symbol: str, side: str, old: dict[int, int], new: dict[int, int]) -> list[dict[str, Any]]:
        """Levels to send so that ``old`` (truncated to depth by the client) becomes ``new``."""
        changed = [(tick, units) for tick, units in new.items() if old.get(tick) != units]
        market = self.market
        changed.extend(
            (tick, 0) for tick in old if tick not in new and not market.units_at(symbol, side, tick)
        )
        if not changed:
            return []
        changed.sort(reverse=side == "bids")
        price, qty = market.price_of, market.qty_of
        return [{"price": price(symbol, tick), "qty": qty(symbol, units)} for tick, units in changed]

    def _ticker_frame(self, symbol: str) -> str:
        return _frame("ticker", "update", [self.market.ticker(symbol)])

    def _candle_frame(self, event: TradesExecuted, interval: int) -> str:
        candles = self.market.candles_since(event.symbol, interval, event.first_time_us)
        return _frame("ohlc", "update", candles)


def _frame(channel: str, kind: str, data: Any) -> str:
    return dumps({"channel": channel, "type": kind, "data": data})
