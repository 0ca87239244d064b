"""Subscriptions over a real socket: a rejected resubscribe or an unanswered subscribe is no silent hole."""

from __future__ import annotations

import pytest

from kraken_nb import KrakenClient, RequestTimeout, SubscriptionRejected
from kraken_nb.core.reconnect import Backoff

SYMBOL = "BTC/USD"
OPTIONS = {
    "backoff": Backoff(initial=0.05, maximum=0.5),
    "silence_timeout": 2.0,
    "ack_timeout": 1.0,
    "timeout": 10.0,
}


def record(client: KrakenClient, channel: str, symbol: str):
    return next(s for s in client.subscriptions() if s.channel == channel and s.symbol == symbol)


def test_a_transiently_rejected_resubscribe_is_retried_not_dropped() -> None:
    with KrakenClient.simulated(speed=20, seed=11, client_options=OPTIONS) as client:
        seen: list = []
        client.on("subscription", seen.append)
        client.subscribe("trade", SYMBOL)
        client.subscribe("ticker", "ETH/USD")  # keeps the connection busy while the trade retries
        client.wait_until(lambda c: len(c.trades(SYMBOL)) > 0)
        client.simulator.reject_next_subscribe("EService:Unavailable")
        client.simulator.drop_connections()
        client.wait_until(lambda c: c.stats()["resubscribe_rejections"] == 1)
        trade = record(client, "trade", SYMBOL)
        assert trade.state in ("retrying", "pending", "confirmed")
        client.wait_until(lambda c: record(c, "trade", SYMBOL).state == "confirmed")
        count = len(client.trades(SYMBOL))
        client.wait_until(lambda c: len(c.trades(SYMBOL)) > count, timeout=10)
        stats = client.stats()
        assert stats["reconnects"] == 1, "recovered by a retry on the same connection, not a reconnect"
        assert stats["subscribe_retries"] >= 1 and stats["rejected"] == 0
        assert stats["subscriptions"] == {"confirmed": 2}
        assert [s.symbol for s in client.subscriptions()] == [SYMBOL, "ETH/USD"]
        client.wait_until(lambda c: bool(seen), timeout=5)
        assert seen[0].data.state == "retrying" and seen[0].data.last_error == "EService:Unavailable"


def test_a_rejected_new_subscription_still_raises_and_is_not_kept() -> None:
    with KrakenClient.simulated(speed=20, seed=11, client_options=OPTIONS) as client:
        client.simulator.reject_next_subscribe("EService:Unavailable")
        with pytest.raises(SubscriptionRejected, match="EService:Unavailable"):
            client.subscribe("trade", SYMBOL)
        assert client.subscriptions() == []


def test_an_unanswered_subscribe_times_out_says_so_and_is_retried() -> None:
    with KrakenClient.simulated(speed=20, seed=11, client_options=OPTIONS) as client:
        client.simulator.ignore_next_subscribe(1)
        with pytest.raises(RequestTimeout, match="kept and retried"):
            client.subscribe("trade", SYMBOL, timeout=0.5)
        assert record(client, "trade", SYMBOL).state in ("pending", "retrying")
        client.wait_until(lambda c: record(c, "trade", SYMBOL).state == "confirmed", timeout=10)
        assert record(client, "trade", SYMBOL).attempts == 2
        client.wait_until(lambda c: len(c.trades(SYMBOL)) > 0, timeout=10)
        stats = client.stats()
        assert stats["subscribe_timeouts"] == 1 and stats["subscribe_retries"] == 1


def test_a_subscribe_never_answered_ends_failed_and_visible() -> None:
    with KrakenClient.simulated(speed=20, seed=11, client_options=OPTIONS) as client:
        client.simulator.ignore_next_subscribe(100)
        with pytest.raises(RequestTimeout):
            client.subscribe("trade", SYMBOL, timeout=1.0)
        client.wait_until(lambda c: record(c, "trade", SYMBOL).state == "failed", timeout=15)
        failed = record(client, "trade", SYMBOL)
        assert failed.attempts == 3 and "no answer" in failed.last_error
        assert client.stats()["subscriptions_failed"] == 1
        assert client.stats()["subscriptions"] == {"failed": 1}
        client.simulator.ignore_next_subscribe(0)
        client.subscribe("trade", SYMBOL)  # asking again tries at once
        assert record(client, "trade", SYMBOL).state == "confirmed"
