"""What became of each wanted subscription: its state, attempts, last error and next retry.

The :class:`~kraken_nb.core.session.Session` keeps one :class:`Tracker` for
every subscription the user wants, keyed like the session's own tables, and
tells it what happened (sent, confirmed, rejected, connection lost); the
tracker decides what to do next. It reads no clock: ``poll(now_ns)`` is fed
the time by the transport about once a second.

States (``SUBSCRIPTION_STATES``):

``wanted``
    kept, not sent on the current connection yet (e.g. while disconnected);
``pending``
    a subscribe request is on its way, no answer yet;
``confirmed``
    the server acknowledged it on the current connection;
``retrying``
    the server rejected it or did not answer; it is sent again after a backoff;
``failed``
    a new subscription the server never answered after ``max_attempts``
    requests; kept (and shown) but not sent again on this connection: the next
    connection, or calling ``subscribe`` again, tries anew.

Policy: a subscription that was confirmed once is the user's until they
unsubscribe. A rejection or a missing answer (a transient
``EService:Unavailable`` on the automatic resubscribe after a reconnect, say)
is retried with backoff for as long as it takes, never turned into an
unsubscribe. A *new* subscription the server rejects is dropped (the user's
``subscribe`` raises ``SubscriptionRejected``); one it never answers is
retried up to ``max_attempts`` requests per connection, then ``failed``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from kraken_nb.core.params import Subscription
from kraken_nb.core.reconnect import Backoff

__all__ = ["RETRY_BACKOFF", "SUBSCRIPTION_STATES", "SubscriptionStatus", "Tracker"]

SUBSCRIPTION_STATES: Final = ("wanted", "pending", "confirmed", "retrying", "failed")

RETRY_BACKOFF: Final = Backoff(initial=1.0, maximum=60.0)
"""Spacing of subscribe retries: 0.5–1 s, then doubling up to a minute."""

SubKey = tuple[str, str, Any]  # (channel, symbol or "", interval for ohlc else None)


@dataclass(frozen=True, slots=True)
class SubscriptionStatus:
    """One wanted subscription and what the server made of it (see :mod:`kraken_nb.core.subscriptions`).

    ``symbol`` is ``None`` for the instrument channel; ``attempts`` counts the
    subscribe requests of the current round: since the connection opened or
    it was last confirmed (a confirmed record says how many it took).
    """

    channel: str
    symbol: str | None
    params: Mapping[str, Any]
    state: str
    attempts: int
    last_error: str | None

    @property
    def subscription(self) -> Subscription:
        """The subscription itself (channel, symbols, params), as ``subscribe`` takes it."""
        return Subscription(self.channel, (self.symbol,) if self.symbol else (), self.params)

    @property
    def confirmed(self) -> bool:
        """Whether the server acknowledged it on the current connection."""
        return self.state == "confirmed"


@dataclass(slots=True)
class _Entry:
    state: str = "wanted"
    attempts: int = 0
    last_error: str | None = None
    confirmed_once: bool = False
    since_ns: int | None = None
    """When ``poll`` first saw the current state (pending: the request's age starts there)."""
    retry_at_ns: int | None = None


class Tracker:
    """States of the wanted subscriptions, and the retries they are due.

    ``ack_timeout_ns`` is how long a request may go unanswered (measured from
    the first ``poll`` after it was sent); ``retry_backoff`` spaces the
    retries; a new subscription gets ``max_attempts`` requests per connection.
    """

    def __init__(
        self,
        *,
        ack_timeout_ns: int = 5_000_000_000,
        max_attempts: int = 3,
        retry_backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.ack_timeout_ns = ack_timeout_ns
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff if retry_backoff is not None else RETRY_BACKOFF
        self._rng = rng if rng is not None else random.Random()
        self._entries: dict[SubKey, _Entry] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[SubKey]:
        return iter(self._entries)

    # -- what happened ---------------------------------------------------------------

    def add(self, key: SubKey) -> None:
        """A new wanted subscription (not sent yet)."""
        self._entries[key] = _Entry()

    def remove(self, key: SubKey) -> None:
        """No longer wanted."""
        self._entries.pop(key, None)

    def renew(self, key: SubKey) -> None:
        """The user asked for it again: start its attempts over."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.attempts = 0

    def sent(self, key: SubKey) -> None:
        """A subscribe request for it was queued."""
        entry = self._entries.get(key)
        if entry is not None:
            if entry.state == "confirmed":
                entry.attempts = 0  # a new round (a book resync): count from one again
            entry.state, entry.since_ns, entry.retry_at_ns = "pending", None, None
            entry.attempts += 1

    def confirmed(self, key: SubKey) -> None:
        """The server acknowledged it."""
        entry = self._entries.get(key)
        if entry is not None:
            entry.state, entry.last_error, entry.confirmed_once = "confirmed", None, True
            entry.since_ns = entry.retry_at_ns = None

    def rejected(self, key: SubKey, error: str) -> bool:
        """The server rejected it; return whether it is kept (and retried) rather than dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return False
        if not entry.confirmed_once:
            return False
        if entry.state != "confirmed":  # a late rejection after a confirmation is stale
            entry.state, entry.last_error = "retrying", error
            entry.since_ns = entry.retry_at_ns = None
        return True

    def connection_made(self) -> None:
        """A new connection: every subscription starts over (its attempts too)."""
        for entry in self._entries.values():
            entry.state, entry.attempts, entry.since_ns, entry.retry_at_ns = "wanted", 0, None, None

    def connection_lost(self) -> None:
        """The connection dropped: nothing is confirmed or on its way any more."""
        for entry in self._entries.values():
            entry.state, entry.since_ns, entry.retry_at_ns = "wanted", None, None

    # -- what to do -----------------------------------------------------------------

    def poll(self, now_ns: int) -> tuple[list[SubKey], list[SubKey]]:
        """Advance time to ``now_ns``; return (keys due to be sent again, keys that just timed out)."""
        due: list[SubKey] = []
        timed_out: list[SubKey] = []
        for key, entry in self._entries.items():
            if entry.state == "pending":
                if entry.since_ns is None:
                    entry.since_ns = now_ns
                elif now_ns - entry.since_ns >= self.ack_timeout_ns:
                    timed_out.append(key)
                    entry.last_error = f"no answer within {self.ack_timeout_ns / 1e9:g} s"
                    if entry.confirmed_once or entry.attempts < self.max_attempts:
                        entry.state, entry.since_ns = "retrying", None
                    else:
                        entry.state = "failed"
            if entry.state == "retrying":
                if entry.retry_at_ns is None:
                    delay = self.retry_backoff.delay(max(entry.attempts - 1, 0), self._rng)
                    entry.retry_at_ns = now_ns + int(delay * 1e9)
                elif now_ns >= entry.retry_at_ns:
                    due.append(key)
        return due, timed_out

    # -- views ------------------------------------------------------------------------

    def state(self, key: SubKey) -> str | None:
        """The state of ``key`` (``None`` if not wanted)."""
        entry = self._entries.get(key)
        return None if entry is None else entry.state

    def settled(self) -> bool:
        """Whether every wanted subscription is confirmed (true when nothing is wanted)."""
        return all(entry.state == "confirmed" for entry in self._entries.values())

    def counts(self) -> dict[str, int]:
        """How many subscriptions are in each state (states with none left out)."""
        counts: dict[str, int] = {}
        for entry in self._entries.values():
            counts[entry.state] = counts.get(entry.state, 0) + 1
        return counts

    def status(self, key: SubKey, subscription: Subscription) -> SubscriptionStatus:
        """The public record of ``key`` (wanted as ``subscription``)."""
        entry = self._entries.get(key) or _Entry()
        return SubscriptionStatus(
            channel=subscription.channel,
            symbol=subscription.symbols[0] if subscription.symbols else None,
            params=dict(subscription.params),
            state=entry.state,
            attempts=entry.attempts,
            last_error=entry.last_error,
        )
