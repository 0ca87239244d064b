"""Other clients' book code, fed the same frames the way their own network code would feed them.

* python-kraken-sdk's ``SpotOrderBookClient``: its connector decodes each
  frame with ``json.loads`` and awaits ``on_message(dict)``. The REST lookup
  of the pair's decimals is stubbed (no network) and so are the resubscribe
  calls and the three-second sleep it makes after a checksum mismatch; the
  mismatches are counted through its callback.
* The ``order-book`` C extension has a ``KRAKEN`` checksum that formats each
  key and value with ``str()``. A float's ``str()`` drops the trailing zeros
  Kraken prints, so fed floats it cannot verify v2 checksums; two variants
  run: apply-only from ``orjson`` floats, and a verifying one fed exact
  decimals, quantized to the pair's precisions in Python (a no-op on wire
  values, which already carry them, kept for values that do not).

Each runner returns ``(seconds for the update frames, checksum mismatches)``;
the snapshot is applied before the clock starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from benchmarks.corpus import Corpus
from kraken_nb.core.wire import loads_exact

__all__ = [
    "available",
    "order_book_apply_only",
    "order_book_verified",
    "sdk_book",
]

_MODULES = {"python-kraken-sdk": "kraken", "order-book": "order_book", "orjson": "orjson"}


def available(package: str) -> bool:
    """Whether the pip package ``package`` (a key of the known peers) can be imported."""
    return importlib.util.find_spec(_MODULES[package]) is not None


class _Decimals:
    """Stands in for the SDK's REST ``Market``: answers the decimals lookup from the corpus."""

    def __init__(self, price_precision: int, qty_precision: int) -> None:
        self._answer = {"pair_decimals": price_precision, "lot_decimals": qty_precision}

    def get_asset_pairs(self, pair: str) -> dict[str, dict[str, int]]:
        return {pair: self._answer}


@contextlib.contextmanager
def _no_resubscribe_sleep() -> Iterator[None]:
    """Replace the SDK's post-mismatch ``asyncio.sleep(3)`` with an immediate return."""
    import kraken.spot.orderbook as sdk_module

    async def no_sleep(*_args: Any, **_kwargs: Any) -> None:
        return None

    original = sdk_module.asyncio_sleep
    sdk_module.asyncio_sleep = no_sleep
    try:
        yield
    finally:
        sdk_module.asyncio_sleep = original


def sdk_book(corpus: Corpus) -> tuple[float, int]:
    """python-kraken-sdk: ``json.loads`` + ``await on_message`` per frame."""
    from kraken.spot import SpotOrderBookClient

    assert corpus.snapshot is not None and corpus.depth is not None
    mismatches = 0

    def on_update(pair: str, message: dict[str, Any]) -> None:
        nonlocal mismatches
        if "error" in message:
            mismatches += 1

    async def no_op(pairs: list[str]) -> None:
        return None

    async def run() -> float:
        client = SpotOrderBookClient(depth=corpus.depth, callback=on_update)
        try:
            client._SpotOrderBookClient__market = _Decimals(  # type: ignore[attr-defined]
                corpus.price_precision, corpus.qty_precision
            )
            client.remove_book = no_op  # type: ignore[method-assign]
            client.add_book = no_op  # type: ignore[method-assign]
            on_message, loads = client.on_message, json.loads
            await on_message(loads(corpus.snapshot))
            started = time.perf_counter()
            for frame in corpus.frames:
                await on_message(loads(frame))
            return time.perf_counter() - started
        finally:
            await client.close()

    with _no_resubscribe_sleep():
        seconds = asyncio.run(run())
    return seconds, mismatches


def _apply_levels(side: Any, levels: list[dict[str, Any]], convert: Callable[[Any], Any]) -> None:
    for level in levels:
        price = convert(level["price"])
        qty = convert(level["qty"])
        if qty:
            side[price] = qty
        else:
            with contextlib.suppress(KeyError):
                del side[price]


def order_book_apply_only(corpus: Corpus) -> tuple[float, int]:
    """order-book (C): ``orjson.loads``, set/delete levels, truncate to depth; no checksum."""
    import orjson
    from order_book import OrderBook

    assert corpus.snapshot is not None
    book = OrderBook(max_depth=corpus.depth)

    def apply(entry: dict[str, Any]) -> None:
        _apply_levels(book.bids, entry["bids"], float)
        _apply_levels(book.asks, entry["asks"], float)
        book.bids.truncate()
        book.asks.truncate()

    apply(orjson.loads(corpus.snapshot)["data"][0])
    loads = orjson.loads
    started = time.perf_counter()
    for frame in corpus.frames:
        for entry in loads(frame)["data"]:
            apply(entry)
    return time.perf_counter() - started, 0


def order_book_verified(corpus: Corpus) -> tuple[float, int]:
    """order-book (C) with its KRAKEN checksum, fed exact decimals quantized to the pair's precisions."""
    from order_book import OrderBook

    assert corpus.snapshot is not None and corpus.price_precision is not None
    assert corpus.qty_precision is not None
    book = OrderBook(max_depth=corpus.depth, checksum_format="KRAKEN")
    price_step = Decimal(1).scaleb(-corpus.price_precision)
    qty_step = Decimal(1).scaleb(-corpus.qty_precision)
    mismatches = 0

    def apply(entry: dict[str, Any]) -> None:
        nonlocal mismatches
        for side, levels in ((book.bids, entry["bids"]), (book.asks, entry["asks"])):
            for level in levels:
                price = level["price"].quantize(price_step)
                qty = level["qty"]
                if qty:
                    side[price] = qty.quantize(qty_step)
                else:
                    with contextlib.suppress(KeyError):
                        del side[price]
        book.bids.truncate()
        book.asks.truncate()
        # its checksum reads ten levels a side without checking that they exist
        if min(len(book.bids), len(book.asks)) < 10 or book.checksum() != entry["checksum"]:
            mismatches += 1

    apply(loads_exact(corpus.snapshot)["data"][0])
    started = time.perf_counter()
    for frame in corpus.frames:
        for entry in loads_exact(frame)["data"]:
            apply(entry)
    return time.perf_counter() - started, mismatches
