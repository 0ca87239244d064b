"""Pending faults of a running simulator, consumed by the code that injects them.

The :class:`~kraken_nb.simulator.server.Simulator` switches set these from any
thread by hopping onto its event loop, so this state is only read and written
on that loop.
"""

from __future__ import annotations

from collections import deque

__all__ = ["Faults"]


class Faults:
    """Checksum corruptions, subscribe rejections and ignored subscribes still to inject; heartbeats."""

    def __init__(self) -> None:
        self._corruptions: deque[str | None] = deque()
        self._rejections: deque[str] = deque()
        self._ignored = 0
        self.heartbeats = True

    def corrupt_checksum(self, symbol: str | None) -> None:
        """Corrupt the checksum of the next book message for ``symbol`` (any symbol when None)."""
        self._corruptions.append(symbol)

    def take_corruption(self, symbol: str) -> bool:
        """Whether the book message about to be sent for ``symbol`` must carry a wrong checksum."""
        for index, wanted in enumerate(self._corruptions):
            if wanted is None or wanted == symbol:
                del self._corruptions[index]
                return True
        return False

    def reject_subscribe(self, reason: str) -> None:
        """Answer the next subscribe request ``success: false`` with ``reason``."""
        self._rejections.append(reason)

    def take_rejection(self) -> str | None:
        """The reason to reject the subscribe request being handled, if one is pending."""
        return self._rejections.popleft() if self._rejections else None

    def ignore_subscribes(self, count: int) -> None:
        """Leave the next ``count`` subscribe requests unanswered (0 stops ignoring)."""
        self._ignored = max(0, count)

    def take_ignore(self) -> bool:
        """Whether the subscribe request being handled must go unanswered."""
        if self._ignored <= 0:
            return False
        self._ignored -= 1
        return True
