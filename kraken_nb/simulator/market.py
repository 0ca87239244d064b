"""A seeded market model: order books, trades, candles and tickers for several pairs.

Pure Python, no I/O, no clocks: :meth:`MarketModel.step` advances the market
clock by ``dt`` seconds and returns what happened, per symbol: the trades, and
the book events with every level change in the order it happened. The dynamics of
each pair live in :mod:`kraken_nb.simulator.pair_market`; this module holds
the clock, the warm-up and the wire-shaped views (book, ticker, candles,
trades, instruments).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from kraken_nb.core.params import OHLC_INTERVALS
from kraken_nb.errors import InvalidParams
from kraken_nb.simulator.candles import US_PER_MINUTE, CandleSeries
from kraken_nb.simulator.pair_market import (
    CANDLE_HISTORY,
    BookEvent,
    PairMarket,
    Trade,
    format_time,
    format_time_ns,
)
from kraken_nb.simulator.pairs import ASSET_SPECS, PairSpec, resolve_pairs

__all__ = [
    "BookChanged",
    "BookEvent",
    "MarketEvent",
    "MarketModel",
    "TradesExecuted",
    "format_time",
    "format_time_ns",
]

SNAPSHOT_TRADES: Final = 50
"""Trades in a trade snapshot, and the least every pair has after the warm-up."""
_MAX_SUBSTEP_US: Final = 1_000_000
_WARMUP_STEP_S: Final = 1.0
_DAY_US: Final = 86_400_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US: Final = timedelta(microseconds=1)
_DEFAULT_START: Final = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TradesExecuted:
    """Trades of one symbol in one step, wire-shaped, in order (``trade_id`` ascending)."""

    symbol: str
    trades: list[dict[str, Any]] = field(default_factory=list)
    first_time_us: int = 0


@dataclass(frozen=True, slots=True)
class BookChanged:
    """The book of ``symbol`` changed during the step: its book events, in order.

    Each event is a tuple of ``(side, tick, units)`` level changes (``units``
    0 deletes the level); replayed in order on the book as it was before the
    step, they give the book after it.
    """

    symbol: str
    events: tuple[BookEvent, ...] = ()


MarketEvent = TradesExecuted | BookChanged


class MarketModel:
    """The simulated market of several pairs, advanced only by :meth:`step`.

    The same ``seed``, pairs, ``start`` and sequence of ``step`` calls give the
    same books, trades and candles. Construction runs a short warm-up so every
    pair already has at least 50 trades; the clock then reads ``start``.
    """

    def __init__(
        self, seed: int = 7, pairs: Sequence[str] | None = None, *, start: datetime | None = None
    ) -> None:
        specs = resolve_pairs(pairs)
        start = start or _DEFAULT_START
        if start.tzinfo is None:
            raise InvalidParams("start", start, "a timezone-aware datetime")
        self.seed = seed
        self._rng = random.Random(seed)
        start_us = (start - _EPOCH) // _ONE_US
        warmup_us = int(SNAPSHOT_TRADES / min(s.trade_rate for s in specs) * 1.5e6)
        self._now_us = start_us - warmup_us
        self._pairs: dict[str, PairMarket] = {
            spec.symbol: PairMarket(spec, self._rng, self._now_us, self._rng.randrange(10**7, 9 * 10**7))
            for spec in specs
        }
        while self._now_us < start_us or any(len(m.trades) < SNAPSHOT_TRADES for m in self._pairs.values()):
            remaining = (start_us - self._now_us) / 1e6
            self.step(min(_WARMUP_STEP_S, remaining) if remaining > 0 else _WARMUP_STEP_S)

    # -- clock and stepping -----------------------------------------------------------

    @property
    def symbols(self) -> tuple[str, ...]:
        """The listed symbols, in order."""
        return tuple(self._pairs)

    @property
    def now_us(self) -> int:
        """The market clock in microseconds since the Unix epoch."""
        return self._now_us

    @property
    def now(self) -> str:
        """The market clock as RFC3339 text (6 fraction digits)."""
        return format_time(self._now_us)

    @property
    def now_ns(self) -> str:
        """The market clock as RFC3339 text with 9 fraction digits (the ohlc frame ``timestamp``)."""
        return format_time_ns(self._now_us)

    def spec(self, symbol: str) -> PairSpec:
        """The pair spec of ``symbol``."""
        return self._pair(symbol).spec

    def step(self, dt: float) -> list[MarketEvent]:
        """Advance the clock by ``dt`` seconds; return the trades and book changes, per symbol."""
        total_us = round(dt * 1e6)
        if total_us <= 0:
            return []
        start_us = self._now_us
        for market in self._pairs.values():
            market.take_book_events()  # changes made outside a step (seeding) are not news
        made: dict[str, list[Trade]] = {symbol: [] for symbol in self._pairs}
        parts = -(-total_us // _MAX_SUBSTEP_US)
        for part in range(parts):
            t0 = start_us + total_us * part // parts
            t1 = start_us + total_us * (part + 1) // parts
            for symbol, market in self._pairs.items():
                made[symbol].extend(market.advance(t0, t1))
        self._now_us = start_us + total_us
        events: list[MarketEvent] = []
        for symbol, market in self._pairs.items():
            trades = made[symbol]
            if trades:
                events.append(TradesExecuted(symbol, [market.wire_trade(t) for t in trades], trades[0][1]))
            book_events = market.take_book_events()
            if book_events:
                events.append(BookChanged(symbol, tuple(book_events)))
        return events

    # -- book -------------------------------------------------------------------------

    def levels(self, symbol: str, side: str, depth: int) -> list[tuple[int, int]]:
        """The best ``depth`` levels of ``side`` ("bids"/"asks") as ``(tick, units)``, best first."""
        market = self._pair(symbol)
        if side == "bids":
            return market.bids.top(depth)
        if side == "asks":
            return market.asks.top(depth)
        raise InvalidParams("side", side, ("bids", "asks"))

    def units_at(self, symbol: str, side: str, tick: int) -> int:
        """The quantity (in units) resting at ``tick`` on ``side``; 0 when there is no level."""
        market = self._pair(symbol)
        return (market.bids if side == "bids" else market.asks).units(tick)

    def book(self, symbol: str, depth: int) -> dict[str, Any]:
        """The top ``depth`` of the book as a snapshot entry (bids descending, asks ascending).

        Like Kraken's snapshots it carries no ``timestamp``; the feed adds one when asked to.
        """
        market = self._pair(symbol)
        price, qty = market.price, market.qty
        return {
            "symbol": symbol,
            "bids": [{"price": price(t), "qty": qty(u)} for t, u in market.bids.top(depth)],
            "asks": [{"price": price(t), "qty": qty(u)} for t, u in market.asks.top(depth)],
            "checksum": market.checksum(),
        }

    def checksum(self, symbol: str) -> int:
        """Kraken's CRC32 of the current book of ``symbol``."""
        return self._pair(symbol).checksum()

    def best_bid(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        """The best bid as exact ``(price, qty)``."""
        return self._best(symbol, "bids")

    def best_ask(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        """The best ask as exact ``(price, qty)``."""
        return self._best(symbol, "asks")

    def price_of(self, symbol: str, tick: int) -> Decimal:
        """The exact price of ``tick`` for ``symbol``."""
        return self._pair(symbol).price(tick)

    def qty_of(self, symbol: str, units: int) -> Decimal:
        """The exact quantity of ``units`` for ``symbol``."""
        return self._pair(symbol).qty(units)

    # -- trades, candles, ticker, instruments -------------------------------------------

    def trade_log(self, symbol: str) -> list[dict[str, Any]]:
        """Every trade of ``symbol`` so far (the newest 200 000), wire-shaped, in order."""
        market = self._pair(symbol)
        return [market.wire_trade(t) for t in market.trades]

    def recent_trades(self, symbol: str, count: int = SNAPSHOT_TRADES) -> list[dict[str, Any]]:
        """The newest ``count`` trades of ``symbol``, oldest first."""
        market = self._pair(symbol)
        newest = [market.trades[-i] for i in range(1, min(count, len(market.trades)) + 1)]
        return [market.wire_trade(t) for t in reversed(newest)]

    def candles(self, symbol: str, interval: int, count: int = CANDLE_HISTORY) -> list[dict[str, Any]]:
        """The newest ``count`` candles of ``interval`` minutes, oldest first, the forming one last."""
        market = self._pair(symbol)
        return [market.wire_candle(c, interval) for c in self._series(market, interval).last(count)]

    def candles_since(self, symbol: str, interval: int, time_us: int) -> list[dict[str, Any]]:
        """The candles touched by trades at or after ``time_us``, oldest first."""
        market = self._pair(symbol)
        return [market.wire_candle(c, interval) for c in self._series(market, interval).since(time_us)]

    def ticker(self, symbol: str) -> dict[str, Any]:
        """The ticker of ``symbol``: best bid/ask, last trade price and 24-hour statistics."""
        market = self._pair(symbol)
        hourly = market.candles[60]
        since = hourly.begin_of(self._now_us) - _DAY_US + 60 * US_PER_MINUTE
        day = [c for c in hourly if c.begin_us >= since] or [hourly.candles[-1]]
        volume = sum(c.volume for c in day)
        cost = sum(c.cost for c in day)
        first_open = day[0].open
        last = market.last_tick
        change = last - first_open
        bid = market.bids.top(1)
        ask = market.asks.top(1)
        price, qty = market.price, market.qty
        return {
            "symbol": symbol,
            "bid": price(bid[0][0]) if bid else None,
            "bid_qty": qty(bid[0][1]) if bid else None,
            "ask": price(ask[0][0]) if ask else None,
            "ask_qty": qty(ask[0][1]) if ask else None,
            "last": price(last),
            "volume": qty(volume),
            "vwap": price(round(Decimal(cost) / Decimal(volume))) if volume else price(last),
            "low": price(min(min(c.low for c in day), last)),
            "high": price(max(max(c.high for c in day), last)),
            "change": price(change),
            "change_pct": (Decimal(change * 100) / Decimal(first_open)).quantize(Decimal("0.01")),
            "timestamp": self.now,
        }

    def bbo(self, symbol: str) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """The best bid and ask as ``(tick, units)`` (cheap, for change detection)."""
        market = self._pair(symbol)
        bid, ask = market.bids.top(1), market.asks.top(1)
        return (bid[0] if bid else None, ask[0] if ask else None)

    def instrument(self) -> dict[str, Any]:
        """The instrument channel's data: the assets and pairs listed.

        Reference values are floats, so they print as Kraken prints them
        (``"qty_increment":1e-08``, ``"qty_min":5e-05``, ``"cost_min":0.5``);
        marginable pairs also carry ``margin_initial`` and the position limits.
        """
        assets = dict.fromkeys(a for m in self._pairs.values() for a in (m.spec.base, m.spec.quote))
        return {
            "assets": [
                {
                    "id": asset.id,
                    "status": "enabled",
                    "precision": asset.precision,
                    "precision_display": asset.precision_display,
                    "borrowable": asset.borrowable,
                    "collateral_value": float(asset.collateral_value),
                    "margin_rate": float(asset.margin_rate),
                }
                for asset in (ASSET_SPECS[a] for a in assets)
            ],
            "pairs": [_wire_pair(m.spec) for m in self._pairs.values()],
        }

    # -- internals --------------------------------------------------------------------

    def _pair(self, symbol: str) -> PairMarket:
        try:
            return self._pairs[symbol]
        except KeyError:
            raise InvalidParams("symbol", symbol, self.symbols) from None

    @staticmethod
    def _series(market: PairMarket, interval: int) -> CandleSeries:
        try:
            return market.candles[interval]
        except KeyError:
            raise InvalidParams("interval", interval, OHLC_INTERVALS) from None

    def _best(self, symbol: str, side: str) -> tuple[Decimal, Decimal] | None:
        level = self.levels(symbol, side, 1)
        if not level:
            return None
        tick, units = level[0]
        return self.price_of(symbol, tick), self.qty_of(symbol, units)


def _wire_pair(spec: PairSpec) -> dict[str, Any]:
    """One pair as the instrument channel lists it, fields in the order of Kraken's docs example."""
    pair: dict[str, Any] = {
        "symbol": spec.symbol,
        "base": spec.base,
        "quote": spec.quote,
        "status": "online",
        "qty_precision": spec.qty_precision,
        "qty_increment": float(spec.qty_increment),
        "price_precision": spec.price_precision,
        "cost_precision": spec.cost_precision,
        "marginable": spec.marginable,
        "has_index": True,
        "cost_min": float(spec.cost_min),
    }
    if spec.marginable:
        pair["margin_initial"] = float(spec.margin_initial)
        pair["position_limit_long"] = spec.position_limit_long
        pair["position_limit_short"] = spec.position_limit_short
    pair["tick_size"] = float(spec.price_increment)
    pair["price_increment"] = float(spec.price_increment)
    pair["qty_min"] = float(spec.qty_min)
    return pair
