"""The L2 order book of one symbol: apply snapshots and updates, verify Kraken's CRC32.

Each side keeps three parallel lists in price order, maintained with
``bisect``: float prices, quantities and checksum texts. A level's checksum
text is formatted once, when the level is set, so a checksum joins two
slices of cached strings and nothing re-sorts a whole side.

Exactness: prices are keyed as floats, which is exact for any price of at
most 15 significant digits (two such decimals never share a float, and the
float's ``repr`` is the decimal again); a price whose float does not give its
digits back is refused rather than rounded. Quantities are kept as they
arrive: a float whose digits are the wire text (``float_text`` checks that
for every value it formats), or a ``Decimal`` from the exact decoder for long
values (8 integer + 8 fraction digits do not fit a float). A float that may
have lost digits raises ``InexactNumber`` and the update is undone, so the
caller can decode the frame again with Decimals. Checksum texts come from the
exact digits, never from a rounded float.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from decimal import Decimal
from itertools import accumulate
from typing import Any
from zlib import crc32

import numpy as np
import pandas as pd

from kraken_nb.core.buffers.exact import decimal_array
from kraken_nb.core.schema import MAX_AMOUNT, MAX_PRECISION
from kraken_nb.core.wire import EXACT_UNITS, float_text, number_text, to_decimal
from kraken_nb.errors import InexactNumber, InvalidParams, MalformedMessage, brief

__all__ = ["OrderBook"]

logger = logging.getLogger(__name__)

CHECKSUM_LEVELS = 10
"""Levels per side that enter the checksum."""

_PRICE_CACHE = 4096
_CRC_LIMIT = 2**32
_LIMIT = float(MAX_AMOUNT)
"""Prices and quantities must stay below this: past it a value has no finite float (or a 300-digit text)."""
_SIDES = ("bid", "ask")

_Qty = float | Decimal
# What an update replaced, to undo it: (price, old qty, old text), both None for a new level.
_Undo = tuple[float, _Qty | None, str | None]


class _Side:
    """One side of the book as three parallel lists sorted by price: prices, qtys, texts.

    Prices ascend, so asks run best first and bids best last. Keeping the
    checksum texts in price order makes a checksum two slices and a join, and
    truncation three slice deletions.
    """

    __slots__ = ("is_bid", "prices", "qtys", "texts")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[float] = []
        self.qtys: list[_Qty] = []
        self.texts: list[str] = []

    def replace(self, levels: dict[float, tuple[_Qty, str]]) -> None:
        """Replace every level (one sort, for snapshots)."""
        self.prices = sorted(levels)
        self.qtys = [levels[price][0] for price in self.prices]
        self.texts = [levels[price][1] for price in self.prices]

    def set(self, price: float, qty: _Qty, text: str) -> tuple[_Qty | None, str | None]:
        """Set one level; return the qty and text it had (None, None for a new level)."""
        prices = self.prices
        at = bisect_left(prices, price)
        if at < len(prices) and prices[at] == price:
            old = self.qtys[at], self.texts[at]
            self.qtys[at] = qty
            self.texts[at] = text
            return old
        prices.insert(at, price)
        self.qtys.insert(at, qty)
        self.texts.insert(at, text)
        return None, None

    def remove(self, price: float) -> tuple[_Qty | None, str | None]:
        """Remove one level if present; return the qty and text it had (None, None if absent)."""
        prices = self.prices
        at = bisect_left(prices, price)
        if at < len(prices) and prices[at] == price:
            old = self.qtys[at], self.texts[at]
            del prices[at]
            del self.qtys[at]
            del self.texts[at]
            return old
        return None, None

    def truncate(self, depth: int) -> None:
        """Drop the levels past ``depth`` (the worst ones)."""
        excess = len(self.prices) - depth
        if excess > 0:
            worst = slice(0, excess) if self.is_bid else slice(depth, None)
            del self.prices[worst]
            del self.qtys[worst]
            del self.texts[worst]

    def best_first(self, n: int | None) -> slice:
        """The slice of the best ``n`` levels (all when ``n`` is None), best first."""
        if n is None:
            return slice(None, None, -1) if self.is_bid else slice(None)
        n = max(n, 0)
        return slice(-1, -n - 1, -1) if self.is_bid else slice(n)

    def top(self, n: int | None) -> list[tuple[float, _Qty]]:
        """The best ``n`` levels as ``(price, qty)``, best first."""
        best = self.best_first(n)
        return list(zip(self.prices[best], self.qtys[best], strict=True))

    def best(self) -> tuple[float, _Qty] | None:
        """The best level as ``(price, qty)``, or None when the side is empty."""
        if not self.prices:
            return None
        at = -1 if self.is_bid else 0
        return self.prices[at], self.qtys[at]

    def undo(self, records: list[_Undo]) -> None:
        """Restore the levels an interrupted update had changed, newest change first."""
        for price, qty, text in reversed(records):
            if qty is None or text is None:
                self.remove(price)
            else:
                self.set(price, qty, text)

    def copy(self) -> _Side:
        """An independent copy."""
        other = _Side(self.is_bid)
        other.prices = list(self.prices)
        other.qtys = list(self.qtys)
        other.texts = list(self.texts)
        return other

    def clear(self) -> None:
        """Remove every level."""
        self.prices = []
        self.qtys = []
        self.texts = []

    def __len__(self) -> int:
        return len(self.prices)


class OrderBook:
    """An L2 book kept to ``depth`` levels per side, checked against Kraken's CRC32.

    ``apply`` takes one element of a book message's ``data`` list. ``valid`` is
    False until a snapshot's checksum matches and stays False after any
    mismatch until the next matching snapshot. Prices and quantities may be
    decimal strings (as in Kraken's REST answers and documentation) unless
    ``numeric_strings=False``: the session's books take JSON numbers only,
    as the WebSocket schema promises.
    """

    def __init__(
        self,
        symbol: str,
        depth: int = 10,
        *,
        price_precision: int,
        qty_precision: int,
        numeric_strings: bool = True,
    ) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise InvalidParams("symbol", symbol, "a non-empty string such as 'BTC/USD'")
        if not _is_int(depth) or depth < 1:
            raise InvalidParams("depth", depth, "a positive integer")
        if not _is_int(price_precision) or not 0 <= price_precision <= MAX_PRECISION:
            raise InvalidParams("price_precision", price_precision, f"an integer from 0 to {MAX_PRECISION}")
        if not _is_int(qty_precision) or not 0 <= qty_precision <= MAX_PRECISION:
            raise InvalidParams("qty_precision", qty_precision, f"an integer from 0 to {MAX_PRECISION}")
        self.symbol = symbol
        self.depth = depth
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self.numeric_strings = numeric_strings
        self.valid = False
        self.version = 0
        self.timestamp: str | None = None
        self.mismatches = 0
        self.last_checksum: int | None = None
        self._bids = _Side(is_bid=True)
        self._asks = _Side(is_bid=False)
        # The checksum of the last state, in two cached halves: the CRC32 of the top-10 asks' text
        # and the top-10 bids' text (None: to compute). An update touches one side, so only that
        # side's half is joined again, and the bids' CRC continues from the asks'.
        self._ask_crc: int | None = None
        self._bid_window: bytes | None = None
        # Prices recur: each is checked and formatted once.
        self._price_texts: dict[float, str] = {}
        # A float qty is formatted inline when qty * scale rounds to fewer than 16 digits.
        self._qty_scale = 10.0**qty_precision
        self._qty_limit = EXACT_UNITS / self._qty_scale if qty_precision <= 15 else 0.0

    # -- mutation -----------------------------------------------------------------

    def apply(self, entry: Mapping[str, Any], *, snapshot: bool | None = None) -> bool:
        """Apply one snapshot or update entry; return whether the checksum matches the server's.

        With ``snapshot=None`` the entry is a snapshot when the book is empty.
        A malformed entry raises ``MalformedMessage`` (``InexactNumber`` for a
        float too long to carry its digits) and leaves the book as it was: an
        update is checked while it is applied and undone on error.
        """
        symbol = expected = timestamp = None
        if type(entry) is dict:
            symbol, expected, timestamp = entry.get("symbol"), entry.get("checksum"), entry.get("timestamp")
        if not (
            symbol == self.symbol
            and type(expected) is int
            and 0 <= expected < _CRC_LIMIT
            and (timestamp is None or type(timestamp) is str)
        ):
            expected, timestamp = self._header(entry)  # says what is wrong (or takes another Mapping)
        bids, asks = self._bids, self._asks
        is_snapshot = (not bids.prices and not asks.prices) if snapshot is None else snapshot
        if is_snapshot:
            bid_levels = self._snapshot_side(entry, "bids")
            asks.replace(self._snapshot_side(entry, "asks"))
            bids.replace(bid_levels)
            self._ask_crc = self._bid_window = None
        else:
            # An update has both lists; usually one is empty: nothing to check or do for it.
            raw_bids, raw_asks = entry.get("bids"), entry.get("asks")
            bid_undo: list[_Undo] = []
            ask_undo: list[_Undo] = []
            try:
                if raw_bids or type(raw_bids) is not list:
                    self._bid_window = None
                    self._update(bids, raw_bids, entry, "bids", bid_undo)
                if raw_asks or type(raw_asks) is not list:
                    self._ask_crc = None
                    self._update(asks, raw_asks, entry, "asks", ask_undo)
            except BaseException:
                bids.undo(bid_undo)
                asks.undo(ask_undo)
                self._ask_crc = self._bid_window = None
                raise
        depth = self.depth
        if len(bids.prices) > depth:
            bids.truncate(depth)
        if len(asks.prices) > depth:
            asks.truncate(depth)

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
        self._ask_crc = self._bid_window = None
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
        return other  # the price-text cache is shared: an entry depends only on price and precision

    # -- checksum -----------------------------------------------------------------

    def checksum_text(self) -> str:
        """The string the checksum is computed over: top-10 asks then top-10 bids, best first."""
        return "".join(self._checksum_texts())

    def checksum(self) -> int:
        """Unsigned CRC32 of the current book, as Kraken computes it.

        The CRC32 of the asks' half and the bids' text are cached until a change
        to their side, so a one-sided update joins and encodes ten texts, not twenty.
        """
        ask_crc = self._ask_crc
        if ask_crc is None:
            ask_crc = self._ask_crc = crc32("".join(self._asks.texts[:CHECKSUM_LEVELS]).encode())
        bid_window = self._bid_window
        if bid_window is None:
            bid_window = self._bid_window = "".join(self._bids.texts[: -CHECKSUM_LEVELS - 1 : -1]).encode()
        return crc32(bid_window, ask_crc)

    def _checksum_texts(self) -> list[str]:
        """The level texts of the top-10 asks then the top-10 bids, best first."""
        return self._asks.texts[:CHECKSUM_LEVELS] + self._bids.texts[: -CHECKSUM_LEVELS - 1 : -1]

    # -- views --------------------------------------------------------------------

    def bids(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` bids (all when None) as ``(price, qty)`` floats, highest price first."""
        return [(price, float(qty)) for price, qty in self._bids.top(n)]

    def asks(self, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` asks (all when None) as ``(price, qty)`` floats, lowest price first."""
        return [(price, float(qty)) for price, qty in self._asks.top(n)]

    def levels_exact(self, side: str, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """The best ``n`` levels of ``side`` ("bid" or "ask") as exact ``(price, qty)`` Decimals."""
        return [(to_decimal(price), to_decimal(qty)) for price, qty in self._side(side).top(n)]

    def best_bid(self) -> tuple[float, float] | None:
        """The highest bid as ``(price, qty)``, or None when there are no bids."""
        best = self._bids.best()
        return None if best is None else (best[0], float(best[1]))

    def best_ask(self) -> tuple[float, float] | None:
        """The lowest ask as ``(price, qty)``, or None when there are no asks."""
        best = self._asks.best()
        return None if best is None else (best[0], float(best[1]))

    def top(self) -> tuple[float | None, float | None, float | None, float | None]:
        """Best bid, its qty, best ask, its qty as floats (None for an empty side), in one call."""
        bid, bid_qty, ask, ask_qty = self.top_values()
        return (
            bid,
            None if bid_qty is None else float(bid_qty),
            ask,
            None if ask_qty is None else float(ask_qty),
        )

    def top_values(self) -> tuple[float | None, _Qty | None, float | None, _Qty | None]:
        """``top()`` with the quantities as kept: a float, or a ``Decimal`` a float cannot hold."""
        bids, asks = self._bids, self._asks
        bid = bid_qty = ask = ask_qty = None
        if bids.prices:
            bid = bids.prices[-1]
            bid_qty = bids.qtys[-1]
        if asks.prices:
            ask = asks.prices[0]
            ask_qty = asks.qtys[0]
        return bid, bid_qty, ask, ask_qty

    def spread(self) -> float | None:
        """Best ask minus best bid (computed exactly), or None when a side is empty."""
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None:
            return None
        return float(to_decimal(ask[0]) - to_decimal(bid[0]))

    def mid(self) -> float | None:
        """Midpoint of the best bid and ask (computed exactly), or None when a side is empty."""
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None:
            return None
        return float((to_decimal(ask[0]) + to_decimal(bid[0])) / 2)

    def imbalance(self, n: int = 10) -> float | None:
        """``(bid volume - ask volume) / (bid volume + ask volume)`` over the top ``n`` levels.

        None when both volumes are zero (an empty book).
        """
        bid_volume = sum(qty for _, qty in self.bids(n))
        ask_volume = sum(qty for _, qty in self.asks(n))
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

    def depth_values(self, n: int | None = None) -> tuple[list[float], list[_Qty], list[float], list[_Qty]]:
        """Bid prices, bid qtys, ask prices, ask qtys of the best ``n`` levels, best first, as kept.

        Quantities are floats, or ``Decimal`` where a float cannot hold them.
        """
        bids, asks = self._bids, self._asks
        best_bids, best_asks = bids.best_first(n), asks.best_first(n)
        return bids.prices[best_bids], bids.qtys[best_bids], asks.prices[best_asks], asks.qtys[best_asks]

    def to_frame(self, *, exact: bool = False) -> pd.DataFrame:
        """The book as a DataFrame: side, price, qty, cum_qty; bids best first, then asks best first.

        ``exact=True`` gives price, qty and cum_qty as exact decimals at the
        pair's precisions (``decimal128``, see :mod:`kraken_nb.core.buffers.exact`),
        cum_qty summed exactly. The book's own time is ``timestamp``.
        """
        bid_prices, bid_qtys, ask_prices, ask_qtys = self.depth_arrays()
        side = pd.Categorical(["bid"] * len(bid_prices) + ["ask"] * len(ask_prices), categories=list(_SIDES))
        prices = np.concatenate([bid_prices, ask_prices])
        qtys = np.concatenate([bid_qtys, ask_qtys])
        if not exact:
            cum_qty = np.concatenate([np.cumsum(bid_qtys), np.cumsum(ask_qtys)])
            return pd.DataFrame({"side": side, "price": prices, "qty": qtys, "cum_qty": cum_qty})
        _, raw_bids, _, raw_asks = self.depth_values()
        raw = [*raw_bids, *raw_asks]
        exact_qtys = {at: qty for at, qty in enumerate(raw) if type(qty) is not float}
        sums = [*accumulate(map(to_decimal, raw_bids)), *accumulate(map(to_decimal, raw_asks))]
        return pd.DataFrame(
            {
                "side": side,
                "price": decimal_array(prices, {}, self.price_precision, "price"),
                "qty": decimal_array(qtys, exact_qtys, self.qty_precision, "qty"),
                "cum_qty": decimal_array(
                    np.array(sums, dtype=np.float64), dict(enumerate(sums)), self.qty_precision, "cum_qty"
                ),
            }
        )

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"OrderBook({self.symbol!r}, depth={self.depth}, bids={len(self._bids)}, "
            f"asks={len(self._asks)}, best_bid={self.best_bid()}, best_ask={self.best_ask()}, "
            f"valid={self.valid}, version={self.version})"
        )

    # -- internals ----------------------------------------------------------------

    def _side(self, side: str) -> _Side:
        if side in ("bid", "bids"):
            return self._bids
        if side in ("ask", "asks"):
            return self._asks
        raise InvalidParams("side", side, _SIDES)

    def _header(self, entry: Mapping[str, Any]) -> tuple[int, str | None]:
        """Check the entry's symbol, checksum and timestamp; return the last two."""
        if type(entry) is not dict and not isinstance(entry, Mapping):
            raise MalformedMessage(f"book entry must be an object, got {type(entry).__name__}", entry)
        symbol = entry.get("symbol")
        if symbol != self.symbol:
            raise MalformedMessage(
                f"book entry for symbol {brief(symbol)} applied to the {self.symbol!r} book", entry
            )
        expected = entry.get("checksum")
        if type(expected) is not int or not 0 <= expected < 2**32:
            raise MalformedMessage(
                f"book checksum must be an unsigned 32-bit integer, got {brief(expected)}", entry
            )
        timestamp = entry.get("timestamp")
        if timestamp is not None and type(timestamp) is not str:
            raise MalformedMessage(f"book timestamp must be a string, got {brief(timestamp)}", entry)
        return expected, timestamp

    @staticmethod
    def _levels_of(entry: Mapping[str, Any], name: str) -> Sequence[Any]:
        raw = entry.get(name)
        if type(raw) is not list and (not isinstance(raw, Sequence) or isinstance(raw, (str, bytes))):
            raise MalformedMessage(f"book entry needs a {name!r} list, got {brief(raw)}", entry)
        return raw

    def _update(self, side: _Side, raw: Any, entry: Mapping[str, Any], name: str, undo: list[_Undo]) -> None:
        """Apply the levels ``raw`` of one side of an update, recording in ``undo`` what each replaced.

        This loop is the client's hot path (it inlines ``_Side.set`` and
        ``_Side.remove``, which the undo uses). A float price seen before has its
        text cached; a float qty is formatted inline when it is a plain wire
        value (``float_text``'s rule: at most 15 digits, no more decimals than
        the precision), and a float zero deletes inline. Anything else
        (Decimals, negative or huge values, errors) goes through
        ``_price``/``_qty`` and their checks.
        """
        prices, qtys, texts = side.prices, side.qtys, side.texts
        price_texts = self._price_texts
        scale, qty_limit = self._qty_scale, self._qty_limit
        for level in raw if type(raw) is list else self._levels_of(entry, name):
            try:
                price, qty = level["price"], level["qty"]
            except (KeyError, TypeError, IndexError):
                raise _bad_level(level, name, entry) from None
            price_text = price_texts.get(price) if type(price) is float else None
            if price_text is None:
                price, price_text = self._price(price, name, entry)
            at = bisect_left(prices, price)
            present = at < len(prices) and prices[at] == price
            if type(qty) is float and 0.0 < qty < qty_limit and (units := round(qty * scale)) / scale == qty:
                qty_text = str(units)
            elif type(qty) is float and qty == 0.0:
                qty_text = _DELETE
            else:
                qty, qty_text = self._qty(qty, name, entry)
            if qty_text is _DELETE:
                if present:
                    undo.append((price, qtys[at], texts[at]))
                    del prices[at]
                    del qtys[at]
                    del texts[at]
                continue
            if present:
                undo.append((price, qtys[at], texts[at]))
                qtys[at] = qty
                texts[at] = price_text + qty_text
            else:
                undo.append((price, None, None))
                prices.insert(at, price)
                qtys.insert(at, qty)
                texts.insert(at, price_text + qty_text)

    def _snapshot_side(self, entry: Mapping[str, Any], name: str) -> dict[float, tuple[_Qty, str]]:
        """The levels of one side of a snapshot, ``price: (qty, text)`` (checked; the book is not touched)."""
        levels: dict[float, tuple[_Qty, str]] = {}
        for level in self._levels_of(entry, name):
            try:
                raw_price, raw_qty = level["price"], level["qty"]
            except (KeyError, TypeError, IndexError):
                raise _bad_level(level, name, entry) from None
            price, price_text = self._price(raw_price, name, entry)
            qty, qty_text = self._qty(raw_qty, name, entry)
            if qty_text is _DELETE:
                levels.pop(price, None)
            else:
                levels[price] = (qty, price_text + qty_text)
        return levels

    def _price(self, raw: object, name: str, entry: Mapping[str, Any]) -> tuple[float, str]:
        """A price's float key and checksum text; refuses a price a float cannot hold exactly."""
        if type(raw) is float:
            price = raw
        else:
            exact = _number(raw, f"{name} price", entry, self.numeric_strings)
            price = float(exact)
            if to_decimal(price) != exact:
                raise MalformedMessage(
                    f"{name} price {brief(raw)} does not survive a float; the book keys prices exactly",
                    entry,
                )
        if not 0 < price < _LIMIT:
            raise MalformedMessage(f"{name} price must be positive and finite, got {brief(raw)}", entry)
        text = self._price_texts.get(price)
        if text is None:
            text = _text(raw, price, self.price_precision, f"{name} price", entry)
            if len(self._price_texts) >= _PRICE_CACHE:
                self._price_texts.clear()
            self._price_texts[price] = text
        return price, text

    def _qty(self, raw: object, name: str, entry: Mapping[str, Any]) -> tuple[_Qty, str]:
        """A quantity and its checksum text (``_DELETE`` for zero)."""
        qty = raw if type(raw) is float else _number(raw, f"{name} qty", entry, self.numeric_strings)
        if not 0 <= qty < _LIMIT:
            raise MalformedMessage(f"{name} qty must be a finite number ≥ 0, got {brief(raw)}", entry)
        if not qty:
            return qty, _DELETE
        return qty, _text(raw, qty, self.qty_precision, f"{name} qty", entry)


_DELETE = "<delete>"
"""The qty text of a zero quantity: the level is removed (no real text has a '<')."""


def _text(raw: object, value: _Qty, precision: int, what: str, entry: Mapping[str, Any]) -> str:
    """The checksum text of a checked number; a float that may have lost digits is refused."""
    if type(raw) is not float:
        return number_text(value, precision)
    text = float_text(raw, precision)
    if text is None:
        raise InexactNumber(
            f"{what} {brief(raw)} has more digits than a float keeps; decode the frame with Decimals", entry
        )
    return text


def _bad_level(level: object, name: str, entry: Mapping[str, Any]) -> MalformedMessage:
    return MalformedMessage(f"{name} level needs 'price' and 'qty', got {brief(level)}", entry)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object, what: str, entry: Mapping[str, Any], strings: bool) -> Decimal:
    if isinstance(value, bool) or (not strings and isinstance(value, str)):
        raise MalformedMessage(f"{what} is not a number: {brief(value)}", entry)
    try:
        number = to_decimal(value)  # type: ignore[arg-type]
    except (TypeError, ArithmeticError, ValueError):
        raise MalformedMessage(f"{what} is not a number: {brief(value)}", entry) from None
    if not number.is_finite():
        raise MalformedMessage(f"{what} is not finite: {brief(value)}", entry)
    return number
