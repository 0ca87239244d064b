"""OHLC candles of one symbol and one interval, built from trades in exact integers.

Prices are kept in ticks and volumes in quantity units, so open/high/low/close,
volume, trade count and the VWAP (``cost / volume``) agree exactly with the
trades that made them. A plausible synthetic history, ending at the start
price, fills the candles before the first simulated trade.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Iterator

__all__ = ["Candle", "CandleSeries", "synthetic_history"]

US_PER_MINUTE = 60_000_000


class Candle:
    """One interval's aggregate: prices in ticks, volume in units, cost in tick·units."""

    __slots__ = ("begin_us", "close", "cost", "high", "low", "open", "trades", "volume")

    def __init__(self, begin_us: int, tick: int) -> None:
        self.begin_us = begin_us
        self.open = self.high = self.low = self.close = tick
        self.volume = 0
        self.cost = 0
        self.trades = 0

    def add(self, tick: int, units: int) -> None:
        """Fold one trade into the candle."""
        if self.trades == 0:
            self.open = self.high = self.low = tick
        elif tick > self.high:
            self.high = tick
        elif tick < self.low:
            self.low = tick
        self.close = tick
        self.volume += units
        self.cost += tick * units
        self.trades += 1


class CandleSeries:
    """The recent candles of one interval, oldest first, the forming one last."""

    def __init__(self, interval: int, history: list[Candle] | None = None, maxlen: int = 100) -> None:
        self.interval = interval
        self.span_us = interval * US_PER_MINUTE
        self.candles: deque[Candle] = deque(history or (), maxlen=maxlen)

    def begin_of(self, time_us: int) -> int:
        """The start of the interval holding ``time_us`` (aligned to the Unix epoch)."""
        return time_us - time_us % self.span_us

    def add_trade(self, time_us: int, tick: int, units: int) -> None:
        """Fold a trade into its candle, opening a new candle when the interval rolled."""
        begin = self.begin_of(time_us)
        if not self.candles or self.candles[-1].begin_us < begin:
            self.candles.append(Candle(begin, tick))
        self.candles[-1].add(tick, units)

    def since(self, time_us: int) -> list[Candle]:
        """The candles whose interval ends after ``time_us``, oldest first."""
        begin = self.begin_of(time_us)
        found: list[Candle] = []
        for candle in reversed(self.candles):
            if candle.begin_us < begin:
                break
            found.append(candle)
        found.reverse()
        return found

    def last(self, count: int) -> list[Candle]:
        """The newest ``count`` candles, oldest first."""
        return list(self.candles)[-count:]

    def __iter__(self) -> Iterator[Candle]:
        return iter(self.candles)


def synthetic_history(
    rng: random.Random,
    interval: int,
    first_begin_us: int,
    end_tick: int,
    count: int,
    volatility: float,
    trades_per_second: float,
    units_per_trade: int,
) -> list[Candle]:
    """``count`` candles before ``first_begin_us``, a random walk that closes at ``end_tick``.

    Built backwards: each candle closes where the next one opens.
    """
    span_s = interval * 60
    step = volatility * math.sqrt(span_s)
    close = end_tick
    candles: list[Candle] = []
    for index in range(1, count + 1):
        open_ = max(1, round(close * math.exp(-rng.gauss(0.0, step))))
        top, bottom = max(open_, close), min(open_, close)
        high = max(top, round(top * (1 + abs(rng.gauss(0.0, step / 3)))))
        low = max(1, min(bottom, round(bottom * (1 - abs(rng.gauss(0.0, step / 3))))))
        trades = max(1, round(trades_per_second * span_s * rng.uniform(0.5, 1.5)))
        volume = max(1, round(trades * units_per_trade * rng.uniform(0.6, 1.4)))
        vwap = rng.randint(low, high)
        candle = Candle(first_begin_us - index * interval * US_PER_MINUTE, open_)
        candle.high, candle.low, candle.close = high, low, close
        candle.trades, candle.volume, candle.cost = trades, volume, vwap * volume
        candles.append(candle)
        close = open_
    candles.reverse()
    return candles
