"""Starting and stopping: handle.stop() and client.close() end everything, in-flight requests included."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from kraken_nb import ClientClosed, KrakenClient

from .conftest import simulated
from .helpers import post, result


def serve_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("kraken-nb-serve")]


def test_closing_the_client_stops_its_servers_and_leaves_no_thread() -> None:
    client = simulated()
    handle = client.serve(0, 0)
    rest = handle.urls["rest"]
    assert handle.running and serve_threads()
    assert repr(handle) == f"<ServeHandle rest={rest} mcp={handle.urls['mcp']} running>"
    assert httpx.get(rest + "/v1/health", timeout=10).status_code == 200
    client.close()
    assert not handle.running and "stopped" in repr(handle)
    assert serve_threads() == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(rest + "/v1/health", timeout=2)
    handle.stop()  # idempotent
    with pytest.raises(ClientClosed):
        client.serve(0, 0)


def test_stop_ends_long_polls_and_event_streams_in_flight(fresh: KrakenClient) -> None:
    handle = fresh.serve(0, 0)
    base = handle.urls["rest"]
    with httpx.Client(base_url=base, timeout=30) as rest:
        cursor = result(post(rest, "ping", "subscribe"))["cursor"]
    answers: list[httpx.Response] = []
    stream_ended = threading.Event()

    def long_poll() -> None:
        with httpx.Client(base_url=base, timeout=30) as own:
            answers.append(post(own, "ping", "subscribe", {"since": cursor, "wait": 25}))

    def stream() -> None:
        try:
            with (
                httpx.Client(base_url=base, timeout=30) as own,
                own.stream("GET", "/v1/streams/ping/events") as s,
            ):
                for _ in s.iter_lines():
                    pass
        except httpx.HTTPError:
            pass
        stream_ended.set()

    workers = [threading.Thread(target=long_poll), threading.Thread(target=stream)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 10
    while True:
        serve = httpx.get(base + "/v1/health", timeout=10).json()["serve"]
        if serve["polling"] and serve["sse_clients"]:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    handle.stop()
    for worker in workers:
        worker.join(15)
    assert time.monotonic() - started < 10
    assert stream_ended.is_set()
    assert answers and answers[0].status_code == 503 and "shutting down" in answers[0].json()["detail"]
    assert serve_threads() == []
    assert fresh.connection_state == "live"  # the client goes on; only the servers stopped


def test_the_listening_sockets_turn_nagle_off(fresh: KrakenClient) -> None:
    # asyncio only does it for sockets made with proto=IPPROTO_TCP; without it every answer
    # waits for the peer's delayed ACK (about 40 ms). Accepted connections inherit the option.
    import socket

    with fresh.serve(0, 0) as handle:
        for sock in handle._sockets:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_an_idle_connection_outlives_a_client_pools_keep_alive(fresh: KrakenClient) -> None:
    """httpx keeps an idle connection 5 s; a server closing it at 5 s too races the next request."""
    import http.client
    import socket
    from urllib.parse import urlsplit

    with fresh.serve(0, 0) as handle:
        url = urlsplit(handle.urls["rest"])
        connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
        try:
            connection.request("GET", "/v1/health")
            answer = connection.getresponse()
            assert answer.status == 200 and answer.read()  # read whole: nothing is left unread
            time.sleep(6.0)  # idle past httpx's keepalive_expiry (and uvicorn's default)
            sock = connection.sock
            assert sock is not None
            sock.setblocking(False)
            try:
                closed = sock.recv(1, socket.MSG_PEEK) == b""
            except BlockingIOError:
                closed = False  # nothing to read: still open
            assert not closed, "the server closed an idle keep-alive connection after 6 s"
            sock.setblocking(True)
            connection.request("GET", "/v1/health")  # and the same connection still answers
            assert connection.getresponse().status == 200
        finally:
            connection.close()
