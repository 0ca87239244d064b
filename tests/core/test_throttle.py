"""ThrottledLog: every occurrence counted, only powers of two logged, traceback once."""

from __future__ import annotations

import logging

from kraken_nb.core.throttle import ThrottledLog


def test_logs_powers_of_two_and_counts_everything(caplog) -> None:
    throttled = ThrottledLog(logging.getLogger("kraken_nb.test.throttle"))
    with caplog.at_level(logging.WARNING, logger="kraken_nb.test.throttle"):
        logged = [throttled.warning("bad", "bad frame: %s", n) for n in range(1, 101)]
    assert [n for n, yes in enumerate(logged, start=1) if yes] == [1, 2, 4, 8, 16, 32, 64]
    assert throttled.counts["bad"] == 100
    assert len(caplog.records) == 7
    assert caplog.records[-1].getMessage() == "bad frame: 64 (64 so far; logging the 1st, 2nd, 4th, 8th…)"


def test_keys_are_independent_and_only_the_first_keeps_its_traceback(caplog) -> None:
    throttled = ThrottledLog(logging.getLogger("kraken_nb.test.throttle"))
    with caplog.at_level(logging.WARNING, logger="kraken_nb.test.throttle"):
        for _ in range(2):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                throttled.warning("a", "callback failed", exc_info=True)
        throttled.warning("b", "other")
    assert [bool(r.exc_info) and r.exc_info[0] is RuntimeError for r in caplog.records] == [
        True,
        False,
        False,
    ]
    assert throttled.counts == {"a": 2, "b": 1}
