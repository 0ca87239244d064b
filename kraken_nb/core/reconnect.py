"""How often to dial again: exponential backoff with jitter, and a rolling budget of connects.

Both are plain objects fed with times by their caller (the transport, the
session's subscription retries), so a test can run ten minutes of a server
that keeps closing the connection in microseconds, without sleeping.

Kraken bans an address that connects too often (about 150 connects in ten
minutes); its own SDK allows itself 120 per 600 s. :class:`ConnectBudget`
keeps us further inside that.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

__all__ = ["Backoff", "ConnectBudget"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n``: exponential, capped, with jitter.

    The delay is ``min(maximum, initial * factor**n)`` scaled by a random
    factor in ``[1 - jitter, 1]`` so that many clients do not retry in step.
    """

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt`` (0-based)."""
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 32))
        return base * (1 - self.jitter * (rng or random).random())


class ConnectBudget:
    """At most ``limit`` connects in any rolling ``window`` seconds.

    ``record(now)`` notes a connect; ``wait(now)`` says how long to wait until
    the next one is allowed (0 when it is allowed now). Times are seconds on
    any monotonic clock.
    """

    def __init__(self, limit: int = 100, window: float = 600.0) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        if not window > 0:
            raise ValueError(f"window must be positive, got {window!r}")
        self.limit = limit
        self.window = float(window)
        self._times: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def used(self, now: float) -> int:
        """Connects recorded in the window ending at ``now``."""
        self._expire(now)
        return len(self._times)

    def wait(self, now: float) -> float:
        """Seconds until a connect is allowed (0.0 if it is allowed now)."""
        self._expire(now)
        if len(self._times) < self.limit:
            return 0.0
        return self._times[-self.limit] + self.window - now

    def record(self, now: float) -> None:
        """Note one connect at ``now``."""
        self._times.append(now)
        self._expire(now)
