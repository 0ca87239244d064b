"""Channels, subscribe parameters, their validation and the request builders.

Every parameter of the public v2 API is checked here, before anything is sent,
and a bad one raises :class:`~kraken_nb.errors.InvalidParams` naming the value
and what is allowed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from kraken_nb.errors import InvalidParams

__all__ = [
    "BOOK_DEPTHS",
    "CHANNELS",
    "EVENT_TRIGGERS",
    "EXECUTION_VENUES",
    "OHLC_INTERVALS",
    "PARAMS_BY_CHANNEL",
    "RequestIds",
    "Subscription",
    "ping_request",
    "subscribe_request",
    "unsubscribe_request",
    "validate_subscription",
    "validate_symbol",
]

CHANNELS: Final = ("ticker", "book", "ohlc", "trade", "instrument")
BOOK_DEPTHS: Final = (10, 25, 100, 500, 1000)
OHLC_INTERVALS: Final = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
EVENT_TRIGGERS: Final = ("bbo", "trades")
EXECUTION_VENUES: Final = ("international", "bitnomial-exchange")

#: The optional parameters each channel accepts on subscribe, besides ``symbol``.
PARAMS_BY_CHANNEL: Final[Mapping[str, tuple[str, ...]]] = {
    "ticker": ("event_trigger", "snapshot"),
    "book": ("depth", "snapshot"),
    "ohlc": ("interval", "snapshot"),
    "trade": ("snapshot",),
    "instrument": ("execution_venue", "include_tokenized_assets", "snapshot"),
}

#: Parameters that identify a subscription and must be repeated on unsubscribe.
_UNSUBSCRIBE_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    "ticker": ("event_trigger",),
    "book": ("depth",),
    "ohlc": ("interval",),
    "trade": (),
    "instrument": (),
}

_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-_]{0,15}/[A-Z0-9][A-Z0-9.\-_]{0,15}$")


class RequestIds:
    """Hands out unique, increasing ``req_id`` values (positive 31-bit ints)."""

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)

    def next(self) -> int:
        """The next unused id."""
        return next(self._counter) % 2**31 or next(self._counter)


@dataclass(frozen=True, slots=True)
class Subscription:
    """A validated subscription: one channel, its symbols and its parameters.

    ``params`` holds only what the caller set, so the request stays minimal and
    the server's defaults apply to the rest.
    """

    channel: str
    symbols: tuple[str, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)

    def key_params(self) -> dict[str, Any]:
        """The parameters that identify this subscription (e.g. book depth, ohlc interval)."""
        return {k: self.params[k] for k in _UNSUBSCRIBE_KEYS[self.channel] if k in self.params}

    def request(self, method: str, req_id: int | None = None) -> dict[str, Any]:
        """The JSON-ready request for ``subscribe`` or ``unsubscribe``."""
        params: dict[str, Any] = {"channel": self.channel}
        if self.channel != "instrument":
            params["symbol"] = list(self.symbols)
        params.update(self.params if method == "subscribe" else self.key_params())
        message: dict[str, Any] = {"method": method, "params": params}
        if req_id is not None:
            message["req_id"] = req_id
        return message

    def with_symbols(self, symbols: Iterable[str]) -> Subscription:
        """The same subscription restricted to (or extended to) other symbols."""
        return Subscription(self.channel, tuple(symbols), self.params)


def validate_symbol(symbol: object) -> str:
    """Return ``symbol`` if it is a v2 ``BASE/QUOTE`` pair name, else raise."""
    if not isinstance(symbol, str) or not _SYMBOL.match(symbol):
        raise InvalidParams("symbol", symbol, "BASE/QUOTE in upper case, e.g. 'BTC/USD'")
    return symbol


def _choice(name: str, value: Any, allowed: tuple[Any, ...]) -> Any:
    # bool is an int: depth=True must not pass as 1.
    if isinstance(value, bool) or value not in allowed or type(value) is not type(allowed[0]):
        raise InvalidParams(name, value, allowed)
    return value


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidParams(name, value, (True, False))
    return value


_VALIDATORS: Final = {
    "depth": lambda v: _choice("depth", v, BOOK_DEPTHS),
    "interval": lambda v: _choice("interval", v, OHLC_INTERVALS),
    "event_trigger": lambda v: _choice("event_trigger", v, EVENT_TRIGGERS),
    "execution_venue": lambda v: _choice("execution_venue", v, EXECUTION_VENUES),
    "include_tokenized_assets": lambda v: _flag("include_tokenized_assets", v),
    "snapshot": lambda v: _flag("snapshot", v),
}


def validate_subscription(
    channel: str, symbols: str | Iterable[str] | None = None, **params: Any
) -> Subscription:
    """Check a channel, its symbols and parameters; return the :class:`Subscription`.

    ``symbols`` may be one symbol or several; duplicates are dropped, order kept.
    ``None`` values in ``params`` mean "server default" and are left out.
    """
    if channel not in CHANNELS:
        raise InvalidParams("channel", channel, CHANNELS)
    allowed = PARAMS_BY_CHANNEL[channel]
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if name not in allowed:
            raise InvalidParams("parameter", name, allowed)
        if value is not None:
            clean[name] = _VALIDATORS[name](value)
    if channel == "instrument":
        if symbols:
            raise InvalidParams("symbol", symbols, "none: the instrument channel takes no symbols")
        return Subscription(channel, (), clean)
    if symbols is None:
        raise InvalidParams("symbol", symbols, f"at least one symbol for the {channel} channel")
    if isinstance(symbols, str):
        symbols = [symbols]
    unique = tuple(dict.fromkeys(validate_symbol(s) for s in symbols))
    if not unique:
        raise InvalidParams("symbol", [], f"at least one symbol for the {channel} channel")
    return Subscription(channel, unique, clean)


def subscribe_request(
    channel: str, symbols: str | Iterable[str] | None = None, *, req_id: int | None = None, **params: Any
) -> dict[str, Any]:
    """Validate and build a ``subscribe`` request."""
    return validate_subscription(channel, symbols, **params).request("subscribe", req_id)


def unsubscribe_request(
    channel: str, symbols: str | Iterable[str] | None = None, *, req_id: int | None = None, **params: Any
) -> dict[str, Any]:
    """Validate and build an ``unsubscribe`` request."""
    return validate_subscription(channel, symbols, **params).request("unsubscribe", req_id)


def ping_request(req_id: int | None = None) -> dict[str, Any]:
    """Build a ``ping`` request."""
    return {"method": "ping"} if req_id is None else {"method": "ping", "req_id": req_id}
