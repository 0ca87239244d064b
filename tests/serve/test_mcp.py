"""The MCP surface through the official SDK client over real HTTP: tools, schemas, calls, errors."""

from __future__ import annotations

import json
import time

import httpx

from kraken_nb.serve.models import OPERATIONS
from kraken_nb.serve.server import ServeHandle

from .helpers import mcp, post, result

TOOLS = {operation.tool: operation for operation in OPERATIONS}


def test_the_twelve_tools_with_their_descriptions_hints_and_schemas(served: ServeHandle) -> None:
    tools, _ = mcp(served.urls["mcp"])
    listed = {tool.name: tool for tool in tools.tools}
    assert set(listed) == set(TOOLS)
    for name, tool in listed.items():
        operation = TOOLS[name]
        assert tool.description == operation.description
        hints = tool.annotations
        assert (
            hints.read_only_hint,
            hints.destructive_hint,
            hints.idempotent_hint,
            hints.open_world_hint,
        ) == (
            operation.reads,
            False,
            True,
            True,
        )
        schema = tool.input_schema
        assert schema["required"] == ["channel"]
        assert schema["properties"]["channel"] == {
            "type": "string",
            "const": operation.channel,
            "description": "Channel name.",
        }
        params = schema["properties"]["params"]["properties"]
        if operation.reads:
            assert {"since", "limit", "wait"} <= set(params)
            assert set(tool.output_schema["required"]) == {"channel", "cursor", "gap", "messages"}
        elif operation.channel != "ping":
            assert params["method"]["enum"] == ["subscribe", "unsubscribe"]
            assert set(tool.output_schema["required"]) == {"method", "channel", "acks", "sent"}
    book = listed["subscribe-unsubscribe-book-channel"].input_schema["properties"]["params"]["properties"]
    assert book["depth"]["enum"] == [10, 25, 100, 500, 1000]
    ohlc = listed["subscribe-unsubscribe-ohlc-channel"].input_schema["properties"]["params"]["properties"]
    assert ohlc["interval"]["enum"] == [1, 5, 15, 30, 60, 240, 1440, 10080, 21600]
    assert (
        "interval"
        in listed["receive-ohlc-snapshot-and-update"].input_schema["properties"]["params"]["properties"]
    )


def test_every_tool_can_be_called_and_answers_with_structured_content_and_a_summary(
    served: ServeHandle,
) -> None:
    symbol = {"symbol": ["DOGE/USD"]}
    calls = [
        ("subscribe-unsubscribe-book-channel", {"channel": "book", "params": {**symbol, "depth": 10}}),
        ("subscribe-unsubscribe-ticker-channel", {"channel": "ticker", "params": symbol}),
        ("subscribe-unsubscribe-ohlc-channel", {"channel": "ohlc", "params": {**symbol, "interval": 1}}),
        ("subscribe-unsubscribe-trade-channel", {"channel": "trade", "params": {**symbol, "snapshot": True}}),
        ("subscribe-unsubscribe-instrument-channel", {"channel": "instrument", "params": {}}),
        ("send-ping-server", {"channel": "ping"}),
        ("receive-book-snapshot-and-update", {"channel": "book", "params": {**symbol, "wait": 10}}),
        ("receive-ticker-snapshot-and-updates", {"channel": "ticker", "params": {**symbol, "wait": 10}}),
        ("receive-ohlc-snapshot-and-update", {"channel": "ohlc", "params": {**symbol, "wait": 10}}),
        ("receive-trade-snapshot-and-update", {"channel": "trade", "params": {**symbol, "wait": 10}}),
        ("receive-instrument-snapshot-and-update", {"channel": "instrument"}),
        ("receive-pong-response-server", {"channel": "ping", "params": {}}),
    ]
    _, results = mcp(served.urls["mcp"], *calls)
    assert {name for name, _ in calls} == set(TOOLS)
    for (name, _), outcome in zip(calls, results, strict=True):
        assert not outcome.is_error, (name, outcome.content)
        assert outcome.structured_content and outcome.content[0].type == "text"
    by_name = {name: outcome for (name, _), outcome in zip(calls, results, strict=True)}
    subscribed = by_name["subscribe-unsubscribe-book-channel"].structured_content
    assert subscribed["sent"] == ["DOGE/USD"] and subscribed["acks"][0]["result"]["depth"] == 10
    book = by_name["receive-book-snapshot-and-update"]
    assert book.structured_content["messages"][0]["type"] == "snapshot"
    assert "best bid" in book.content[0].text and "spread" in book.content[0].text
    ticker = by_name["receive-ticker-snapshot-and-updates"].content[0].text
    assert "DOGE/USD: last" in ticker and "bid" in ticker
    assert "ms" in by_name["send-ping-server"].content[0].text
    assert by_name["receive-pong-response-server"].structured_content["messages"][0]["method"] == "pong"
    assert "pairs" in by_name["receive-instrument-snapshot-and-update"].content[0].text


def test_structured_content_is_the_rest_result(served: ServeHandle, rest: httpx.Client) -> None:
    result(post(rest, "book", "publish", {"symbol": ["LTC/EUR"], "depth": 10}))
    start = result(post(rest, "book", "subscribe", {"symbol": ["LTC/EUR"], "wait": 10}))["cursor"]
    params = {"symbol": ["LTC/EUR"], "since": start, "limit": 3}
    deadline = time.monotonic() + 30
    while True:  # wait until three messages exist after the cursor: then both reads see the same page
        page = post(rest, "book", "subscribe", {**params, "wait": 5})
        if len(result(page)["messages"]) == 3 or time.monotonic() > deadline:
            break
    rest_result = json.loads(page.content)["result"]
    _, [outcome] = mcp(
        served.urls["mcp"], ("receive-book-snapshot-and-update", {"channel": "book", "params": params})
    )
    assert len(rest_result["messages"]) == 3
    assert outcome.structured_content == rest_result
    assert "3 book message(s)" in outcome.content[0].text


def test_invalid_input_is_a_tool_error_with_the_rest_message(served: ServeHandle, rest: httpx.Client) -> None:
    cases = [
        (
            "subscribe-unsubscribe-book-channel",
            {"channel": "book", "params": {"symbol": ["BTC/USD"], "depth": 7}},
        ),
        ("subscribe-unsubscribe-book-channel", {"channel": "trade", "params": {"symbol": ["BTC/USD"]}}),
        ("subscribe-unsubscribe-book-channel", {"params": {"symbol": ["BTC/USD"]}}),
        ("receive-trade-snapshot-and-update", {"channel": "trade", "params": {"symbol": ["XBT/FOO"]}}),
        ("receive-trade-snapshot-and-update", {"channel": "trade", "params": {"symbol": ["XRP/EUR"]}}),
        ("receive-book-snapshot-and-update", {"channel": "book", "params": "BTC/USD"}),
        ("send-ping-server", {"channel": "ping", "params": {"now": True}}),
    ]
    _, outcomes = mcp(served.urls["mcp"], *cases)
    for (name, arguments), outcome in zip(cases, outcomes, strict=True):
        assert outcome.is_error, (name, arguments)
        channel = TOOLS[name].channel
        kind = "subscribe" if TOOLS[name].reads else "publish"
        response = rest.post(f"/v1/streams/{channel}/{kind}", json=arguments)
        assert response.status_code in (400, 404, 409, 422)
        assert outcome.content[0].text == response.json()["detail"]


def test_results_are_bounded_by_limit_with_a_cursor_for_more(served: ServeHandle, rest: httpx.Client) -> None:
    result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))
    start = result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"]}))["cursor"]
    deadline = time.monotonic() + 30
    while (
        len(result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "since": start}))["messages"]) < 4
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    arguments = {"channel": "trade", "params": {"symbol": ["BTC/USD"], "since": start, "limit": 2}}
    _, [first] = mcp(served.urls["mcp"], ("receive-trade-snapshot-and-update", arguments))
    page = first.structured_content
    assert len(page["messages"]) == 2 and page["cursor"] > start
    arguments["params"]["since"] = page["cursor"]
    _, [second] = mcp(served.urls["mcp"], ("receive-trade-snapshot-and-update", arguments))
    ids = [r["trade_id"] for m in page["messages"] + second.structured_content["messages"] for r in m["data"]]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)


def test_dns_rebinding_protection_is_on(served: ServeHandle) -> None:
    request = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
    ok = httpx.post(served.urls["mcp"], json=request, headers=headers, timeout=10)
    assert ok.status_code == 200 and "receive-book-snapshot-and-update" in ok.text
    evil = httpx.post(
        served.urls["mcp"], json=request, headers={**headers, "host": "evil.example"}, timeout=10
    )
    assert evil.status_code == 421
    origin = httpx.post(
        served.urls["mcp"], json=request, headers={**headers, "origin": "http://evil.example"}
    )
    assert origin.status_code == 403
    rebound = httpx.get(served.urls["rest"] + "/v1/health", headers={"host": "evil.example:8080"}, timeout=10)
    assert rebound.status_code == 421 and rebound.headers["content-type"] == "application/problem+json"


def test_summaries_say_what_matters() -> None:
    from kraken_nb.serve.mcp import summarize

    book = TOOLS["receive-book-snapshot-and-update"]
    gap = summarize(book, {"channel": "book", "cursor": 7, "gap": True, "messages": []})
    assert "GAP" in gap and "cursor 7" in gap
    snapshot = {
        "channel": "book",
        "type": "snapshot",
        "data": [
            {
                "symbol": "BTC/USD",
                "bids": [{"price": 100.1, "qty": 2.0}],
                "asks": [{"price": 100.4, "qty": 1.5}],
                "checksum": 42,
            }
        ],
    }
    text = summarize(book, {"channel": "book", "cursor": 8, "gap": False, "messages": [snapshot]})
    assert "best bid 100.1 × 2.0" in text and "spread 0.3" in text and "checksum 42" in text
    ticker = TOOLS["receive-ticker-snapshot-and-updates"]
    row = {"symbol": "ETH/USD", "last": 2000.5, "bid": None, "ask": 2001.0, "change_pct": 1.2}
    message = {"channel": "ticker", "type": "update", "data": [row]}
    assert "spread n/a" in summarize(
        ticker, {"channel": "ticker", "cursor": 1, "gap": False, "messages": [message]}
    )
    publish = TOOLS["subscribe-unsubscribe-trade-channel"]
    done = summarize(publish, {"method": "subscribe", "channel": "trade", "acks": [], "sent": []})
    assert "already in that state" in done
