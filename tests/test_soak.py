"""Soak: every fault switch thrown again and again, then the client's data checked against the simulator.

Bounded (about a minute of faults plus 20 open/close cycles). After each
fault the test waits for the client to recover before throwing the next one,
so every switch is exercised on a client that was healthy a moment before.
At the end the trades equal the simulator's own trade log for the span
covered (nothing lost outside a recorded gap, nothing duplicated) and every
book is valid. Then 20 clients (each with its own simulator) are opened and
closed: threads and open file descriptors come back to their starting counts.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import psutil
import pytest
from conftest import FAST_RECONNECT
from test_client import assert_trades_match_simulator

from kraken_nb import KrakenClient, SubscriptionRejected
from kraken_nb.simulator import Simulator

SOAK_SECONDS = 60.0
SYMBOLS = ("BTC/USD", "ETH/USD")
BOOK_DEPTHS = {"BTC/USD": 10, "ETH/USD": 25}
SILENCE = 1.5


def wait_for(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def trade_count(client: KrakenClient, symbol: str) -> int:
    return len(client.trades(symbol))


def healthy(client: KrakenClient) -> bool:
    books = [client.book(symbol) for symbol in SYMBOLS]
    return client.connection_state == "live" and all(book is not None and book.valid for book in books)


def recover(client: KrakenClient, what: str) -> None:
    """Wait until the client is live, every book valid and new trades arrive for every symbol."""
    wait_for(lambda: healthy(client), what=f"recovery after {what}")
    before = {symbol: trade_count(client, symbol) for symbol in SYMBOLS}
    wait_for(lambda: all(trade_count(client, s) > before[s] for s in SYMBOLS), what=f"trades after {what}")


class Faults:
    """The fault switches, each thrown once per call, with what it takes to observe it."""

    def __init__(self, sim: Simulator, client: KrakenClient, rng: random.Random) -> None:
        self.sim, self.client, self.rng = sim, client, rng
        self.thrown: dict[str, int] = {}

    def all(self) -> list[Callable[[], None]]:
        return [
            self.drop,
            self.drop_after,
            self.corrupt_checksum,
            self.malformed,
            self.maintenance,
            self.silence,
            self.reject_subscribe,
        ]

    def _count(self, name: str) -> None:
        self.thrown[name] = self.thrown.get(name, 0) + 1

    def drop(self) -> None:
        self._count("drop")
        reconnects = self.client.stats()["reconnects"]
        self.sim.drop_connections()
        wait_for(lambda: self.client.stats()["reconnects"] > reconnects, what="the reconnect after a drop")

    def drop_after(self) -> None:
        self._count("drop_after")
        reconnects = self.client.stats()["reconnects"]
        self.sim.drop_after(self.rng.randint(1, 300))
        wait_for(lambda: self.client.stats()["reconnects"] > reconnects, what="the drop after n frames")

    def corrupt_checksum(self) -> None:
        self._count("corrupt_checksum")
        mismatches = self.client.stats()["checksum_mismatches"]
        self.sim.corrupt_next_checksum(self.rng.choice(SYMBOLS))
        wait_for(lambda: self.client.stats()["checksum_mismatches"] > mismatches, what="the mismatch")

    def malformed(self) -> None:
        self._count("malformed")
        malformed = self.client.stats()["malformed"]
        self.sim.send_malformed()
        wait_for(lambda: self.client.stats()["malformed"] > malformed, what="the malformed frame")

    def maintenance(self) -> None:
        self._count("maintenance")
        self.sim.set_status("maintenance")
        wait_for(lambda: self.client.system_status == "maintenance", what="maintenance")
        self.sim.set_status("online")
        wait_for(lambda: self.client.system_status == "online", what="online again")

    def silence(self) -> None:
        """No market and no heartbeats: the client must find the link silent and dial again."""
        self._count("silence")
        reconnects = self.client.stats()["reconnects"]
        self.sim.pause()
        self.sim.stop_heartbeats()
        try:
            wait_for(lambda: self.client.stats()["reconnects"] > reconnects, what="the silence reconnect")
        finally:
            self.sim.resume_heartbeats()
            self.sim.resume()

    def reject_subscribe(self) -> None:
        """The next subscribe is rejected: the user's new subscription fails visibly, a retry works."""
        self._count("reject_subscribe")
        self.sim.reject_next_subscribe("EService:Unavailable")
        with pytest.raises(SubscriptionRejected, match="EService:Unavailable"):
            self.client.subscribe("ticker", "SOL/USD")
        self.client.subscribe("ticker", "SOL/USD")
        self.client.unsubscribe("ticker", "SOL/USD")


def test_soak_with_every_fault_switch_thrown_repeatedly():
    rng = random.Random(20240501)
    options = {"backoff": FAST_RECONNECT, "silence_timeout": SILENCE, "timeout": 15.0}
    with KrakenClient.simulated(speed=20, seed=23, client_options=options) as client:
        sim = client.simulator
        assert sim is not None
        client.subscribe("trade", list(SYMBOLS), snapshot=True)
        for symbol, depth in BOOK_DEPTHS.items():
            client.subscribe("book", symbol, depth=depth)
        client.subscribe("ticker", list(SYMBOLS))
        client.subscribe("ohlc", list(SYMBOLS), interval=1)
        recover(client, "subscribing")

        faults = Faults(sim, client, rng)
        switches = faults.all()
        deadline = time.monotonic() + SOAK_SECONDS
        rounds = 0
        while time.monotonic() < deadline or rounds < len(switches):
            throw = switches[rounds % len(switches)] if rounds < len(switches) else rng.choice(switches)
            throw()
            recover(client, throw.__name__)
            rounds += 1

        sim.pause()  # let every trade the market made reach the client
        for symbol in SYMBOLS:
            last_logged = sim.trade_log(symbol)[-1]["trade_id"]
            wait_for(
                lambda s=symbol, last=last_logged: client.trades(s)["trade_id"].iloc[-1] == last,
                what=f"the last {symbol} trade",
            )
            assert_trades_match_simulator(client, symbol)
        assert healthy(client)
        stats = client.stats()

    assert set(faults.thrown) == {f.__name__ for f in switches} and rounds >= 2 * len(switches), faults.thrown
    reconnect_faults = (
        faults.thrown.get("drop", 0) + faults.thrown.get("drop_after", 0) + faults.thrown["silence"]
    )
    assert stats["reconnects"] >= reconnect_faults
    assert stats["checksum_mismatches"] >= faults.thrown["corrupt_checksum"]
    assert stats["malformed"] >= faults.thrown["malformed"]
    assert stats["internal_errors"] == 0 and stats["rejected_items"] == 0
    for symbol in SYMBOLS:
        ids = client.trades(symbol)["trade_id"]
        assert ids.is_unique and ids.is_monotonic_increasing


def resources() -> tuple[int, int]:
    return threading.active_count(), psutil.Process().num_fds()


def one_cycle(cycle: int) -> None:
    options = {"backoff": FAST_RECONNECT, "silence_timeout": 2.0, "timeout": 10.0}
    with KrakenClient.simulated(speed=20, seed=cycle, client_options=options) as client:
        client.subscribe("trade", "BTC/USD", snapshot=True)
        client.subscribe("book", "ETH/USD")
        client.on("trade", lambda event: None)
        wait_for(lambda: len(client.trades("BTC/USD")) > 0, what="a trade")
        if cycle % 5 == 0:  # some cycles also reconnect once
            reconnects = client.stats()["reconnects"]
            client.simulator.drop_connections()  # type: ignore[union-attr]
            wait_for(lambda: client.stats()["reconnects"] > reconnects and client.connection_state == "live")


def test_threads_and_file_descriptors_come_back_after_20_open_close_cycles():
    one_cycle(0)  # warm up: imports, lazily created loggers and executors
    threads, fds = resources()
    for cycle in range(1, 21):
        one_cycle(cycle)
    # sockets and threads finish closing asynchronously: give them a moment
    deadline = time.monotonic() + 10
    while resources() != (threads, fds) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert resources() == (threads, fds), [t.name for t in threading.enumerate()]
