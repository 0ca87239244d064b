"""The contract both surfaces share: the 12 operations of the capability, their parameters and results.

``OPERATIONS`` is the capability's table (``seeds/kraken-streams-capability``):
mind its naming, which reads backwards at first. The operation
``subscribe-<channel>`` (REST ``POST /v1/streams/<channel>/subscribe``, MCP
``receive-*``) *receives* snapshot and updates and is read-only;
``publish-<channel>`` (REST ``/publish``, MCP ``subscribe-unsubscribe-*``)
sends a subscribe or unsubscribe upstream. For ping, ``/ping/subscribe``
reads the last pong and ``/ping/publish`` sends a ping.

The parameter schemas are built from the core's own tables
(:mod:`kraken_nb.core.params`), so the documented enums are the validated ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from kraken_nb.core.params import (
    BOOK_DEPTHS,
    EVENT_TRIGGERS,
    EXECUTION_VENUES,
    OHLC_INTERVALS,
    PARAMS_BY_CHANNEL,
)
from kraken_nb.serve.limits import Limits

__all__ = [
    "CHANNELS",
    "OPERATIONS",
    "Operation",
    "PingResult",
    "Problem",
    "PublishResult",
    "ReceiveResult",
    "publish_params_schema",
    "receive_params_schema",
    "request_schema",
]

CHANNELS: Final = ("ticker", "book", "ohlc", "trade", "instrument", "ping")
"""The channels of the REST paths and MCP tools (the five data channels and ping)."""


@dataclass(frozen=True, slots=True)
class Operation:
    """One of the 12 operations: its channel, whether it reads, and its names on each surface."""

    channel: str
    reads: bool
    """True for the read-only ``subscribe-*`` (receive) operations."""
    operation_id: str
    tool: str
    description: str

    @property
    def path(self) -> str:
        """The REST path."""
        return f"/v1/streams/{self.channel}/{'subscribe' if self.reads else 'publish'}"

    @property
    def summary(self) -> str:
        """A short title: ``Subscribe book``, ``Publish ping``."""
        return f"{'Subscribe' if self.reads else 'Publish'} {self.channel}"


def _pair(
    channel: str, receive_tool: str, receive: str, publish_tool: str, publish: str
) -> tuple[Operation, ...]:
    return (
        Operation(channel, True, f"subscribe-{channel}", receive_tool, receive),
        Operation(channel, False, f"publish-{channel}", publish_tool, publish),
    )


OPERATIONS: Final[tuple[Operation, ...]] = (
    *_pair(
        "ticker",
        "receive-ticker-snapshot-and-updates",
        "Receive ticker snapshot and updates from the server.",
        "subscribe-unsubscribe-ticker-channel",
        "Subscribe or unsubscribe from the ticker channel.",
    ),
    *_pair(
        "book",
        "receive-book-snapshot-and-update",
        "Receive book snapshot and update messages.",
        "subscribe-unsubscribe-book-channel",
        "Subscribe or unsubscribe from the book channel.",
    ),
    *_pair(
        "ohlc",
        "receive-ohlc-snapshot-and-update",
        "Receive OHLC snapshot and update messages.",
        "subscribe-unsubscribe-ohlc-channel",
        "Subscribe or unsubscribe from the ohlc channel.",
    ),
    *_pair(
        "trade",
        "receive-trade-snapshot-and-update",
        "Receive trade snapshot and update messages.",
        "subscribe-unsubscribe-trade-channel",
        "Subscribe or unsubscribe from the trade channel.",
    ),
    *_pair(
        "instrument",
        "receive-instrument-snapshot-and-update",
        "Receive instrument snapshot and update messages.",
        "subscribe-unsubscribe-instrument-channel",
        "Subscribe or unsubscribe from the instrument channel.",
    ),
    *_pair(
        "ping",
        "receive-pong-response-server",
        "Receive pong response from the server.",
        "send-ping-server",
        "Send a ping to the server.",
    ),
)

# -- parameter schemas ----------------------------------------------------------------------

_SYMBOLS: Final = {
    "description": 'Pairs in Kraken v2 BASE/QUOTE form, e.g. ["BTC/USD"] (a single string is accepted too).',
    "anyOf": [
        {
            "type": "array",
            "items": {"type": "string", "pattern": "^[A-Z0-9][A-Z0-9.\\-_]*/[A-Z0-9][A-Z0-9.\\-_]*$"},
        },
        {"type": "string"},
    ],
}
_CHANNEL_PARAMS: Final[dict[str, dict[str, Any]]] = {
    "depth": {"description": "Book levels per side (default 10).", "enum": list(BOOK_DEPTHS)},
    "interval": {"description": "Candle interval in minutes (default 1).", "enum": list(OHLC_INTERVALS)},
    "event_trigger": {
        "description": "Ticker on best bid/offer changes or on trades.",
        "enum": list(EVENT_TRIGGERS),
    },
    "execution_venue": {"description": "Instrument venue.", "enum": list(EXECUTION_VENUES)},
    "include_tokenized_assets": {"description": "Include tokenized assets.", "type": "boolean"},
    "snapshot": {
        "description": "Send a snapshot first (Kraken's default: true; trade: false).",
        "type": "boolean",
    },
}


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
    }


def publish_params_schema(channel: str) -> dict[str, Any]:
    """The ``params`` of a publish: Kraken's v2 subscribe parameters plus ``method``."""
    if channel == "ping":
        return _object({}, "A ping takes no parameters; the result is the pong with the measured round trip.")
    properties: dict[str, Any] = {
        "method": {
            "description": "subscribe (default) or unsubscribe; a repeat is answered with the last ack.",
            "enum": ["subscribe", "unsubscribe"],
        }
    }
    if channel != "instrument":
        properties["symbol"] = _SYMBOLS
    properties.update((name, _CHANNEL_PARAMS[name]) for name in PARAMS_BY_CHANNEL[channel])
    return _object(properties, "Channel-specific subscribe params (Kraken's v2 names) and the method.")


def receive_params_schema(channel: str, limits: Limits) -> dict[str, Any]:
    """The ``params`` of a receive: which symbols, and the cursor paging."""
    properties: dict[str, Any] = {}
    if channel not in ("instrument", "ping"):
        properties["symbol"] = _SYMBOLS
    if channel == "ohlc":
        properties["interval"] = {
            **_CHANNEL_PARAMS["interval"],
            "description": "Candle interval (default: every one subscribed).",
        }
    properties.update(
        {
            "since": {
                "description": "A cursor from an earlier result: return the messages after it. "
                "Without it, one snapshot message built from current state.",
                "type": "integer",
                "minimum": 0,
            },
            "limit": {
                "description": f"Most messages to return (default {limits.default_limit}); then page on.",
                "type": "integer",
                "minimum": 1,
                "maximum": limits.max_limit,
            },
            "wait": {
                "description": "Seconds to wait for a message when there is none yet (long poll).",
                "type": "number",
                "minimum": 0,
                "maximum": limits.max_wait,
            },
        }
    )
    return _object(properties, "Which stream to read and where to continue (cursor paging).")


def request_schema(operation: Operation, limits: Limits) -> dict[str, Any]:
    """The REST body and the MCP arguments: ``{"channel": <the channel>, "params": {...}}``."""
    params = (
        receive_params_schema(operation.channel, limits)
        if operation.reads
        else publish_params_schema(operation.channel)
    )
    return {
        "type": "object",
        "properties": {
            "channel": {"type": "string", "const": operation.channel, "description": "Channel name."},
            "params": params,
        },
        "required": ["channel"],
        "additionalProperties": False,
    }


# -- results -----------------------------------------------------------------------------------


class ReceiveResult(BaseModel):
    """Messages in Kraken's WebSocket shape, in cursor order, and where to continue."""

    model_config = ConfigDict(extra="forbid")

    channel: str
    cursor: int = Field(description="Pass as params.since to continue after these messages.")
    gap: bool = Field(description="Messages after your cursor were dropped: read the snapshot again.")
    messages: list[dict[str, Any]] = Field(
        description="Kraken WebSocket messages ({channel, type, data}; pongs for ping), exact digits."
    )


class PublishResult(BaseModel):
    """Kraken's acknowledgements of a subscribe or unsubscribe, one per symbol."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["subscribe", "unsubscribe"]
    channel: str
    acks: list[dict[str, Any]] = Field(
        description="Kraken's ack frames as received: method, result (channel, symbol, echoed params), "
        "success, time_in, time_out, warnings."
    )
    sent: list[str] = Field(
        description="Symbols this request sent upstream; the others were already in that state "
        "and are answered with their last ack."
    )


class PingResult(BaseModel):
    """The pong Kraken sent and the round trip measured by the client."""

    model_config = ConfigDict(extra="forbid")

    pong: dict[str, Any] | None = Field(
        description="Kraken's pong frame (method, req_id, time_in, time_out)."
    )
    round_trip_ms: float = Field(description="From sending the ping to receiving the pong, in milliseconds.")


class Problem(BaseModel):
    """An RFC 9457 problem document (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
