"""A TCP forwarder on loopback that can cut its connections: a network partition between a client and NATS."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from kraken_nb.looping import LoopThread

__all__ = ["Partition"]


class Partition:
    """Forwards a loopback port to ``target_port``; :meth:`cut` drops every connection, refuses new ones.

    :meth:`heal` accepts connections again. Only the clients that connect
    through it are cut off: the relay talks to NATS directly and goes on.
    :meth:`stall` holds back what the server sends on one connection (the
    client's requests still reach it), :meth:`flow` lets it through again.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._open = threading.Event()
        self._open.set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._flows: list[asyncio.Event] = []  # per connection, in the order accepted: set while it flows
        self._ready = threading.Event()
        self._runner = LoopThread("test-partition", self._main)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def __enter__(self) -> Partition:
        self._runner.start()
        assert self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._runner.stop(5)

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones."""
        self._open.clear()
        self._runner.call(self._drop_all(), 5)

    def heal(self) -> None:
        """Accept connections again."""
        self._open.set()

    def stall(self, index: int) -> None:
        """Hold back what the server sends on the ``index``-th connection accepted (0: the first)."""
        self._runner.call_soon(self._flows[index].clear)

    def flow(self, index: int) -> None:
        """Let the server's bytes through again on the ``index``-th connection."""
        self._runner.call_soon(self._flows[index].set)

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _main(self) -> None:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        assert self._runner.stopping is not None
        async with server:
            await self._runner.stopping.wait()
        await self._drop_all()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open.is_set():
            writer.transport.abort()
            return
        flowing = asyncio.Event()
        flowing.set()
        self._flows.append(flowing)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer, flowing))

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, flowing: asyncio.Event | None = None
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, ConnectionError):
            while data := await reader.read(65536):
                if flowing is not None:
                    await flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self._writers.discard(writer)
