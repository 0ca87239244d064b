"""What requests may ask of the server: the ``Limits``, and the upstream ``RateLimiter``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Limits", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps of the REST and MCP surfaces; each one, when hit, is a clear 4xx answer or tool error."""

    max_body_bytes: int = 64 * 1024
    """Largest request body (REST; the MCP endpoint has the same cap)."""
    max_symbols: int = 50
    """Symbols one request may name."""
    max_subscriptions: int = 200
    """Subscriptions (channel × symbol) the client may keep in total."""
    max_waiters: int = 256
    """Long-poll requests waiting at once."""
    max_sse_clients: int = 64
    """Server-Sent-Events streams open at once."""
    default_limit: int = 100
    """Messages per page when a request names no ``limit``."""
    max_limit: int = 1000
    """Largest ``limit``."""
    max_wait: float = 30.0
    """Longest long-poll ``wait`` in seconds."""
    upstream_timeout: float = 10.0
    """How long a subscribe, unsubscribe or ping may wait for Kraken's answer (then 504)."""
    upstream_rate: float = 2.0
    """Upstream requests (subscribe, unsubscribe, ping) per second, sustained."""
    upstream_burst: int = 10
    """Upstream requests allowed in a burst."""
    journal_retain: int = 1000
    """Messages retained per stream for cursor reads (older cursors read as ``gap: true``)."""

    def __post_init__(self) -> None:
        for name in (
            "max_body_bytes",
            "max_symbols",
            "max_subscriptions",
            "max_waiters",
            "max_sse_clients",
            "default_limit",
            "max_limit",
            "upstream_burst",
            "journal_retain",
        ):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"Limits.{name} must be a positive integer, not {getattr(self, name)!r}")
        for name in ("max_wait", "upstream_timeout", "upstream_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Limits.{name} must be positive, not {getattr(self, name)!r}")
        if self.default_limit > self.max_limit:
            raise ValueError("Limits.default_limit must not exceed max_limit")


class RateLimiter:
    """A token bucket: ``burst`` requests at once, refilled at ``rate`` per second.

    Used on the serving event loop only (no lock). ``clock`` is injectable for tests.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def take(self) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
