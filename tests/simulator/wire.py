"""A raw WebSocket client for the simulator tests (never the project's client)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from websockets.sync.client import ClientConnection, connect

from kraken_nb.core.book import OrderBook
from kraken_nb.core.wire import loads_exact
from kraken_nb.simulator import Simulator

__all__ = ["WireClient", "new_book"]


class WireClient:
    """Sends requests as JSON text and decodes every frame with exact decimals."""

    def __init__(self, url: str) -> None:
        self.ws: ClientConnection = connect(
            url, open_timeout=5, close_timeout=1, compression=None
        ).__enter__()
        self.status = self.recv()
        self._next_id = 100

    def close(self) -> None:
        self.ws.close()

    def send(self, message: Any) -> None:
        self.ws.send(message if isinstance(message, str) else json.dumps(message))

    def request(
        self, method: str, channel: str | None = None, symbols: Iterable[str] | None = None, **params: Any
    ) -> int:
        """Send a subscribe/unsubscribe (or other method) and return its req_id."""
        self._next_id += 1
        message: dict[str, Any] = {"method": method, "req_id": self._next_id}
        if channel is not None:
            body: dict[str, Any] = {"channel": channel, **params}
            if symbols is not None:
                body["symbol"] = list(symbols)
            message["params"] = body
        self.send(message)
        return self._next_id

    def subscribe(self, channel: str, symbols: Iterable[str] | None = None, **params: Any) -> int:
        return self.request("subscribe", channel, symbols, **params)

    def unsubscribe(self, channel: str, symbols: Iterable[str] | None = None, **params: Any) -> int:
        return self.request("unsubscribe", channel, symbols, **params)

    def recv_text(self, timeout: float = 5.0) -> str:
        frame = self.ws.recv(timeout=timeout)
        assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
        return frame

    def recv(self, timeout: float = 5.0) -> Any:
        return loads_exact(self.recv_text(timeout))

    def until(self, predicate: Callable[[Any], bool], timeout: float = 5.0) -> tuple[Any, list[Any]]:
        """Read until a frame satisfies ``predicate``; return it and every frame read before it."""
        deadline = time.monotonic() + timeout
        seen: list[Any] = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame within {timeout} s; saw {len(seen)} frames")
            message = self.recv(remaining)
            if predicate(message):
                return message, seen
            seen.append(message)

    def acks(self, req_id: int, count: int, timeout: float = 5.0) -> tuple[list[Any], list[Any]]:
        """The ``count`` acks of ``req_id`` in order, and the other frames read meanwhile."""
        found: list[Any] = []
        others: list[Any] = []
        while len(found) < count:
            message, seen = self.until(lambda m: isinstance(m, dict) and m.get("req_id") == req_id, timeout)
            found.append(message)
            others.extend(seen)
        return found, others

    def collect(self, seconds: float) -> list[Any]:
        """Every frame received during the next ``seconds``."""
        deadline = time.monotonic() + seconds
        frames: list[Any] = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                frames.append(self.recv(remaining))
            except TimeoutError:
                break
        return frames

    def drain(self) -> list[Any]:
        """Every frame the server sent before answering a ping sent now."""
        req_id = self.request("ping")
        _, seen = self.until(
            lambda m: isinstance(m, dict) and m.get("method") == "pong" and m.get("req_id") == req_id
        )
        return seen


def new_book(sim: Simulator, symbol: str, depth: int) -> OrderBook:
    spec = sim.market.spec(symbol)
    return OrderBook(symbol, depth, price_precision=spec.price_precision, qty_precision=spec.qty_precision)


def exact_levels(sim: Simulator, symbol: str, side: str, depth: int) -> list[tuple[Decimal, Decimal]]:
    """The market's top ``depth`` levels of ``side`` as exact decimals."""
    return [
        (sim.market.price_of(symbol, t), sim.market.qty_of(symbol, u))
        for t, u in sim.market.levels(symbol, side, depth)
    ]
