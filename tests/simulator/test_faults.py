"""Every fault switch, observed on a raw socket, plus robustness and lifecycle of the server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
from websockets.asyncio.client import connect as async_connect
from websockets.exceptions import ConnectionClosedError

from kraken_nb.core.wire import loads_exact
from kraken_nb.errors import InvalidParams
from kraken_nb.simulator import Simulator

from .wire import WireClient, new_book


def read_until_closed(client: WireClient, timeout: float = 5.0) -> tuple[list, ConnectionClosedError]:
    frames = []
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosedError) as closed:
        while time.monotonic() < deadline:
            frames.append(client.recv(deadline - time.monotonic()))
    return frames, closed.value


def wait_for(condition, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_drop_connections_closes_abnormally_and_new_ones_work(fresh_sim):
    first, second = WireClient(fresh_sim.url), WireClient(fresh_sim.url)
    first.acks(first.subscribe("book", ["BTC/USD"]), 1)
    wait_for(lambda: fresh_sim.connection_count == 2)
    fresh_sim.drop_connections()
    for client in (first, second):
        _, closed = read_until_closed(client)
        assert closed.rcvd is None, "expected no close frame (an abnormal close)"
    wait_for(lambda: fresh_sim.connection_count == 0)
    third = WireClient(fresh_sim.url)
    assert third.status["channel"] == "status"
    third.close()


def test_drop_after_counts_frames(fresh_sim):
    client = WireClient(fresh_sim.url)
    wait_for(lambda: fresh_sim.connection_count == 1)
    fresh_sim.drop_after(5)
    client.request("ping")
    client.subscribe("trade", ["BTC/USD"], snapshot=True)
    frames, closed = read_until_closed(client)
    assert len(frames) == 5
    assert [f.get("method") for f in frames[:2]] == ["pong", "subscribe"]
    assert closed.rcvd is None


def test_corrupt_checksum_hits_one_message_of_one_symbol(fresh_sim):
    client = WireClient(fresh_sim.url)
    books = {s: new_book(fresh_sim, s, 10) for s in ("BTC/USD", "ETH/USD")}
    client.subscribe("book", list(books))
    results: dict[str, list[bool]] = {s: [] for s in books}

    def read(seconds: float) -> None:
        for message in client.collect(seconds):
            if message.get("channel") == "book":
                entry = message["data"][0]
                results[entry["symbol"]].append(books[entry["symbol"]].apply(entry))

    read(0.4)
    assert all(results.values()) and all(all(r) for r in results.values())
    fresh_sim.corrupt_next_checksum("ETH/USD")
    read(0.8)
    eth = results["ETH/USD"]
    assert eth.count(False) == 1
    assert eth.index(False) < len(eth) - 3, "too few messages after the corrupted one"
    assert all(eth[eth.index(False) + 1 :]), "the book must stay consistent after the bad checksum"
    assert all(results["BTC/USD"])
    client.close()


def test_corrupt_checksum_applies_to_the_next_snapshot_too(fresh_sim):
    fresh_sim.corrupt_next_checksum()
    client = WireClient(fresh_sim.url)
    book = new_book(fresh_sim, "SOL/USD", 25)
    client.subscribe("book", ["SOL/USD"], depth=25)
    snapshot, _ = client.until(lambda m: m.get("channel") == "book")
    assert snapshot["type"] == "snapshot"
    assert not book.apply(snapshot["data"][0])
    update, _ = client.until(lambda m: m.get("channel") == "book")
    assert book.apply(update["data"][0])
    client.close()


def test_reject_next_subscribe_answers_each_symbol_then_recovers(fresh_sim):
    client = WireClient(fresh_sim.url)
    fresh_sim.reject_next_subscribe("EGeneral:Too many requests")
    acks, _ = client.acks(client.subscribe("ticker", ["BTC/USD", "ADA/USD"]), 2)
    assert [(a["success"], a["symbol"], a["error"]) for a in acks] == [
        (False, "BTC/USD", "EGeneral:Too many requests"),
        (False, "ADA/USD", "EGeneral:Too many requests"),
    ]
    (ok,), _ = client.acks(client.subscribe("ticker", ["BTC/USD"]), 1)
    assert ok["success"] is True
    client.close()


def test_ignore_next_subscribe_leaves_requests_unanswered_then_recovers(fresh_sim):
    client = WireClient(fresh_sim.url)
    fresh_sim.ignore_next_subscribe(2)
    first = client.subscribe("trade", ["BTC/USD"], snapshot=True)
    second = client.subscribe("trade", ["BTC/USD"], snapshot=True)
    frames = client.collect(0.5)
    assert not [f for f in frames if isinstance(f, dict) and f.get("req_id") in (first, second)]
    assert not [f for f in frames if isinstance(f, dict) and f.get("channel") == "trade"]
    (ok,), _ = client.acks(client.subscribe("trade", ["BTC/USD"]), 1)
    assert ok["success"] is True, "only the ignored requests go unanswered"
    client.close()


def test_send_malformed_sends_invalid_json_and_the_connection_goes_on(fresh_sim):
    client = WireClient(fresh_sim.url)
    fresh_sim.send_malformed()
    frame = client.recv_text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(frame)
    client.send({"method": "ping", "req_id": 3})
    assert client.recv()["method"] == "pong"
    client.close()


def test_set_status_broadcasts_and_greets_new_connections(fresh_sim):
    client = WireClient(fresh_sim.url)
    fresh_sim.set_status("maintenance")
    status = client.recv()
    assert status["channel"] == "status" and status["data"][0]["system"] == "maintenance"
    assert status["data"][0]["connection_id"] == client.status["data"][0]["connection_id"]
    late = WireClient(fresh_sim.url)
    assert late.status["data"][0]["system"] == "maintenance"
    assert late.status["data"][0]["connection_id"] != client.status["data"][0]["connection_id"]
    fresh_sim.set_status("online")
    assert client.recv()["data"][0]["system"] == "online"
    with pytest.raises(InvalidParams, match="sleeping"):
        fresh_sim.set_status("sleeping")
    client.close()
    late.close()


def test_heartbeats_stop_and_resume(fresh_sim):
    client = WireClient(fresh_sim.url)
    client.acks(client.subscribe("instrument"), 1)  # quiet after its snapshot: heartbeats fill the silence

    def beats(seconds: float) -> int:
        return sum(m.get("channel") == "heartbeat" for m in client.collect(seconds))

    assert beats(0.6) >= 1
    fresh_sim.stop_heartbeats()
    client.drain()
    assert beats(0.7) == 0
    client.send({"method": "ping", "req_id": 9})
    assert client.until(lambda m: m.get("method") == "pong")[0]["req_id"] == 9, "requests still answered"
    fresh_sim.resume_heartbeats()
    assert beats(0.6) >= 1
    client.close()


def test_a_vanishing_client_does_not_disturb_others(fresh_sim):
    watcher = WireClient(fresh_sim.url)
    book = new_book(fresh_sim, "BTC/USD", 10)
    watcher.subscribe("book", ["BTC/USD"])
    for _ in range(3):
        raw = socket.create_connection(("127.0.0.1", fresh_sim.port))
        raw.sendall(b"GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n")  # not a WebSocket upgrade
        raw.close()
        greedy = WireClient(fresh_sim.url)
        greedy.subscribe("book", list(fresh_sim.market.symbols), depth=1000)
        greedy.ws.send(b"\x00\x01 binary junk")
        greedy.ws.socket.close()  # gone mid-stream, no closing handshake
    applied = 0
    for message in watcher.collect(1.0):
        if message.get("channel") == "book":
            assert book.apply(message["data"][0])
            applied += 1
    assert applied >= 5
    wait_for(lambda: fresh_sim.connection_count == 1)
    watcher.close()


def test_close_is_prompt_and_idempotent_with_clients_attached():
    sim = Simulator(seed=2, speed=10, pairs=["BTC/USD"])
    sim.start_in_thread()
    clients = [WireClient(sim.url) for _ in range(3)]
    for client in clients:
        client.subscribe("book", ["BTC/USD"], depth=1000)
    threads_before = {t.name for t in threading.enumerate()}
    assert "kraken-simulator" in threads_before
    started = time.monotonic()
    sim.close()
    assert time.monotonic() - started < 3.0
    sim.close()
    assert "kraken-simulator" not in {t.name for t in threading.enumerate()}
    for client in clients:
        with pytest.raises(Exception):  # noqa: B017 - closed one way or another
            while True:
                client.recv(2)
    with pytest.raises(RuntimeError, match="not running"):
        _ = sim.url


def test_async_use_on_the_callers_loop():
    async def scenario() -> tuple[dict, dict, int]:
        simulator = Simulator(seed=4, speed=5, pairs=["ETH/USD"])
        async with asyncio.timeout(10), simulator as sim, async_connect(sim.url) as ws:
            status = loads_exact(await ws.recv())
            await ws.send(json.dumps({"method": "ping", "req_id": 1}))
            pong = loads_exact(await ws.recv())
            sim.set_status("post_only")  # on the loop thread: applied directly
            update = loads_exact(await ws.recv())
            assert update["data"][0]["system"] == "post_only"
            count = sim.connection_count
        remaining = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert remaining == []
        return status, pong, count

    status, pong, count = asyncio.run(scenario())
    assert status["data"][0]["system"] == "online"
    assert pong == {**pong, "method": "pong", "req_id": 1}
    assert count == 1


def test_bad_settings_are_rejected():
    with pytest.raises(InvalidParams, match="speed"):
        Simulator(speed=0)
    with pytest.raises(InvalidParams, match="port"):
        Simulator(port=70000)
    with pytest.raises(InvalidParams, match="NOPE/USD"):
        Simulator(pairs=["NOPE/USD"])
