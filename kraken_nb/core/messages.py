"""Parse one wire frame, once, into a typed record.

``parse`` decodes numbers as floats (or, asked to, as exact ``Decimal``: see
:mod:`kraken_nb.core.wire` for when the book needs that) and returns one of
the records below. Frames that are not JSON, or whose envelope or control
fields break the schema (:mod:`kraken_nb.core.schema`), raise
:class:`~kraken_nb.errors.MalformedMessage`; well-formed frames of a kind
this module does not know become :class:`Unknown`.

Data frames are checked item by item: the good items of a trade, ticker,
ohlc, book or instrument frame are kept in ``data`` (``pairs``/``assets``)
and each bad one becomes a ``MalformedMessage`` in ``rejected``, so one bad
trade never costs the good trades of its frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kraken_nb.core import schema
from kraken_nb.core.wire import loads, loads_exact
from kraken_nb.errors import MalformedMessage, brief

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
    rejected: tuple[MalformedMessage, ...] = ()
    """The items of the frame that broke the schema, each as the error saying why."""

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
    rejected: tuple[MalformedMessage, ...] = ()
    """The pairs and assets that broke the schema, each as the error saying why."""

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

_DATA_CHANNELS: dict[str, tuple[type[_ChannelMessage], schema.Check]] = {
    "ticker": (TickerMessage, schema.ticker_problem),
    "book": (BookMessage, schema.book_entry_problem),
    "ohlc": (OhlcMessage, schema.candle_problem),
    "trade": (TradeMessage, schema.trade_problem),
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
    except TypeError:
        raise MalformedMessage(f"a frame must be text or bytes, not {type(text).__name__}") from None
    return parse_object(frame)


def decode(text: str | bytes, *, exact: bool = False) -> Any:
    """The JSON decoding ``parse`` uses; raises ``ValueError`` on invalid JSON."""
    return loads_exact(text) if exact else loads(text)


def parse_object(frame: Any) -> Message:
    """Turn an already decoded frame into its record."""
    if type(frame) is dict and frame.get("channel") == "book":  # most frames: one entry, checked here
        data, kind = frame.get("data"), frame.get("type")
        if type(data) is list and len(data) == 1 and (kind == "update" or kind == "snapshot"):
            entry = data[0]
            if type(entry) is dict and type(symbol := entry.get("symbol")) is str and symbol:
                return BookMessage(kind == "snapshot", (entry,))
    if not isinstance(frame, dict):
        raise MalformedMessage("a frame must be a JSON object", frame)
    channel = frame.get("channel")
    if channel is not None:
        if type(channel) is not str:
            raise MalformedMessage(f"'channel' must be a string, not {type(channel).__name__}", frame)
        return _parse_channel(channel, frame)
    method = frame.get("method")
    if method == "pong":
        _check(schema.pong_problem(frame), frame)
        return Pong(frame.get("req_id"), frame.get("time_in"), frame.get("time_out"))
    if method is not None or "success" in frame:
        return _parse_ack(frame)
    return Unknown(frame)


def _check(problem: str | None, frame: Any) -> None:
    if problem is not None:
        raise MalformedMessage(problem, frame)


def _parse_ack(frame: dict[str, Any]) -> Ack:
    _check(schema.ack_problem(frame), frame)
    success = frame["success"]
    result = frame.get("result") or {}
    error = frame.get("error")
    if not success and error is None:
        error = "request failed without a reason"
    return Ack(
        method=frame.get("method") or "",
        success=success,
        req_id=frame.get("req_id"),
        result=result,
        error=error if not success else None,
        symbol=frame.get("symbol", result.get("symbol")),
        time_in=frame.get("time_in"),
        time_out=frame.get("time_out"),
        # Kraken puts deprecation notices in the result; accept them at the top level too.
        warnings=tuple(result.get("warnings", frame.get("warnings")) or ()),
    )


def _parse_channel(channel: str, frame: dict[str, Any]) -> Message:
    if channel == "heartbeat":
        return Heartbeat()
    data = frame.get("data")
    if channel == "status":
        if not isinstance(data, list) or not data:
            raise MalformedMessage("status needs a non-empty data list", frame)
        entry = data[0]
        _check(schema.status_problem(entry), frame)
        get = entry.get
        return Status(entry["system"], get("api_version"), get("connection_id"), get("version"))
    kind = frame.get("type")
    known = _DATA_CHANNELS.get(channel)
    if kind not in ("snapshot", "update"):
        if known is not None or channel == "instrument":
            reason = f"{channel} message type must be snapshot or update, not {brief(kind)}"
            raise MalformedMessage(reason, frame)
        return Unknown(frame)
    if channel == "instrument":
        return _parse_instrument(kind == "snapshot", data, frame)
    if known is None:
        return Unknown(frame)
    if not isinstance(data, list):
        raise MalformedMessage(f"{channel} data must be a list", frame)
    record, check = known
    for entry in data:
        if check(entry) is not None:
            good, rejected = _split(channel, data, check)
            return record(kind == "snapshot", good, rejected)
    return record(kind == "snapshot", tuple(data))


def _parse_instrument(snapshot: bool, data: Any, frame: dict[str, Any]) -> InstrumentMessage:
    if not isinstance(data, dict):
        raise MalformedMessage("instrument data must be an object", frame)
    assets, pairs = data.get("assets", []), data.get("pairs", [])
    if not isinstance(assets, list) or not isinstance(pairs, list):
        raise MalformedMessage("instrument assets and pairs must be lists", frame)
    good_assets, bad_assets = _split("instrument asset", assets, schema.asset_problem)
    good_pairs, bad_pairs = _split("instrument pair", pairs, schema.pair_problem)
    return InstrumentMessage(snapshot, good_assets, good_pairs, bad_assets + bad_pairs)


def _split(
    what: str, items: list[Any], check: schema.Check
) -> tuple[tuple[Any, ...], tuple[MalformedMessage, ...]]:
    """The items that pass ``check``, and an error for each one that does not."""
    good: list[Any] = []
    rejected: list[MalformedMessage] = []
    for item in items:
        problem = check(item)
        if problem is None:
            good.append(item)
        else:
            rejected.append(MalformedMessage(f"{what} item: {problem}", item))
    return tuple(good), tuple(rejected)
