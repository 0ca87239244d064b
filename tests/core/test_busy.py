"""BusyMeter: busy share per window from cumulative idle time; behind after a saturated second."""

from __future__ import annotations

import pytest

from kraken_nb.core.busy import Behind, BusyMeter

S = 1_000_000_000


def test_the_busy_share_is_one_minus_the_idle_time_a_window_added() -> None:
    meter = BusyMeter(after_ns=10 * S)
    assert meter.sample(0, 0) is None and meter.busy is None
    assert meter.sample(S, S // 4) is None
    assert meter.busy == pytest.approx(0.75)
    assert meter.sample(2 * S, S // 4) is None  # no idle time in the second window
    assert meter.busy == 1.0


def test_behind_after_a_saturated_second_and_caught_up_when_idle_again() -> None:
    meter = BusyMeter()
    meter.sample(0, 0)
    assert meter.sample(S // 2, 0) is None  # saturated for half a second: not yet
    assert not meter.behind
    change = meter.sample(S, S // 100)  # 98 % busy over the second half: saturated for 1 s
    assert change == Behind(True, pytest.approx(0.98), S)
    assert meter.behind and meter.episodes == 1
    assert meter.sample(2 * S, S // 100) is None  # still behind: said once
    change = meter.sample(3 * S, S // 100 + S // 2)
    assert change is not None and not change.behind and change.busy == pytest.approx(0.5)
    assert change.for_ns == 2 * S
    assert not meter.behind and meter.behind_ns == 2 * S


def test_a_window_below_the_threshold_starts_the_second_over() -> None:
    meter = BusyMeter()
    meter.sample(0, 0)
    meter.sample(S * 6 // 10, 0)
    meter.sample(S * 7 // 10, S // 20)  # 50 % busy: not saturated
    assert meter.sample(S * 13 // 10, S // 20) is None  # saturated for 0.6 s only
    assert not meter.behind
    assert meter.sample(S * 17 // 10 + 1, S // 20) is not None


def test_busy_with_nothing_waiting_is_keeping_up_not_behind() -> None:
    meter = BusyMeter()
    meter.sample(0, 0)
    assert meter.sample(S, 0, waiting=False) is None
    assert meter.sample(2 * S, 0, waiting=False) is None and not meter.behind
    assert meter.busy == 1.0
    assert meter.sample(3 * S, 0, waiting=True) is not None and meter.behind  # a full second with a backlog
    assert meter.sample(4 * S, 0, waiting=False) is None and meter.behind  # leaving takes an idle window


def test_a_reset_forgets_the_windows_and_ends_being_behind() -> None:
    meter = BusyMeter(after_ns=0)
    meter.sample(0, 0)
    assert meter.sample(S, 0) is not None and meter.behind
    change = meter.reset(3 * S)
    assert change is not None and not change.behind and change.for_ns == 2 * S
    assert meter.sample(4 * S, 10 * S) is None and not meter.behind  # a fresh first sample
    assert meter.reset(5 * S) is None


def test_bad_settings_and_odd_samples() -> None:
    with pytest.raises(ValueError):
        BusyMeter(threshold=0)
    with pytest.raises(ValueError):
        BusyMeter(after_ns=-1)
    meter = BusyMeter()
    meter.sample(S, 0)
    assert meter.sample(S, 0) is None and meter.busy is None  # an empty window says nothing
    meter.sample(2 * S, 5 * S)  # more idle than time passed: clamped, not negative
    assert meter.busy == 0.0
