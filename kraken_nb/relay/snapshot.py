"""A book as Kraken's snapshot frame: what a late joiner loads instead of waiting for one.

Pure: built from an :class:`~kraken_nb.core.book.OrderBook` (a copy the relay
took right after the frame it is valid at). Every price and quantity is
written with the pair's precision from the book's exact digits (trailing
zeros kept, as Kraken writes them), so the receiving client formats the same
checksum texts; the frame carries the book's CRC32 and, like Kraken's own
snapshots, no timestamp.
"""

from __future__ import annotations

from decimal import Decimal

import orjson

from kraken_nb.core.book import OrderBook

__all__ = ["book_snapshot_frame"]


def _levels(levels: list[tuple[Decimal, Decimal]], price_precision: int, qty_precision: int) -> str:
    return ",".join(
        f'{{"price":{price:.{price_precision}f},"qty":{qty:.{qty_precision}f}}}' for price, qty in levels
    )


def book_snapshot_frame(book: OrderBook) -> bytes:
    """``{"channel":"book","type":"snapshot","data":[{symbol, bids, asks, checksum}]}`` of ``book``.

    Bids run best (highest) first, asks best (lowest) first, as in Kraken's
    snapshots.
    """
    p, q = book.price_precision, book.qty_precision
    bids = _levels(book.levels_exact("bid"), p, q)
    asks = _levels(book.levels_exact("ask"), p, q)
    symbol = orjson.dumps(book.symbol).decode()
    return (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":{symbol},'
        f'"bids":[{bids}],"asks":[{asks}],"checksum":{book.checksum()}}}]}}'
    ).encode()
