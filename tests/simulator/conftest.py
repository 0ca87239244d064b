"""Simulators for the tests: one shared fast one, and fresh ones for fault injection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kraken_nb.simulator import Simulator

from .wire import WireClient


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A simulator shared by a module's tests: market at 30x, heartbeats every 0.25 s."""
    with Simulator(seed=11, speed=30, heartbeat_interval=0.25).running() as simulator:
        yield simulator


@pytest.fixture
def fresh_sim() -> Iterator[Simulator]:
    """A simulator of its own, for tests that drop connections or change global state."""
    with Simulator(seed=5, speed=20, heartbeat_interval=0.2).running() as simulator:
        yield simulator


@pytest.fixture
def wire(sim: Simulator) -> Iterator[WireClient]:
    """A raw WebSocket client connected to ``sim`` (its status frame already read)."""
    client = WireClient(sim.url)
    try:
        yield client
    finally:
        client.close()
