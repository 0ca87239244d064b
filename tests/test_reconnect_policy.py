"""When and how often the client dials again, against small misbehaving servers on loopback.

Minutes of backoff and budget are compressed through the transport's clock
(``VirtualClock``): nothing here sleeps for them.
"""

from __future__ import annotations

import threading
import time

import pytest
from servers import STATUS, VirtualClock, ack_subscribes, loopback_server
from websockets.asyncio.server import ServerConnection

from kraken_nb import KrakenClient
from kraken_nb.core.reconnect import Backoff, ConnectBudget
from kraken_nb.errors import ConnectionFailed, KrakenError

FAST_RECONNECT = Backoff(initial=0.05, maximum=0.5)


def run_until(clock: VirtualClock, seconds: float, timeout: float = 60.0) -> None:
    """Wait (in real time) until the virtual clock has passed ``seconds``."""
    deadline = time.monotonic() + timeout
    while clock.now() < seconds:
        assert time.monotonic() < deadline, f"the virtual clock reached only {clock.now():.0f} s"
        time.sleep(0.01)


def per_window(times: list[float], window: float) -> int:
    """The most connects in any rolling ``window`` seconds."""
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def close_with(code: int, reason: str, ws: ServerConnection) -> None:
    await ws.send(STATUS)
    await ws.close(code, reason)


def test_close_code_1008_is_final_and_says_why() -> None:
    async def handler(ws: ServerConnection) -> None:
        await close_with(1008, "Too many connections from your IP", ws)

    with (
        loopback_server(handler) as server,
        KrakenClient(server.url, backoff=FAST_RECONNECT, timeout=5) as client,
    ):
        failures: list = []
        client.on("failed", failures.append)
        client.wait_until(lambda c: c.connection_state == "failed", timeout=10)
        time.sleep(0.5)  # several backoff delays: nothing dials again
        assert server.connections == 1
        stats = client.stats()
        assert stats["state"] == "failed"
        assert (stats["close_code"], stats["close_reason"]) == (1008, "Too many connections from your IP")
        assert "1008" in stats["last_error"] and stats["reconnects"] == 0
        assert isinstance(client.failure, ConnectionFailed) and client.failure.code == 1008
        client.wait_until(lambda c: bool(failures), timeout=5)
        assert failures[0].data.reason == "Too many connections from your IP"
        with pytest.raises(ConnectionFailed, match=r"1008.*Too many connections"):
            client.subscribe("trade", "BTC/USD")
        with pytest.raises(ConnectionFailed):
            client.wait_connected()
        assert isinstance(client.failure, KrakenError)
    assert client.connection_state == "closed"


@pytest.mark.parametrize("code", [1001, 1011, 1013, None])
def test_every_other_close_reconnects(code: int | None) -> None:
    async def handler(ws: ServerConnection) -> None:
        if code is None:
            await ws.send(STATUS)
            ws.transport.abort()  # no close frame at all
        else:
            await close_with(code, "bye", ws)

    with (
        loopback_server(handler) as server,
        KrakenClient(server.url, backoff=FAST_RECONNECT, timeout=5) as client,
    ):
        client.wait_until(lambda c: server.connections >= 3, timeout=15)
        stats = client.stats()
        assert stats["state"] in ("connecting", "live", "reconnecting")
        assert client.failure is None
        assert stats["close_code"] == (code or 1006)
        expected = f"{code}" if code else "no close frame"
        assert expected in stats["last_error"]


def test_connects_per_minute_against_a_server_that_always_drops() -> None:
    """About 8 connects in the first minute, then 2–4 a minute: far inside Kraken's ~150 per 10 min."""
    clock = VirtualClock()

    async def handler(ws: ServerConnection) -> None:
        ws.transport.abort()

    with loopback_server(handler, clock=clock) as server, KrakenClient(server.url, clock=clock) as client:
        run_until(clock, 600.0)
        stats = client.stats()
    times = server.connected_at
    first_minute = sum(1 for t in times if t < 60.0)
    ten_minutes = sum(1 for t in times if t < 600.0)
    print(f"always-drop server: {first_minute} connects in the first minute, {ten_minutes} in 10 minutes")
    assert 5 <= first_minute <= 12
    assert ten_minutes <= 50
    assert stats["connects"] >= ten_minutes and stats["budget_waits"] == 0
    assert stats["connects_in_window"] <= stats["connect_budget"] == 100


def test_a_server_that_closes_after_6_s_is_not_a_reason_to_reset_the_backoff() -> None:
    """Subscriptions confirmed and data flowing for 6 s is not "useful": the backoff keeps growing."""
    clock = VirtualClock()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(STATUS)
        async for text in ws:
            symbols = await ack_subscribes(ws, text)
            for trade_id, symbol in enumerate(symbols, 1):
                trade = (
                    f'{{"symbol":"{symbol}","side":"buy","price":100.5,"qty":1.0,"ord_type":"limit",'
                    f'"trade_id":{trade_id},"timestamp":"2024-01-01T00:00:00.000000Z"}}'
                )
                await ws.send(f'{{"channel":"trade","type":"update","data":[{trade}]}}')
            await clock.sleep(6.0)
            await ws.close(1001, "going away")

    with loopback_server(handler, clock=clock) as server, KrakenClient(server.url, clock=clock) as client:
        client.subscribe("trade", "BTC/USD")
        run_until(clock, 600.0)
        stats = client.stats()
    ten_minutes = sum(1 for t in server.connected_at if t < 600.0)
    print(f"6-second server: {ten_minutes} connects in 10 minutes (the old reset rule made ~95)")
    assert ten_minutes <= 35
    assert stats["backoff_attempt"] >= 6


def test_the_connect_budget_holds_when_the_backoff_alone_would_not() -> None:
    clock = VirtualClock()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(STATUS)
        await clock.sleep(1.0)
        await ws.close(1011, "internal error")

    tiny = Backoff(initial=0.05, maximum=0.1)
    budget = ConnectBudget(limit=100, window=600.0)
    with (
        loopback_server(handler, clock=clock) as server,
        KrakenClient(server.url, clock=clock, backoff=tiny, connect_budget=budget) as client,
    ):
        run_until(clock, 1500.0, timeout=120.0)
        stats = client.stats()
    times = [t for t in server.connected_at if t < 1500.0]
    print(f"budget: {len(times)} connects in 25 minutes, at most {per_window(times, 600.0)} per 600 s")
    assert per_window(times, 600.0) <= 100
    assert len(times) >= 200, "the budget binds, it does not starve the client"
    assert stats["budget_waits"] >= 2
    assert stats["connects_in_window"] <= 100


def test_a_useful_connection_resets_the_backoff_and_a_short_one_does_not() -> None:
    with KrakenClient.simulated(
        speed=20, client_options={"backoff": FAST_RECONNECT, "stable_after": 1.0, "silence_timeout": 2.0}
    ) as client:
        client.subscribe("trade", "BTC/USD")
        disconnected = threading.Event()
        client.on("disconnected", lambda event: disconnected.set())
        for expected in (1, 2, 3):
            client.simulator.drop_connections()  # too soon after connecting to have proved useful
            assert disconnected.wait(5)
            disconnected.clear()
            client.wait_until(lambda c: c.connection_state == "live", timeout=10)
            assert client.stats()["backoff_attempt"] == expected
        client.wait_until(lambda c: c.stats()["subscriptions"] == {"confirmed": 1}, timeout=10)
        time.sleep(2.0)  # confirmed and streaming for longer than stable_after
        client.simulator.drop_connections()
        assert disconnected.wait(5)
        client.wait_until(lambda c: c.connection_state == "live", timeout=10)
        assert client.stats()["backoff_attempt"] == 1


def test_a_frame_too_big_is_reported_as_1009() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(STATUS)
        await ws.send('{"channel":"heartbeat","pad":"' + "x" * 300_000 + '"}')
        await ws.wait_closed()

    with (
        loopback_server(handler) as server,
        KrakenClient(server.url, backoff=FAST_RECONNECT, max_size=100_000) as client,
    ):
        client.wait_until(lambda c: c.stats()["reconnects"] >= 1, timeout=10)
        error = client.stats()["last_error"]
    assert "1009" in error and "message too big" in error, error
    assert "no close frame" not in error
