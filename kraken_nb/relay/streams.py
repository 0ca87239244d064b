"""The two JetStream streams a relay writes: the main stream of raw frames and the snapshot stream.

- main (``KRAKEN`` by default): every raw frame on ``kraken.v2.<channel>.<SYMBOL>``
  and the admin subjects, kept for ``max_age`` and up to ``max_bytes``
  (oldest first out), with a ``duplicate_window`` in which a repeated
  ``Nats-Msg-Id`` is stored once;
- snapshots (``KRAKEN_SNAPSHOTS``): the latest book snapshot per symbol, the
  latest instrument snapshot and each relay's manifest; one message per subject.

:func:`ensure_streams` creates them, or checks and updates existing ones, so
several relays (shards of symbols, a hot standby) can share them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from kraken_nb.errors import InvalidParams, MalformedMessage, RelayError
from kraken_nb.relay.connection import NatsLink
from kraken_nb.relay.manifest import Manifest
from kraken_nb.relay.subjects import MAIN_SUBJECTS, SNAPSHOT_SUBJECTS, manifest_subject, snapshot_stream_name

__all__ = ["DEFAULT_STREAM", "StreamSettings", "ensure_streams", "read_manifests", "require_streams"]

log = logging.getLogger(__name__)

DEFAULT_STREAM = "KRAKEN"


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """Name and retention of the main stream (the snapshot stream takes the name plus ``_SNAPSHOTS``).

    ``max_age`` in seconds and ``max_bytes`` (None: unlimited); ``replicas``
    is the copies a NATS cluster keeps (1 on a single server, 3 on a
    three-node cluster).
    """

    name: str = DEFAULT_STREAM
    max_age: float | None = 24 * 3600.0
    max_bytes: int | None = 1 << 30
    duplicate_window: float = 120.0
    replicas: int = 1

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in " .*>/\\\t"):
            raise InvalidParams("stream", self.name, "a name without spaces, '.', '*', '>' or slashes")
        if self.max_age is not None and not self.max_age > 0:
            raise InvalidParams("max_age", self.max_age, "a positive number of seconds, or None")
        if self.max_bytes is not None and not self.max_bytes > 0:
            raise InvalidParams("max_bytes", self.max_bytes, "a positive number of bytes, or None")
        if not self.duplicate_window > 0:
            raise InvalidParams("duplicate_window", self.duplicate_window, "a positive number of seconds")
        if self.max_age is not None and self.duplicate_window > self.max_age:
            raise InvalidParams(
                "duplicate_window", self.duplicate_window, f"at most max_age ({self.max_age:g} s)"
            )

    @property
    def snapshot_name(self) -> str:
        """The snapshot stream's name."""
        return snapshot_stream_name(self.name)

    def main_config(self) -> Any:
        """The main stream's ``nats.js.api.StreamConfig``."""
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.name,
            subjects=list(MAIN_SUBJECTS),
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age or 0,
            max_bytes=self.max_bytes if self.max_bytes is not None else -1,
            duplicate_window=self.duplicate_window,
            num_replicas=self.replicas,
        )

    def snapshot_config(self) -> Any:
        """The snapshot stream's ``StreamConfig``: the last message of each subject."""
        from nats.js.api import DiscardPolicy, StorageType, StreamConfig

        return StreamConfig(
            name=self.snapshot_name,
            subjects=list(SNAPSHOT_SUBJECTS),
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_msgs_per_subject=1,
            num_replicas=self.replicas,
        )


async def ensure_streams(link: NatsLink, settings: StreamSettings) -> None:
    """Create both streams, or check an existing one's subjects and bring its limits to ``settings``."""
    for config in (settings.main_config(), settings.snapshot_config()):
        await _ensure(link, config)


async def _ensure(link: NatsLink, config: Any) -> None:
    import nats.js.errors

    action = f"setting up stream {config.name}"
    try:
        info = await link.js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        info = None
    except Exception as exc:
        raise link.explain(exc, action) from None
    try:
        if info is None:
            await link.js.add_stream(config)
            log.info("created stream %s (%s)", config.name, ", ".join(config.subjects))
            return
        current = info.config
        missing = [s for s in config.subjects if s not in (current.subjects or [])]
        if missing:
            raise RelayError(
                f"stream {config.name} on {link.shown} exists without the subjects {', '.join(missing)}; "
                "delete it or use another --stream name"
            )
        limits = ("max_age", "max_bytes", "duplicate_window", "max_msgs_per_subject")
        if any(_differs(getattr(current, k), getattr(config, k)) for k in limits):
            config.subjects = list(current.subjects or config.subjects)
            await link.js.update_stream(config)
            log.info("updated the limits of stream %s", config.name)
    except RelayError:
        raise
    except Exception as exc:
        raise link.explain(exc, action) from None


def _differs(current: Any, wanted: Any) -> bool:
    if wanted is None:
        return False
    if isinstance(wanted, float) or isinstance(current, float):
        return abs(float(current or 0) - float(wanted or 0)) > 1e-6
    return current != wanted


async def require_streams(link: NatsLink, stream: str) -> None:
    """Raise ``RelayError`` unless the main stream and its snapshot stream exist (a client's check)."""
    import nats.js.errors

    for name in (stream, snapshot_stream_name(stream)):
        try:
            await link.js.stream_info(name)
        except nats.js.errors.NotFoundError:
            raise RelayError(
                f"no stream {name} on {link.shown}: start a relay first "
                f"(kraken-nb relay --nats {link.shown} --stream {stream} …) or pass the right stream="
            ) from None
        except Exception as exc:
            raise link.explain(exc, f"reading stream {name}") from None


async def read_manifests(link: NatsLink, stream: str) -> list[Manifest]:
    """Every relay manifest in ``stream``'s snapshot stream (malformed ones are logged and skipped)."""
    import nats.js.errors

    name = snapshot_stream_name(stream)
    try:
        info = await link.js.stream_info(name, subjects_filter=manifest_subject("*"))
    except nats.js.errors.NotFoundError:
        return []
    manifests: list[Manifest] = []
    for subject in sorted((info.state.subjects or {}).keys()):
        try:
            message = await link.js.get_last_msg(name, subject)
            manifests.append(Manifest.from_json(message.data or b""))
        except nats.js.errors.NotFoundError:
            continue
        except MalformedMessage as exc:
            log.warning("ignoring %s: %s", subject, exc.reason)
    return manifests
