"""Backoff and the rolling connect budget, driven by explicit times (no clock, no sleeping)."""

from __future__ import annotations

import random

import pytest

from kraken_nb.core.reconnect import Backoff, ConnectBudget


def test_backoff_grows_exponentially_is_capped_and_jittered():
    backoff = Backoff(initial=0.5, maximum=30.0, factor=2.0, jitter=0.5)
    rng = random.Random(1)
    for attempt, base in enumerate([0.5, 1, 2, 4, 8, 16, 30, 30, 30]):
        delays = [backoff.delay(attempt, rng) for _ in range(200)]
        assert base * 0.5 <= min(delays) and max(delays) <= base
        assert max(delays) - min(delays) > base * 0.3, "no jitter"
    assert backoff.delay(10_000, rng) <= 30.0


def test_budget_allows_limit_connects_per_rolling_window():
    budget = ConnectBudget(limit=3, window=600.0)
    for t in (0.0, 10.0, 20.0):
        assert budget.wait(t) == 0.0
        budget.record(t)
    assert budget.used(20.0) == 3
    assert budget.wait(30.0) == pytest.approx(570.0)  # until the connect at 0 leaves the window
    assert budget.wait(600.0) == 0.0
    budget.record(600.0)
    assert budget.wait(601.0) == pytest.approx(9.0)
    assert budget.used(1300.0) == 0


def test_budget_refuses_nonsense():
    with pytest.raises(ValueError, match="limit"):
        ConnectBudget(limit=0)
    with pytest.raises(ValueError, match="window"):
        ConnectBudget(window=0)


def test_ten_minutes_of_a_server_closing_after_one_second_stay_inside_the_budget():
    """A client that never backs off (its connections never prove useful) is held to the budget."""
    budget = ConnectBudget(limit=100, window=600.0)
    now, connects = 0.0, []
    while now < 1800.0:
        now += budget.wait(now)
        budget.record(now)
        connects.append(now)
        now += 1.0 + 0.1  # the connection lives 1 s, then a minimal backoff
    for start in connects:
        assert sum(1 for t in connects if start <= t < start + 600.0) <= 100
    assert len(connects) == pytest.approx(300, abs=2), "the budget should bind, not starve"
