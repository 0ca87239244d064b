"""The L2 order book of one symbol: apply snapshots and updates, verify Kraken's CRC32.

Each side keeps a dict of levels and a sorted list of keys maintained with
``bisect`` (bids under negated prices, so both lists run best first). A level
is stored with its price, its quantity and its checksum text (formatted once,
when the level is set), so a checksum joins twenty cached strings and nothing
re-sorts a whole side.

Exactness: prices are keyed as floats, which is exact for any price of at
most 15 significant digits (two such decimals never share a float, and the
float's ``repr`` is the decimal again); a price whose float does not give its
digits back is refused rather than rounded. Quantities are kept as they arrive: a ``Decimal`` from
the exact decoder for long values (8 integer + 8 fraction digits do not fit a
float), else a float whose ``repr`` is its wire text. Checksum texts come from
that exact text, never from a rounded float.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from kraken_nb.core.wire import checksum_of, number_text, to_decimal
from kraken_nb.errors import InvalidParams, MalformedMessage

__all__ = ["OrderBook"]

logger = logging.getLogger(__name__)

CHECKSUM_LEVELS = 10
"""Levels per side that enter the checksum."""

_TEXT_CACHE = 4096
_INF = float("inf")
_SIDES = ("bid", "ask")

_Qty = float | Decimal
# A stored level: (price, qty, checksum text).
_Level = tuple[float, _Qty, str]
# A validated change: (sort key, the new level or None to delete it).
_Change = tuple[float, _Level | None]


class _Side:
    """One side of the book: levels by sort key plus the ascending list of keys (best first)."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[float, _Level] = {}
        self.keys: list[float] = []

    def replace(self, levels: dict[float, _Level]) -> None:
        """Replace every level (one sort, for snapshots)."""
        self.levels = levels
        self.keys = sorted(levels)

    def truncate(self, depth: int) -> None:
        """Drop the levels past ``depth`` (the worst ones)."""
        if len(self.keys) > depth:
            for key in self.keys[depth:]:
                del self.levels[key]
            del self.keys[depth:]

    def top(self, n: int | None) -> Iterator[_Level]:
        """The best ``n`` levels (all when ``n`` is None), best first."""
        keys = self.keys if n is None else self.keys[: max(n, 0)]
        levels = self.levels
        return (levels[key] for key in keys)

    def copy(self) -> _Side:
        """An independent copy (levels are immutable tuples)."""
        other = _Side(self.sign)
        other.levels = dict(self.levels)
        other.keys = list(self.keys)
        return other

    def clear(self) -> None:
        """Remove every level."""
        self.levels = {}
        self.keys = []


class OrderBook:
    """An L2 book kept to ``depth`` levels per side, checked against Kraken's CRC32.

    ``apply`` takes one element of a book message's ``data`` list. ``valid`` is
    False until a snapshot's checksum matches and stays False after any
    mismatch until the next matching snapshot.
    """

    def __init__(self, symbol: str, depth: int = 10, *, price_precision: int, qty_precision: int) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise InvalidParams("symbol", symbol, "a non-empty string such as 'BTC/USD'")
        if not _is_int(depth) or depth < 1:
            raise InvalidParams("depth", depth, "a positive integer")
        if not _is_int(price_precision) or price_precision < 0:
            raise InvalidParams("price_precision", price_precision, "a non-negative integer")
        if not _is_int(qty_precision) or qty_precision < 0:
            raise InvalidParams("qty_precision", qty_precision, "a non-negative integer")
        self.symbol = symbol
        self.depth = depth
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self.valid = False
        self.version = 0
        self.timestamp: str | None = None
        self.mismatches = 0
        self.last_checksum: int | None = None
        self._bids = _Side(-1)
        self._asks = _Side(1)
        # prices (and many sizes) recur: format each once
        self._price_texts: dict[float, str] = {}
        self._qty_texts: dict[_Qty, str] = {}

    # -- mutation -----------------------------------------------------------------

    def apply(self, entry: Mapping[str, Any], *, snapshot: bool | None = None) -> bool:
        """Apply one snapshot or update entry; return whether the checksum matches the server's.

        With ``snapshot=None`` the entry is a snapshot when the book is empty.
        The entry is validated completely before the book changes; a malformed
        one raises ``MalformedMessage`` and leaves the book as it was.
        """
        bids, asks, expected, timestamp = self._parse(entry)
        is_snapshot = (not self._bids.levels and not self._asks.levels) if snapshot is None else snapshot
        if is_snapshot:
            self._bids.replace(self._build(bids))
            self._asks.replace(self._build(asks))
        else:
            self._update(self._bids, bids)
            self._update(self._asks, asks)
        self._bids.truncate(self.depth)
        self._asks.truncate(self.depth)

        actual = self.checksum()
        matches = actual == expected
        self.valid = matches if is_snapshot else (self.valid and matches)
        if not matches:
            self.mismatches += 1
            logger.info("%s book checksum mismatch: server %d, local %d", self.symbol, expected, actual)
        self.last_checksum = expected
        self.timestamp = timestamp
        self.version += 1
        return matches

    def reset(self) -> None:
        """Empty the book and mark it invalid (the next entry applied is a snapshot)."""
        self._bids.clear()
        self._asks.clear()
        self.valid = False
        self.timestamp = None
        self.last_checksum = None
        self.version += 1

    def copy(self) -> OrderBook:
        """An independent copy of the book and its state."""
        other = OrderBook.__new__(OrderBook)
        other.__dict__.update(self.__dict__)
        other._bids = self._bids.copy()
        other._asks = self._asks.copy()
        return other

    # -- checksum -----------------------------------------------------------------

    def checksum_text(self) -> str:
        """The string the checksum is computed over: top-10 asks then top-10 bids, best first."""
        return "".join(level[2] for level in self._asks.top(CHECKSUM_LEVELS)) + "".join(
            level[2] for level in self._bids.top(CHECKSUM_LEVELS)
        )

    def checksum(self) -> int:
        """Unsigned CRC32 of the current book, as Kraken computes it."""
        asks, bids = self._asks, self._bids
        ask_levels, bid_levels = asks.levels, bids.levels
        return checksum_of(
            [ask_levels[key][2] for key in asks.keys[:CHECKSUM_LEVELS]],
            [bid_levels[key][2] for key in bids.keys[:CHECKSUM_LEVELS]],
        )

    # -- views --------------------------------------------------------------------

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` bids (all when None) as ``(price, qty)`` floats, highest price first."""
        return [(level[0], float(level[1])) for level in self._bids.top(n)]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all when None) as ``(price, qty)`` floats, lowest price first."""
        return [(level[0], float(level[1])) for level in self._asks.top(n)]

    def levels_exact(self, side: str, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """The best ``n`` levels of ``side`` ("bid" or "ask") as exact ``(price, qty)`` Decimals."""
        return [(to_decimal(level[0]), to_decimal(level[1])) for level in self._side(side).top(n)]

    def best_bid(self) -> tuple[float, float] | None:
        """The highest bid as ``(price, qty)``, or None when there are no bids."""
        level = self._best(self._bids)
        return None if level is None else (level[0], float(level[1]))

    def best_ask(self) -> tuple[float, float] | None:
        """The lowest ask as ``(price, qty)``, or None when there are no asks."""
        level = self._best(self._asks)
        return None if level is None else (level[0], float(level[1]))

    def spread(self) -> float | None:
        """Best ask minus best bid (computed exactly), or None when a side is empty."""
        bid, ask = self._best(self._bids), self._best(self._asks)
        if bid is None or ask is None:
            return None
        return float(to_decimal(ask[0]) - to_decimal(bid[0]))

    def mid(self) -> float | None:
        """Midpoint of the best bid and ask (computed exactly), or None when a side is empty."""
        bid, ask = self._best(self._bids), self._best(self._asks)
        if bid is None or ask is None:
            return None
        return float((to_decimal(ask[0]) + to_decimal(bid[0])) / 2)

    def imbalance(self, n: int = 10) -> float | None:
        """``(bid volume - ask volume) / (bid volume + ask volume)`` over the top ``n`` levels.

        None when both volumes are zero (an empty book).
        """
        bid_volume = sum(float(level[1]) for level in self._bids.top(n))
        ask_volume = sum(float(level[1]) for level in self._asks.top(n))
        total = bid_volume + ask_volume
        if total == 0:
            return None
        return float((bid_volume - ask_volume) / total)

    def depth_arrays(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Bid prices, bid qtys, ask prices, ask qtys as float64 arrays, best first (for heatmaps)."""
        bids = self.bids(n)
        asks = self.asks(n)
        bid_array = np.array(bids, dtype=np.float64).reshape(len(bids), 2)
        ask_array = np.array(asks, dtype=np.float64).reshape(len(asks), 2)
        return (
            np.ascontiguousarray(bid_array[:, 0]),
            np.ascontiguousarray(bid_array[:, 1]),
            np.ascontiguousarray(ask_array[:, 0]),
            np.ascontiguousarray(ask_array[:, 1]),
        )

    def to_frame(self) -> pd.DataFrame:
        """The book as a DataFrame: side, price, qty, cum_qty; bids best first, then asks best first."""
        bid_prices, bid_qtys, ask_prices, ask_qtys = self.depth_arrays()
        side = pd.Categorical(["bid"] * len(bid_prices) + ["ask"] * len(ask_prices), categories=list(_SIDES))
        return pd.DataFrame(
            {
                "side": side,
                "price": np.concatenate([bid_prices, ask_prices]),
                "qty": np.concatenate([bid_qtys, ask_qtys]),
                "cum_qty": np.concatenate([np.cumsum(bid_qtys), np.cumsum(ask_qtys)]),
            }
        )

    def __len__(self) -> int:
        return len(self._bids.keys) + len(self._asks.keys)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, depth={self.depth}, bids={len(self._bids.keys)}, "
            f"asks={len(self._asks.keys)}, best_bid={self.best_bid()}, best_ask={self.best_ask()}, "
            f"valid={self.valid}, version={self.version})"
        )

    # -- internals ----------------------------------------------------------------

    def _side(self, side: str) -> _Side:
        if side in ("bid", "bids"):
            return self._bids
        if side in ("ask", "asks"):
            return self._asks
        raise InvalidParams("side", side, _SIDES)

    @staticmethod
    def _best(side: _Side) -> _Level | None:
        return side.levels[side.keys[0]] if side.keys else None

    def _changes(self, entry: Mapping[str, Any], name: str, negate: bool) -> list[_Change]:
        """Validate ``entry[name]`` and turn it into ``(key, level or None for a delete)``.

        One pass does the checks and the formatting, so nothing is touched
        before the whole entry is known to be good.
        """
        raw = entry.get(name)
        if type(raw) is not list and (not isinstance(raw, Sequence) or isinstance(raw, (str, bytes))):
            raise MalformedMessage(f"book entry needs a {name!r} list, got {raw!r}", entry)
        texts, qty_texts = self._price_texts, self._qty_texts
        price_precision, qty_precision = self.price_precision, self.qty_precision
        changes: list[_Change] = []
        for level in raw:
            # Decoded frames hold dicts of floats (or Decimals): check those with plain type tests.
            if type(level) is not dict and not isinstance(level, Mapping):
                raise MalformedMessage(f"{name} level needs 'price' and 'qty', got {level!r}", entry)
            price = level.get("price")
            qty = level.get("qty")
            if type(price) is not float:
                price = _price(price, name, entry)
            if type(qty) is not float and (type(qty) is not Decimal or not qty.is_finite()):
                qty = _number(qty, f"{name} qty", entry)
            if not 0 < price < _INF:
                raise MalformedMessage(
                    f"{name} price must be positive and finite, got {level['price']!r}", entry
                )
            if not 0 <= qty < _INF:
                raise MalformedMessage(
                    f"{name} qty must be a finite number ≥ 0, got {level['qty']!r}", entry
                )
            if not qty:
                changes.append((-price if negate else price, None))
                continue
            price_text = texts.get(price)
            if price_text is None:
                if len(texts) > _TEXT_CACHE:
                    texts.clear()
                price_text = texts[price] = number_text(price, price_precision)
            qty_text = qty_texts.get(qty)
            if qty_text is None:
                if len(qty_texts) > _TEXT_CACHE:
                    qty_texts.clear()
                qty_text = qty_texts[qty] = number_text(qty, qty_precision)
            changes.append((-price if negate else price, (price, qty, price_text + qty_text)))
        return changes

    @staticmethod
    def _build(changes: list[_Change]) -> dict[float, _Level]:
        levels: dict[float, _Level] = {}
        for key, level in changes:
            if level is None:
                levels.pop(key, None)
            else:
                levels[key] = level
        return levels

    @staticmethod
    def _update(side: _Side, changes: list[_Change]) -> None:
        levels, keys = side.levels, side.keys
        for key, level in changes:
            if level is not None:
                if key not in levels:
                    insort(keys, key)
                levels[key] = level
            elif levels.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]

    def _parse(self, entry: Mapping[str, Any]) -> tuple[list[_Change], list[_Change], int, str | None]:
        """Validate a whole entry without touching the book."""
        if not isinstance(entry, Mapping):
            raise MalformedMessage(f"book entry must be an object, got {type(entry).__name__}", entry)
        symbol = entry.get("symbol")
        if symbol != self.symbol:
            raise MalformedMessage(
                f"book entry for symbol {symbol!r} applied to the {self.symbol!r} book", entry
            )
        expected = entry.get("checksum")
        if not _is_int(expected) or not 0 <= expected < 2**32:
            raise MalformedMessage(
                f"book checksum must be an unsigned 32-bit integer, got {expected!r}", entry
            )
        timestamp = entry.get("timestamp")
        if timestamp is not None and not isinstance(timestamp, str):
            raise MalformedMessage(f"book timestamp must be a string, got {timestamp!r}", entry)
        bids = self._changes(entry, "bids", True)
        return bids, self._changes(entry, "asks", False), expected, timestamp


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, what: str, entry: Mapping[str, Any]) -> Decimal:
    if value is None:
        raise MalformedMessage(f"{what.split()[0]} level needs 'price' and 'qty', got {value!r}", entry)
    try:
        number = to_decimal(value)  # type: ignore[arg-type]
    except (TypeError, ArithmeticError, ValueError):
        raise MalformedMessage(f"{what} is not a number: {value!r}", entry) from None
    if not number.is_finite():
        raise MalformedMessage(f"{what} is not finite: {value!r}", entry)
    return number


def _price(value: object, name: str, entry: Mapping[str, Any]) -> float:
    """A non-float price as its float key, refusing one that a float cannot hold exactly."""
    exact = _number(value, f"{name} price", entry)
    price = float(exact)
    if to_decimal(price) != exact:
        raise MalformedMessage(
            f"{name} price {value!r} does not survive a float; the book keys prices exactly",
            entry,
        )
    return price
