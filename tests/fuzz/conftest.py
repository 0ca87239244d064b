"""Hypothesis settings for the fuzz tests, and real frames recorded once from the simulator."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, settings

from kraken_nb import KrakenClient
from kraken_nb.core.taps import Tap

# Bounded runs (the whole folder takes well under a minute), no example database
# written into the repository, no deadline on a shared, noisy machine.
settings.register_profile(
    "kraken_nb",
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("kraken_nb")

SYMBOLS = ("BTC/USD", "ETH/USD")
SUBSCRIPTIONS = (
    ("trade", {"snapshot": True}),
    ("ticker", {}),
    ("ohlc", {"interval": 1}),
    ("book", {"depth": 10}),
)


class _Frames(Tap):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def frame(self, text, message, received_ns, events) -> None:
        self.texts.append(text if isinstance(text, str) else text.decode())


@pytest.fixture(scope="session")
def recorded_frames() -> tuple[str, ...]:
    """About two seconds of real frames (every data channel, acks, status, heartbeats), in order."""
    recorder = _Frames()
    with KrakenClient.simulated(speed=20, seed=5) as client:
        client.add_tap(recorder)
        for channel, params in SUBSCRIPTIONS:
            client.subscribe(channel, list(SYMBOLS), **params)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(recorder.texts) < 300:
            time.sleep(0.05)
        assert client.stats()["malformed"] == 0
    return tuple(recorder.texts[:300])
