"""User callbacks: none runs after close(), and one that always raises cannot flood the log."""

from __future__ import annotations

import logging
import threading
import time

from kraken_nb import KrakenClient

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


def test_no_callback_runs_after_close_returns() -> None:
    client = KrakenClient.simulated(speed=40)
    starts: list[float] = []
    running = threading.Event()

    def slow(event) -> None:
        starts.append(time.monotonic())
        running.set()
        time.sleep(0.05)

    try:
        client.on("trade", slow)
        client.subscribe("trade", SYMBOLS, snapshot=True)  # 150 snapshot trades: 7.5 s of callbacks
        assert running.wait(5)
    finally:
        began = time.monotonic()
        client.close()
        closed_at = time.monotonic()
    time.sleep(0.5)
    assert closed_at - began < 3.0
    assert starts and max(starts) < closed_at, "a callback started after close() returned"
    stats = client.stats()
    assert stats["callbacks_discarded"] > 50
    assert len(starts) + stats["callbacks_discarded"] <= stats["trades"]
    assert not any(t.name == "kraken-nb-callbacks" and t.is_alive() for t in threading.enumerate())


def test_a_callback_that_always_raises_is_logged_once_with_its_traceback_then_counted(caplog) -> None:
    def broken(event) -> None:
        raise ValueError(f"cannot handle trade {event.data['trade_id']}")

    with (
        caplog.at_level(logging.ERROR, logger="kraken_nb.dispatch"),
        KrakenClient.simulated(speed=40) as client,
    ):
        client.on("trade", broken)
        client.subscribe("trade", SYMBOLS, snapshot=True)
        client.wait_until(lambda c: c.stats()["callback_errors"] >= 100, timeout=10)
        errors = client.stats()["callback_errors"]
    records = [r for r in caplog.records if r.name == "kraken_nb.dispatch"]
    with_traceback = [r for r in records if r.exc_info]
    assert len(with_traceback) == 1
    assert "ValueError: cannot handle trade" in caplog.text
    assert len(records) <= errors.bit_length() + 1, f"{len(records)} log records for {errors} errors"
    assert "so far" in records[-1].getMessage()
