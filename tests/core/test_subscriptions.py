"""Subscription states: rejected and unanswered requests are retried, never silently dropped or kept."""

from __future__ import annotations

import json
import random

from kraken_nb.core.params import validate_subscription
from kraken_nb.core.reconnect import Backoff
from kraken_nb.core.session import Session

from .test_session import INSTRUMENT, T0, ack, answer_all, recorded_book, trades_frame

SECOND = 1_000_000_000
RETRY = Backoff(initial=1.0, maximum=8.0, factor=2.0, jitter=0.0)  # exact delays: 1, 2, 4, 8, 8… s


def session(**options) -> Session:
    made = Session(retry_backoff=RETRY, rng=random.Random(3), **options)
    made.connection_made(T0)
    return made


def rejection(request: dict, symbol: str | None, error: str = "EService:Unavailable") -> str:
    body = {"method": request["method"], "req_id": request["req_id"], "success": False, "error": error}
    if symbol:
        body["symbol"] = symbol
    return json.dumps(body)


def states(s: Session) -> dict[tuple[str, str | None], tuple[str, int]]:
    return {(r.channel, r.symbol): (r.state, r.attempts) for r in s.subscriptions()}


def subscribes(requests: list[dict]) -> list[tuple[str, list[str]]]:
    return [
        (r["params"]["channel"], r["params"].get("symbol")) for r in requests if r["method"] == "subscribe"
    ]


def test_records_tell_the_state_of_each_subscription():
    s = Session()
    s.subscribe(validate_subscription("trade", ["BTC/USD", "ETH/USD"]))
    s.subscribe(validate_subscription("ohlc", "BTC/USD", interval=5))
    assert states(s) == {
        ("trade", "BTC/USD"): ("wanted", 0),
        ("trade", "ETH/USD"): ("wanted", 0),
        ("ohlc", "BTC/USD"): ("wanted", 0),
    }
    s.connection_made(T0)
    assert {state for state, _ in states(s).values()} == {"pending"}
    assert not s.settled()
    sent = s.data_to_send()
    s.feed(ack(sent[0], "BTC/USD"), T0)
    assert states(s)[("trade", "BTC/USD")] == ("confirmed", 1)
    assert states(s)[("trade", "ETH/USD")] == ("pending", 1)
    answer_all_sent(s, sent)
    assert s.settled() and s.subscription_counts() == {"confirmed": 3}
    record = next(r for r in s.subscriptions() if r.channel == "ohlc")
    assert record.params == {"interval": 5} and record.last_error is None and record.confirmed
    assert record.subscription == validate_subscription("ohlc", "BTC/USD", interval=5)
    s.connection_lost(T0 + SECOND)
    assert {state for state, _ in states(s).values()} == {"wanted"}


def answer_all_sent(s: Session, sent: list[dict]) -> None:
    for request in sent:
        for symbol in request["params"].get("symbol") or [None]:
            s.feed(ack(request, symbol), T0)


def test_a_rejected_resubscribe_is_kept_and_retried_with_backoff():
    s = session()
    s.subscribe(validate_subscription("trade", "BTC/USD"))
    answer_all(s)
    s.feed(trades_frame(range(1, 6)), T0)
    s.connection_lost(T0 + SECOND, "dropped")
    s.connection_made(T0 + 2 * SECOND)
    [resubscribe] = s.data_to_send()
    events = s.feed(rejection(resubscribe, "BTC/USD"), T0 + 2 * SECOND)
    assert [e.kind for e in events] == ["rejected", "subscription"]
    assert events[1].data.state == "retrying" and events[1].data.last_error == "EService:Unavailable"
    [record] = s.subscriptions()
    assert (record.symbol, record.state, record.attempts) == ("BTC/USD", "retrying", 1)
    assert not s.is_subscribed("trade", "BTC/USD")
    assert s.counters["resubscribe_rejections"] == 1 and s.counters["rejected"] == 0
    now = T0 + 3 * SECOND
    s.poll(now)  # schedules the retry 1 s ahead
    assert s.data_to_send() == []
    s.poll(now + SECOND // 2)
    assert s.data_to_send() == []
    s.poll(now + SECOND)
    [retry] = s.data_to_send()
    assert retry["params"] == {"channel": "trade", "symbol": ["BTC/USD"], "snapshot": True}
    assert s.counters["subscribe_retries"] == 1
    # rejected again: the next retry waits twice as long
    s.feed(rejection(retry, "BTC/USD"), now)
    s.poll(now + 2 * SECOND)
    s.poll(now + 3 * SECOND)
    assert s.data_to_send() == []
    s.poll(now + 4 * SECOND)
    [retry] = s.data_to_send()
    s.feed(ack(retry, "BTC/USD"), now + 4 * SECOND)
    assert states(s) == {("trade", "BTC/USD"): ("confirmed", 3)}
    assert s.is_subscribed("trade", "BTC/USD") and s.settled()


def test_a_rejected_book_resync_is_retried_and_the_book_recovers():
    vector = recorded_book()
    s = session()
    s.subscribe(validate_subscription("book", "BTC/USD"))
    answer_all(s)
    s.feed(INSTRUMENT, T0)
    s.feed(json.dumps(vector["snapshot"]), T0)
    bad = json.loads(json.dumps(vector["updates"][0]))
    bad["data"][0]["checksum"] ^= 1
    s.feed(json.dumps(bad), T0)
    unsubscribe, subscribe = s.data_to_send()
    s.feed(ack(unsubscribe, "BTC/USD"), T0)
    s.feed(rejection(subscribe, "BTC/USD"), T0)
    assert states(s)[("book", "BTC/USD")] == ("retrying", 1)
    assert not s.is_subscribed("book", "BTC/USD")
    s.poll(T0)
    s.poll(T0 + SECOND)
    [retry] = s.data_to_send()
    assert subscribes([retry]) == [("book", ["BTC/USD"])]
    s.feed(ack(retry, "BTC/USD"), T0 + SECOND)
    s.feed(json.dumps(vector["snapshot"]), T0 + SECOND)
    assert s.books["BTC/USD"].valid and s.is_subscribed("book", "BTC/USD")


def test_a_new_subscription_the_server_rejects_is_dropped():
    s = session()
    call_id = s.subscribe(validate_subscription("ticker", "BTC/USD"))
    [request] = s.data_to_send()
    events = s.feed(rejection(request, "BTC/USD"), T0)
    assert [e.kind for e in events] == ["rejected"]
    assert s.subscriptions() == [] and s.counters["rejected"] == 1
    assert s.call(call_id).rejections == {"BTC/USD": "EService:Unavailable"}


def test_an_unanswered_new_subscription_is_retried_a_bounded_number_of_times_then_failed():
    s = session(ack_timeout_ns=5 * SECOND, max_attempts=3)
    s.subscribe(validate_subscription("trade", "BTC/USD"))
    assert subscribes(s.data_to_send()) == [("trade", ["BTC/USD"])]
    now = T0
    s.poll(now)  # the request's age starts at the first poll after it was sent
    assert s.poll(now + 4 * SECOND) == []
    events = s.poll(now + 5 * SECOND)
    assert [(e.kind, e.data.state) for e in events] == [("subscription", "retrying")]
    assert events[0].data.last_error == "no answer within 5 s"
    assert s.counters["subscribe_timeouts"] == 1
    sent = []
    for step in range(6, 40):
        events += s.poll(now + step * SECOND)
        sent += s.data_to_send()
    assert subscribes(sent) == [("trade", ["BTC/USD"])] * 2, "three requests in all"
    assert [e.data.state for e in events] == ["retrying", "retrying", "failed"]
    [record] = s.subscriptions()
    assert (record.state, record.attempts, record.last_error) == ("failed", 3, "no answer within 5 s")
    assert s.counters["subscriptions_failed"] == 1
    assert s.poll(now + 100 * SECOND) == [] and s.data_to_send() == [], "a failed one is not resent"
    # asking again tries at once, with a fresh count; the next connection would too
    call_id = s.subscribe(validate_subscription("trade", "BTC/USD"))
    assert call_id is not None
    [request] = s.data_to_send()
    assert states(s) == {("trade", "BTC/USD"): ("pending", 1)}
    s.feed(ack(request, "BTC/USD"), now + 100 * SECOND)
    assert s.call(call_id).done and states(s) == {("trade", "BTC/USD"): ("confirmed", 1)}


def test_a_subscription_confirmed_before_is_retried_without_bound_when_unanswered():
    s = session(ack_timeout_ns=2 * SECOND, max_attempts=2)
    s.subscribe(validate_subscription("ticker", "BTC/USD"))
    answer_all(s)
    s.connection_lost(T0 + SECOND)
    s.connection_made(T0 + 2 * SECOND)
    sent = s.data_to_send()
    for step in range(2, 200):
        s.poll(T0 + step * SECOND)
        sent += s.data_to_send()
    assert len(subscribes(sent)) > 5
    assert states(s)[("ticker", "BTC/USD")][0] in ("pending", "retrying")
    assert s.counters["subscriptions_failed"] == 0


def test_a_late_ack_or_already_subscribed_confirms_a_retried_subscription():
    s = session(ack_timeout_ns=SECOND)
    s.subscribe(validate_subscription("trade", "BTC/USD"))
    [first] = s.data_to_send()
    s.poll(T0)
    s.poll(T0 + SECOND)
    s.poll(T0 + 2 * SECOND)
    [second] = s.data_to_send()
    s.feed(ack(first, "BTC/USD"), T0 + 2 * SECOND)  # the first one was only slow
    assert states(s) == {("trade", "BTC/USD"): ("confirmed", 2)}
    events = s.feed(rejection(second, "BTC/USD", "Already subscribed"), T0 + 2 * SECOND)
    assert [e.kind for e in events] == ["ack"]
    assert states(s) == {("trade", "BTC/USD"): ("confirmed", 2)} and s.counters["rejected"] == 0


def test_a_new_connection_starts_every_count_over():
    s = session(ack_timeout_ns=SECOND, max_attempts=1)
    s.subscribe(validate_subscription("trade", "BTC/USD"))
    s.data_to_send()
    s.poll(T0)
    s.poll(T0 + SECOND)
    assert states(s) == {("trade", "BTC/USD"): ("failed", 1)}
    s.connection_lost(T0 + 2 * SECOND)
    assert states(s) == {("trade", "BTC/USD"): ("wanted", 1)}
    s.connection_made(T0 + 3 * SECOND)
    assert subscribes(s.data_to_send()) == [("trade", ["BTC/USD"])]
    assert states(s) == {("trade", "BTC/USD"): ("pending", 1)}


def test_unsubscribe_forgets_the_state_and_poll_does_nothing_while_disconnected():
    s = session(ack_timeout_ns=SECOND)
    s.subscribe(validate_subscription("trade", "BTC/USD"))
    s.data_to_send()
    s.unsubscribe(validate_subscription("trade", "BTC/USD"))
    assert s.subscriptions() == [] and s.settled()
    s.connection_lost(T0)
    s.subscribe(validate_subscription("trade", "ETH/USD"))
    assert s.poll(T0 + 100 * SECOND) == [] and s.data_to_send() == []
