"""A real ``nats-server -js`` on a free port with its own store, a simulator, and relays between them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kraken_nb import KrakenClient
from kraken_nb.core.params import Subscription, validate_subscription
from kraken_nb.relay.local import LocalNatsServer, nats_server_binary
from kraken_nb.relay.relay import Relay
from kraken_nb.simulator import Simulator

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[LocalNatsServer]:
    """nats-server with JetStream on 127.0.0.1 (installed by .ci/run: apt-get install nats-server)."""
    assert nats_server_binary() is not None, "nats-server is not installed (apt-get install nats-server)"
    server = LocalNatsServer(store_dir=tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A simulator of its own at 20x."""
    with Simulator(seed=21, speed=20).running() as sim:
        yield sim


def market(*channels: str, symbols: tuple[str, ...] = SYMBOLS, depth: int = 10) -> list[Subscription]:
    """The subscriptions of a relay: each channel for each symbol."""
    subscriptions = []
    for channel in channels:
        params = {"depth": depth} if channel == "book" else {}
        subscriptions.append(validate_subscription(channel, list(symbols), **params))
    return subscriptions


def start_relay(
    server: LocalNatsServer, sim: Simulator, subscriptions: list[Subscription], **options: object
) -> Relay:
    """A started relay from ``sim`` to ``server`` (close it, or use it in a ``with``)."""
    options.setdefault("name", "r1")
    return Relay(server.url, subscriptions, upstream=sim.url, **options).start()  # type: ignore[arg-type]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def book_is_valid(client: KrakenClient, symbol: str) -> bool:
    """Whether ``client`` has a valid ``symbol`` book (a relay-fed book appears with its first frame)."""
    book = client.book(symbol)
    return book is not None and book.valid


def caught_up(relay: Relay, *clients: KrakenClient, timeout: float = 20.0) -> None:
    """Wait until the relay published everything and each client has the relay's trade count."""
    assert relay.wait_published(timeout), relay.stats()
    assert relay.client is not None
    for client in clients:
        for symbol in {s for sub in relay.subscriptions if sub.channel == "trade" for s in sub.symbols}:
            if client.trades(symbol).empty and not any(
                s.channel == "trade" and s.symbol == symbol for s in client.subscriptions()
            ):
                continue
            want = relay.client.trades(symbol).trade_id.max()
            wait_for(
                lambda c=client, s=symbol, w=want: not c.trades(s).empty and c.trades(s).trade_id.max() >= w,
                timeout,
                f"{symbol} trades up to {want} in a client",
            )
