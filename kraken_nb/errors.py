"""One exception tree for everything kraken_nb raises.

Local errors (``InvalidParams``, ``ClientClosed``, ``RequestTimeout``) mean the
request never reached Kraken or never came back. Remote errors
(``SubscriptionRejected``, ``ServerError``, ``ChecksumMismatch``,
``MalformedMessage``, ``ConnectionFailed``) carry what the server sent.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "ChecksumMismatch",
    "ClientClosed",
    "ConnectionFailed",
    "DatasetError",
    "InexactNumber",
    "InvalidParams",
    "KrakenError",
    "MalformedMessage",
    "RecordingError",
    "RelayError",
    "RequestTimeout",
    "ServeError",
    "ServerError",
    "SubscriptionRejected",
    "brief",
]

_BRIEF_LIMIT = 200
_brief_repr = reprlib.Repr()
_brief_repr.maxlevel = 4
_brief_repr.maxstring = _brief_repr.maxother = 80
_brief_repr.maxdict = _brief_repr.maxlist = 8


def brief(value: Any, limit: int = _BRIEF_LIMIT) -> str:
    """A short ``repr`` of ``value`` for messages, bounded in length and nesting.

    A hostile frame may be megabytes long or nested a thousand levels deep;
    showing it must cost little and never fail.
    """
    if isinstance(value, (str, bytes, bytearray)):
        shown = repr(value[:limit])
        return shown + "…" if len(value) > limit else shown
    try:
        shown = _brief_repr.repr(value)
    except Exception:  # a value whose __repr__ fails still gets a name
        shown = f"<{type(value).__name__}>"
    return shown if len(shown) <= limit else shown[:limit] + "…"


class KrakenError(Exception):
    """Base class of every error raised by kraken_nb."""


class InvalidParams(KrakenError, ValueError):
    """A request parameter failed validation before anything was sent."""

    def __init__(self, name: str, value: Any, allowed: Iterable[Any] | str) -> None:
        self.name = name
        self.value = value
        self.allowed = allowed if isinstance(allowed, str) else tuple(allowed)
        shown = allowed if isinstance(allowed, str) else ", ".join(map(repr, self.allowed))
        super().__init__(f"invalid {name}={value!r}; allowed: {shown}")


class ClientClosed(KrakenError, RuntimeError):
    """The client was closed (or never started) when a request was made."""


class RequestTimeout(KrakenError, TimeoutError):
    """No answer arrived for a request within its timeout."""


class ConnectionFailed(KrakenError, ConnectionError):
    """The connection ended for good: close code 1008 (policy violation), or ``code`` None
    when the client's own network thread stopped (a bug, logged with its traceback).

    The client does not reconnect: its ``connection_state`` is ``"failed"`` and
    every request raises this error. ``code`` and ``reason`` are the server's.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        if code is None:  # not the server's doing: the client's network thread stopped
            super().__init__(f"the client stopped receiving: {reason}")
            return
        detail = f": {reason}" if reason else ""
        super().__init__(f"the server closed the connection with code {code} (policy violation){detail}")


class MalformedMessage(KrakenError, ValueError):
    """A frame could not be parsed or does not have the shape of its kind."""

    def __init__(self, reason: str, frame: str | bytes | Mapping[str, Any] | None = None) -> None:
        self.reason = reason
        self.frame = frame
        shown = f" in {brief(frame)}" if frame is not None else ""
        super().__init__(f"malformed message: {reason}{shown}")


class InexactNumber(MalformedMessage):
    """A float book value too long to carry its wire digits; decode the frame with Decimals.

    The client does that by itself; it reaches callers of ``OrderBook.apply``
    who pass such floats.
    """


class RecordingError(KrakenError, ValueError):
    """A recording file is not in the expected format; names the file and line."""


class DatasetError(KrakenError):
    """A Parquet dataset cannot be read or written: a missing or unwritable folder, a full disk.

    ``path`` names the folder or file concerned; the ``OSError`` behind it,
    if any, is the ``__cause__``.
    """

    def __init__(self, message: str, path: object = None) -> None:
        self.path = path
        super().__init__(message)


class RelayError(KrakenError, ConnectionError):
    """The NATS relay cannot be used: unreachable, a stream missing, or access denied.

    Raised by ``KrakenClient.from_nats`` and the relay; the message names the
    server (credentials redacted), the stream or subject, and what to do.
    """


class ServerError(KrakenError):
    """The server answered a request with ``success: false``."""

    def __init__(self, method: str, error: str, req_id: int | None = None) -> None:
        self.method = method
        self.error = error
        self.req_id = req_id
        super().__init__(f"{method} failed: {error}")


class SubscriptionRejected(ServerError):
    """One or more symbols of a subscribe/unsubscribe were rejected.

    ``rejections`` maps each rejected symbol (or the channel name when the
    request has no symbols) to the server's reason.
    """

    def __init__(self, method: str, channel: str, rejections: Mapping[str, str]) -> None:
        self.channel = channel
        self.rejections = dict(rejections)
        detail = "; ".join(f"{symbol}: {reason}" for symbol, reason in self.rejections.items())
        super().__init__(method, f"{channel} rejected ({detail})")


class ChecksumMismatch(KrakenError):
    """A book's CRC32 differs from the server's: the local book is wrong."""

    def __init__(self, symbol: str, expected: int, actual: int) -> None:
        self.symbol = symbol
        self.expected = expected
        self.actual = actual
        super().__init__(f"{symbol} book checksum mismatch: server {expected}, local {actual}")


class ServeError(KrakenError):
    """A REST or MCP request that cannot be served, with its HTTP ``status`` and a clear ``detail``.

    The REST surface answers it as ``application/problem+json`` (RFC 9457),
    the MCP surface as a tool result with ``isError: true``. ``extra`` holds
    further members of the problem document (e.g. the connection state).
    """

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        self.status = status
        self.detail = detail
        self.extra = extra
        super().__init__(detail)
