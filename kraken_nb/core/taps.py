"""Taps: read-only observers of everything a :class:`~kraken_nb.core.session.Session` receives.

Sinks beyond the session's own buffers (the cursor journal behind the REST and
MCP surfaces, the Parquet recorder, the NATS relay) subscribe to the session
instead of parsing frames a second time. A tap sees every frame after the
session handled it: the exact text that arrived, the parsed record (``None``
when the frame was malformed) and the events it produced, which tell whether
the session accepted it (a ``book`` event) or rejected it (``checksum_mismatch``,
``error``). It also hears when a connection opens and drops.

Taps run on the thread that feeds the session, under the client's lock: they
must be quick and must not block (queue the work, do I/O elsewhere). A tap
that raises is counted (``session.counters["tap_errors"]``), logged once and
kept; it can never stop the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kraken_nb.core.messages import Message

__all__ = ["Tap"]


class Tap:
    """Base class of session observers; override what you need (every method is a no-op)."""

    def frame(self, text: str | bytes, message: Message | None, received_ns: int, events: list[Any]) -> None:
        """One received frame, after the session handled it."""

    def connected(self, now_ns: int) -> None:
        """A connection opened (the session is about to renew every subscription)."""

    def disconnected(self, now_ns: int, reason: str) -> None:
        """The connection dropped; books are invalid until their next snapshot."""
