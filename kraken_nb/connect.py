"""Pick a data source for a notebook: Kraken when reachable, else the embedded simulator.

``connect()`` reads the source from its argument or the ``KRAKEN_NB_SOURCE``
environment variable: ``"kraken"``, ``"simulator"``, ``"auto"`` (the default:
a quick TCP + TLS probe of Kraken decides) or a ``ws://``/``wss://`` URL (e.g. a
simulator or a replay served by ``kraken-nb sim`` / ``kraken-nb replay --serve``).
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from typing import Any, Final
from urllib.parse import urlsplit

from kraken_nb.client import KRAKEN_WS_URL, KrakenClient
from kraken_nb.core.redaction import redact, redact_url
from kraken_nb.errors import InvalidParams, KrakenError

__all__ = [
    "PROBE_TIMEOUT",
    "SOURCES",
    "SOURCE_ENV",
    "connect",
    "kraken_reachable",
    "resolve_source",
    "source_of",
]

log = logging.getLogger(__name__)

SOURCE_ENV: Final = "KRAKEN_NB_SOURCE"
"""Environment variable naming the default source."""
SOURCES: Final = ("auto", "kraken", "simulator")
PROBE_TIMEOUT: Final = 2.0
"""Seconds the reachability probe may take in total."""


def resolve_source(source: str | None = None) -> str:
    """The source to use: ``source``, else ``$KRAKEN_NB_SOURCE``, else ``"auto"`` (normalised).

    Returns one of :data:`SOURCES` or a ``ws://``/``wss://`` URL; anything else
    raises ``InvalidParams`` naming the value.
    """
    raw = source if source is not None else os.environ.get(SOURCE_ENV) or "auto"
    if not isinstance(raw, str):
        raise InvalidParams("source", raw, "'auto', 'kraken', 'simulator' or a ws:// URL")
    value = raw.strip()
    if value.lower() in SOURCES:
        return value.lower()
    if urlsplit(value).scheme in ("ws", "wss") and urlsplit(value).hostname:
        return value
    where = "source" if source is not None else SOURCE_ENV
    raise InvalidParams(where, redact_url(raw), "'auto', 'kraken', 'simulator' or a ws:// URL")


def kraken_reachable(url: str = KRAKEN_WS_URL, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection (and, for ``wss``, a TLS handshake) to ``url`` succeeds within ``timeout``.

    The probe runs on a daemon thread so that a slow name lookup cannot hold
    the caller past ``timeout`` either.
    """
    result: list[bool] = []
    probe = threading.Thread(target=lambda: result.append(_probe(url, timeout)), daemon=True)
    probe.start()
    probe.join(timeout)
    if not result:
        log.info("%s: no answer within %g s", redact_url(url), timeout)
    return bool(result and result[0])


def _probe(url: str, timeout: float) -> bool:
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname
    if host is None:
        return False
    deadline = time.monotonic() + timeout
    try:
        port = parts.port or (443 if secure else 80)
        with socket.create_connection((host, port), timeout=timeout) as raw:
            if not secure:
                return True
            raw.settimeout(max(deadline - time.monotonic(), 0.05))
            with ssl.create_default_context().wrap_socket(raw, server_hostname=host):
                return True
    except (OSError, ValueError) as exc:
        log.info("%s is not reachable: %s", redact_url(url), redact(str(exc), url))
        return False


def connect(
    source: str | None = None,
    *,
    url: str = KRAKEN_WS_URL,
    probe_timeout: float = PROBE_TIMEOUT,
    simulator_options: dict[str, Any] | None = None,
    **client_options: Any,
) -> KrakenClient:
    """A connected :class:`KrakenClient` on the chosen source (see the module doc).

    ``"auto"`` probes ``url`` for at most ``probe_timeout`` seconds and falls
    back to the embedded simulator (started with ``simulator_options``) when it
    is unreachable or the WebSocket does not come up. ``client_options`` go to
    ``KrakenClient``. The choice is logged; :func:`source_of` tells it afterwards.
    """
    chosen = resolve_source(source)
    if chosen == "simulator":
        return _simulated(simulator_options, client_options)
    if chosen not in SOURCES:
        return _live(chosen, client_options)
    if chosen == "kraken":
        return _live(url, client_options)
    if kraken_reachable(url, probe_timeout):
        try:
            return _live(url, client_options, connect_timeout=max(probe_timeout, 5.0))
        except KrakenError as exc:
            log.warning(
                "%s reachable but the WebSocket failed (%s); using the simulator", redact_url(url), exc
            )
    else:
        log.info("%s unreachable; using the embedded simulator", redact_url(url))
    return _simulated(simulator_options, client_options)


def source_of(client: KrakenClient) -> str:
    """A one-line description of where ``client`` gets its data."""
    if client.simulator is not None:
        return f"the embedded simulator at {client.url}"
    if client.url == KRAKEN_WS_URL:
        return f"Kraken ({client.url})"
    return client.url


def _live(url: str, client_options: dict[str, Any], connect_timeout: float | None = None) -> KrakenClient:
    client = KrakenClient(url, **client_options)
    try:
        client.wait_connected(connect_timeout)
    except BaseException:
        client.close()
        raise
    log.info("connected to %s", client.url)
    return client


def _simulated(simulator_options: dict[str, Any] | None, client_options: dict[str, Any]) -> KrakenClient:
    client = KrakenClient.simulated(client_options=client_options, **(simulator_options or {}))
    log.info("connected to the embedded simulator at %s", client.url)
    return client
