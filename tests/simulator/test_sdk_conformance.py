"""python-kraken-sdk's own clients, unmodified, against the simulator over a real socket.

A client that is correct on Kraken's feed must be correct on the simulator's.
python-kraken-sdk's ``SpotOrderBookClient`` truncates its book after every
level and formats floats with the pair's decimals, so it verifies Kraken's
checksums only because Kraken sends each book event as a valid step. Its REST
lookup of the pair decimals is answered from the simulator's instrument
channel (there is no network here); nothing else of the SDK is replaced.

DOGE/USD keeps large levels of 16 significant digits (8 integer + 8 decimal),
which the SDK's ``json.loads`` floats cannot always carry: that is the SDK's
limitation, so DOGE/USD is left out of its zero-mismatch check, and our own
client must verify every DOGE/USD checksum instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from kraken.spot import SpotOrderBookClient, SpotWSClient

from kraken_nb import KrakenClient
from kraken_nb.simulator import DEFAULT_PAIRS, Simulator

RUN_S = 4.0
LONG_DIGITS_PAIR = "DOGE/USD"
SDK_PAIRS = [symbol for symbol in DEFAULT_PAIRS if symbol != LONG_DIGITS_PAIR]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=23, speed=20).running() as simulator:
        yield simulator


class Warnings(logging.Handler):
    """Every record of WARNING or above from the SDK's loggers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sdk_warnings() -> Iterator[list[logging.LogRecord]]:
    handler, logger = Warnings(), logging.getLogger("kraken")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


def sdk_url(sim: Simulator) -> str:
    """The base URL the SDK wants: it appends ``/v2`` itself."""
    return sim.url.removesuffix("/v2")


class Precisions:
    """Stands in for the SDK's REST ``Market``: the pair decimals, as the instrument channel lists them."""

    def __init__(self, pairs: dict[str, dict[str, Any]]) -> None:
        self.pairs = pairs

    def get_asset_pairs(self, pair: str) -> dict[str, dict[str, int]]:
        spec = self.pairs[pair]
        return {pair: {"pair_decimals": spec["price_precision"], "lot_decimals": spec["qty_precision"]}}


async def run_ws_client(sim: Simulator, subscriptions: list[dict[str, Any]], seconds: float) -> list[dict]:
    """The SDK's ``SpotWSClient``: subscribe, collect every decoded message for ``seconds``."""
    messages: list[dict] = []

    async def on_message(message: dict) -> None:
        messages.append(message)

    client = SpotWSClient(callback=on_message, ws_url=sdk_url(sim))
    try:
        await client.start()
        for params in subscriptions:
            await client.subscribe(params=params)
        await asyncio.sleep(seconds)
        assert client.exception_occur is False
    finally:
        await client.close()
    return messages


async def instrument_pairs(sim: Simulator) -> dict[str, dict[str, Any]]:
    messages = await run_ws_client(sim, [{"channel": "instrument"}], 0.5)
    (snapshot,) = [m for m in messages if m.get("channel") == "instrument" and m.get("type") == "snapshot"]
    return {pair["symbol"]: pair for pair in snapshot["data"]["pairs"]}


def run_book_client(sim: Simulator, depth: int, pairs: list[str]) -> tuple[Counter, Counter]:
    """The SDK's ``SpotOrderBookClient`` on ``pairs``: book messages verified, and mismatches, per pair."""
    updates: Counter = Counter()
    mismatches: Counter = Counter()

    def on_update(pair: str, message: dict) -> None:
        if "error" in message:
            mismatches[pair] += 1
        elif message.get("type") == "update":
            updates[pair] += 1

    class SimulatorBookClient(SpotOrderBookClient):
        WS_URL = sdk_url(sim)

    async def main() -> None:
        precisions = Precisions(await instrument_pairs(sim))
        client = SimulatorBookClient(depth=depth, callback=on_update)
        client._SpotOrderBookClient__market = precisions  # type: ignore[attr-defined]
        try:
            await client.start()
            await client.add_book(pairs=pairs)
            await asyncio.sleep(RUN_S)
            assert client.exception_occur is False
        finally:
            await client.close()

    asyncio.run(main())
    return updates, mismatches


@pytest.mark.parametrize("depth", [10, 100])
def test_python_kraken_sdk_order_book_client_verifies_every_checksum(sim, sdk_warnings, depth):
    updates, mismatches = run_book_client(sim, depth, SDK_PAIRS)
    assert dict(mismatches) == {}
    assert set(updates) == set(SDK_PAIRS)
    assert min(updates.values()) >= 30, updates
    assert [r.getMessage() for r in sdk_warnings] == []


def test_python_kraken_sdk_ws_client_takes_every_channel_without_warnings(sim, sdk_warnings):
    pairs = ["BTC/USD", "ETH/BTC"]
    subscriptions = [
        {"channel": "instrument"},
        {"channel": "ticker", "symbol": pairs},
        {"channel": "trade", "symbol": pairs, "snapshot": True},
        {"channel": "ohlc", "symbol": pairs, "interval": 5},
        {"channel": "book", "symbol": pairs, "depth": 25},
    ]
    messages = asyncio.run(run_ws_client(sim, subscriptions, 2.0))
    acks = [m for m in messages if m.get("method") == "subscribe"]
    assert len(acks) == 1 + 4 * len(pairs) and all(a["success"] for a in acks)
    kinds = Counter((m.get("channel"), m.get("type")) for m in messages if "channel" in m)
    for channel in ("ticker", "trade", "ohlc", "book"):
        assert kinds[channel, "snapshot"] == len(pairs), (channel, kinds)
        assert kinds[channel, "update"] > 0, (channel, kinds)
    assert kinds["instrument", "snapshot"] == 1 and kinds["status", "update"] == 1
    assert [r.getMessage() for r in sdk_warnings] == []


@pytest.mark.parametrize("depth", [10, 100])
def test_our_client_verifies_every_checksum_on_every_pair_including_long_quantities(sim, depth):
    with KrakenClient(sim.url) as client:
        client.subscribe("book", list(DEFAULT_PAIRS), depth=depth)
        client.wait_until(lambda c: all(c.book(s) is not None and c.book(s).valid for s in DEFAULT_PAIRS), 20)
        messages = client.stats()["messages"]
        client.wait_until(lambda c: c.stats()["messages"] >= messages + 300 * len(DEFAULT_PAIRS), 30)
        stats = client.stats()
        books = {symbol: client.book(symbol) for symbol in DEFAULT_PAIRS}
    assert (stats["checksum_mismatches"], stats["resyncs"], stats["malformed"]) == (0, 0, 0)
    assert all(book is not None and book.valid for book in books.values())
    doge = books[LONG_DIGITS_PAIR]
    assert doge is not None
    if depth == 100:
        # Whale levels (16 significant digits) sit in the top 100: they took the exact path.
        assert stats["exact_decodes"] > 0
        assert any(qty >= 10**7 for _, qty in doge.levels_exact("bid") + doge.levels_exact("ask"))
