"""Choosing the data source: the environment variable, the reachability probe and the fallback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from kraken_nb.connect import SOURCE_ENV, connect, kraken_reachable, resolve_source, source_of
from kraken_nb.errors import InvalidParams
from kraken_nb.simulator import Simulator


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A loopback port that accepts TCP but never answers (a TLS handshake there hangs)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not done.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    done.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator(speed=5)
    sim.start_in_thread()
    yield sim
    sim.close()


def test_source_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(SOURCE_ENV, raising=False)
    assert resolve_source() == "auto"
    monkeypatch.setenv(SOURCE_ENV, " Simulator ")
    assert resolve_source() == "simulator"
    assert resolve_source("kraken") == "kraken"
    monkeypatch.setenv(SOURCE_ENV, "ws://127.0.0.1:8765/v2")
    assert resolve_source() == "ws://127.0.0.1:8765/v2"
    monkeypatch.setenv(SOURCE_ENV, "")
    assert resolve_source() == "auto"


def test_unknown_sources_are_named_in_the_error(monkeypatch):
    with pytest.raises(InvalidParams, match="'binance'"):
        resolve_source("binance")
    monkeypatch.setenv(SOURCE_ENV, "http://example")
    with pytest.raises(InvalidParams, match=f"{SOURCE_ENV}='http://example'"):
        resolve_source()


def test_probe_sees_a_listening_port_and_not_a_closed_one(simulator, closed_port):
    assert kraken_reachable(simulator.url, timeout=2)
    assert not kraken_reachable(f"ws://127.0.0.1:{closed_port}/v2", timeout=2)


def test_probe_gives_up_on_a_tls_handshake_that_never_answers(silent_listener):
    started = time.monotonic()
    assert not kraken_reachable(f"wss://127.0.0.1:{silent_listener}/v2", timeout=0.5)
    assert time.monotonic() - started < 2


def test_simulator_source_starts_an_embedded_simulator():
    with connect("simulator", simulator_options={"speed": 5}) as client:
        assert client.simulator is not None
        assert client.connection_state == "live"
        assert source_of(client) == f"the embedded simulator at {client.url}"


def test_a_url_source_connects_there(simulator, monkeypatch):
    monkeypatch.setenv(SOURCE_ENV, simulator.url)
    with connect() as client:
        assert client.simulator is None
        assert client.url == simulator.url
        client.subscribe("ticker", ["BTC/USD"])
        assert source_of(client) == simulator.url


def test_auto_uses_the_endpoint_when_reachable(simulator):
    with connect("auto", url=simulator.url) as client:
        assert client.simulator is None and client.url == simulator.url


def test_auto_falls_back_to_the_simulator_quickly(closed_port):
    started = time.monotonic()
    with connect("auto", url=f"ws://127.0.0.1:{closed_port}/v2", probe_timeout=1) as client:
        assert client.simulator is not None
        assert client.connection_state == "live"
    assert time.monotonic() - started < 10
