"""Fixtures for the widget tests: a simulated client and a recorder of what widgets send."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kraken_nb.client import KrakenClient

__all__ = ["client", "own_client"]


@pytest.fixture(scope="module")
def client() -> Iterator[KrakenClient]:
    """One fast simulated client per test module."""
    client = KrakenClient.simulated(seed=7, speed=20.0)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def own_client() -> Iterator[KrakenClient]:
    """A simulated client of the test's own (for tests that drop or close it)."""
    client = KrakenClient.simulated(seed=11, speed=20.0)
    try:
        yield client
    finally:
        client.close()
