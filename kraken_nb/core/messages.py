"""Parse one wire frame, once, into a typed record.

``parse`` decodes numbers as floats (or, asked to, as exact ``Decimal``: see
:mod:`kraken_nb.core.wire` for when the book needs that) and returns one of
the records below. Frames that are not JSON, or that claim a
known kind but lack its fields, raise :class:`~kraken_nb.errors.MalformedMessage`;
well-formed frames of a kind this module does not know become :class:`Unknown`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kraken_nb.core.wire import loads, loads_exact
from kraken_nb.errors import MalformedMessage

__all__ = [
    "Ack",
    "BookMessage",
    "Heartbeat",
    "InstrumentMessage",
    "Message",
    "OhlcMessage",
    "Pong",
    "Status",
    "TickerMessage",
    "TradeMessage",
    "Unknown",
    "decode",
    "parse",
    "parse_object",
]


@dataclass(frozen=True, slots=True)
class Ack:
    """The answer to a subscribe/unsubscribe (one per symbol) or another method."""

    method: str
    success: bool
    req_id: int | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    symbol: str | None = None
    time_in: str | None = None
    time_out: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def channel(self) -> str | None:
        """The channel named in the result, if any."""
        channel = self.result.get("channel")
        return channel if isinstance(channel, str) else None


@dataclass(frozen=True, slots=True)
class Pong:
    """The answer to a ``ping``."""

    req_id: int | None
    time_in: str | None = None
    time_out: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """System status, sent on connect and whenever it changes."""

    system: str
    api_version: str | None = None
    connection_id: int | None = None
    version: str | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """Sent about once a second while the connection has subscriptions."""


@dataclass(slots=True)
class _ChannelMessage:
    """Common shape of the per-symbol data channels.

    Not frozen, unlike the rarer records: one is built for every frame, and a
    frozen dataclass takes twice as long to build. Treat it as read-only.
    """

    snapshot: bool
    data: tuple[Mapping[str, Any], ...]

    channel = ""

    def symbols(self) -> list[str]:
        """The symbols this message carries data for, in order, without repeats."""
        return list(dict.fromkeys(entry["symbol"] for entry in self.data))


@dataclass(slots=True)
class TickerMessage(_ChannelMessage):
    """Level-1 ticker rows."""

    channel = "ticker"


@dataclass(slots=True)
class BookMessage(_ChannelMessage):
    """Level-2 book entries, each with its checksum."""

    channel = "book"


@dataclass(slots=True)
class OhlcMessage(_ChannelMessage):
    """Candles; the current one is re-sent as trades arrive."""

    channel = "ohlc"


@dataclass(slots=True)
class TradeMessage(_ChannelMessage):
    """Executed trades."""

    channel = "trade"


@dataclass(frozen=True, slots=True)
class InstrumentMessage:
    """Reference data: assets and pairs with their precisions."""

    snapshot: bool
    assets: tuple[Mapping[str, Any], ...]
    pairs: tuple[Mapping[str, Any], ...]

    channel = "instrument"


@dataclass(frozen=True, slots=True)
class Unknown:
    """A well-formed JSON object of a kind this client does not handle."""

    frame: Mapping[str, Any]


Message = (
    Ack
    | Pong
    | Status
    | Heartbeat
    | TickerMessage
    | BookMessage
    | OhlcMessage
    | TradeMessage
    | InstrumentMessage
    | Unknown
)

_DATA_CHANNELS: dict[str, type[_ChannelMessage]] = {
    "ticker": TickerMessage,
    "book": BookMessage,
    "ohlc": OhlcMessage,
    "trade": TradeMessage,
}


def parse(text: str | bytes, *, exact: bool = False) -> Message:
    """Decode one frame into its record; raise ``MalformedMessage`` if it is not valid.

    Numbers are floats, or with ``exact=True`` Decimals (for a book frame whose
    values are too long for floats: the book raises ``InexactNumber`` then).
    """
    try:
        frame = loads_exact(text) if exact else loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedMessage(f"not JSON ({exc})", text) from None
    return parse_object(frame)


def decode(text: str | bytes, *, exact: bool = False) -> Any:
    """The JSON decoding ``parse`` uses; raises ``ValueError`` on invalid JSON."""
    return loads_exact(text) if exact else loads(text)


def parse_object(frame: Any) -> Message:
    """Turn an already decoded frame into its record."""
    if not isinstance(frame, dict):
        raise MalformedMessage("a frame must be a JSON object", frame)
    channel = frame.get("channel")
    if channel is not None:
        return _parse_channel(channel, frame)
    method = frame.get("method")
    if method == "pong":
        return Pong(_req_id(frame), frame.get("time_in"), frame.get("time_out"))
    if isinstance(method, str) or "success" in frame:
        return _parse_ack(frame)
    return Unknown(frame)


def _req_id(frame: Mapping[str, Any]) -> int | None:
    req_id = frame.get("req_id")
    if req_id is None or (isinstance(req_id, int) and not isinstance(req_id, bool)):
        return req_id
    raise MalformedMessage(f"req_id must be an integer, not {req_id!r}", frame)


def _parse_ack(frame: dict[str, Any]) -> Ack:
    success = frame.get("success")
    if not isinstance(success, bool):
        raise MalformedMessage("an acknowledgement needs a boolean 'success'", frame)
    result = frame.get("result") or {}
    if not isinstance(result, dict):
        raise MalformedMessage("'result' must be an object", frame)
    error = frame.get("error")
    if not success and not isinstance(error, str):
        error = "request failed without a reason"
    symbol = frame.get("symbol", result.get("symbol"))
    # Kraken puts deprecation notices in the result; accept them at the top level too.
    warnings = result.get("warnings", frame.get("warnings")) or ()
    return Ack(
        method=str(frame.get("method", "")),
        success=success,
        req_id=_req_id(frame),
        result=result,
        error=error if not success else None,
        symbol=symbol if isinstance(symbol, str) else None,
        time_in=frame.get("time_in"),
        time_out=frame.get("time_out"),
        warnings=tuple(str(w) for w in warnings) if isinstance(warnings, list) else (),
    )


def _parse_channel(channel: Any, frame: dict[str, Any]) -> Message:
    if channel == "heartbeat":
        return Heartbeat()
    data = frame.get("data")
    if channel == "status":
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            raise MalformedMessage("status needs a non-empty data list", frame)
        entry = data[0]
        system = entry.get("system")
        if not isinstance(system, str):
            raise MalformedMessage("status needs a 'system' string", frame)
        return Status(system, entry.get("api_version"), entry.get("connection_id"), entry.get("version"))
    kind = frame.get("type")
    if kind not in ("snapshot", "update"):
        if channel in _DATA_CHANNELS or channel == "instrument":
            raise MalformedMessage(f"{channel} message type must be snapshot or update, not {kind!r}", frame)
        return Unknown(frame)
    if channel == "instrument":
        if not isinstance(data, dict):
            raise MalformedMessage("instrument data must be an object", frame)
        assets, pairs = data.get("assets", []), data.get("pairs", [])
        if not isinstance(assets, list) or not isinstance(pairs, list):
            raise MalformedMessage("instrument assets and pairs must be lists", frame)
        if any(not isinstance(p, dict) or not isinstance(p.get("symbol"), str) for p in pairs):
            raise MalformedMessage("every instrument pair needs a symbol", frame)
        return InstrumentMessage(kind == "snapshot", tuple(assets), tuple(pairs))
    record = _DATA_CHANNELS.get(channel)
    if record is None:
        return Unknown(frame)
    if not isinstance(data, list):
        raise MalformedMessage(f"{channel} data must be a list", frame)
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
            raise MalformedMessage(f"every {channel} entry needs a symbol", frame)
    return record(kind == "snapshot", tuple(data))
