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

import orjson

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

    Each message is published with a reply subject under one inbox of this
    sink's (``<inbox>.<n>``, a counter), and JetStream's ``PubAck`` to it
    resolves the message's future with a :class:`Receipt`. (``nats-py``'s
    ``publish_async`` draws random bytes from the OS for every reply token;
    on a busy relay that system call hands the GIL to the receiving thread
    and waits up to a switch interval to get it back, which made it most of
    the cost of a publish.)

    A message whose acknowledgement does not come in time is sent again by
    the publisher under the same id, which the stream recognises if the first
    copy did arrive.
    """

    def __init__(self, link: NatsLink, *, ack_timeout: float = 5.0) -> None:
        self._link = link
        self._ack_timeout = ack_timeout
        self._inbox: str | None = None
        self._replies: Any = None
        self._pending: dict[str, asyncio.Future[Receipt]] = {}
        self._count = 0

    async def publish(
        self, subject: str, payload: bytes, msg_id: str | None, headers: Mapping[str, str]
    ) -> asyncio.Future[Receipt]:
        """Enqueue the message on the NATS connection; the future resolves to its :class:`Receipt`."""
        if not self._link.connected:
            raise ConnectionError(f"{self._link.shown} is not connected")
        if self._inbox is None:
            inbox = self._link.nc.new_inbox()
            self._replies = await self._link.nc.subscribe(f"{inbox}.*", cb=self._on_reply)
            self._inbox = inbox
        sent = dict(headers)
        if msg_id is not None:
            sent["Nats-Msg-Id"] = msg_id
        self._count += 1
        token = str(self._count)
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending[token] = future
        future.add_done_callback(lambda _: self._pending.pop(token, None))
        try:
            await self._link.nc.publish(subject, payload, reply=f"{self._inbox}.{token}", headers=sent)
        except BaseException:
            future.cancel()
            raise
        return future

    async def _on_reply(self, msg: Any) -> None:
        """Resolve the future of the message ``msg`` answers: a ``Receipt``, or the error JetStream gave."""
        import nats.js.errors

        future = self._pending.get(msg.subject.rpartition(".")[2])
        if future is None or future.done():
            return  # answered late, after the publisher stopped waiting
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(nats.js.errors.NoStreamResponseError())
            return
        try:
            answer = orjson.loads(msg.data)
            if "error" in answer:  # from_error raises the APIError subclass for the code
                nats.js.errors.APIError.from_error(answer["error"])
            future.set_result(Receipt(int(answer["seq"]), bool(answer.get("duplicate", False))))
        except nats.js.errors.APIError as exc:
            future.set_exception(exc)
        except Exception as exc:  # never leave the message waiting for its timeout
            future.set_exception(ValueError(f"unreadable acknowledgement {msg.data[:200]!r}: {exc}"))

    async def flush(self) -> None:
        """Wait until the connection has written everything out."""
        await self._link.nc.flush(self._ack_timeout)

    async def close(self) -> None:
        """Close the NATS connection."""
        for future in list(self._pending.values()):
            future.cancel()
        await self._link.close()
