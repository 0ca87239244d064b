"""The MCP surface: the 12 tools of the capability on the official SDK's ``MCPServer``, streamable HTTP.

Each tool takes the capability's arguments (``channel``, ``params``) with an
input schema that documents the channel's parameters (depth and interval as
enums), runs the same :class:`~kraken_nb.serve.operations.Operations` as the
REST route, and returns ``structuredContent`` identical to the REST
``result`` (with an ``outputSchema``) plus a short text summary. Invalid input
is a tool result with ``isError: true`` and the same message REST gives.

The transport is stateless JSON (``stateless_http``, ``json_response``): each
POST to ``/mcp`` stands alone, which suits these request/response tools and
plain ``curl``. The SDK's DNS-rebinding protection stays on.

Exactness: the SDK serialises results through pydantic, which cannot splice
raw number text, so ``structuredContent`` carries JSON numbers decoded as
floats. Every value of 15 significant digits or fewer (all of Kraken's prices
and nearly every quantity) comes out with the same value; for the digits
themselves, byte for byte, use the REST surface.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import orjson
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from starlette.types import ASGIApp

from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import ServeError
from kraken_nb.serve.models import (
    OPERATIONS,
    Operation,
    PingResult,
    PublishResult,
    ReceiveResult,
    request_schema,
)
from kraken_nb.serve.operations import Operations
from kraken_nb.serve.security import BearerAuth, Secret

__all__ = ["build_mcp_app", "summarize"]

log = logging.getLogger(__name__)
_failures = ThrottledLog(log)

INSTRUCTIONS = (
    "Kraken Spot market data from one upstream connection. Subscribe with a subscribe-unsubscribe-* tool "
    "(params.symbol, e.g. ['BTC/USD']), then read with the matching receive-* tool: without params.since you "
    "get a snapshot and a cursor; pass that cursor as params.since to get the messages after it. gap: true "
    "means messages were missed: read the snapshot again."
)


def build_mcp_app(
    operations: Operations, *, api_key: Secret | None, hosts: list[str], host: str, version: str = ""
) -> tuple[MCPServer, ASGIApp]:
    """The MCP server and its streamable-HTTP application at ``/mcp`` (bearer-checked with a key)."""
    tools = [_tool(operations, operation) for operation in OPERATIONS]
    server = _server(tools, version)
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[pattern for name in hosts for pattern in (name, f"{name}:*")],
        allowed_origins=[
            pattern
            for name in hosts
            for scheme in ("http", "https")
            for pattern in (f"{scheme}://{name}", f"{scheme}://{name}:*")
        ],
    )
    app: ASGIApp = server.streamable_http_app(
        stateless_http=True,
        json_response=True,
        transport_security=security,
        max_request_body_size=operations.limits.max_body_bytes,
        host=host,
    )
    if api_key is not None:
        app = BearerAuth(app, api_key)
    return server, app


def _server(tools: list[Tool], version: str) -> MCPServer:
    # MCPServer's constructor calls logging.basicConfig(), which would give the root
    # logger of a notebook or script a handler it never asked for. basicConfig does
    # nothing while the root logger has a handler, so hold one there meanwhile.
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        return MCPServer("kraken-nb", version=version, instructions=INSTRUCTIONS, tools=tools)
    finally:
        root.removeHandler(placeholder)


def _tool(operations: Operations, operation: Operation) -> Tool:
    async def call(channel: Any = None, params: Any = None) -> Any:
        body = {"params": params} if channel is None else {"channel": channel, "params": params}
        try:
            result = await operations.run(operation, body)
        except ServeError as exc:
            return CallToolResult(content=[TextContent(type="text", text=exc.detail)], is_error=True)
        structured = orjson.loads(orjson.dumps(result))
        try:
            text = summarize(operation, structured)
        except Exception:  # a message of an unexpected shape: the structured content still stands
            _failures.log(logging.WARNING, operation.tool, "could not summarise a %s result", operation.tool)
            text = f"{operation.channel}: see the structured content"
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    output = (
        ReceiveResult if operation.reads else PingResult if operation.channel == "ping" else PublishResult
    )
    call.__annotations__ = {"channel": Any, "params": Any, "return": output}
    tool = Tool.from_function(
        call,
        name=operation.tool,
        description=operation.description,
        annotations=ToolAnnotations(
            read_only_hint=operation.reads,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
    )
    tool.parameters = request_schema(operation, operations.limits)
    return tool


# -- summaries a model can read ------------------------------------------------------------------


def summarize(operation: Operation, result: dict[str, Any]) -> str:
    """A line or two about a result: best bid/ask and spread, last price, what was sent upstream."""
    channel = operation.channel
    if not operation.reads:
        if channel == "ping":
            return f"Kraken answered the ping in {result['round_trip_ms']:.1f} ms."
        verb = "subscribed to" if result["method"] == "subscribe" else "unsubscribed from"
        symbols = [str(ack.get("result", {}).get("symbol") or channel) for ack in result["acks"]]
        sent = ", ".join(result["sent"]) or "nothing (already in that state; answered from the last acks)"
        return f"{verb} {channel} {', '.join(symbols)}".strip() + f". Sent upstream: {sent}."
    messages = result["messages"]
    lines = [
        f"{len(messages)} {channel} message(s); next cursor {result['cursor']} (pass it as params.since)."
    ]
    if result["gap"]:
        lines.append("GAP: messages after your cursor were dropped; read the snapshot again (no since).")
    detail = _DETAILS.get(channel)
    if detail is not None and messages:
        lines.extend(detail(messages))
    return " ".join(lines)


def _rows(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for message in messages for row in (message.get("data") or []) if isinstance(row, dict)]


def _spread(bid: Any, ask: Any) -> str:
    if not isinstance(bid, (int, float)) or not isinstance(ask, (int, float)):
        return "n/a"
    return str(Decimal(repr(ask)) - Decimal(repr(bid)))


def _book(messages: list[dict[str, Any]]) -> list[str]:
    out = []
    for row in _rows(messages)[-3:]:
        bids, asks = row.get("bids") or [], row.get("asks") or []
        if messages[-1].get("type") == "snapshot" and bids and asks:
            bid, ask = bids[0], asks[0]
            out.append(
                f"{row['symbol']}: best bid {bid['price']} × {bid['qty']}, "
                f"best ask {ask['price']} × {ask['qty']}, spread {_spread(bid['price'], ask['price'])}, "
                f"checksum {row.get('checksum')}."
            )
        else:
            out.append(f"{row['symbol']}: {len(bids)} bid and {len(asks)} ask level changes.")
    return out


def _ticker(messages: list[dict[str, Any]]) -> list[str]:
    latest = {row["symbol"]: row for row in _rows(messages)}
    return [
        f"{symbol}: last {row.get('last')}, bid {row.get('bid')} / ask {row.get('ask')} "
        f"(spread {_spread(row.get('bid'), row.get('ask'))}), 24h change {row.get('change_pct')}%."
        for symbol, row in latest.items()
    ]


def _trade(messages: list[dict[str, Any]]) -> list[str]:
    rows = _rows(messages)
    last = rows[-1] if rows else None
    if last is None:
        return []
    return [
        f"{len(rows)} trade(s); last {last['symbol']} {last.get('side')} {last.get('qty')} "
        f"@ {last.get('price')} at {last.get('timestamp')}."
    ]


def _ohlc(messages: list[dict[str, Any]]) -> list[str]:
    latest = {(row["symbol"], row.get("interval")): row for row in _rows(messages)}
    return [
        f"{symbol} {interval} min from {row.get('interval_begin')}: open {row.get('open')} "
        f"high {row.get('high')} low {row.get('low')} close {row.get('close')} volume {row.get('volume')}."
        for (symbol, interval), row in latest.items()
    ]


def _instrument(messages: list[dict[str, Any]]) -> list[str]:
    data = messages[-1].get("data") or {}
    return [f"{len(data.get('pairs', []))} pairs, {len(data.get('assets', []))} assets."]


def _ping(messages: list[dict[str, Any]]) -> list[str]:
    pong = messages[-1]
    return [
        f"Last pong: req_id {pong.get('req_id')}, "
        f"time_in {pong.get('time_in')}, time_out {pong.get('time_out')}."
    ]


_DETAILS = {
    "book": _book,
    "ticker": _ticker,
    "trade": _trade,
    "ohlc": _ohlc,
    "instrument": _instrument,
    "ping": _ping,
}
