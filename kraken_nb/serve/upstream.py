"""The one place the serving layer touches the :class:`~kraken_nb.client.KrakenClient`.

Everything the surfaces need from the client goes through ``Upstream``:
its public calls (``subscribe``, ``unsubscribe``, ``ping``, ``subscriptions``,
``stats``, ``connection_state``, ``add_tap``) and, for consistent reads of the
journal together with the session's books, the client's lock and session.
Blocking calls (``subscribe``, ``unsubscribe``, ``ping``) are made on worker
threads by the caller, never on the client's network thread or the serving
event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from kraken_nb.core.journal import Journal, StreamKey, stream_key
from kraken_nb.core.params import Subscription

if TYPE_CHECKING:
    from kraken_nb.client import KrakenClient
    from kraken_nb.core.book import OrderBook

__all__ = ["Upstream"]


class Upstream:
    """The client behind both surfaces, seen through the few calls they make."""

    def __init__(self, client: KrakenClient) -> None:
        self.client = client

    # -- state ---------------------------------------------------------------------

    @property
    def state(self) -> str:
        """The connection state (``live``, ``connecting``, ``reconnecting``, ``closed``, ...)."""
        return self.client.connection_state

    @property
    def closed(self) -> bool:
        """Whether the client was closed."""
        return self.client.closed

    @property
    def live(self) -> bool:
        """Whether the upstream connection is open."""
        return self.client.connection_state == "live"

    @property
    def system_status(self) -> str | None:
        """Kraken's last system status."""
        return self.client.system_status

    def locked(self) -> AbstractContextManager[Any]:
        """The client's lock: hold it (briefly) to read the journal and the books consistently."""
        return self.client._lock

    def books(self) -> Mapping[str, OrderBook]:
        """The session's live books (hold :meth:`locked`)."""
        return self.client._session.books

    def pairs(self) -> Mapping[str, Any]:
        """The session's instrument pairs (hold :meth:`locked`)."""
        return self.client._session.pairs

    def assets(self) -> Mapping[str, Any]:
        """The session's instrument assets (hold :meth:`locked`)."""
        return self.client._session.assets

    def kept(self) -> set[StreamKey]:
        """Every stream the client keeps subscribed (renewed after reconnects)."""
        return set(self.kept_params())

    def kept_params(self) -> dict[StreamKey, dict[str, Any]]:
        """Every stream the client keeps subscribed, with the parameters it was subscribed with."""
        kept: dict[StreamKey, dict[str, Any]] = {}
        for status in self.client.subscriptions():
            params = dict(status.params)
            interval = params.get("interval", 1) if status.channel == "ohlc" else None
            kept[stream_key(status.channel, status.symbol or "", interval)] = params
        return kept

    def subscriptions(self) -> list[dict[str, Any]]:
        """The kept subscriptions as plain records with their state (for the health endpoint)."""
        return [
            {
                "channel": s.channel,
                "symbol": s.symbol,
                "params": dict(s.params),
                "state": s.state,
                "attempts": s.attempts,
                "last_error": s.last_error,
            }
            for s in self.client.subscriptions()
        ]

    def stats(self) -> dict[str, Any]:
        """The client's counters, JSON-ready."""
        stats = self.client.stats()
        heartbeat = stats.get("last_heartbeat")
        stats["last_heartbeat"] = None if heartbeat is None else heartbeat.isoformat()
        return {k: v for k, v in stats.items() if v is None or isinstance(v, (str, int, float, bool))}

    # -- requests (blocking: call them on a worker thread) --------------------------------

    def subscribe(self, subscription: Subscription, timeout: float) -> None:
        """Subscribe and wait for Kraken's acks."""
        self.client.subscribe(
            subscription.channel, subscription.symbols or None, timeout=timeout, **subscription.params
        )

    def unsubscribe(self, subscription: Subscription, timeout: float) -> None:
        """Unsubscribe and wait for Kraken's acks."""
        self.client.unsubscribe(
            subscription.channel, subscription.symbols or None, timeout=timeout, **subscription.params
        )

    def ping(self, timeout: float) -> float:
        """Ping Kraken; return the round trip in seconds."""
        return self.client.ping(timeout=timeout)

    def add_tap(self, journal: Journal) -> Callable[[], None]:
        """Let ``journal`` observe the client's session; return its remover."""
        return self.client.add_tap(journal)
