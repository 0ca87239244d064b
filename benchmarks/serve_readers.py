"""Concurrent readers of a running server, in a process of their own (driven by ``benchmarks.serve``).

``python -m benchmarks.serve_readers --rest URL --mcp URL --symbols BTC/USD,ETH/USD --seconds 8``
starts, on one asyncio loop:

* book long-pollers: follow the book (snapshot, then ``since`` with ``wait``), re-polling at once;
* trade long-pollers: the same on the trade channel, noting when each trade arrives (``time.time_ns``);
* REST pollers: a page read without waiting every ``--interval`` seconds, timing each request;
* MCP pollers: the ``receive-trade-snapshot-and-update`` tool the same way, as the JSON-RPC POST a
  streamable-HTTP client sends to ``/mcp`` in stateless JSON mode.

Each reader has its own keep-alive HTTP/1.1 connection and a minimal client (the request written
at once, the answer read by its Content-Length): a general client such as httpx costs about 2 ms
of CPU per request, and fifty of them in one process would measure the client, not the server.

It prints ``ready`` once every reader has its first snapshot, runs for ``--seconds``, then prints
one JSON line with the latencies, counts, trade arrivals and error statuses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import orjson

__all__ = ["main"]

_MCP_HEADERS = "accept: application/json, text/event-stream\r\nmcp-protocol-version: 2025-06-18\r\n"


class _Http:
    """One keep-alive HTTP/1.1 connection: POST JSON, read the status and the JSON body."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.netloc = parts.netloc
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, payload: Any, headers: str = "") -> tuple[int, Any]:
        body = orjson.dumps(payload)
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            self._writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self._reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.netloc}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{headers}\r\n"
        )
        self._writer.write(head.encode() + body)
        status = int((await self._reader.readline()).split()[1])
        length = 0
        while (line := await self._reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, orjson.loads(await self._reader.readexactly(length)) if length else None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.symbols = args.symbols.split(",")
        self.mcp_path = urlsplit(args.mcp).path
        self.stop = asyncio.Event()
        self.ready = 0
        self.rest_ms: list[float] = []
        self.mcp_ms: list[float] = []
        self.requests = 0
        self.calls = 0
        self.book_messages = 0
        self.arrivals: list[tuple[str, int, int]] = []
        self.errors: Counter[str] = Counter()

    async def _read(self, http: _Http, channel: str, params: dict[str, Any]) -> dict[str, Any] | None:
        status, body = await http.post(
            f"/v1/streams/{channel}/subscribe", {"channel": channel, "params": params}
        )
        self.requests += 1
        if status != 200:
            self.errors[str(status)] += 1
            await asyncio.sleep(0.05)
            return None
        return body["result"]

    async def _snapshot(self, http: _Http, channel: str, symbol: str) -> int:
        while True:
            result = await self._read(http, channel, {"symbol": [symbol], "wait": 5})
            if result is not None:
                self.ready += 1
                return int(result["cursor"])

    async def follow(self, http: _Http, channel: str, symbol: str) -> None:
        cursor = await self._snapshot(http, channel, symbol)
        seen: set[int] = set()
        while not self.stop.is_set():
            params = {"symbol": [symbol], "since": cursor, "wait": 5, "limit": 1000}
            result = await self._read(http, channel, params)
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

    async def poll_rest(self, http: _Http, symbol: str) -> None:
        cursor = await self._snapshot(http, "trade", symbol)
        while not self.stop.is_set():
            started = time.perf_counter()
            result = await self._read(http, "trade", {"symbol": [symbol], "since": cursor, "limit": 100})
            self.rest_ms.append((time.perf_counter() - started) * 1000)
            if result is not None:
                cursor = result["cursor"]
            await asyncio.sleep(self.args.interval)

    async def poll_mcp(self, rest: _Http, http: _Http, symbol: str, index: int) -> None:
        cursor = await self._snapshot(rest, "trade", symbol)
        while not self.stop.is_set():
            arguments = {"channel": "trade", "params": {"symbol": [symbol], "since": cursor, "limit": 100}}
            request = {
                "jsonrpc": "2.0",
                "id": index,
                "method": "tools/call",
                "params": {"name": "receive-trade-snapshot-and-update", "arguments": arguments},
            }
            started = time.perf_counter()
            status, body = await http.post(self.mcp_path, request, _MCP_HEADERS)
            self.mcp_ms.append((time.perf_counter() - started) * 1000)
            self.calls += 1
            result = (body or {}).get("result") or {}
            if status != 200 or result.get("isError"):
                self.errors[f"mcp {status}"] += 1
            else:
                cursor = result["structuredContent"]["cursor"]
            await asyncio.sleep(self.args.interval)

    async def run(self) -> dict[str, Any]:
        args = self.args
        readers = args.book_readers + args.trade_readers + args.rest_pollers + args.mcp_pollers
        symbols = self.symbols
        connections: list[_Http] = []

        def connection(url: str) -> _Http:
            connections.append(_Http(url))
            return connections[-1]

        coroutines = [
            self.follow(connection(args.rest), "book", symbols[i % 2]) for i in range(args.book_readers)
        ]
        coroutines += [
            self.follow(connection(args.rest), "trade", symbols[i % 2]) for i in range(args.trade_readers)
        ]
        coroutines += [
            self.poll_rest(connection(args.rest), symbols[i % 2]) for i in range(args.rest_pollers)
        ]
        coroutines += [
            self.poll_mcp(connection(args.rest), connection(args.mcp), symbols[i % 2], i)
            for i in range(args.mcp_pollers)
        ]
        tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
        try:
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
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for http in connections:
                await http.close()
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
    parser.add_argument("--symbols", default="BTC/USD,ETH/USD", help="two symbols, comma-separated")
    parser.add_argument("--book-readers", type=int, default=20)
    parser.add_argument("--trade-readers", type=int, default=15)
    parser.add_argument("--rest-pollers", type=int, default=5)
    parser.add_argument("--mcp-pollers", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    if len(args.symbols.split(",")) != 2:
        parser.error("--symbols takes two symbols")
    result = asyncio.run(_Run(args).run())
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
