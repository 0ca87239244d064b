"""50 concurrent long-pollers follow the book and the trades for 30 s while the simulator misbehaves.

Book readers apply the snapshot and then every message they are served and
check Kraken's checksum on each; trade readers collect every trade. Meanwhile
the simulator drops connections, corrupts checksums and goes into
maintenance. At the end (market paused, every reader drained): no reader saw
a single checksum mismatch and each ends on the client's own book; each trade
reader's sequence is the client's trade DataFrame from its first trade on,
without duplicates; and every ``gap`` answer came exactly where the retained
window had been exceeded (laggards, who sleep past the window, get one each).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from kraken_nb.core.journal import stream_key
from kraken_nb.core.wire import loads_exact
from kraken_nb.serve import Limits

from .conftest import simulated
from .helpers import BookReader

SYMBOL = "BTC/USD"
BOOK = stream_key("book", SYMBOL)
TRADES = stream_key("trade", SYMBOL)
RUN_S = 30.0
RETAIN = 200  # about 11 s of book messages at the simulator's pace
BOOK_READERS, TRADE_READERS, LAGGARDS = 30, 15, 5
POLL_S = 0.4


@dataclass
class Reads:
    """Every read's cursor and gap flag, bracketed by the stream's evicted cursor before and after it."""

    records: list[tuple[int, bool, int, int]] = field(default_factory=list)
    gaps: int = 0
    requests: int = 0
    unavailable: int = 0


class Readers:
    """The 50 readers on one asyncio loop with one HTTP connection pool."""

    def __init__(self, base: str, journal: Any, precisions: tuple[int, int]) -> None:
        self.base = base
        self.journal = journal
        self.precisions = precisions
        self.stop = asyncio.Event()
        self.books: list[BookReader] = []
        self.trade_ids: list[list[int]] = []
        self.trade_gaps: list[bool] = []
        self.laggard_gaps: list[int] = []
        self.reads = {BOOK: Reads(), TRADES: Reads()}
        self.http: httpx.AsyncClient | None = None

    async def read(self, key: tuple, params: dict[str, Any]) -> dict[str, Any] | None:
        assert self.http is not None
        channel = key[0]
        log = self.reads[key]
        before = self.journal.evicted(key)
        response = await self.http.post(
            f"/v1/streams/{channel}/subscribe",
            json={"channel": channel, "params": {"symbol": [SYMBOL], **params}},
        )
        after = self.journal.evicted(key)
        log.requests += 1
        if response.status_code == 503:  # upstream reconnecting or the book resyncing: retry
            log.unavailable += 1
            assert response.headers["content-type"] == "application/problem+json"
            return None
        assert response.status_code == 200, response.text
        result = loads_exact(response.content)["result"]
        if "since" in params:
            log.records.append((params["since"], result["gap"], before, after))
            log.gaps += result["gap"]
        return result

    async def snapshot(self, key: tuple) -> dict[str, Any]:
        while True:
            result = await self.read(key, {"wait": 5})
            if result is not None:
                return result
            await asyncio.sleep(0.1)

    async def follow_book(self, lag: bool) -> None:
        reader = BookReader(SYMBOL, 10, *self.precisions)
        self.books.append(reader)
        first = await self.snapshot(BOOK)
        reader.apply(first["messages"][0])
        cursor = first["cursor"]
        if lag:  # sleep until the window has moved past our cursor, then expect a gap
            while self.journal.evicted(BOOK) <= cursor and not self.stop.is_set():
                await asyncio.sleep(0.2)
            page = await self.read(BOOK, {"since": cursor})
            self.laggard_gaps.append(int(bool(page and page["gap"])))
            first = await self.snapshot(BOOK)
            reader.apply(first["messages"][0])
            cursor = first["cursor"]
        await asyncio.sleep(random.uniform(0, POLL_S))
        while (page := await self.next_page(BOOK, cursor)) is not None:
            if page["gap"]:
                first = await self.snapshot(BOOK)
                reader.apply(first["messages"][0])
                cursor = first["cursor"]
                continue
            for message in page["messages"]:
                reader.apply(message)
            cursor = page["cursor"]
            await asyncio.sleep(POLL_S)

    async def next_page(self, key: tuple, cursor: int) -> dict[str, Any] | None:
        """The page after ``cursor`` (retried while unavailable); None once stopped and drained."""
        while True:
            stopping = self.stop.is_set()
            page = await self.read(key, {"since": cursor, "wait": 0 if stopping else 2, "limit": 1000})
            if page is None:
                await asyncio.sleep(0.1)
            elif stopping and not page["messages"] and not page["gap"]:
                return None
            else:
                return page

    async def follow_trades(self) -> None:
        ids: list[int] = []
        self.trade_ids.append(ids)
        self.trade_gaps.append(False)
        index = len(self.trade_gaps) - 1
        first = await self.snapshot(TRADES)
        ids += [row["trade_id"] for row in first["messages"][0]["data"]]
        cursor = first["cursor"]
        await asyncio.sleep(random.uniform(0, POLL_S))
        while (page := await self.next_page(TRADES, cursor)) is not None:
            self.trade_gaps[index] |= page["gap"]
            ids += [row["trade_id"] for message in page["messages"] for row in message["data"]]
            cursor = page["cursor"]
            await asyncio.sleep(POLL_S)

    async def run(self, started: threading.Event, stop: threading.Event) -> None:
        limits = httpx.Limits(max_connections=60, max_keepalive_connections=60)
        async with httpx.AsyncClient(base_url=self.base, timeout=60, limits=limits) as self.http:
            tasks = [asyncio.create_task(self.follow_book(lag=False)) for _ in range(BOOK_READERS)]
            tasks += [asyncio.create_task(self.follow_book(lag=True)) for _ in range(LAGGARDS)]
            tasks += [asyncio.create_task(self.follow_trades()) for _ in range(TRADE_READERS)]
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.1)
            self.stop.set()
            await asyncio.gather(*tasks)


@pytest.mark.timeout(120)
def test_fifty_long_pollers_stay_exact_through_drops_corrupt_checksums_and_maintenance() -> None:
    began = time.monotonic()
    with simulated(seed=23) as client:
        simulator = client.simulator
        assert simulator is not None
        handle = client.serve(0, 0, limits=Limits(journal_retain=RETAIN))
        try:
            client.subscribe("book", SYMBOL, depth=10)
            client.subscribe("trade", SYMBOL)
            pair = client.instrument(SYMBOL)
            assert pair is not None
            readers = Readers(
                handle.urls["rest"], handle.journal, (pair["price_precision"], pair["qty_precision"])
            )
            started, stop = threading.Event(), threading.Event()
            failure: list[BaseException] = []

            def run() -> None:
                try:
                    asyncio.run(readers.run(started, stop))
                except BaseException as exc:
                    failure.append(exc)
                    started.set()

            thread = threading.Thread(target=run, name="readers")
            thread.start()
            assert started.wait(30)
            faults = [
                (4, simulator.drop_connections),
                (8, lambda: simulator.corrupt_next_checksum(SYMBOL)),
                (12, lambda: simulator.set_status("maintenance")),
                (15, lambda: simulator.set_status("online")),
                (18, lambda: simulator.drop_after(25)),
                (23, lambda: simulator.corrupt_next_checksum(SYMBOL)),
                (26, simulator.drop_connections),
            ]
            t0 = time.monotonic()
            for at, fault in faults:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                fault()
            time.sleep(max(0.0, RUN_S - (time.monotonic() - t0)))
            # Let the last reconnect settle, freeze the market, let every reader drain.
            client.wait_until(lambda c: (b := c.book(SYMBOL)) is not None and b.valid, timeout=20)
            simulator.pause()
            time.sleep(1.0)
            stop.set()
            thread.join(60)
            assert not thread.is_alive() and not failure, failure
            stats = client.stats()
            final_book = client.book(SYMBOL)
            client_ids = list(client.trades(SYMBOL).trade_id)
        finally:
            handle.stop()

    # every fault happened
    assert stats["reconnects"] >= 3 and stats["checksum_mismatches"] >= 2 and stats["resyncs"] >= 2
    # every book reader reproduced every checksum and ends on the client's book
    assert len(readers.books) == BOOK_READERS + LAGGARDS
    assert final_book is not None and final_book.valid
    for reader in readers.books:
        assert reader.mismatches == [], reader.mismatches[:3]
        assert reader.applied > 50 and reader.snapshots >= 3  # the first one, then one per drop at least
        assert reader.book.checksum() == final_book.checksum()
    # every trade reader's sequence is the client's, from its first trade on, without duplicates
    assert len(readers.trade_ids) == TRADE_READERS
    for ids, had_gap in zip(readers.trade_ids, readers.trade_gaps, strict=True):
        assert len(ids) > 100 and len(set(ids)) == len(ids)
        start = client_ids.index(ids[0])
        if had_gap:
            assert ids == sorted(ids) and set(ids) <= set(client_ids)
        else:
            assert ids == client_ids[start:]
    # gap exactly where the window was exceeded: each answer agrees with the eviction bracketing it
    for key, reads in readers.reads.items():
        for since, gap, before, after in reads.records:
            if gap:
                assert since < after, (key, since, after)
            else:
                assert since >= before, (key, since, before)
    assert readers.laggard_gaps == [1] * LAGGARDS
    assert sum(r.requests for r in readers.reads.values()) > 1000
    assert time.monotonic() - began < 90
