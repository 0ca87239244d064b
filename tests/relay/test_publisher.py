"""The publisher against a sink of our own: order, retries under the same ids, the bounded buffer's gap.

The sink here implements the ``Sink`` interface the way JetStream behaves
(a sequence per stored message, a repeated id stored once) and loses what
the test tells it to; the same publisher runs against a real nats-server in
``test_relay.py``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.relay.gaps import DROPPED_REASON, GapRecord
from kraken_nb.relay.publisher import Outgoing, Publisher
from kraken_nb.relay.sink import Receipt
from kraken_nb.relay.subjects import GAP_SUBJECT, book_snapshot_subject


class StoreSink:
    """Stores messages like a stream with a duplicate window; can be down or lose acknowledgements."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, bytes, str | None, dict[str, str]]] = []
        self.ids: dict[str, int] = {}
        self.down = False
        self.lose_ack_of: set[str] = set()
        self.publishes = 0

    async def publish(
        self, subject: str, payload: bytes, msg_id: str | None, headers: Mapping[str, str]
    ) -> asyncio.Future[Receipt]:
        if self.down:
            raise ConnectionError("the sink is down")
        self.publishes += 1
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        if msg_id is not None and msg_id in self.ids:
            future.set_result(Receipt(self.ids[msg_id], duplicate=True))
            return future
        self.stored.append((subject, payload, msg_id, dict(headers)))
        seq = len(self.stored)
        if msg_id is not None:
            self.ids[msg_id] = seq
        if msg_id in self.lose_ack_of:
            self.lose_ack_of.discard(msg_id)
            future.set_exception(TimeoutError("acknowledgement lost"))
        else:
            future.set_result(Receipt(seq))
        return future

    async def flush(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def data(self) -> list[bytes]:
        return [payload for subject, payload, _, _ in self.stored if subject.startswith("kraken.v2.trade")]


def item(i: int, symbol: str = "BTC/USD") -> Outgoing:
    return Outgoing(
        "kraken.v2.trade.BTC-USD",
        f"frame {i}".encode(),
        f"trade:{symbol}:{i}",
        stream=("trade", symbol),
        received_ns=1_000 + i,
    )


@pytest.fixture
def publisher() -> Publisher:
    publisher = Publisher(relay="r1", max_buffer=20, window=8)
    publisher.start()
    yield publisher
    publisher.close(drain_timeout=1.0)


def test_lost_acknowledgements_are_sent_again_and_stored_once_in_order(publisher: Publisher) -> None:
    sink = StoreSink()
    sink.lose_ack_of = {f"trade:BTC/USD:{i}" for i in (3, 11, 12, 17)}
    publisher.max_buffer = 1_000
    for i in range(200):  # all queued before the sink, so the windows of 8 start at 0 on any machine
        assert publisher.put(item(i))
    publisher.attach(sink)
    assert publisher.wait_idle(10)
    assert sink.data() == [f"frame {i}".encode() for i in range(200)]  # each once, in order
    assert publisher.counters["published"] == 200
    # windows of 8: [0-7] lost 3's ack, [11-18] lost 11's, 12's and 17's; each was sent again from there
    assert publisher.counters["failures"] == 2
    assert publisher.counters["duplicates"] == 5 + 8  # 3-7 again, then 11-18 again
    assert publisher.counters["dropped"] == 0


def test_a_full_buffer_drops_new_frames_and_records_them_as_a_gap_first(publisher: Publisher) -> None:
    sink = StoreSink()
    sink.down = True
    publisher.attach(sink)
    accepted = [publisher.put(item(i, "ETH/USD" if i % 2 else "BTC/USD")) for i in range(50)]
    assert accepted == [True] * 20 + [False] * 30
    assert publisher.counters["dropped"] == 30 and publisher.buffered == 20
    sink.down = False
    assert publisher.wait_idle(10)
    for i in range(50, 55):
        assert publisher.put(item(i))
    assert publisher.wait_idle(10)
    subjects = [subject for subject, *_ in sink.stored]
    assert subjects[:20] == ["kraken.v2.trade.BTC-USD"] * 20
    assert subjects[20] == GAP_SUBJECT and subjects[21:] == ["kraken.v2.trade.BTC-USD"] * 5
    record = GapRecord.from_json(sink.stored[20][1])
    assert record.relay == "r1" and "buffer was full" in record.reason
    # first dropped → the moment the buffer had room again (here: drained, before frame 50 came)
    assert record.start_ns == 1_000 + 20 and record.end_ns > 1_000 + 50
    assert set(record.streams) == {("trade", "BTC/USD"), ("trade", "ETH/USD")}


def test_a_drop_is_recorded_once_the_buffer_drains_even_if_no_frame_follows(publisher: Publisher) -> None:
    """A market gone quiet after NATS came back must not leave the gap unsaid (nor refuse forever)."""
    sink = StoreSink()
    sink.down = True
    publisher.attach(sink)
    accepted = [publisher.put(item(i)) for i in range(25)]
    assert accepted == [True] * 20 + [False] * 5 and publisher.refusing
    sink.down = False
    assert publisher.wait_idle(10)
    assert not publisher.refusing
    subjects = [subject for subject, *_ in sink.stored]
    assert subjects == ["kraken.v2.trade.BTC-USD"] * 20 + [GAP_SUBJECT]
    record = GapRecord.from_json(sink.stored[20][1])
    assert record.start_ns == 1_000 + 20 and record.reason == DROPPED_REASON


def test_a_book_snapshot_names_the_sequence_of_the_frame_it_follows(publisher: Publisher) -> None:
    sink = StoreSink()
    publisher.attach(sink)
    book = OrderBook("BTC/USD", 10, price_precision=1, qty_precision=8)
    book.apply({"symbol": "BTC/USD", "bids": [{"price": 10.0, "qty": 1.0}], "asks": [], "checksum": 0})
    for i in range(5):
        publisher.put(item(i))
    frame = item(5)
    frame.book = book
    publisher.put(frame)
    assert publisher.wait_idle(10)
    snapshots = [
        (headers, payload)
        for subject, payload, _, headers in sink.stored
        if subject == book_snapshot_subject("BTC/USD")
    ]
    assert len(snapshots) == 1
    headers, payload = snapshots[0]
    frame_seq = sink.ids["trade:BTC/USD:5"]
    assert headers["Kraken-Stream-Seq"] == str(frame_seq) and headers["Kraken-Received"] == "1005"
    assert headers["Kraken-Book-Time"] == "1005"  # copied right after that frame
    assert json.loads(payload)["data"][0]["checksum"] == book.checksum()
    assert publisher.counters["snapshots"] == 1
