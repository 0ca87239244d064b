"""The relay: one upstream Kraken connection, published for a whole team through NATS JetStream.

A :class:`Relay` is a :class:`~kraken_nb.client.KrakenClient` (the WebSocket
upstream with all its recovery: reconnects, resubscribes, checksum resyncs)
plus a :class:`~kraken_nb.relay.publisher.RelayTap` that hands every frame it
receives, unchanged, to a :class:`~kraken_nb.relay.publisher.Publisher`.

On :meth:`Relay.start` it connects to NATS, creates or checks the two streams
(:mod:`kraken_nb.relay.streams`), publishes its manifest (what it carries)
and then subscribes upstream. If a previous run under the same ``name`` left
a manifest, the time from that run's last sign of life to now is published
as a gap (unless another relay carried the streams meanwhile). The manifest
is refreshed every ``manifest_interval`` seconds, which tells clients the relay
is alive.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from kraken_nb.client import KRAKEN_WS_URL, KrakenClient
from kraken_nb.core.params import Subscription
from kraken_nb.core.redaction import redact_url
from kraken_nb.errors import InvalidParams, KrakenError
from kraken_nb.relay.connection import NatsLink, require_nats
from kraken_nb.relay.gaps import GapRecord
from kraken_nb.relay.manifest import Catalog, Manifest, carried_of
from kraken_nb.relay.publisher import BookCopy, Publisher, RelayTap, gap_outgoing
from kraken_nb.relay.sink import JetStreamSink
from kraken_nb.relay.streams import StreamSettings, ensure_streams, read_manifests
from kraken_nb.relay.subjects import DATA_CHANNELS, manifest_subject

__all__ = ["Relay"]

log = logging.getLogger(__name__)


class Relay:
    """Receive ``subscriptions`` once from ``upstream`` and publish every frame to JetStream at ``nats_url``.

    ``name`` identifies the relay (its manifest subject; unique per relay,
    kept across restarts: the hostname by default). ``max_buffer`` bounds the
    frames held while NATS is unavailable; ``snapshot_interval`` is the
    shortest time between two snapshots of a book. ``client_options`` go to
    the upstream :class:`~kraken_nb.client.KrakenClient` (``max_rows``
    defaults to 100,000 so a long-running relay's memory stays flat).
    """

    def __init__(
        self,
        nats_url: str,
        subscriptions: Iterable[Subscription],
        *,
        upstream: str = KRAKEN_WS_URL,
        name: str | None = None,
        stream: StreamSettings | None = None,
        max_buffer: int = 100_000,
        snapshot_interval: float = 1.0,
        manifest_interval: float = 2.0,
        connect_timeout: float = 10.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        require_nats()
        self.subscriptions = tuple(subscriptions)
        if not self.subscriptions:
            raise InvalidParams("subscriptions", [], "at least one channel and symbol to relay")
        self.name = name or socket.gethostname() or "relay"
        self.settings = stream or StreamSettings()
        self.upstream = upstream
        self.connect_timeout = connect_timeout
        self.manifest_interval = manifest_interval
        self.client: KrakenClient | None = None
        self.previous: Manifest | None = None
        """The manifest a previous run under this name left behind (None on a first run)."""
        self.started_ns = time.time_ns()
        self._carried = carried_of(self.subscriptions)
        if any(c.channel == "book" for c in self._carried) and not any(
            c.channel == "instrument" for c in self._carried
        ):
            self._carried = (*self._carried, *carried_of([Subscription("instrument")]))
        streams = tuple(
            (c.channel, c.symbol) for c in self._carried if c.channel in DATA_CHANNELS and c.symbol
        )
        self._link = NatsLink(nats_url, name=f"kraken-nb relay {self.name}")
        self._publisher = Publisher(relay=self.name, max_buffer=max_buffer)
        self._publisher.gap_filter = self._narrow_gap
        self._tap = RelayTap(self._publisher, streams, snapshot_interval=snapshot_interval)
        self._snapshot_interval = snapshot_interval
        self._client_options = {"max_rows": 100_000, **(client_options or {})}
        self._started = False
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Relay:
        """Connect to NATS, set up the streams, publish the manifest, then subscribe upstream.

        Raises ``RelayError`` when NATS is unreachable or refuses, and what
        ``KrakenClient.subscribe`` raises for a subscription Kraken rejects.
        Starting a started relay does nothing.
        """
        if self._started:
            return self
        self._started = True
        self._publisher.start()
        try:
            self._publisher.call(self._setup(), self.connect_timeout + 30.0)
            self.client = KrakenClient(self.upstream, taps=[self._tap], **self._client_options)
            self._tap.books = self.client.book
            for sub in self.subscriptions:
                params = dict(sub.params)
                if sub.channel == "trade":
                    params.setdefault("snapshot", True)  # the last 50 trades bridge a restart
                self.client.subscribe(sub.channel, list(sub.symbols) or None, **params)
            if self.previous is not None:
                self._publisher.put(gap_outgoing(self._restart_gap(time.time_ns())))
            self._publisher.spawn(self._refresh_manifest())
            self._publisher.spawn(self._trail_snapshots())
        except BaseException:
            self.close()
            raise
        log.info(
            "relay %s: %s → %s stream %s",
            self.name,
            redact_url(self.upstream),
            self._link.shown,
            self.settings.name,
        )
        return self

    async def _setup(self) -> None:
        await self._link.open(self.connect_timeout)
        await self._link.guarded(self._prepare_streams(), f"setting up stream {self.settings.name}")
        self._publisher.attach(JetStreamSink(self._link))

    async def _prepare_streams(self) -> None:
        await ensure_streams(self._link, self.settings)
        self.previous = next(
            (m for m in await read_manifests(self._link, self.settings.name) if m.relay == self.name), None
        )
        await self._publish_manifest()  # also proves the user may publish

    def close(self, drain_timeout: float = 5.0) -> None:
        """Stop the upstream client, publish what is still queued (bounded), close NATS. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.client is not None:
            self.client.close()
        self._publisher.close(drain_timeout)
        log.info("relay %s closed", self.name)

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- views -------------------------------------------------------------------------

    def wait_published(self, timeout: float = 10.0) -> bool:
        """Wait until every frame received so far was acknowledged by NATS; return whether it was."""
        return self._publisher.wait_idle(timeout)

    def stream_info(self, subjects_filter: str | None = None) -> Any:
        """The main stream's ``nats.js.api.StreamInfo`` (``subjects_filter=">"`` adds per-subject counts)."""
        return self._publisher.call(
            self._link.js.stream_info(self.settings.name, subjects_filter=subjects_filter), 10.0
        )

    def stats(self) -> dict[str, Any]:
        """Counters: ``published``, ``duplicates``, ``dropped``, ``buffered``…, and the NATS state."""
        publisher = self._publisher
        return {
            "relay": self.name,
            "stream": self.settings.name,
            **publisher.counters,
            "buffered": publisher.buffered,
            "max_buffer": publisher.max_buffer,
            "last_seq": publisher.last_seq,
            "nats_connected": self._link.connected,
            "nats_disconnects": self._link.disconnects,
            "nats_last_error": publisher.last_error or self._link.last_error,
            "upstream": self.client.connection_state if self.client is not None else "closed",
        }

    # -- manifest and gaps (publisher's loop) ------------------------------------------

    def _manifest(self, now_ns: int) -> Manifest:
        return Manifest(
            relay=self.name,
            stream=self.settings.name,
            carries=self._carried,
            started_ns=self.started_ns,
            updated_ns=now_ns,
            connected_since_ns=self._tap.connected_since_ns,
            interval_s=self.manifest_interval,
            upstream=redact_url(self.upstream),
        )

    async def _publish_manifest(self) -> None:
        subject = manifest_subject(self.name)
        try:
            await self._link.js.publish(subject, self._manifest(time.time_ns()).to_json())
        except Exception as exc:
            raise self._link.explain(exc, f"publishing the manifest on {subject}") from None

    async def _refresh_manifest(self) -> None:
        while True:
            await asyncio.sleep(self.manifest_interval)
            try:
                await self._publish_manifest()
            except KrakenError as exc:
                log.debug("manifest refresh: %s", exc)

    async def _trail_snapshots(self) -> None:
        """Give a book that went quiet a snapshot of its final state (within about one interval)."""
        pending: list[BookCopy] = []
        client = self.client
        assert client is not None
        while True:
            await asyncio.sleep(self._snapshot_interval / 2)
            with client._lock:
                pending += self._tap.trailing(time.time_ns())
            pending = await self._publisher.publish_snapshots(pending)

    def _restart_gap(self, now_ns: int) -> GapRecord:
        assert self.previous is not None
        return GapRecord(
            self.name,
            self.previous.updated_ns,
            now_ns,
            "no relay was publishing: the relay restarted",
            self._tap.streams,
        )

    async def _narrow_gap(self, record: GapRecord) -> GapRecord | None:
        """Leave out the streams another live relay carried through the whole gap."""
        try:
            catalog = Catalog(await read_manifests(self._link, self.settings.name))
        except Exception as exc:
            log.debug("reading manifests for a gap: %s", exc)
            return record
        streams = tuple(
            s
            for s in record.streams
            if not catalog.covered(*s, record.start_ns, record.end_ns, besides=self.name)
        )
        if streams != record.streams:
            log.info(
                "relay gap: %d of %d streams were carried by another relay",
                len(record.streams) - len(streams),
                len(record.streams),
            )
        return GapRecord(record.relay, record.start_ns, record.end_ns, record.reason, streams)
