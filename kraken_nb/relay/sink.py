"""Where the relay's messages go: the ``Sink`` interface and its JetStream implementation.

The publisher only needs three things from a message system, so another one
(Kafka, say) can be put in its place by writing these three:

- ``publish(subject, payload, msg_id, headers)`` enqueues one message, in
  order, and returns an ``asyncio.Future`` that resolves to its receipt (a
  message system that pipelines acknowledgements, as JetStream and Kafka
  producers do, answers later; the publisher bounds the wait);
- ``flush()`` waits until everything enqueued is on its way;
- ``close()`` releases the connection.

A receipt (a :class:`Receipt`, or the system's own acknowledgement with the
same two attributes) names the message's position in its stream (``seq``),
which the snapshot headers refer to, and whether the system recognised
``msg_id`` as a duplicate and kept the first copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kraken_nb.relay.connection import NatsLink

__all__ = ["JetStreamSink", "Receipt", "Sink"]


@dataclass(frozen=True, slots=True)
class Receipt:
    """The acknowledgement of one stored message: its stream position, and whether it was a duplicate."""

    seq: int
    duplicate: bool = False


class Sink(Protocol):
    """A message system the relay publishes to (see the module docstring)."""

    async def publish(
        self, subject: str, payload: bytes, msg_id: str | None, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        """Enqueue one message; return the future of its receipt."""
        ...

    async def flush(self) -> None:
        """Wait until everything enqueued has left."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class JetStreamSink:
    """Publishes to JetStream with ``Nats-Msg-Id``, pipelining the acknowledgements (``PubAck``).

    A message whose acknowledgement does not come in time is sent again by
    the publisher under the same id, which the stream recognises if the first
    copy did arrive.
    """

    def __init__(self, link: NatsLink, *, ack_timeout: float = 5.0) -> None:
        self._link = link
        self._ack_timeout = ack_timeout

    async def publish(
        self, subject: str, payload: bytes, msg_id: str | None, headers: Mapping[str, str]
    ) -> asyncio.Future[Any]:
        """Enqueue the message on the NATS connection; the future resolves to its ``PubAck``."""
        if not self._link.connected:
            raise ConnectionError(f"{self._link.shown} is not connected")
        sent = dict(headers)
        if msg_id is not None:
            sent["Nats-Msg-Id"] = msg_id
        return await self._link.js.publish_async(subject, payload, headers=sent)  # type: ignore[no-any-return]

    async def flush(self) -> None:
        """Wait until the connection has written everything out."""
        await self._link.nc.flush(self._ack_timeout)

    async def close(self) -> None:
        """Close the NATS connection."""
        await self._link.close()
