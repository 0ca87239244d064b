"""What a relay carries, published for its clients: channels, symbols and their parameters.

Pure. Each relay publishes a :class:`Manifest` to ``kraken.v2.manifest.<name>``
in the snapshot stream when it starts and every few seconds after (its
``updated_ns`` tells clients it is alive). A client merges every manifest it
finds into a :class:`Catalog` and checks each subscribe against it: a channel,
symbol, book depth, candle interval or ticker trigger that no relay carries is
rejected with a reason naming what is carried, as Kraken rejects what it does
not serve.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from kraken_nb.core.params import Subscription
from kraken_nb.errors import MalformedMessage

__all__ = ["DEFAULTS", "Carried", "Catalog", "Manifest", "carried_of"]

DEFAULTS: Final[Mapping[str, Mapping[str, Any]]] = {
    "book": {"depth": 10},
    "ohlc": {"interval": 1},
    "ticker": {"event_trigger": "trades"},
}
"""Kraken's default for each parameter that decides what data a subscription gets."""


@dataclass(frozen=True, slots=True)
class Carried:
    """One subscription a relay holds upstream: channel, symbol (None for instrument), key params."""

    channel: str
    symbol: str | None
    params: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form."""
        return {"channel": self.channel, "symbol": self.symbol, "params": dict(self.params)}


def carried_of(subscriptions: Iterable[Subscription]) -> tuple[Carried, ...]:
    """The :class:`Carried` records of ``subscriptions``, with Kraken's defaults filled in.

    Only the parameters that decide the data are kept (``snapshot`` is not:
    a client's history comes from the stream).
    """
    records: list[Carried] = []
    for sub in subscriptions:
        defaults = DEFAULTS.get(sub.channel, {})
        params = {name: sub.params.get(name, default) for name, default in defaults.items()}
        for symbol in sub.symbols or (None,):
            records.append(Carried(sub.channel, symbol, params))
    return tuple(records)


@dataclass(frozen=True, slots=True)
class Manifest:
    """What the relay ``relay`` carries into ``stream``, and when it last said so.

    ``connected_since_ns`` is when its upstream connection last became live
    (None while it is reconnecting); ``interval_s`` is how often it refreshes
    this manifest, so a manifest older than a few intervals means the relay
    is gone.
    """

    relay: str
    stream: str
    carries: tuple[Carried, ...]
    started_ns: int
    updated_ns: int
    connected_since_ns: int | None = None
    interval_s: float = 2.0
    upstream: str = ""
    """The relay's upstream URL, redacted."""

    def fresh(self, now_ns: int) -> bool:
        """Whether the relay refreshed this manifest within three intervals of ``now_ns``."""
        return now_ns - self.updated_ns <= 3 * self.interval_s * 1e9

    def to_json(self) -> bytes:
        """The manifest as JSON bytes."""
        return orjson.dumps(
            {
                "relay": self.relay,
                "stream": self.stream,
                "carries": [c.to_dict() for c in self.carries],
                "started_ns": self.started_ns,
                "updated_ns": self.updated_ns,
                "connected_since_ns": self.connected_since_ns,
                "interval_s": self.interval_s,
                "upstream": self.upstream,
            }
        )

    @classmethod
    def from_json(cls, payload: bytes | str) -> Manifest:
        """Parse a manifest; raise ``MalformedMessage`` if it is not one."""
        try:
            data = orjson.loads(payload)
            carries = tuple(
                Carried(str(c["channel"]), c.get("symbol"), dict(c.get("params") or {}))
                for c in data["carries"]
            )
            since = data.get("connected_since_ns")
            return cls(
                relay=str(data["relay"]),
                stream=str(data["stream"]),
                carries=carries,
                started_ns=int(data["started_ns"]),
                updated_ns=int(data["updated_ns"]),
                connected_since_ns=None if since is None else int(since),
                interval_s=float(data.get("interval_s", 2.0)),
                upstream=str(data.get("upstream", "")),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedMessage(f"not a relay manifest ({exc})", payload) from None


class Catalog:
    """Everything the relays of a stream carry (the union of their manifests)."""

    def __init__(self, manifests: Iterable[Manifest] = ()) -> None:
        self.manifests = {m.relay: m for m in manifests}
        self._by_key: dict[tuple[str, str | None], list[Carried]] = {}
        for manifest in self.manifests.values():
            for carried in manifest.carries:
                self._by_key.setdefault((carried.channel, carried.symbol), []).append(carried)

    def symbols(self, channel: str) -> list[str]:
        """The symbols carried on ``channel``, sorted."""
        return sorted({s for (c, s) in self._by_key if c == channel and s is not None})

    def check(self, subscription: Subscription) -> dict[str, str | None]:
        """Per symbol ("" for instrument): None if carried as asked, else why not."""
        channel = subscription.channel
        verdicts: dict[str, str | None] = {}
        for symbol in subscription.symbols or ("",):
            verdicts[symbol] = self._verdict(channel, symbol or None, subscription.params)
        return verdicts

    def _verdict(self, channel: str, symbol: str | None, params: Mapping[str, Any]) -> str | None:
        if not self.manifests:
            return "no relay has published a manifest on this stream (is kraken-nb relay running?)"
        carried = self._by_key.get((channel, symbol))
        if not carried:
            if symbol is None:
                return f"the relay does not carry the {channel} channel"
            others = self.symbols(channel)
            shown = f"it carries {channel} for {', '.join(others)}" if others else f"it carries no {channel}"
            return f"{channel} {symbol} is not carried by the relay ({shown})"
        for name, default in DEFAULTS.get(channel, {}).items():
            wanted = params.get(name, default)
            offered = sorted({c.params.get(name, default) for c in carried}, key=str)
            if wanted not in offered:
                shown = " or ".join(f"{name}={value!r}" for value in offered)
                default_note = " (the default)" if name not in params else ""
                return (
                    f"{channel} {name}={wanted!r}{default_note} is not carried for {symbol}: "
                    f"the relay carries {shown}"
                )
            if channel == "book" and len(offered) > 1:
                return f"relays disagree on the book depth of {symbol} ({_shown(offered)})"
        return None

    def covered(self, channel: str, symbol: str | None, start_ns: int, end_ns: int, *, besides: str) -> bool:
        """Whether a relay other than ``besides`` carried this stream live from ``start_ns`` to ``end_ns``.

        Judged from its manifest: upstream connected since before ``start_ns``
        and refreshed recently enough at ``end_ns``.
        """
        for manifest in self.manifests.values():
            if manifest.relay == besides or not manifest.fresh(end_ns):
                continue
            since = manifest.connected_since_ns
            if since is None or since > start_ns:
                continue
            if any(c.channel == channel and c.symbol == symbol for c in manifest.carries):
                return True
        return False


def _shown(values: Iterable[Any]) -> str:
    """``10, 25``: values for a message."""
    return ", ".join(map(str, values))
