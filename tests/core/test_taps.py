"""Session taps: every frame, parsed once, with the events it caused; errors contained."""

from __future__ import annotations

import json

from kraken_nb.core.messages import TradeMessage
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.core.taps import Tap

TRADE = {
    "channel": "trade",
    "type": "update",
    "data": [
        {
            "symbol": "BTC/USD",
            "side": "buy",
            "price": 64000.1,
            "qty": 0.5,
            "ord_type": "limit",
            "trade_id": 7,
            "timestamp": "2024-01-01T00:00:00.000001Z",
        }
    ],
}


class Recorder(Tap):
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def frame(self, text, message, received_ns, events) -> None:
        self.calls.append(("frame", text, message, received_ns, [e.kind for e in events]))

    def connected(self, now_ns) -> None:
        self.calls.append(("connected", now_ns))

    def disconnected(self, now_ns, reason) -> None:
        self.calls.append(("disconnected", now_ns, reason))


class Broken(Tap):
    def frame(self, text, message, received_ns, events) -> None:
        raise RuntimeError("tap bug")


def connected_session() -> Session:
    session = Session()
    session.subscribe(validate_subscription("trade", "BTC/USD"))
    session.connection_made(1)
    return session


def test_tap_sees_text_message_and_events_in_order() -> None:
    session = connected_session()
    tap = Recorder()
    session.add_tap(tap)
    text = json.dumps(TRADE)
    session.feed(text, 5)
    session.feed("{not json", 6)
    session.connection_lost(7, "gone")
    session.connection_made(8)
    kinds = [call[0] for call in tap.calls]
    assert kinds == ["frame", "frame", "disconnected", "connected"]
    _, seen_text, message, received_ns, events = tap.calls[0]
    assert seen_text == text and received_ns == 5 and events == ["trade"]
    assert isinstance(message, TradeMessage) and message.data[0]["trade_id"] == 7
    assert tap.calls[1][2] is None and tap.calls[1][4] == ["error"]
    assert tap.calls[2] == ("disconnected", 7, "gone")


def test_a_failing_tap_is_counted_and_the_stream_goes_on() -> None:
    session = connected_session()
    good = Recorder()
    session.add_tap(Broken())
    session.add_tap(good)
    events = session.feed(json.dumps(TRADE), 5)
    assert [e.kind for e in events] == ["trade"]
    assert session.counters["tap_errors"] == 1
    assert len(good.calls) == 1
    assert len(session.trades.to_frame()) == 1


def test_removed_tap_hears_nothing() -> None:
    session = connected_session()
    tap = Recorder()
    session.add_tap(tap)
    session.add_tap(tap)  # adding twice keeps one
    session.remove_tap(tap)
    session.feed(json.dumps(TRADE), 5)
    assert tap.calls == []
