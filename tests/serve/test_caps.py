"""Every cap, when hit, is a clear 4xx (or tool error), and the server goes on serving."""

from __future__ import annotations

import threading
import time

import httpx

from kraken_nb import KrakenClient

from .conftest import serving
from .helpers import mcp, post, result


def problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()["detail"]


def test_request_size_symbol_limit_and_wait_caps(fresh: KrakenClient) -> None:
    with serving(fresh, max_body_bytes=512, max_symbols=2, max_wait=1.0, max_limit=50, default_limit=10) as (
        handle,
        rest,
    ):
        big = {"channel": "trade", "params": {"symbol": ["BTC/USD"] * 100}}
        assert "512 bytes" in problem(rest.post("/v1/streams/trade/publish", json=big), 413)
        chunked = rest.post(
            "/v1/streams/trade/publish",
            content=iter([b'{"channel":"trade","params":{"symbol":["', b"A" * 600, b'"]}}']),
            headers={"content-type": "application/json"},
        )
        assert "512 bytes" in problem(chunked, 413)
        three = {"symbol": ["BTC/USD", "ETH/USD", "SOL/USD"]}
        assert "at most 2" in problem(post(rest, "trade", "publish", three), 422)
        assert "at most 2" in problem(post(rest, "trade", "subscribe", three), 422)
        result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))
        assert "from 0 to 1" in problem(
            post(rest, "trade", "subscribe", {"symbol": "BTC/USD", "wait": 2}), 422
        )
        assert "1 to 50" in problem(post(rest, "trade", "subscribe", {"symbol": "BTC/USD", "limit": 51}), 422)
        mcp_body = rest.post(
            handle.urls["mcp"], content=b" " * 1000, headers={"content-type": "application/json"}
        )
        assert mcp_body.status_code == 413
        assert rest.get("/v1/health").status_code == 200


def test_the_subscription_cap_and_the_upstream_rate_limit(fresh: KrakenClient) -> None:
    with serving(fresh, max_subscriptions=3, upstream_burst=2, upstream_rate=0.25) as (handle, rest):
        fresh.wait_until(lambda c: any(s.channel == "instrument" for s in c.subscriptions()), timeout=10)
        assert result(post(rest, "trade", "publish", {"symbol": ["BTC/USD", "ETH/USD"]}))["sent"]
        detail = problem(post(rest, "trade", "publish", {"symbol": ["SOL/USD"]}), 409)
        assert "at most 3" in detail and "unsubscribe" in detail
        assert result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))["sent"] == []  # no request
        result(post(rest, "trade", "publish", {"symbol": ["ETH/USD"], "method": "unsubscribe"}))  # 2nd token
        limited = post(rest, "trade", "publish", {"symbol": ["SOL/USD"]})
        assert "retry in" in problem(limited, 429) and int(limited.headers["retry-after"]) >= 1
        assert limited.json()["retry_after"] > 0
        assert "limited" in problem(post(rest, "ping", "publish"), 429)
        _, [outcome] = mcp(handle.urls["mcp"], ("send-ping-server", {"channel": "ping"}))
        assert outcome.is_error and "limited" in outcome.content[0].text
        time.sleep(4.2)  # one token back at 0.25/s
        assert result(post(rest, "trade", "publish", {"symbol": ["SOL/USD"]}))["sent"] == ["SOL/USD"]


def test_long_poll_and_event_stream_caps(fresh: KrakenClient) -> None:
    with serving(fresh, max_waiters=2, max_sse_clients=1) as (handle, rest):
        cursor = result(post(rest, "ping", "subscribe"))["cursor"]
        answers: list[int] = []

        def poll() -> None:
            with httpx.Client(base_url=handle.urls["rest"], timeout=30) as own:
                answers.append(post(own, "ping", "subscribe", {"since": cursor, "wait": 3}).status_code)

        pollers = [threading.Thread(target=poll) for _ in range(2)]
        for thread in pollers:
            thread.start()
        deadline = time.monotonic() + 10
        while rest.get("/v1/health").json()["serve"]["polling"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "at most 2" in problem(post(rest, "ping", "subscribe", {"since": cursor, "wait": 3}), 429)
        assert result(post(rest, "ping", "subscribe", {"since": cursor}))["messages"] == []  # no wait: no cap
        for thread in pollers:
            thread.join()
        assert answers == [200, 200]
        assert result(post(rest, "ping", "subscribe", {"since": cursor, "wait": 0.1}))["messages"] == []

        with rest.stream("GET", "/v1/streams/ping/events") as first:
            assert first.status_code == 200
            assert "at most 1" in problem(rest.get("/v1/streams/ping/events"), 429)
        deadline = time.monotonic() + 10
        while rest.get("/v1/health").json()["serve"]["sse_clients"]:
            assert time.monotonic() < deadline, "a closed event stream is still counted"
            time.sleep(0.1)
        with rest.stream("GET", "/v1/streams/ping/events") as again:
            assert again.status_code == 200
