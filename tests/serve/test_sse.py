"""Server-Sent Events: a snapshot then every message, cursors as event ids, resumable, gaps announced."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from kraken_nb import KrakenClient
from kraken_nb.core.wire import loads_exact

from .conftest import serving
from .helpers import BookReader, post, result


def events(rest: httpx.Client, url: str, count: int, headers: dict[str, str] | None = None) -> list[dict]:
    """The first ``count`` events of an SSE stream: ``{"id", "event", "data", "raw"}``."""
    found: list[dict] = []
    with rest.stream("GET", url, headers=headers or {}) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in _parse(response.iter_lines()):
            found.append(event)
            if len(found) == count:
                break
    return found


def _parse(lines: Iterator[str]) -> Iterator[dict]:
    event: dict = {"raw": ""}
    for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if "data" in event:
                yield event
            event = {"raw": ""}
            continue
        event["raw"] += line + "\n"
        name, _, value = line.partition(":")
        event[name] = value[1:] if value.startswith(" ") else value


def precisions(rest: httpx.Client, symbol: str) -> tuple[int, int]:
    pairs = result(post(rest, "instrument", "subscribe"))["messages"][0]["data"]["pairs"]
    pair = next(p for p in pairs if p["symbol"] == symbol)
    return pair["price_precision"], pair["qty_precision"]


def test_a_snapshot_then_every_update_each_with_its_cursor(rest: httpx.Client) -> None:
    result(post(rest, "book", "publish", {"symbol": ["XRP/EUR"], "depth": 10}))
    reader = BookReader("XRP/EUR", 10, *precisions(rest, "XRP/EUR"))
    found = events(rest, "/v1/streams/book/events?symbol=XRP/EUR", 25)
    assert loads_exact(found[0]["data"])["type"] == "snapshot"
    ids = [int(e["id"]) for e in found]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for event in found:
        assert event["event"] == "message"
        reader.apply(loads_exact(event["data"]))
    assert reader.applied == 25 and reader.mismatches == []


def test_last_event_id_resumes_without_losing_or_repeating(rest: httpx.Client) -> None:
    result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))
    first = events(rest, "/v1/streams/trade/events?symbol=BTC/USD", 3)
    last = first[-1]["id"]
    page = result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "since": int(last), "wait": 10}))
    resumed = events(rest, "/v1/streams/trade/events?symbol=BTC/USD", 1, {"Last-Event-ID": last})
    assert int(resumed[0]["id"]) > int(last)
    assert loads_exact(resumed[0]["data"]) == page["messages"][0]
    again = events(rest, f"/v1/streams/trade/events?symbol=BTC/USD&since={last}", 1)
    assert again[0]["id"] == resumed[0]["id"] and again[0]["data"] == resumed[0]["data"]


def test_a_cursor_past_the_window_gets_a_gap_event_then_a_fresh_snapshot(fresh: KrakenClient) -> None:
    with serving(fresh, journal_retain=3) as (_handle, rest):
        result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"], "snapshot": True}))
        start = result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "wait": 10}))["cursor"]
        deadline = time.monotonic() + 60
        while not result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "since": start}))["gap"]:
            assert time.monotonic() < deadline, "no more than 3 trade messages came in a minute"
            time.sleep(0.2)
        found = events(rest, f"/v1/streams/trade/events?symbol=BTC/USD&since={start}", 2)
        assert found[0]["event"] == "gap"
        assert loads_exact(found[1]["data"])["type"] == "snapshot" and int(found[1]["id"]) > start


def test_bad_event_requests_are_problems(rest: httpx.Client) -> None:
    for url, status in (
        ("/v1/streams/book/events?symbol=NOPE/USD", 404),
        ("/v1/streams/ohlc/events?symbol=ETH/USD&interval=21600", 409),
        ("/v1/streams/book/events?symbol=BTC/USD&depth=10", 422),
        ("/v1/streams/book/events?symbol=BTC/USD&since=x", 422),
    ):
        response = rest.get(url)
        assert response.status_code == status, (url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
