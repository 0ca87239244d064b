"""Trade de-duplication by identity in a bounded window: bogus ids never poison what follows."""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from typing import Any

import pytest

from kraken_nb.core.buffers import TradeBuffer, TradeGap
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session

pytestmark = pytest.mark.timeout(30)

T0 = 1_700_000_000_000_000_000
SYMBOL = "BTC/USD"
BOGUS = (999_999_999, 10**9 + 1)


def trade(trade_id: int, symbol: str = SYMBOL) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "side": "buy",
        "price": 64000.5,
        "qty": 0.25,
        "ord_type": "limit",
        "trade_id": trade_id,
        "timestamp": "2024-03-01T12:00:00.000001Z",
    }


def ids_of(buffer: TradeBuffer) -> list[int]:
    return buffer.to_frame()["trade_id"].tolist()


def reasons(buffer: TradeBuffer) -> list[tuple[int, int, str]]:
    return [(gap.after_id, gap.before_id, gap.reason) for gap in buffer.gaps]


@pytest.mark.parametrize("bogus", BOGUS)
def test_one_bogus_id_far_ahead_drops_nothing_after_it(bogus: int) -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in (100, 101))
    assert buffer.append(trade(bogus))
    assert buffer.extend(trade(i) for i in range(102, 110)) == 8
    assert ids_of(buffer) == [100, 101, bogus, *range(102, 110)]
    assert buffer.duplicates == 0
    assert reasons(buffer) == [(101, bogus, "trade id jumped ahead")]
    assert buffer.anomalies == 1 and buffer.gap_count == 0
    assert buffer.gaps[0].missing == 0 and buffer.gaps[0].anomaly
    assert buffer.last_trade_id(SYMBOL) == 109  # the sequence never followed the bogus id


def test_two_different_bogus_ids_and_a_real_gap_after_them() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in (100, 101, *BOGUS, 105, 106))
    assert ids_of(buffer) == [100, 101, *BOGUS, 105, 106]
    assert reasons(buffer) == [
        (101, BOGUS[0], "trade id jumped ahead"),
        (101, BOGUS[1], "trade id jumped ahead"),
        (101, 105, "trade ids skipped"),  # trades 102-104 really are missing
    ]
    assert buffer.gaps[-1].missing == 3


def test_a_repeated_bogus_id_is_a_duplicate_and_the_stream_goes_on() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in (100, BOGUS[0], BOGUS[0], 101, 102))
    assert ids_of(buffer) == [100, BOGUS[0], 101, 102]
    assert buffer.duplicates == 1


def test_an_id_going_backwards_is_kept_and_recorded() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in (100, 101, 5, 102, 103))
    assert ids_of(buffer) == [100, 101, 5, 102, 103]
    assert reasons(buffer) == [(101, 5, "trade id went backwards")]
    assert buffer.duplicates == 0


def test_a_real_jump_is_followed_once_the_next_trade_continues_it() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in (100, 101, 5_000_000, 5_000_001, 5_000_002, 5_000_004))
    assert len(buffer) == 6
    assert reasons(buffer) == [
        (101, 5_000_000, "trade id jumped ahead"),
        (5_000_002, 5_000_004, "trade ids skipped"),
    ]
    assert buffer.last_trade_id(SYMBOL) == 5_000_004
    # A restarted feed whose ids start again at 1 is followed the same way.
    buffer.extend(trade(i) for i in (1, 2, 3))
    assert ids_of(buffer)[-3:] == [1, 2, 3] and buffer.last_trade_id(SYMBOL) == 3


def test_the_window_is_bounded_and_per_symbol() -> None:
    class SmallWindow(TradeBuffer):
        DEDUPE_WINDOW = 5

    buffer = SmallWindow()
    buffer.extend(trade(i) for i in range(1, 11))
    assert buffer.extend(trade(i) for i in range(6, 11)) == 0  # the newest five are repeats
    assert buffer.append(trade(5))  # older than the window: not remembered, kept as an anomaly
    assert buffer.gaps[-1].reason == "trade id went backwards"
    assert buffer.append(trade(8, "ETH/USD"))  # another book's ids are its own


def test_a_snapshot_drops_repeats_and_stale_history_but_keeps_new_trades() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(1000, 1010))
    # After a reconnect the 50-trade snapshot starts 30 trades before the first one we had.
    kept = buffer.extend_new([trade(i) for i in range(970, 1020)], snapshot=True)
    assert [row["trade_id"] for row in kept] == list(range(1010, 1020))
    assert ids_of(buffer) == list(range(1000, 1020))
    assert (buffer.duplicates, buffer.stale) == (10, 30)
    assert buffer.gaps == []


def test_a_bogus_id_inside_a_snapshot_does_not_make_the_rest_stale() -> None:
    buffer = TradeBuffer()
    buffer.extend(trade(i) for i in range(1000, 1005))
    kept = buffer.extend_new([trade(i) for i in (1003, 1004, BOGUS[0], 1005, 1006)], snapshot=True)
    assert [row["trade_id"] for row in kept] == [BOGUS[0], 1005, 1006]


def test_anomalies_are_logged_throttled(caplog: pytest.LogCaptureFixture) -> None:
    buffer = TradeBuffer()
    buffer.append(trade(100))
    with caplog.at_level(logging.WARNING, logger="kraken_nb.core.buffers.trades"):
        for i in range(101, 111):
            buffer.append(trade(BOGUS[0] + 2 * i))  # ten far jumps, none followed
            buffer.append(trade(i))
    assert buffer.anomalies == 10 and len(buffer) == 21
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 4  # the 1st, 2nd, 4th and 8th
    assert "trade id jumped ahead" in messages[0] and "kept" in messages[0]


def frame(ids: list[int], kind: str = "update") -> str:
    return json.dumps({"channel": "trade", "type": kind, "data": [trade(i) for i in ids]})


@pytest.mark.parametrize("bogus", BOGUS)
def test_session_keeps_every_real_trade_after_a_bogus_id(bogus: int) -> None:
    session = Session()
    session.connection_made(T0)
    session.subscribe(validate_subscription("trade", [SYMBOL]))
    session.data_to_send()
    session.feed(frame([100, 101]), T0)
    events = session.feed(frame([bogus, 102]), T0 + 1)
    assert [e.kind for e in events] == ["trade", "trade", "gap"]
    assert events[-1].data == TradeGap(SYMBOL, 101, bogus, events[-1].data.time_ns, "trade id jumped ahead")
    session.feed(frame(list(range(103, 120))), T0 + 2)
    assert session.trades.to_frame()["trade_id"].tolist() == [100, 101, bogus, *range(102, 120)]
    assert session.counters["duplicate_trades"] == 0
    assert session.counters["trade_id_anomalies"] == 1 and session.counters["trade_gaps"] == 0
    gaps = session.gaps_frame()
    assert gaps["reason"].tolist() == ["trade id jumped ahead"]
    assert gaps["before_trade_id"].tolist() == [bogus]
    # A reconnect renews the trades with a snapshot: repeats and older trades are dropped.
    session.connection_lost(T0 + 3)
    session.connection_made(T0 + 4)
    [request] = session.data_to_send()
    assert request["params"]["snapshot"] is True
    session.feed(frame(list(range(90, 125)), "snapshot"), T0 + 5)
    assert session.trades.to_frame()["trade_id"].tolist()[-5:] == list(range(120, 125))
    assert session.counters["duplicate_trades"] == 20 and session.counters["stale_trades"] == 10


class WindowModel:
    """The reference: a trade is a repeat when its id is among the newest ``size`` kept ids."""

    def __init__(self, buffer: TradeBuffer, size: int) -> None:
        self.buffer = buffer
        self.window: deque[int] = deque(maxlen=size)
        self.expected: list[int] = []
        self.sent = 0

    def send(self, trade_id: int) -> None:
        self.sent += 1
        self.buffer.append(trade(trade_id))
        if trade_id not in self.window:
            self.window.append(trade_id)
            self.expected.append(trade_id)


def test_dedupe_matches_a_plain_window_of_the_newest_ids() -> None:
    """Random bursts of consecutive ids, repeats, gaps, far jumps and steps back, against the model."""

    class SmallWindow(TradeBuffer):
        DEDUPE_WINDOW = 20

    rng = random.Random(3)
    for _ in range(40):
        model = WindowModel(SmallWindow(), 20)
        trade_id = 1000
        for _ in range(60):
            pick = rng.random()
            if pick < 0.4:  # a burst of consecutive trades, often longer than the window
                for _ in range(rng.randint(1, 60)):
                    trade_id += 1
                    model.send(trade_id)
            elif pick < 0.55:
                trade_id += rng.randint(2, 5)  # a gap
                model.send(trade_id)
            elif pick < 0.8:  # repeats of recent ids, and ids just older than the window
                for _ in range(rng.randint(1, 5)):
                    window = model.window
                    model.send(rng.choice([*window, window[0] - rng.randint(1, 30)]) if window else trade_id)
            else:
                model.send(rng.choice(BOGUS) + rng.randint(0, 3))
        assert ids_of(model.buffer) == model.expected
        assert model.buffer.duplicates == model.sent - len(model.expected)
