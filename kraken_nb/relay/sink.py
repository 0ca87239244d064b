"""Where the relay's messages go: the ``Sink`` interface and its JetStream implementation.

The publisher only needs three things from a message system, so another one
(Kafka, say) can be put in its place by writing these three:

- ``publish(subject, payload, msg_id, headers)`` enqueues one message, in
  order, and returns an awaitable :class:`Receipt` (a message system that
  pipelines acknowledgements, as JetStream and Kafka producers do, answers
  later);
- ``flush()`` waits until everything enqueued is on its way;
- ``close()`` releases the connection.

A receipt names the message's position in its stream (``seq``), which the
snapshot headers refer to, and whether the system recognised ``msg_id`` as a
duplicate and kept the first copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

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
    ) -> Awaitable[Receipt]:
        """Enqueue one message; return what resolves to its receipt."""
        ...

    async def flush(self) -> None:
        """Wait until everything enqueued has left."""
        ...

    async def close(self) -> None:
        """Release the connection."""
        ...


class JetStreamSink:
    """Publishes to JetStream with ``Nats-Msg-Id``, pipelining the acknowledgements.

    A receipt not answered within ``ack_timeout`` raises ``TimeoutError``; the
    publisher then sends that message again under the same id, which the
    stream recognises if the first copy did arrive.
    """

    def __init__(self, link: NatsLink, *, ack_timeout: float = 5.0) -> None:
        self._link = link
        self._ack_timeout = ack_timeout

    async def publish(
        self, subject: str, payload: bytes, msg_id: str | None, headers: Mapping[str, str]
    ) -> Awaitable[Receipt]:
        """Enqueue the message on the NATS connection; the result resolves to its :class:`Receipt`."""
        if not self._link.connected:
            raise ConnectionError(f"{self._link.shown} is not connected")
        sent = dict(headers)
        if msg_id is not None:
            sent["Nats-Msg-Id"] = msg_id
        future = await self._link.js.publish_async(subject, payload, headers=sent)
        return self._receipt(future)

    async def _receipt(self, future: asyncio.Future) -> Receipt:  # type: ignore[type-arg]
        ack = await asyncio.wait_for(future, self._ack_timeout)
        return Receipt(int(ack.seq), bool(ack.duplicate))

    async def flush(self) -> None:
        """Wait until the connection has written everything out."""
        await self._link.nc.flush(self._ack_timeout)

    async def close(self) -> None:
        """Close the NATS connection."""
        await self._link.close()
