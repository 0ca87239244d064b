"""One client connection of the simulator: its subscriptions and its outgoing queue.

Frames are queued and written by one writer task per connection, so a slow or
vanished client never holds up the others. A client that falls too far
behind is cut off, as an exchange would. The connection remembers when it was
last sent a channel update, so heartbeats can fill only the silences.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

__all__ = ["MAX_BACKLOG", "Connection", "Subscription"]

logger = logging.getLogger(__name__)

MAX_BACKLOG: Final = 50_000
"""Queued frames beyond which a connection is dropped as too slow."""


@dataclass(slots=True)
class Subscription:
    """One subscription of one connection (a bbo ticker also remembers the best levels it sent)."""

    channel: str
    symbol: str | None
    options: Mapping[str, Any] = field(default_factory=dict)
    bbo: Any = None
    """Ticker: the best bid and ask last sent."""


class Connection:
    """A connected client: id, subscriptions, outgoing queue and writer task."""

    def __init__(self, connection_id: int, websocket: ServerConnection) -> None:
        self.id = connection_id
        self.websocket = websocket
        self.subscriptions: dict[tuple[str, str, int], Subscription] = {}
        self.remaining: int | None = None
        """Frames still to send before the connection is dropped (None: no limit)."""
        self.closed = False
        self.last_update = time.monotonic()
        """When the last channel update (any frame but a reply to a request) was queued."""
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"simulator-writer-{connection_id}")

    def send(self, text: str, *, update: bool = True) -> None:
        """Queue one frame; drop the connection when the client has fallen too far behind.

        ``update=False`` marks a reply to a request (ack, pong): it does not
        count as channel traffic, so it does not delay a heartbeat.
        """
        if self.closed:
            return
        if update:
            self.last_update = time.monotonic()
        if self._queue.qsize() >= MAX_BACKLOG:
            logger.warning("connection %d is %d frames behind; dropping it", self.id, MAX_BACKLOG)
            self.abort()
            return
        self._queue.put_nowait(text)

    def drop_after(self, count: int) -> None:
        """Drop the connection once ``count`` more frames have been sent (now when ``count`` <= 0)."""
        if count <= 0:
            self.abort()
        else:
            self.remaining = count

    def abort(self) -> None:
        """Close the TCP connection at once, without a closing handshake (an abnormal close)."""
        self.closed = True
        transport = self.websocket.transport
        if transport is not None:
            transport.abort()

    async def finish(self) -> None:
        """Stop the writer; called once the connection has ended."""
        self.closed = True
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)

    async def _write(self) -> None:
        try:
            while True:
                text = await self._queue.get()
                await self.websocket.send(text)
                if self.remaining is not None:
                    self.remaining -= 1
                    if self.remaining <= 0:
                        logger.info("dropping connection %d after its planned number of frames", self.id)
                        self.abort()
                        return
        except ConnectionClosed:
            self.closed = True
        except Exception:
            logger.exception("writer of connection %d failed", self.id)
            self.abort()
