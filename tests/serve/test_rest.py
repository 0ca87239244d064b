"""The REST surface against a real uvicorn and the simulator: every route, then every error case."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from kraken_nb import KrakenClient
from kraken_nb.core.journal import stream_key
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.wire import loads_exact
from kraken_nb.errors import InvalidParams
from kraken_nb.serve.models import OPERATIONS
from kraken_nb.serve.server import ServeHandle

from .conftest import serving
from .helpers import BookReader, post, result


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text
    return body


# -- the 12 routes ----------------------------------------------------------------------------


def test_publish_subscribes_once_and_a_repeat_is_answered_with_the_same_ack(
    rest: httpx.Client, module_client: KrakenClient
) -> None:
    first = result(post(rest, "book", "publish", {"symbol": ["BTC/USD"], "depth": 10}))
    assert first["method"] == "subscribe" and first["channel"] == "book" and first["sent"] == ["BTC/USD"]
    [ack] = first["acks"]
    assert ack["success"] is True and ack["method"] == "subscribe"
    assert ack["result"] == {"channel": "book", "symbol": "BTC/USD", "depth": 10, "snapshot": True}
    assert ack["time_in"].endswith("Z") and ack["time_out"].endswith("Z")
    upstream = rest.get("/v1/health").json()["serve"]["upstream_requests"]
    again = result(post(rest, "book", "publish", {"symbol": "BTC/USD", "depth": 10, "method": "subscribe"}))
    assert again["sent"] == [] and again["acks"] == [ack]
    assert rest.get("/v1/health").json()["serve"]["upstream_requests"] == upstream
    assert [s.symbol for s in module_client.subscriptions() if s.channel == "book"] == ["BTC/USD"]


def test_book_snapshot_then_every_page_reproduces_every_checksum(
    rest: httpx.Client, module_client: KrakenClient
) -> None:
    result(post(rest, "book", "publish", {"symbol": ["BTC/USD"], "depth": 10}))
    pairs = result(post(rest, "instrument", "subscribe"))["messages"][0]["data"]["pairs"]
    pair = next(p for p in pairs if p["symbol"] == "BTC/USD")
    reader = BookReader("BTC/USD", 10, pair["price_precision"], pair["qty_precision"])
    first = result(post(rest, "book", "subscribe", {"symbol": ["BTC/USD"], "wait": 10}))
    assert first["gap"] is False and [m["type"] for m in first["messages"]] == ["snapshot"]
    reader.apply(first["messages"][0])
    cursor = first["cursor"]
    while reader.applied < 30:
        page = result(post(rest, "book", "subscribe", {"symbol": ["BTC/USD"], "since": cursor, "wait": 10}))
        assert not page["gap"] and page["messages"] and page["cursor"] > cursor
        for message in page["messages"]:
            assert set(message) == {"channel", "type", "data"}
            reader.apply(message)
        cursor = page["cursor"]
    assert reader.mismatches == []


def test_pages_are_the_frames_kraken_sent_byte_for_byte(rest: httpx.Client, served: ServeHandle) -> None:
    result(post(rest, "trade", "publish", {"symbol": ["ETH/USD"]}))
    start = result(post(rest, "trade", "subscribe", {"symbol": ["ETH/USD"]}))["cursor"]
    response = post(rest, "trade", "subscribe", {"symbol": ["ETH/USD"], "since": start, "wait": 10})
    page = result(response)
    with served._upstream.locked():
        texts = served.journal.read([stream_key("trade", "ETH/USD")], start, 100).messages[
            : len(page["messages"])
        ]
    assert texts and all(isinstance(t, str) for t in texts)  # frames of one symbol are kept verbatim
    assert b'"messages":[' + b",".join(t.encode() for t in texts) + b"]" in response.content
    for message in page["messages"]:
        assert message["channel"] == "trade" and message["type"] in ("snapshot", "update")
        assert all(isinstance(row["price"], type(loads_exact("1.5"))) for row in message["data"])


def test_trade_pages_follow_the_clients_trades_without_duplicates(
    rest: httpx.Client, module_client: KrakenClient
) -> None:
    result(post(rest, "trade", "publish", {"symbol": ["SOL/USD"], "snapshot": True}))
    snapshot = result(post(rest, "trade", "subscribe", {"symbol": ["SOL/USD"], "wait": 10}))
    ids = [row["trade_id"] for row in snapshot["messages"][0]["data"]]
    cursor = snapshot["cursor"]
    deadline = time.monotonic() + 20
    while len(ids) < 10 and time.monotonic() < deadline:
        page = result(post(rest, "trade", "subscribe", {"symbol": ["SOL/USD"], "since": cursor, "wait": 5}))
        ids += [row["trade_id"] for message in page["messages"] for row in message["data"]]
        cursor = page["cursor"]
    client_ids = list(module_client.trades("SOL/USD").trade_id)
    assert len(ids) >= 10 and len(set(ids)) == len(ids)
    assert ids == client_ids[client_ids.index(ids[0]) : client_ids.index(ids[0]) + len(ids)]


def test_ticker_ohlc_instrument_and_ping_routes(rest: httpx.Client) -> None:
    ticker = result(post(rest, "ticker", "publish", {"symbol": ["BTC/USD"], "event_trigger": "bbo"}))
    assert ticker["acks"][0]["result"]["event_trigger"] == "bbo"
    snap = result(post(rest, "ticker", "subscribe", {"symbol": ["BTC/USD"], "wait": 10}))
    [row] = snap["messages"][0]["data"]
    assert row["symbol"] == "BTC/USD" and row["bid"] < row["ask"]

    result(post(rest, "ohlc", "publish", {"symbol": ["BTC/USD"], "interval": 5}))
    candles = result(post(rest, "ohlc", "subscribe", {"symbol": ["BTC/USD"], "interval": 5, "wait": 10}))
    rows = candles["messages"][0]["data"]
    assert rows and {r["interval"] for r in rows} == {5}
    assert [r["interval_begin"] for r in rows] == sorted(r["interval_begin"] for r in rows)
    every = result(post(rest, "ohlc", "subscribe", {"symbol": ["BTC/USD"]}))  # no interval: each subscribed
    assert {r["interval"] for r in every["messages"][0]["data"]} == {5}
    problem(post(rest, "ohlc", "subscribe", {"symbol": ["BTC/USD"], "interval": 15}), 409)

    instrument = result(post(rest, "instrument", "publish", {}))
    assert instrument["sent"] == []  # the server subscribed it when it started
    data = result(post(rest, "instrument", "subscribe"))["messages"][0]["data"]
    assert {"BTC/USD", "ETH/USD"} <= {p["symbol"] for p in data["pairs"]} and data["assets"]

    ping = result(post(rest, "ping", "publish"))
    assert ping["pong"]["method"] == "pong" and ping["round_trip_ms"] > 0
    last = result(post(rest, "ping", "subscribe"))
    assert last["messages"][-1] == ping["pong"]
    assert result(post(rest, "ping", "subscribe", {"since": last["cursor"]}))["messages"] == []


def test_unsubscribe_then_reading_is_refused_and_a_repeat_is_idempotent(
    rest: httpx.Client, module_client: KrakenClient
) -> None:
    result(post(rest, "ticker", "publish", {"symbol": ["ADA/USD"]}))
    gone = result(post(rest, "ticker", "publish", {"symbol": ["ADA/USD"], "method": "unsubscribe"}))
    assert gone["sent"] == ["ADA/USD"] and gone["acks"][0]["method"] == "unsubscribe"
    assert not any(s.channel == "ticker" and s.symbol == "ADA/USD" for s in module_client.subscriptions())
    detail = problem(post(rest, "ticker", "subscribe", {"symbol": ["ADA/USD"]}), 409)["detail"]
    assert "publish first" in detail and "/v1/streams/ticker/publish" in detail
    again = result(post(rest, "ticker", "publish", {"symbol": ["ADA/USD"], "method": "unsubscribe"}))
    assert again["sent"] == [] and again["acks"] == gone["acks"]


def test_openapi_docs_and_health(rest: httpx.Client) -> None:
    spec = rest.get("/openapi.json").json()
    ids = {op["operationId"] for path in spec["paths"].values() for op in path.values()}
    assert {o.operation_id for o in OPERATIONS} <= ids
    book = spec["paths"]["/v1/streams/book/publish"]["post"]
    schema = book["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["params"]["properties"]["depth"]["enum"] == [10, 25, 100, 500, 1000]
    assert {"400", "404", "409", "422", "503", "504"} <= set(book["responses"])
    assert "swagger" in rest.get("/docs").text.lower()
    health = rest.get("/v1/health").json()
    assert health["state"] == "live" and health["client"]["messages"] > 0
    assert any(s["channel"] == "instrument" for s in health["subscriptions"])


# -- errors -------------------------------------------------------------------------------------


def test_bad_bodies_are_400_with_a_clear_detail(rest: httpx.Client) -> None:
    url = "/v1/streams/book/publish"
    headers = {"content-type": "application/json"}
    assert "not valid JSON" in problem(rest.post(url, content=b"{nope", headers=headers), 400)["detail"]
    assert "JSON object" in problem(rest.post(url, json=[1, 2]), 400)["detail"]
    assert "needs its channel" in problem(rest.post(url, json={"params": {}}), 400)["detail"]
    assert "'trade'" in problem(rest.post(url, json={"channel": "trade"}), 400)["detail"]
    assert "unknown body member" in problem(rest.post(url, json={"channel": "book", "x": 1}), 400)["detail"]
    text_plain = rest.post(url, content=b'{"channel":"book"}', headers={"content-type": "text/plain"})
    assert "application/json" in problem(text_plain, 415)["detail"]


def test_invalid_params_are_422_with_the_python_apis_message(rest: httpx.Client) -> None:
    def message(*args: object, **kwargs: object) -> str:
        with pytest.raises(InvalidParams) as raised:
            validate_subscription(*args, **kwargs)  # type: ignore[arg-type]
        return str(raised.value)

    cases = [
        ("book", {"symbol": ["BTC/USD"], "depth": 7}, message("book", ["BTC/USD"], depth=7)),
        ("ohlc", {"symbol": ["BTC/USD"], "interval": 2}, message("ohlc", ["BTC/USD"], interval=2)),
        ("ticker", {"symbol": ["btc-usd"]}, message("ticker", ["btc-usd"])),
        ("trade", {"symbol": ["BTC/USD"], "depth": 10}, message("trade", ["BTC/USD"], depth=10)),
        ("trade", {}, message("trade", None)),
        ("instrument", {"symbol": ["BTC/USD"]}, message("instrument", ["BTC/USD"])),
    ]
    for channel, params, expected in cases:
        assert problem(post(rest, channel, "publish", params), 422)["detail"] == expected
    assert (
        "method"
        in problem(post(rest, "book", "publish", {"symbol": "BTC/USD", "method": "x"}), 422)["detail"]
    )
    assert "params" in problem(post(rest, "book", "publish", [1]), 422)["detail"]  # type: ignore[arg-type]
    assert "ping takes no" in problem(post(rest, "ping", "publish", {"req_id": 1}), 422)["detail"]
    for params in ({"symbol": ["BTC/USD"], "since": -1}, {"symbol": ["BTC/USD"], "since": True}):
        assert "since" in problem(post(rest, "book", "subscribe", params), 422)["detail"]
    assert (
        "limit" in problem(post(rest, "book", "subscribe", {"symbol": "BTC/USD", "limit": 0}), 422)["detail"]
    )
    assert (
        "depth" in problem(post(rest, "book", "subscribe", {"symbol": "BTC/USD", "depth": 10}), 422)["detail"]
    )


def test_unknown_symbols_and_paths_are_404_and_wrong_methods_405(rest: httpx.Client) -> None:
    detail = problem(post(rest, "book", "publish", {"symbol": ["XBT/FOO"]}), 404)["detail"]
    assert "XBT/FOO" in detail
    problem(post(rest, "trade", "subscribe", {"symbol": ["XBT/FOO"]}), 404)
    assert (
        "routes"
        in problem(rest.post("/v1/streams/candles/publish", json={"channel": "candles"}), 404)["detail"]
    )
    problem(rest.get("/v1/streams/book/publish"), 405)
    problem(rest.get("/v1/streams/candles/events"), 404)


def test_conflicting_params_are_409(rest: httpx.Client) -> None:
    result(post(rest, "book", "publish", {"symbol": ["ETH/BTC"], "depth": 10}))
    detail = problem(post(rest, "book", "publish", {"symbol": ["ETH/BTC"], "depth": 25}), 409)["detail"]
    assert "unsubscribe first" in detail


def test_an_unexpected_failure_is_a_500_problem_without_traceback_and_serving_goes_on(
    rest: httpx.Client, served: ServeHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken() -> dict:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served.operations, "health", broken)
    body = problem(rest.get("/v1/health"), 500)
    assert "secret internals" not in json.dumps(body)
    monkeypatch.undo()
    assert rest.get("/v1/health").status_code == 200


def test_kraken_rejecting_a_subscribe_is_502_with_its_reason(fresh: KrakenClient) -> None:
    with serving(fresh) as (_handle, rest):
        fresh.wait_until(lambda c: bool(c.instruments().shape[0]), timeout=10)
        assert fresh.simulator is not None
        fresh.simulator.reject_next_subscribe("EService:Unavailable")
        body = problem(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}), 502)
        assert "EService:Unavailable" in body["detail"] and body["rejections"] == {
            "BTC/USD": "EService:Unavailable"
        }
        assert result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))["sent"] == ["BTC/USD"]


def test_while_upstream_is_down_requests_are_503_with_the_state(fresh: KrakenClient) -> None:
    with serving(fresh, max_wait=2.0) as (_handle, rest):
        result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))
        cursor = result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"]}))["cursor"]
        assert fresh.simulator is not None
        fresh.simulator.close()
        fresh.wait_until(lambda c: c.connection_state != "live", timeout=10)
        for response in (
            post(rest, "ticker", "publish", {"symbol": ["BTC/USD"]}),
            post(rest, "ping", "publish"),
            post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "wait": 0.2}),
        ):
            body = problem(response, 503)
            assert body["state"] in ("connecting", "reconnecting") and body["state"] in body["detail"]
        # a page read that finds nothing new while down says so; the cursor stays valid
        while True:
            response = post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"], "since": cursor, "wait": 0.5})
            if response.status_code == 503:
                assert response.json()["cursor"] == cursor
                break
            cursor = result(response)["cursor"]  # trades still in flight when the link dropped
        assert rest.get("/v1/health").json()["state"] in ("connecting", "reconnecting")


def test_kraken_not_answering_in_time_is_504() -> None:
    from .silent import SilentServer

    with SilentServer() as server, KrakenClient(server.url, timeout=5) as client:
        client.wait_connected()
        with serving(client, upstream_timeout=0.5) as (_handle, rest):
            body = problem(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}), 504)
            assert "0.5 s" in body["detail"] and body["state"] == "live"
            problem(post(rest, "ping", "publish"), 504)
            assert rest.get("/v1/health").status_code == 200
