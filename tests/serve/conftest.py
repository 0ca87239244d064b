"""A simulated client served over REST and MCP on free ports, and HTTP clients for it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from kraken_nb import KrakenClient
from kraken_nb.serve import Limits
from kraken_nb.serve.server import ServeHandle
from kraken_nb.transport import Backoff

FAST_RECONNECT = Backoff(initial=0.05, maximum=0.5, factor=2.0, jitter=0.5)
CLIENT_OPTIONS = {"backoff": FAST_RECONNECT, "silence_timeout": 2.0, "timeout": 10.0}


def simulated(**sim_options: object) -> KrakenClient:
    return KrakenClient.simulated(client_options=CLIENT_OPTIONS, **{"speed": 20, "seed": 11, **sim_options})


@pytest.fixture(scope="module")
def module_client() -> Iterator[KrakenClient]:
    """One simulated client shared by a module's read-mostly tests."""
    with simulated() as client:
        yield client


@pytest.fixture(scope="module")
def served(module_client: KrakenClient) -> Iterator[ServeHandle]:
    """``module_client`` served on free ports, with the default limits."""
    handle = module_client.serve(0, 0)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def rest(served: ServeHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.urls["rest"], timeout=30) as client:
        yield client


@pytest.fixture
def fresh() -> Iterator[KrakenClient]:
    """A simulated client of its own (for fault switches and caps)."""
    with simulated(seed=5) as client:
        yield client


def serve_with(client: KrakenClient, **limits: object) -> ServeHandle:
    return client.serve(0, 0, limits=Limits(**limits))  # type: ignore[arg-type]


@contextlib.contextmanager
def serving(client: KrakenClient, **limits: object) -> Iterator[tuple[ServeHandle, httpx.Client]]:
    """``client`` served with these limits, and an HTTP client for its REST surface."""
    with (
        serve_with(client, **limits) as handle,
        httpx.Client(base_url=handle.urls["rest"], timeout=30) as rest,
    ):
        yield handle, rest
