"""Shared fixtures: a simulator on port 0 and a client connected to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kraken_nb import KrakenClient
from kraken_nb.transport import Backoff

FAST_RECONNECT = Backoff(initial=0.05, maximum=0.5, factor=2.0, jitter=0.5)


@pytest.fixture
def client() -> Iterator[KrakenClient]:
    """A client on a fresh embedded simulator running 20x faster than real time."""
    with KrakenClient.simulated(
        speed=20,
        seed=11,
        client_options={"backoff": FAST_RECONNECT, "silence_timeout": 2.0, "timeout": 10.0},
    ) as client:
        yield client
