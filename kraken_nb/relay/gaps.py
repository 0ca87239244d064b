"""Gap records: a relay's word that some of its streams may be missing data for a while.

Pure. A relay publishes one :class:`GapRecord` on ``kraken.v2.gap`` when its
upstream connection was down, when it had to drop frames because NATS was
away longer than its buffer lasts, and when it starts after an outage (from
its previous run's last sign of life). Clients add the record to ``gaps()``
for each stream it names that they subscribe to; a book named in a
:data:`DROPPED_REASON` record is reloaded from a snapshot copied after it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from kraken_nb.errors import MalformedMessage

__all__ = ["DROPPED_REASON", "GapRecord"]

DROPPED_REASON: Final = "the relay dropped frames: its buffer was full while NATS was unavailable"
"""The reason of a gap record for frames the relay itself dropped (they are not in the stream)."""


@dataclass(frozen=True, slots=True)
class GapRecord:
    """Streams (``(channel, symbol)``) that may miss data from ``start_ns`` to ``end_ns``, and why."""

    relay: str
    start_ns: int
    end_ns: int
    reason: str
    streams: tuple[tuple[str, str], ...]

    @property
    def msg_id(self) -> str:
        """The message id: one record per relay, start and reason."""
        return f"gap:{self.relay}:{self.start_ns}:{self.reason[:40]}"

    def to_json(self) -> bytes:
        """The record as JSON bytes."""
        return orjson.dumps(
            {
                "relay": self.relay,
                "start_ns": self.start_ns,
                "end_ns": self.end_ns,
                "reason": self.reason,
                "streams": [list(s) for s in self.streams],
            }
        )

    @classmethod
    def from_json(cls, payload: bytes | str) -> GapRecord:
        """Parse a record; raise ``MalformedMessage`` if it is not one."""
        try:
            data = orjson.loads(payload)
            return cls(
                relay=str(data["relay"]),
                start_ns=int(data["start_ns"]),
                end_ns=int(data["end_ns"]),
                reason=str(data["reason"]),
                streams=tuple((str(c), str(s)) for c, s in data["streams"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"not a relay gap record ({exc})", payload) from None
