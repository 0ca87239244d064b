"""The simulated market of one pair: fair price, L2 book, trades and candles.

The fair price follows a random walk with rare jumps and a faint pull back to
the start price. The book (prices in integer ticks, quantities in integer
units, so every value is exact) follows it: quotes left on the wrong side of
the fair price are swept by a taker now and then, otherwise cancelled, and new
quotes fill the gap. Random trades take resting liquidity from the best levels;
random adds, cancels and resizes keep the book moving; each side is kept
between ``MIN_LEVELS`` and ``MAX_LEVELS`` levels by working at its far end.

Every change to a level is journalled in order, grouped into book events (one
maker action, or one taker order with all its fills), so the feed can send the
book as Kraken does: event by event, each message leaving a valid book.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final
from zlib import crc32

from kraken_nb.core.params import OHLC_INTERVALS
from kraken_nb.core.timestamps import format_rfc3339_ns
from kraken_nb.simulator.candles import US_PER_MINUTE, Candle, CandleSeries, synthetic_history
from kraken_nb.simulator.pairs import PairSpec

__all__ = [
    "CANDLE_HISTORY",
    "MAX_LEVELS",
    "MIN_LEVELS",
    "TRADE_LOG_LIMIT",
    "BookEvent",
    "LevelChange",
    "PairMarket",
    "Trade",
    "format_time",
    "format_time_ns",
    "top_checksum",
]

MIN_LEVELS: Final = 1100
"""Levels a side is refilled to (more than the deepest subscription, 1000)."""
MAX_LEVELS: Final = 1400
"""Levels beyond which the worst ones are dropped."""
TRADE_LOG_LIMIT: Final = 200_000
"""Trades kept per symbol for the trade log."""
CANDLE_HISTORY: Final = 100
"""Candles kept (and sent in an ohlc snapshot) per interval."""
_SWEEP_SHARE: Final = 0.3
"""Share of moves through stale quotes that a taker sweeps (makers cancel the others)."""
_SWEEP_LEVELS: Final = 3
_JUMP_RATE: Final = 1 / 400
"""Price jumps per market second."""
_REVERSION: Final = 2e-5
"""Pull of the fair price back towards the start price, per second."""

# A fill: (side, ord_type, tick, units); an order is one or more fills sharing a timestamp.
_Fill = tuple[str, str, int, int]
Trade = tuple[int, int, str, str, int, int]
"""A recorded trade: (trade_id, time_us, side, ord_type, tick, units)."""
LevelChange = tuple[str, int, int]
"""One level change: (side ``"bids"``/``"asks"``, tick, units after it; 0 deletes the level)."""
BookEvent = tuple[LevelChange, ...]
"""The level changes of one book event, in order (one maker action, or one taker order's fills)."""


def format_time(time_us: int) -> str:
    """RFC3339 text of a market time in microseconds, with 6 fraction digits and ``Z``."""
    return format_rfc3339_ns(time_us * 1000, 6)


def format_time_ns(time_us: int) -> str:
    """RFC3339 text of a market time with 9 fraction digits (ohlc ``interval_begin`` and ``timestamp``)."""
    return format_rfc3339_ns(time_us * 1000, 9)


def top_checksum(asks: Iterable[tuple[int, int]], bids: Iterable[tuple[int, int]]) -> int:
    """Kraken's CRC32 of the top levels given as ``(tick, units)``, best first (10 a side).

    A level's checksum text is its price and quantity at the pair's precisions
    without the point and leading zeros, which for positive integer ticks and
    units is simply their decimal digits.
    """
    return crc32("".join([f"{t}{u}" for t, u in asks] + [f"{t}{u}" for t, u in bids]).encode())


class _Journal:
    """The level changes since the last :meth:`take`, grouped into book events."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[list[LevelChange]] = [[]]

    def begin(self) -> None:
        """Start a new book event (the changes recorded next belong to it)."""
        if self.events[-1]:
            self.events.append([])

    def take(self) -> list[BookEvent]:
        """The book events recorded so far, in order; the journal is emptied."""
        events = [tuple(event) for event in self.events if event]
        self.events = [[]]
        return events


class _Side:
    """One side of a book: units by signed key (tick for asks, -tick for bids), keys best first."""

    __slots__ = ("changes", "journal", "keys", "name", "qty", "sign")

    def __init__(self, sign: int, journal: _Journal) -> None:
        self.sign = sign
        self.name = "bids" if sign < 0 else "asks"
        self.journal = journal
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}
        self.changes = 0

    def __len__(self) -> int:
        return len(self.keys)

    def tick(self, index: int) -> int:
        """The price (in ticks) of the level at ``index`` (0 = best, -1 = worst)."""
        return self.sign * self.keys[index]

    def units(self, tick: int) -> int:
        """The resting quantity at ``tick`` (0 when there is no level)."""
        return self.qty.get(self.sign * tick, 0)

    def worse(self, tick: int, gap: int) -> int:
        """The price ``gap`` ticks further from the spread than ``tick``."""
        return tick + self.sign * gap

    def set(self, tick: int, units: int) -> None:
        """Create or resize the level at ``tick`` (nothing happens when it already holds ``units``)."""
        key = self.sign * tick
        old = self.qty.get(key)
        if old == units:
            return
        if old is None:
            insort(self.keys, key)
        self.qty[key] = units
        self.changes += 1
        self.journal.events[-1].append((self.name, tick, units))

    def remove(self, tick: int) -> None:
        """Delete the level at ``tick`` if it exists."""
        key = self.sign * tick
        if self.qty.pop(key, None) is not None:
            del self.keys[bisect_left(self.keys, key)]
            self.changes += 1
            self.journal.events[-1].append((self.name, tick, 0))

    def top(self, depth: int) -> list[tuple[int, int]]:
        """The best ``depth`` levels as ``(tick, units)``, best first."""
        qty, sign = self.qty, self.sign
        return [(sign * key, qty[key]) for key in self.keys[:depth]]


class PairMarket:
    """The market of one pair: fair price, book, trades and candles (see the module docstring)."""

    def __init__(self, spec: PairSpec, rng: random.Random, start_us: int, trade_id: int) -> None:
        self.spec = spec
        self.rng = rng
        self.price_scale = 10**spec.price_precision
        self.qty_scale = 10**spec.qty_precision
        self.start_tick = int(spec.start_price * self.price_scale)
        self.fair = float(self.start_tick)
        self.half_spread = max(0.5, spec.spacing / 2)
        self.min_units = max(1, int(spec.qty_min * self.qty_scale))
        self.max_units = 10**8 * self.qty_scale - 1
        self.floor_tick = max(10, int(spec.spacing * MAX_LEVELS * 3))
        self.journal = _Journal()
        self.bids = _Side(-1, self.journal)
        self.asks = _Side(1, self.journal)
        self.next_trade_id = trade_id
        self.trades: deque[Trade] = deque(maxlen=TRADE_LOG_LIMIT)
        self.last_tick = self.start_tick
        self._checksum: tuple[int, int] | None = None
        self.candles = {
            interval: CandleSeries(
                interval,
                synthetic_history(
                    rng,
                    interval,
                    start_us - start_us % (interval * US_PER_MINUTE),
                    self.start_tick,
                    CANDLE_HISTORY - 1,
                    spec.volatility,
                    spec.trade_rate,
                    max(self.min_units, int(spec.trade_qty * self.qty_scale)),
                ),
                CANDLE_HISTORY,
            )
            for interval in OHLC_INTERVALS
        }
        self._seed_book()

    # -- sizes and gaps -------------------------------------------------------------

    def _gap(self) -> int:
        extra = self.spec.spacing - 1
        return 1 if extra <= 0 else 1 + int(self.rng.expovariate(1 / extra))

    def _level_units(self) -> int:
        rng = self.rng
        if self.spec.whale_share and rng.random() < self.spec.whale_share:
            return rng.randrange(10**7 * self.qty_scale, self.max_units)
        units = int(self.spec.level_qty * math.exp(rng.gauss(0.0, 0.9)) * self.qty_scale)
        return min(max(units, self.min_units), self.max_units)

    def _trade_units(self) -> int:
        units = int(self.spec.trade_qty * math.exp(self.rng.gauss(0.0, 1.0)) * self.qty_scale)
        return min(max(units, self.min_units), self.max_units)

    # -- book upkeep ----------------------------------------------------------------

    def _seed_book(self) -> None:
        tick = math.floor(self.fair - self.half_spread)
        for _ in range(MIN_LEVELS + 50):
            self.bids.set(tick, self._level_units())
            tick -= self._gap()
        tick = math.ceil(self.fair + self.half_spread)
        for _ in range(MIN_LEVELS + 50):
            self.asks.set(tick, self._level_units())
            tick += self._gap()

    def _refill(self, side: _Side, anchor: int) -> None:
        """Keep ``side`` between MIN_LEVELS and MAX_LEVELS levels by working at its far end."""
        begin = self.journal.begin
        while len(side) < MIN_LEVELS:
            tick = side.worse(side.tick(-1), self._gap()) if side.keys else anchor
            if tick < 1:
                break
            begin()
            side.set(tick, self._level_units())
        while len(side) > MAX_LEVELS:
            begin()
            side.remove(side.tick(-1))

    def _fill_gap(self, side: _Side, target: int, limit: int) -> None:
        """Quote from ``target`` away from the spread down to the current best (exclusive)."""
        best = side.tick(0) if side.keys else side.worse(target, 10 * MIN_LEVELS)
        tick = target
        added = 0
        while (tick - best) * -side.sign > 0 and added < limit:
            if tick >= 1:
                self.journal.begin()
                side.set(tick, self._level_units())
            tick = side.worse(tick, self._gap())
            added += 1

    def _recentre(self, orders: list[list[_Fill]]) -> None:
        """Make the book follow the fair price: sweep or pull stale quotes, quote into the gap.

        A quote more than half a spread on the wrong side of the fair price is
        stale; now and then a taker sweeps the first few stale levels, the rest
        are cancelled by their makers.
        """
        fair, slack = self.fair, self.half_spread
        for side, taker, stale in (
            (self.asks, "buy", lambda t: t < fair - slack),
            (self.bids, "sell", lambda t: t > fair + slack),
        ):
            if side.keys and stale(side.tick(0)):
                sweep = _SWEEP_LEVELS if self.rng.random() < _SWEEP_SHARE else 0
                fills: list[_Fill] = []
                self.journal.begin()  # the sweep is one taker order; each cancel is an event of its own
                while side.keys and stale(side.tick(0)):
                    tick = side.tick(0)
                    if len(fills) < sweep:
                        fills.append((taker, "market", tick, side.units(tick)))
                    else:
                        self.journal.begin()
                    side.remove(tick)
                if fills:
                    orders.append(fills)
        target_bid = math.floor(fair - self.half_spread)
        target_ask = math.ceil(fair + self.half_spread)
        if self.asks.keys:
            target_bid = min(target_bid, self.asks.tick(0) - 1)
        if not self.bids.keys or self.bids.tick(0) < target_bid - 2 * self.spec.spacing:
            self._fill_gap(self.bids, target_bid, MIN_LEVELS)
        if self.bids.keys:
            target_ask = max(target_ask, self.bids.tick(0) + 1)
        if not self.asks.keys or self.asks.tick(0) > target_ask + 2 * self.spec.spacing:
            self._fill_gap(self.asks, target_ask, MIN_LEVELS)

    # -- random activity --------------------------------------------------------------

    def _random_trade(self, orders: list[list[_Fill]]) -> None:
        rng = self.rng
        lean = (self.fair - self._mid()) / max(self.spec.spacing * 4, 1.0)
        buy = rng.random() < 0.5 + max(-0.3, min(0.3, lean))
        side, taker = (self.asks, "buy") if buy else (self.bids, "sell")
        ord_type = "market" if rng.random() < 0.35 else "limit"
        wanted = self._trade_units()
        fills: list[_Fill] = []
        self.journal.begin()
        while wanted > 0 and side.keys and len(fills) < 4:
            tick = side.tick(0)
            resting = side.units(tick)
            fill = min(wanted, resting)
            fills.append((taker, ord_type, tick, fill))
            if fill == resting:
                side.remove(tick)
            else:
                side.set(tick, resting - fill)
            wanted -= fill
        if fills:
            orders.append(fills)

    def _random_change(self) -> None:
        rng = self.rng
        side = self.bids if rng.random() < 0.5 else self.asks
        count = len(side)
        if count < 2:
            return
        index = (
            rng.randrange(count - 1) if rng.random() < 0.1 else min(int(rng.expovariate(1 / 6)), count - 2)
        )
        action = rng.random()
        self.journal.begin()
        if action < 0.4:
            self._random_add(side, index)
        elif action < 0.7:
            side.remove(side.tick(index))
        else:
            tick = side.tick(index)
            if rng.random() < 0.5:
                units = int(side.units(tick) * rng.uniform(0.3, 1.8))
                side.set(tick, min(max(units, self.min_units), self.max_units))
            else:
                side.set(tick, self._level_units())

    def _random_add(self, side: _Side, index: int) -> None:
        rng = self.rng
        if index == 0 and rng.random() < 0.3 and self.bids.keys and self.asks.keys:
            low, high = self.bids.tick(0) + 1, self.asks.tick(0) - 1
            if low <= high:
                side.set(rng.randint(low, high), self._level_units())
                return
        near, far = side.tick(index), side.tick(index + 1)
        if abs(far - near) > 1:
            lo, hi = sorted((near, far))
            side.set(rng.randint(lo + 1, hi - 1), self._level_units())
        else:
            side.set(near, min(side.units(near) + self._level_units(), self.max_units))

    def _mid(self) -> float:
        if self.bids.keys and self.asks.keys:
            return (self.bids.tick(0) + self.asks.tick(0)) / 2
        return self.fair

    def _uncross(self) -> None:
        while self.bids.keys and self.asks.keys and self.bids.tick(0) >= self.asks.tick(0):
            bid, ask = self.bids.tick(0), self.asks.tick(0)
            self.journal.begin()
            if abs(bid - self.fair) > abs(ask - self.fair):
                self.bids.remove(bid)
            else:
                self.asks.remove(ask)

    # -- one step ---------------------------------------------------------------------

    def advance(self, t0_us: int, t1_us: int) -> list[Trade]:
        """Advance from ``t0_us`` to ``t1_us``; return the trades made, in order."""
        rng, spec = self.rng, self.spec
        dt = (t1_us - t0_us) / 1e6
        shock = rng.gauss(0.0, spec.volatility * math.sqrt(dt))
        shock -= _REVERSION * math.log(self.fair / self.start_tick) * dt
        if rng.random() < _JUMP_RATE * dt:
            shock += rng.choice((-1, 1)) * rng.uniform(0.001, 0.004)
        self.fair = max(float(self.floor_tick), self.fair * math.exp(shock))

        orders: list[list[_Fill]] = []
        self._recentre(orders)
        for _ in range(_poisson(rng, spec.trade_rate * dt)):
            self._random_trade(orders)
        for _ in range(_poisson(rng, spec.book_rate * dt)):
            self._random_change()
        self._uncross()
        mid = round(self._mid())
        self._refill(self.bids, mid - 1)
        self._refill(self.asks, mid + 1)
        return self._record(orders, t0_us, t1_us)

    def _record(self, orders: list[list[_Fill]], t0_us: int, t1_us: int) -> list[Trade]:
        if not orders:
            return []
        times = sorted(self.rng.randint(t0_us + 1, t1_us) for _ in orders)
        made: list[Trade] = []
        for time_us, fills in zip(times, orders, strict=True):
            for side, ord_type, tick, units in fills:
                trade = (self.next_trade_id, time_us, side, ord_type, tick, units)
                self.next_trade_id += 1
                made.append(trade)
                for series in self.candles.values():
                    series.add_trade(time_us, tick, units)
        self.trades.extend(made)
        self.last_tick = made[-1][4]
        return made

    @property
    def version(self) -> int:
        """Changes so far to either side (for caching)."""
        return self.bids.changes + self.asks.changes

    def checksum(self) -> int:
        """Kraken's CRC32 of the current top 10 levels of each side."""
        if self._checksum is None or self._checksum[0] != self.version:
            self._checksum = (self.version, top_checksum(self.asks.top(10), self.bids.top(10)))
        return self._checksum[1]

    def take_book_events(self) -> list[BookEvent]:
        """The book events since the last call, in order (each a tuple of level changes)."""
        return self.journal.take()

    def price(self, tick: int) -> Decimal:
        """The exact price of ``tick``."""
        return Decimal(tick).scaleb(-self.spec.price_precision)

    def qty(self, units: int) -> Decimal:
        """The exact quantity of ``units``."""
        return Decimal(units).scaleb(-self.spec.qty_precision)

    def wire_trade(self, trade: Trade) -> dict[str, Any]:
        """A recorded trade as the trade channel sends it."""
        trade_id, time_us, side, ord_type, tick, units = trade
        return {
            "symbol": self.spec.symbol,
            "side": side,
            "price": self.price(tick),
            "qty": self.qty(units),
            "ord_type": ord_type,
            "trade_id": trade_id,
            "timestamp": format_time(time_us),
        }

    def wire_candle(self, candle: Candle, interval: int) -> dict[str, Any]:
        """A candle as the ohlc channel sends it (``timestamp`` is the interval's end)."""
        vwap = (
            self.price(round(Decimal(candle.cost) / Decimal(candle.volume)))
            if candle.volume
            else self.price(candle.close)
        )
        return {
            "symbol": self.spec.symbol,
            "open": self.price(candle.open),
            "high": self.price(candle.high),
            "low": self.price(candle.low),
            "close": self.price(candle.close),
            "vwap": vwap,
            "trades": candle.trades,
            "volume": self.qty(candle.volume),
            "interval_begin": format_time_ns(candle.begin_us),
            "interval": interval,
            "timestamp": format_time(candle.begin_us + interval * US_PER_MINUTE),
        }


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw (Knuth for small means, a rounded normal for large ones)."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
