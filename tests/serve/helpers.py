"""What a reader of the REST and MCP surfaces does, for the serve tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from mcp import Client

from kraken_nb.core.book import OrderBook
from kraken_nb.core.wire import loads_exact

__all__ = ["BookReader", "mcp", "post", "result"]


def post(rest: httpx.Client, channel: str, kind: str, params: dict[str, Any] | None = None) -> httpx.Response:
    """POST /v1/streams/{channel}/{kind} with the body {channel, params}."""
    body: dict[str, Any] = {"channel": channel}
    if params is not None:
        body["params"] = params
    return rest.post(f"/v1/streams/{channel}/{kind}", json=body)


def result(response: httpx.Response) -> dict[str, Any]:
    """The ``result`` of a 200 answer, decoded with exact decimals."""
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json"
    return loads_exact(response.content)["result"]


class BookReader:
    """Applies a snapshot, then every update; checks Kraken's checksum on each; resets on a snapshot."""

    def __init__(self, symbol: str, depth: int, price_precision: int, qty_precision: int) -> None:
        self.symbol = symbol
        self.book = OrderBook(symbol, depth, price_precision=price_precision, qty_precision=qty_precision)
        self.applied = 0
        self.snapshots = 0
        self.mismatches: list[tuple[int, int]] = []

    def apply(self, message: dict[str, Any]) -> None:
        assert message["channel"] == "book", message
        snapshot = message["type"] == "snapshot"
        if snapshot:
            self.book.reset()
            self.snapshots += 1
        for entry in message["data"]:
            if entry["symbol"] != self.symbol:
                continue
            if not snapshot and self.snapshots == 0:
                raise AssertionError("an update before any snapshot")
            if not self.book.apply(entry, snapshot=snapshot):
                self.mismatches.append((entry["checksum"], self.book.checksum()))
            self.applied += 1


async def _call(url: str, calls: list[tuple[str, dict[str, Any]]]) -> tuple[Any, list[Any]]:
    async with Client(url) as client:
        tools = await client.list_tools()
        return tools, [await client.call_tool(name, arguments) for name, arguments in calls]


def mcp(url: str, *calls: tuple[str, dict[str, Any]]) -> tuple[Any, list[Any]]:
    """List the tools and make ``calls`` with the official MCP client over HTTP."""
    return asyncio.run(_call(url, list(calls)))
