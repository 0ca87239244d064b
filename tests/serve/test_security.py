"""Loopback by default, a bearer key beyond it, and KRAKEN_WS_TOKEN never shown anywhere."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from kraken_nb import KrakenClient
from kraken_nb.errors import InvalidParams
from kraken_nb.serve.security import Secret, is_loopback
from kraken_nb.serve.server import ServeHandle

from .helpers import mcp, post


def test_binding_beyond_loopback_needs_a_key_and_leaves_nothing_bound(fresh: KrakenClient) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(InvalidParams, match="api_key"):
        fresh.serve(port, 0, host="0.0.0.0")
    again = socket.create_server(("0.0.0.0", port))  # the refused server bound nothing
    again.close()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.7")


def test_with_a_key_both_surfaces_require_it_as_a_bearer_token(fresh: KrakenClient) -> None:
    key = "k-" + secrets.token_hex(16)
    handle = fresh.serve(0, 0, host="0.0.0.0", api_key=key)
    try:
        rest_url = handle.urls["rest"].replace("0.0.0.0", "127.0.0.1")
        mcp_url = handle.urls["mcp"].replace("0.0.0.0", "127.0.0.1")
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": key}):
            refused = httpx.get(rest_url + "/v1/health", headers=headers, timeout=10)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.headers["content-type"] == "application/problem+json"
            assert httpx.post(mcp_url, json={}, headers=headers, timeout=10).status_code == 401
        good = {"authorization": f"Bearer {key}"}
        assert httpx.get(rest_url + "/v1/health", headers=good, timeout=10).status_code == 200
        with httpx.Client(base_url=rest_url, headers=good, timeout=30) as rest:
            assert post(rest, "ping", "publish").status_code == 200

        async def tools() -> list[str]:
            async with (
                httpx2.AsyncClient(headers=good) as http,
                Client(streamable_http_client(mcp_url, http_client=http)) as client,
            ):
                return [tool.name for tool in (await client.list_tools()).tools]

        assert len(asyncio.run(tools())) == 12
        assert key not in repr(handle) and key not in str(handle.urls)
    finally:
        handle.stop()


def test_the_kraken_token_never_appears_in_logs_responses_openapi_tools_or_reprs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    canary = "canary-" + secrets.token_hex(12)
    monkeypatch.setenv("KRAKEN_WS_TOKEN", canary)
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with KrakenClient.simulated(speed=20, seed=3) as client:
        handle = client.serve(0, 0)
        try:
            assert isinstance(handle.token, Secret) and handle.token.reveal() == canary  # read, held
            with httpx.Client(base_url=handle.urls["rest"], timeout=30) as rest:
                responses = [
                    post(rest, "book", "publish", {"symbol": ["BTC/USD"], "depth": 10}),
                    post(rest, "book", "subscribe", {"symbol": ["BTC/USD"], "wait": 5}),
                    post(rest, "trade", "publish", {"symbol": ["BTC/USD"], "token": canary}),
                    post(rest, "ticker", "subscribe", {"symbol": ["BTC/USD"]}),
                    post(rest, "ping", "publish"),
                    post(rest, "ping", "subscribe"),
                    post(rest, "book", "publish", {"symbol": ["NOPE/USD"]}),
                    rest.post(
                        "/v1/streams/book/publish", content=b"{", headers={"content-type": "application/json"}
                    ),
                    rest.get("/openapi.json"),
                    rest.get("/docs"),
                    rest.get("/v1/health"),
                    rest.get("/v1/nothing"),
                ]
                with rest.stream("GET", "/v1/streams/book/events?symbol=BTC/USD") as events:
                    for line in events.iter_lines():
                        seen.append(line)
                        if line.startswith("data:"):
                            break
            assert (
                responses[2].status_code == 422
            )  # 'token' is no parameter (the error names it, not its value)
            seen += [r.text + str(r.headers) for r in responses]
            tools, outcomes = mcp(
                handle.urls["mcp"],
                ("receive-book-snapshot-and-update", {"channel": "book", "params": {"symbol": ["BTC/USD"]}}),
                ("send-ping-server", {"channel": "ping"}),
                ("subscribe-unsubscribe-book-channel", {"channel": "book", "params": {"depth": 3}}),
            )
            seen.append(tools.model_dump_json())
            seen += [outcome.model_dump_json() for outcome in outcomes]
            seen += [repr(handle), str(handle.urls), repr(handle.token), str(handle.token), repr(client)]
            seen.append(str(client.stats()))
        finally:
            handle.stop()
    seen += [record.getMessage() + str(record.args) for record in caplog.records]
    assert len(caplog.records) > 5 and len(seen) > 20
    leaks = [text[:200] for text in seen if canary in text]
    assert leaks == []


def test_a_secret_hides_itself() -> None:
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) + str(secret) + f"{secret}"
    assert secret.matches("hunter2") and not secret.matches("hunter3")
    with pytest.raises(TypeError):
        import pickle

        pickle.dumps(secret)
    with pytest.raises(ValueError):
        Secret("")


def test_a_port_in_use_is_a_clear_oserror_and_the_client_keeps_working(fresh: KrakenClient) -> None:
    busy = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError):
            fresh.serve(busy.getsockname()[1], 0)
    finally:
        busy.close()
    with ServeHandle.start(fresh, rest_port=0, mcp_port=0) as handle:
        assert httpx.get(handle.urls["rest"] + "/v1/health", timeout=10).status_code == 200
