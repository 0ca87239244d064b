"""Requests the simulator accepts, checked the way Kraken checks them, and its replies.

:func:`parse_request` turns one client frame into a :class:`Request` with every
default filled in, or raises :class:`RequestError` carrying the text of the
``success: false`` reply. Checks that need server state (unknown symbol,
already subscribed, not subscribed) are left to the server and answered per
symbol. Replies list their keys in alphabetical order, as Kraken's do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kraken_nb.core.params import (
    BOOK_DEPTHS,
    CHANNELS,
    EVENT_TRIGGERS,
    EXECUTION_VENUES,
    OHLC_INTERVALS,
    PARAMS_BY_CHANNEL,
)

__all__ = [
    "DEFAULTS",
    "WARNINGS",
    "Request",
    "RequestError",
    "ack",
    "parse_request",
    "pong",
    "result_of",
    "subscription_key",
]

#: What each channel uses for a parameter the request leaves out.
DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "ticker": {"event_trigger": "trades", "snapshot": True},
    "book": {"depth": 10, "snapshot": True},
    "ohlc": {"interval": 1, "snapshot": True},
    "trade": {"snapshot": False},
    "instrument": {"execution_venue": "international", "include_tokenized_assets": False, "snapshot": True},
}

#: Deprecation notices Kraken puts in the ``result`` of a successful subscribe ack.
WARNINGS: Final[Mapping[str, tuple[str, ...]]] = {
    "ohlc": ("timestamp is deprecated, use interval_begin",),
    "instrument": ("tick_size is deprecated, use price_increment",),
}

_METHODS: Final = ("subscribe", "unsubscribe", "ping")
_PRIVATE_CHANNELS: Final = ("executions", "balances", "level3")
_CHOICES: Final[Mapping[str, tuple[tuple[Any, ...], str]]] = {
    "depth": (BOOK_DEPTHS, "Subscription depth not supported"),
    "interval": (OHLC_INTERVALS, "Subscription interval not supported"),
    "event_trigger": (EVENT_TRIGGERS, "Subscription event_trigger not supported"),
    "execution_venue": (EXECUTION_VENUES, "Unsupported value for field 'execution_venue'"),
}
_FLAGS: Final = ("snapshot", "include_tokenized_assets")
#: Parameters echoed in the ``result`` of an unsubscribe ack.
_KEY_PARAMS: Final[Mapping[str, tuple[str, ...]]] = {
    "ticker": ("event_trigger",),
    "book": ("depth",),
    "ohlc": ("interval",),
    "trade": (),
    "instrument": (),
}


class RequestError(Exception):
    """A request that is answered ``success: false`` as a whole (not per symbol).

    ``sends_status`` is set for a subscribe to the ``status`` channel, which
    Kraken answers with the status payload before the error.
    """

    def __init__(
        self, error: str, method: str | None = None, req_id: int | None = None, *, sends_status: bool = False
    ) -> None:
        super().__init__(error)
        self.error = error
        self.method = method
        self.req_id = req_id
        self.sends_status = sends_status


@dataclass(frozen=True, slots=True)
class Request:
    """A valid request: its method, id, and for (un)subscribe the channel, symbols and options."""

    method: str
    req_id: int | None = None
    channel: str = ""
    symbols: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    explicit: frozenset[str] = frozenset()
    """The option names the request set itself (the rest are defaults)."""


def parse_request(frame: str | bytes) -> Request:
    """Validate one client frame; raise ``RequestError`` with Kraken-like text when it is bad."""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting too deep
        raise RequestError("Malformed request: not valid JSON") from None
    if not isinstance(message, dict):
        raise RequestError("Malformed request: expected a JSON object")
    method = message.get("method")
    req_id = message.get("req_id")
    if req_id is not None and (not isinstance(req_id, int) or isinstance(req_id, bool)):
        raise RequestError("Unsupported value for field 'req_id': expected an integer", _text(method))
    if method is None:
        raise RequestError("Missing field: 'method'", None, req_id)
    if method not in _METHODS:
        raise RequestError(f"Method not found: {method!r}", _text(method), req_id)
    allowed = ("method", "req_id") if method == "ping" else ("method", "params", "req_id")
    for name in message:
        if name not in allowed:
            raise RequestError(
                f"Unsupported field: {name!r} for the given msg type: {method}", method, req_id
            )
    if method == "ping":
        return Request(method, req_id)
    return _parse_params(method, req_id, message.get("params"))


def _parse_params(method: str, req_id: int | None, params: Any) -> Request:
    def fail(error: str) -> RequestError:
        return RequestError(error, method, req_id)

    if params is None:
        raise fail("Missing field: 'params'")
    if not isinstance(params, dict):
        raise fail("Unsupported value for field 'params': expected an object")
    channel = params.get("channel")
    if channel is None:
        raise fail("Missing field: 'channel'")
    if channel in _PRIVATE_CHANNELS:
        raise fail("Private data and trading are unavailable on this endpoint. Try ws-auth.kraken.com")
    if channel == "status":
        # Status is pushed, not subscribed: Kraken sends it again and refuses the request.
        raise RequestError("Symbol(s) not found", method, req_id, sends_status=method == "subscribe")
    if channel not in CHANNELS:
        raise fail("Subscription name invalid")
    allowed = PARAMS_BY_CHANNEL[channel]
    for name in params:
        if name not in ("channel", "symbol", *allowed) or (name == "symbol" and channel == "instrument"):
            raise fail(f"Unsupported field: {name!r} for the given msg type: {method} {channel}")
    options = dict(DEFAULTS[channel])
    for name in allowed:
        if name not in params:
            continue
        value = params[name]
        if name in _FLAGS:
            if not isinstance(value, bool):
                raise fail(f"Unsupported value for field {name!r}: expected true or false")
        else:
            choices, error = _CHOICES[name]
            if isinstance(value, bool) or value not in choices or type(value) is not type(choices[0]):
                raise fail(error)
        options[name] = value
    symbols: tuple[str, ...] = ()
    if channel != "instrument":
        raw = params.get("symbol")
        if raw is None:
            raise fail("Missing field: 'symbol'")
        if not isinstance(raw, list) or not all(isinstance(s, str) for s in raw):
            raise fail("Unsupported value for field 'symbol': expected a list of strings")
        if not raw:
            raise fail("Unsupported value for field 'symbol': the list is empty")
        symbols = tuple(dict.fromkeys(raw))
    explicit = frozenset(name for name in allowed if name in params)
    return Request(method, req_id, channel, symbols, options, explicit)


def subscription_key(channel: str, symbol: str, options: Mapping[str, Any]) -> tuple[str, str, int]:
    """What identifies a subscription on one connection (ohlc may hold several intervals)."""
    return (channel, symbol, options["interval"] if channel == "ohlc" else 0)


def result_of(method: str, channel: str, symbol: str | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """The ``result`` of a successful ack: the channel, symbol and the parameters in force.

    A subscribe to ohlc or instrument also carries Kraken's deprecation ``warnings``.
    """
    result: dict[str, Any] = {"channel": channel}
    if symbol is not None:
        result["symbol"] = symbol
    names = PARAMS_BY_CHANNEL[channel] if method == "subscribe" else _KEY_PARAMS[channel]
    for name in names:
        if name in options and not (channel == "instrument" and name != "snapshot"):
            result[name] = options[name]
    if method == "subscribe" and channel in WARNINGS:
        result["warnings"] = list(WARNINGS[channel])
    return dict(sorted(result.items()))


def ack(
    method: str | None,
    req_id: int | None,
    time_in: str,
    time_out: str,
    *,
    result: Mapping[str, Any] | None = None,
    error: str | None = None,
    symbol: str | None = None,
) -> dict[str, Any]:
    """A success ack (with ``result``) or a failure ack (with ``error`` and maybe ``symbol``)."""
    message: dict[str, Any] = {} if method is None else {"method": method}
    if req_id is not None:
        message["req_id"] = req_id
    if error is None:
        message["success"] = True
        message["result"] = dict(result or {})
    else:
        message["success"] = False
        if symbol is not None:
            message["symbol"] = symbol
        message["error"] = error
    message["time_in"] = time_in
    message["time_out"] = time_out
    return dict(sorted(message.items()))


def pong(req_id: int | None, time_in: str, time_out: str) -> dict[str, Any]:
    """The answer to a ``ping``."""
    message: dict[str, Any] = {"method": "pong"}
    if req_id is not None:
        message["req_id"] = req_id
    message["time_in"] = time_in
    message["time_out"] = time_out
    return message


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
