"""The JetStream sink over a real nats-server: receipts, duplicates and errors of its pipelined acks."""

from __future__ import annotations

import asyncio

import nats.js.errors
import pytest

from kraken_nb.relay.connection import NatsLink
from kraken_nb.relay.local import LocalNatsServer
from kraken_nb.relay.sink import JetStreamSink, Receipt


async def _sink(server: LocalNatsServer) -> JetStreamSink:
    link = NatsLink(server.url, name="test sink")
    await link.open(5.0)
    await link.js.add_stream(name="T", subjects=["t.>"])
    return JetStreamSink(link, ack_timeout=5.0)


def test_each_message_gets_its_own_receipt_in_order(nats_server: LocalNatsServer) -> None:
    async def run() -> list[Receipt]:
        sink = await _sink(nats_server)
        try:
            futures = [
                await sink.publish(f"t.{i % 3}", b"x%d" % i, f"id-{i}", {"H": "v"}) for i in range(500)
            ]
            again = await sink.publish("t.0", b"x0", "id-0", {})  # the same id: stored once
            return [*await asyncio.gather(*futures), await again]
        finally:
            await sink.close()

    receipts = asyncio.run(run())
    assert [r.seq for r in receipts[:-1]] == list(range(1, 501))
    assert not any(r.duplicate for r in receipts[:-1])
    assert receipts[-1] == Receipt(1, duplicate=True)


def test_a_subject_no_stream_stores_is_an_error_not_a_hang(nats_server: LocalNatsServer) -> None:
    async def run() -> BaseException | None:
        sink = await _sink(nats_server)
        try:
            future = await sink.publish("elsewhere.x", b"x", "id", {})
            return await asyncio.wait_for(asyncio.shield(future), 5.0) and None
        except BaseException as exc:
            return exc
        finally:
            await sink.close()

    assert isinstance(asyncio.run(run()), nats.js.errors.NoStreamResponseError)


def test_jetstream_errors_reach_the_future(nats_server: LocalNatsServer) -> None:
    """A header JetStream rejects (here: the wrong expected stream) fails that message's future only."""

    async def run() -> tuple[BaseException | None, Receipt]:
        sink = await _sink(nats_server)
        try:
            bad = await sink.publish("t.1", b"x", "a", {"Nats-Expected-Stream": "OTHER"})
            good = await sink.publish("t.1", b"y", "b", {})
            error = await asyncio.gather(bad, return_exceptions=True)
            return error[0], await good
        finally:
            await sink.close()

    error, receipt = asyncio.run(run())
    assert isinstance(error, nats.js.errors.APIError), error
    assert receipt.seq == 1


def test_publishing_while_disconnected_is_refused(nats_server: LocalNatsServer) -> None:
    async def run() -> None:
        sink = await _sink(nats_server)
        await sink.close()
        with pytest.raises(ConnectionError, match="not connected"):
            await sink.publish("t.1", b"x", "a", {})

    asyncio.run(run())
