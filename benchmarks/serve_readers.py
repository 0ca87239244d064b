"""Concurrent readers of a running server, in a process of their own (driven by ``benchmarks.serve``).

``python -m benchmarks.serve_readers --rest URL --mcp URL --symbols BTC/USD,ETH/USD --seconds 8``
starts, on one asyncio loop:

* book long-pollers: follow the book (snapshot, then ``since`` with ``wait``), re-polling at once;
* trade long-pollers: the same on the trade channel, noting when each trade arrives (``time.time_ns``);
* REST pollers: a page read without waiting every ``--interval`` seconds, timing each request;
* MCP pollers: the ``receive-trade-snapshot-and-update`` tool the same way, as the JSON-RPC POST a
  streamable-HTTP client sends to ``/mcp`` in stateless JSON mode (no SDK client-side validation,
  which is the client's cost, not the server's).

It prints ``ready`` once every reader has its first snapshot, runs for ``--seconds``, then prints
one JSON line with the latencies, counts, trade arrivals and error statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from typing import Any

import httpx

__all__ = ["main"]

_MCP_HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


class _Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.symbols = args.symbols.split(",")
        self.stop = asyncio.Event()
        self.ready = 0
        self.rest_ms: list[float] = []
        self.mcp_ms: list[float] = []
        self.requests = 0
        self.calls = 0
        self.book_messages = 0
        self.arrivals: list[tuple[str, int, int]] = []
        self.errors: Counter[str] = Counter()
        self.http: httpx.AsyncClient | None = None

    async def _read(self, channel: str, params: dict[str, Any]) -> dict[str, Any] | None:
        assert self.http is not None
        response = await self.http.post(
            f"{self.args.rest}/v1/streams/{channel}/subscribe", json={"channel": channel, "params": params}
        )
        self.requests += 1
        if response.status_code != 200:
            self.errors[str(response.status_code)] += 1
            await asyncio.sleep(0.05)
            return None
        return response.json()["result"]

    async def _snapshot(self, channel: str, symbol: str) -> int:
        while True:
            result = await self._read(channel, {"symbol": [symbol], "wait": 5})
            if result is not None:
                self.ready += 1
                return int(result["cursor"])

    async def follow(self, channel: str, symbol: str) -> None:
        cursor = await self._snapshot(channel, symbol)
        seen: set[int] = set()
        while not self.stop.is_set():
            result = await self._read(
                channel, {"symbol": [symbol], "since": cursor, "wait": 5, "limit": 1000}
            )
            if result is None:
                continue
            now = time.time_ns()
            if result["gap"]:
                self.errors["gap"] += 1
            for message in result["messages"]:
                if channel == "book":
                    self.book_messages += 1
                    continue
                for row in message["data"]:
                    if row["trade_id"] not in seen:
                        seen.add(row["trade_id"])
                        self.arrivals.append((row["symbol"], row["trade_id"], now))
            cursor = result["cursor"]

    async def poll_rest(self, symbol: str) -> None:
        cursor = await self._snapshot("trade", symbol)
        while not self.stop.is_set():
            started = time.perf_counter()
            result = await self._read("trade", {"symbol": [symbol], "since": cursor, "limit": 100})
            self.rest_ms.append((time.perf_counter() - started) * 1000)
            if result is not None:
                cursor = result["cursor"]
            await asyncio.sleep(self.args.interval)

    async def poll_mcp(self, symbol: str, index: int) -> None:
        assert self.http is not None
        cursor = await self._snapshot("trade", symbol)
        while not self.stop.is_set():
            request = {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tools/call",
                "params": {
                    "name": "receive-trade-snapshot-and-update",
                    "arguments": {
                        "channel": "trade",
                        "params": {"symbol": [symbol], "since": cursor, "limit": 100},
                    },
                },
            }
            started = time.perf_counter()
            response = await self.http.post(self.args.mcp, json=request, headers=_MCP_HEADERS)
            self.mcp_ms.append((time.perf_counter() - started) * 1000)
            self.calls += 1
            body = response.json() if response.status_code == 200 else {}
            result = body.get("result") or {}
            if response.status_code != 200 or result.get("isError"):
                self.errors[f"mcp {response.status_code}"] += 1
            else:
                cursor = result["structuredContent"]["cursor"]
            await asyncio.sleep(self.args.interval)

    async def run(self) -> dict[str, Any]:
        args = self.args
        readers = args.book_readers + args.trade_readers + args.rest_pollers + args.mcp_pollers
        limits = httpx.Limits(max_connections=readers + 8, max_keepalive_connections=readers + 8)
        async with httpx.AsyncClient(timeout=60, limits=limits) as self.http:
            symbols = self.symbols
            tasks = [
                asyncio.create_task(self.follow("book", symbols[i % len(symbols)]))
                for i in range(args.book_readers)
            ]
            tasks += [
                asyncio.create_task(self.follow("trade", symbols[i % len(symbols)]))
                for i in range(args.trade_readers)
            ]
            tasks += [
                asyncio.create_task(self.poll_rest(symbols[i % len(symbols)]))
                for i in range(args.rest_pollers)
            ]
            tasks += [
                asyncio.create_task(self.poll_mcp(symbols[i % len(symbols)], i))
                for i in range(args.mcp_pollers)
            ]
            while self.ready < readers:
                await asyncio.sleep(0.02)
            for counter in (self.rest_ms, self.mcp_ms, self.arrivals):
                counter.clear()
            self.requests = self.calls = self.book_messages = 0
            self.errors.clear()
            print("ready", flush=True)
            started = time.perf_counter()
            await asyncio.sleep(args.seconds)
            elapsed = time.perf_counter() - started
            self.stop.set()
            await asyncio.wait(tasks, timeout=10)
            for task in tasks:
                task.cancel()
        return {
            "elapsed": elapsed,
            "readers": readers,
            "requests": self.requests,
            "calls": self.calls,
            "book_messages": self.book_messages,
            "rest_ms": self.rest_ms,
            "mcp_ms": self.mcp_ms,
            "arrivals": self.arrivals,
            "errors": dict(self.errors),
        }


def main(argv: list[str] | None = None) -> int:
    """Run the readers; print ``ready`` and then their results as one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_readers")
    parser.add_argument("--rest", required=True)
    parser.add_argument("--mcp", required=True)
    parser.add_argument("--symbols", default="BTC/USD")
    parser.add_argument("--book-readers", type=int, default=20)
    parser.add_argument("--trade-readers", type=int, default=15)
    parser.add_argument("--rest-pollers", type=int, default=5)
    parser.add_argument("--mcp-pollers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    result = asyncio.run(_Run(args).run())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
