"""Channel messages: snapshots for new subscriptions, and the fan-out of each market step.

Book updates follow the market's book events one by one (see
:mod:`kraken_nb.simulator.book_feed`): one message per event and subscribed
depth, one side and one to a few levels each, every checksum the CRC32 of the
book after exactly that message. A message is built once per depth and sent
to every subscriber of that depth. Trades, trade-triggered tickers and candles
are sent once per step and symbol; bbo tickers when the best levels changed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kraken_nb.simulator.book_feed import BookFeed
from kraken_nb.simulator.connection import Connection, Subscription
from kraken_nb.simulator.encoding import dumps
from kraken_nb.simulator.faults import Faults
from kraken_nb.simulator.market import BookChanged, MarketEvent, MarketModel, TradesExecuted

__all__ = ["Feeds"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Routes:
    """Who receives what for one symbol during one step."""

    books: dict[int, list[Connection]] = field(default_factory=dict)
    trades: list[Connection] = field(default_factory=list)
    tickers: list[Connection] = field(default_factory=list)
    """Trade-triggered ticker subscribers."""
    bbo: list[tuple[Connection, Subscription]] = field(default_factory=list)
    candles: dict[int, list[Connection]] = field(default_factory=dict)


class Feeds:
    """Builds the frames of every channel from a :class:`MarketModel`.

    ``snapshot_timestamps`` adds a ``timestamp`` to book snapshots; Kraken's
    real snapshots carry none, so by default neither do these.
    """

    def __init__(self, market: MarketModel, faults: Faults, *, snapshot_timestamps: bool = False) -> None:
        self.market = market
        self.faults = faults
        self.snapshot_timestamps = snapshot_timestamps
        self._books: dict[str, BookFeed] = {}

    # -- snapshots --------------------------------------------------------------------

    def snapshot(self, sub: Subscription) -> str | None:
        """The snapshot frame of a new subscription (None when it asked for none).

        Every subscription must pass through here before the next market step:
        a book subscription starts the symbol's book feed from the current book.
        """
        market, symbol, options = self.market, sub.symbol, sub.options
        if sub.channel == "book":
            assert symbol is not None
            self._book_feed(symbol)
        if not options.get("snapshot", True):
            return None
        if sub.channel == "instrument":
            return _frame("instrument", "snapshot", market.instrument())
        assert symbol is not None
        if sub.channel == "book":
            entry = market.book(symbol, options["depth"])
            if self.snapshot_timestamps:
                entry["timestamp"] = market.now
            if self.faults.take_corruption(symbol):
                entry["checksum"] ^= 1
            return _frame("book", "snapshot", [entry])
        if sub.channel == "ticker":
            sub.bbo = market.bbo(symbol)
            return _frame("ticker", "snapshot", [market.ticker(symbol)])
        if sub.channel == "ohlc":
            return self._candle_frame("snapshot", market.candles(symbol, options["interval"]))
        return _frame("trade", "snapshot", market.recent_trades(symbol))

    def book_feed(self, symbol: str) -> BookFeed | None:
        """The book feed of ``symbol`` while it has subscribers (for tests and checks)."""
        return self._books.get(symbol)

    # -- updates ----------------------------------------------------------------------

    def publish(self, events: Iterable[MarketEvent], connections: Iterable[Connection]) -> None:
        """Send the updates that ``events`` (one market step) cause to every subscriber."""
        routes = _route(connections)
        for symbol in [s for s in self._books if s not in routes or not routes[s].books]:
            del self._books[symbol]  # no subscriber left: it would fall out of step with the market
        for event in events:
            route = routes.get(event.symbol)
            if isinstance(event, TradesExecuted):
                if route is not None:
                    self._publish_trades(event, route)
            else:
                self._publish_book(event, route)

    def _publish_trades(self, event: TradesExecuted, route: _Routes) -> None:
        if route.trades:
            text = _frame("trade", "update", event.trades)
            for connection in route.trades:
                connection.send(text)
        if route.tickers:
            text = self._ticker_frame(event.symbol)
            for connection in route.tickers:
                connection.send(text)
        for interval, subscribers in route.candles.items():
            candles = self.market.candles_since(event.symbol, interval, event.first_time_us)
            text = self._candle_frame("update", candles)
            for connection in subscribers:
                connection.send(text)

    def _publish_book(self, event: BookChanged, route: _Routes | None) -> None:
        symbol = event.symbol
        if route is None:
            return
        if route.books:
            feed = self._books.get(symbol)
            if feed is None:
                # Subscribed without going through snapshot(): start from the book as it is now.
                logger.debug("%s: book subscription without a snapshot call; updates start next step", symbol)
                self._book_feed(symbol)
            else:
                self._send_book_updates(feed, event, route.books)
        if route.bbo:
            bbo = self.market.bbo(symbol)
            text: str | None = None
            for connection, sub in route.bbo:
                if sub.bbo != bbo:
                    sub.bbo = bbo
                    text = text or self._ticker_frame(symbol)
                    connection.send(text)

    def _send_book_updates(
        self, feed: BookFeed, event: BookChanged, subscribers: dict[int, list[Connection]]
    ) -> None:
        symbol, faults = event.symbol, self.faults
        head = f'{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}","bids":'
        tail = f',"timestamp":"{self.market.now}"}}]}}'
        for depth, bids, asks, checksum in feed.updates(event.events, tuple(subscribers)):
            text = f'{head}{bids},"asks":{asks},"checksum":{checksum}{tail}'
            for connection in subscribers[depth]:
                if faults.take_corruption(symbol):
                    connection.send(f'{head}{bids},"asks":{asks},"checksum":{checksum ^ 1}{tail}')
                else:
                    connection.send(text)

    def _book_feed(self, symbol: str) -> BookFeed:
        feed = self._books.get(symbol)
        if feed is None:
            market = self.market
            spec = market.spec(symbol)
            everything = 1 << 30
            feed = self._books[symbol] = BookFeed(
                symbol,
                spec.price_precision,
                spec.qty_precision,
                market.levels(symbol, "bids", everything),
                market.levels(symbol, "asks", everything),
            )
        return feed

    def _ticker_frame(self, symbol: str) -> str:
        return _frame("ticker", "update", [self.market.ticker(symbol)])

    def _candle_frame(self, kind: str, candles: list[dict[str, Any]]) -> str:
        """An ohlc frame: Kraken puts the message time, 9 fraction digits, before the data."""
        return dumps({"channel": "ohlc", "type": kind, "timestamp": self.market.now_ns, "data": candles})


def _route(connections: Iterable[Connection]) -> dict[str, _Routes]:
    """Per symbol, the connections that receive each kind of update this step."""
    routes: dict[str, _Routes] = {}
    for connection in connections:
        for sub in tuple(connection.subscriptions.values()):
            symbol = sub.symbol
            if symbol is None:
                continue
            route = routes.get(symbol)
            if route is None:
                route = routes[symbol] = _Routes()
            channel = sub.channel
            if channel == "book":
                route.books.setdefault(sub.options["depth"], []).append(connection)
            elif channel == "trade":
                route.trades.append(connection)
            elif channel == "ticker":
                if sub.options["event_trigger"] == "bbo":
                    route.bbo.append((connection, sub))
                else:
                    route.tickers.append(connection)
            elif channel == "ohlc":
                route.candles.setdefault(sub.options["interval"], []).append(connection)
    return routes


def _frame(channel: str, kind: str, data: Any) -> str:
    return dumps({"channel": channel, "type": kind, "data": data})
