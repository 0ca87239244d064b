"""How busy the network thread is, and whether it has fallen behind its source.

When a source sends faster than the client handles frames, nothing is lost:
``websockets`` stops reading once its queue is full and TCP holds the sender
back. But the data then arrives late, and only a measurement can say so.
:class:`BusyMeter` is fed, once in a while, the thread's total idle time (the
time its event loop spent waiting for the network) and the time now, both
from the caller's clock; it keeps the busy share of the last window and says
the client is **behind** once that share stayed at or above ``threshold``
for at least ``after_ns`` with frames waiting to be read at the end of each
window (a thread kept busy by other threads holding the GIL, while it keeps
up, is not behind). It is no longer behind once a window's share falls under
``threshold``. Like the rest of the core it reads no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["BEHIND_AFTER_NS", "BUSY_THRESHOLD", "Behind", "BusyMeter"]

BUSY_THRESHOLD: Final = 0.95
"""The busy share from which a window counts as saturated."""

BEHIND_AFTER_NS: Final = 1_000_000_000
"""How long the thread must stay saturated before the client is behind."""


@dataclass(frozen=True, slots=True)
class Behind:
    """A change of the behind state: the data of a ``behind`` event."""

    behind: bool
    """True: the source is faster than the client; False: it caught up."""
    busy: float
    """The network thread's busy share (0–1) over the last window."""
    for_ns: int
    """How long the thread had been saturated (when it fell behind) or behind (when it caught up)."""


class BusyMeter:
    """Busy share of a thread per window, from its cumulative idle time; behind when saturated long enough."""

    def __init__(self, *, threshold: float = BUSY_THRESHOLD, after_ns: int = BEHIND_AFTER_NS) -> None:
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
        if after_ns < 0:
            raise ValueError(f"after_ns must be >= 0, got {after_ns!r}")
        self.threshold = threshold
        self.after_ns = after_ns
        self.busy: float | None = None
        """The busy share of the last window (None before the first one)."""
        self.behind = False
        self.episodes = 0
        """How many times the thread fell behind."""
        self.behind_ns = 0
        """Total time spent behind, over finished and current episodes."""
        self._last: tuple[int, int] | None = None  # (now_ns, idle_ns) at the last sample
        self._saturated_since: int | None = None
        self._behind_since: int | None = None

    def sample(self, now_ns: int, idle_ns: int, waiting: bool = True) -> Behind | None:
        """Close the window ending at ``now_ns``; return the change of state, if any.

        ``idle_ns`` is the thread's total idle time so far (it only grows);
        the window's busy share is one minus the idle time it added over its
        length. ``waiting`` says whether received frames were waiting to be
        handled at ``now_ns``.
        """
        last, self._last = self._last, (now_ns, idle_ns)
        if last is None or now_ns <= last[0]:
            return None
        elapsed = now_ns - last[0]
        idle = min(max(idle_ns - last[1], 0), elapsed)
        self.busy = busy = 1.0 - idle / elapsed
        if self._behind_since is not None:
            self.behind_ns += elapsed
        if busy < self.threshold:
            self._saturated_since = None
            if not self.behind:
                return None
            since, self._behind_since = self._behind_since, None
            self.behind = False
            return Behind(False, busy, now_ns - (since if since is not None else now_ns))
        if not waiting and not self.behind:
            self._saturated_since = None  # busy, but keeping up
            return None
        if self._saturated_since is None:
            self._saturated_since = last[0]
        saturated = now_ns - self._saturated_since
        if self.behind or saturated < self.after_ns:
            return None
        self.behind = True
        self.episodes += 1
        self._behind_since = now_ns
        return Behind(True, busy, saturated)

    def reset(self, now_ns: int) -> Behind | None:
        """Forget the windows (a connection ended); return the change if the thread was behind."""
        self._last = None
        self._saturated_since = None
        if not self.behind:
            return None
        since, self._behind_since = self._behind_since, None
        self.behind = False
        return Behind(False, self.busy or 0.0, max(now_ns - (since if since is not None else now_ns), 0))
