"""Book channel updates composed as Kraken sends them: one per book event and depth.

A :class:`BookFeed` holds a copy of one symbol's whole book and replays the
market's book events on it, so it always equals the market's book. Each event
becomes, for every subscribed depth it touches, one update holding the
changed levels inside that depth's window, in event order: a deletion inside
the window is followed by the level that now enters the window from below,
and an insert that pushes a level out of the window sends no deletion (the
client truncates). The checksum of each update is the CRC32 of the top 10
levels after exactly that event. So every intermediate book is valid, and a
client that truncates after each level (python-kraken-sdk does) verifies
every checksum, as on the real feed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from kraken_nb.simulator.encoding import fixed_text
from kraken_nb.simulator.pair_market import BookEvent, top_checksum

__all__ = ["BookFeed", "BookUpdate"]

BookUpdate = tuple[int, str, str, int]
"""One update for one depth: (depth, bids JSON array, asks JSON array, checksum)."""

_SIGN = {"bids": -1, "asks": 1}
_INDEX = {"bids": 0, "asks": 1}
_CHECKSUM_LEVELS = 10


class BookFeed:
    """The whole book of one symbol, kept in step with the market, and the updates it sends."""

    __slots__ = ("_keys", "_qty", "price_precision", "qty_precision", "symbol")

    def __init__(
        self,
        symbol: str,
        price_precision: int,
        qty_precision: int,
        bids: Sequence[tuple[int, int]],
        asks: Sequence[tuple[int, int]],
    ) -> None:
        """Start from the book's levels as ``(tick, units)``, best first."""
        self.symbol = symbol
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        # Signed keys (-tick for bids, tick for asks) ascend best first, as in the market.
        self._keys: dict[str, list[int]] = {
            "bids": [-tick for tick, _ in bids],
            "asks": [tick for tick, _ in asks],
        }
        self._qty: dict[str, dict[int, int]] = {
            "bids": {-tick: units for tick, units in bids},
            "asks": {tick: units for tick, units in asks},
        }

    def levels(self, side: str, depth: int) -> list[tuple[int, int]]:
        """The best ``depth`` levels of ``side`` ("bids"/"asks") as ``(tick, units)``, best first."""
        sign, qty = _SIGN[side], self._qty[side]
        return [(sign * key, qty[key]) for key in self._keys[side][:depth]]

    def checksum(self) -> int:
        """Kraken's CRC32 of the current top 10 levels of each side."""
        return top_checksum(self.levels("asks", _CHECKSUM_LEVELS), self.levels("bids", _CHECKSUM_LEVELS))

    def updates(self, events: Sequence[BookEvent], depths: Sequence[int]) -> list[BookUpdate]:
        """Replay ``events`` in order; return the update each of ``depths`` receives, in order.

        An event that changes nothing inside a depth's window sends that depth
        nothing.
        """
        if not depths:
            raise ValueError("updates() needs at least one depth")
        deepest = max(depths)
        keys_of, qty_of = self._keys, self._qty
        out: list[BookUpdate] = []
        for event in events:
            picked: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] | None = None
            for side, tick, units in event:
                keys, qty = keys_of[side], qty_of[side]
                sign = _SIGN[side]
                key = sign * tick
                old = qty.get(key)
                rank = bisect_left(keys, key)
                if units == 0:
                    if old is None:
                        continue
                    del keys[rank]
                    del qty[key]
                elif old is None:
                    keys.insert(rank, key)
                    qty[key] = units
                elif old == units:
                    continue
                else:
                    qty[key] = units
                if rank >= deepest:
                    continue  # outside every window: the subscribers never see it
                if picked is None:
                    picked = {depth: ([], []) for depth in depths}
                for depth in depths:
                    if rank >= depth:
                        continue
                    levels = picked[depth][_INDEX[side]]
                    levels.append((tick, units))
                    if units == 0 and len(keys) >= depth:
                        entering = keys[depth - 1]  # the level that now enters the window from below
                        levels.append((sign * entering, qty[entering]))
            if picked is None:
                continue
            checksum: int | None = None
            for depth in depths:
                bids, asks = picked[depth]
                if bids or asks:
                    if checksum is None:
                        checksum = self.checksum()
                    out.append((depth, self._json(bids), self._json(asks), checksum))
        return out

    def _json(self, levels: list[tuple[int, int]]) -> str:
        """Levels as the JSON array of a book message, numbers at the pair's precisions."""
        pp, qp = self.price_precision, self.qty_precision
        return (
            "["
            + ",".join(
                f'{{"price":{fixed_text(tick, pp)},"qty":{fixed_text(units, qp)}}}' for tick, units in levels
            )
            + "]"
        )
