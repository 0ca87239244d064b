"""The shared mechanics of the live widgets: ticks, status, view handshake, closing.

A :class:`StreamWidget` reads a ``KrakenClient`` on the shared scheduler thread
(never the client's network thread), sets its small synced state and sends
only what changed as custom messages. Messages sent before a view exists are
lost, so every view sends ``{"type": "ready"}`` when it renders and the widget
answers with a full snapshot.
"""

from __future__ import annotations

import logging
import pathlib
import threading
from typing import Any, Protocol

import anywidget
import traitlets

from kraken_nb.errors import KrakenError
from kraken_nb.widgets.scheduler import Task, shared_scheduler

__all__ = ["STATIC", "StreamWidget", "client_status", "frontend", "is_static", "status_detail"]

logger = logging.getLogger(__name__)

STATIC = pathlib.Path(__file__).parent / "static"
"""The folder holding the widgets' JavaScript and CSS."""

STATUS_VALUES = (
    "connecting",
    "live",
    "reconnecting",
    "failed",
    "closed",
    "maintenance",
    "cancel_only",
    "post_only",
    "book invalid",
    "behind",
    "history",
)
"""Every value the ``status`` trait can take (``history``: drawn once from a recorded dataset)."""


class _Client(Protocol):
    """The part of ``KrakenClient`` every widget uses."""

    @property
    def connection_state(self) -> str: ...

    @property
    def system_status(self) -> str | None: ...

    @property
    def failure(self) -> Any: ...


def is_static(client: Any) -> bool:
    """Whether a widget's source never changes (a recorded range: drawn once, no ticks)."""
    return getattr(client, "live", True) is False


def frontend(name: str) -> tuple[str, str]:
    """The ESM and CSS of widget ``name``: the shared helpers followed by ``static/<name>.js|css``."""
    esm = (
        (STATIC / "common.js").read_text(encoding="utf-8")
        + "\n"
        + (STATIC / f"{name}.js").read_text(encoding="utf-8")
    )
    css = (
        (STATIC / "common.css").read_text(encoding="utf-8")
        + "\n"
        + (STATIC / f"{name}.css").read_text(encoding="utf-8")
    )
    return esm, css


def status_detail(client: _Client, status: str) -> str:
    """The line shown next to the status: for ``failed``, the close code and the server's reason;
    why for ``behind``; for ``history``, the recorded range shown."""
    if status == "history":
        return str(getattr(client, "detail", ""))
    if status == "behind":
        return "the source is faster than the client: data arrives late"
    failure = getattr(client, "failure", None) if status == "failed" else None
    if failure is None:
        return ""
    reason = str(getattr(failure, "reason", "") or "")
    return f"{getattr(failure, 'code', '')} policy violation" + (f": {reason}" if reason else "")


def client_status(client: _Client) -> str:
    """What a widget shows: the connection state, a system status other than online, ``behind``, or live."""
    state = client.connection_state
    if state != "live":
        return state
    system = client.system_status
    if system and system != "online":
        return system
    if getattr(client, "behind", False):
        return "behind"
    return "live"


class StreamWidget(anywidget.AnyWidget):
    """Base class: a throttled tick on the shared scheduler, a synced ``status``, idempotent ``close()``.

    Subclasses implement ``_update()`` (send what changed since the last tick)
    and ``_snapshot()`` (send everything a fresh view needs), then call
    ``_start(rate_hz)`` at the end of ``__init__``.
    """

    status = traitlets.Unicode("connecting").tag(sync=True)
    """Connection state shown by the widget: one of :data:`STATUS_VALUES`."""
    status_detail = traitlets.Unicode("").tag(sync=True)
    """Why the status is what it is, when that needs saying (the server's reason for ``failed``)."""

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client = client
        self._lock = threading.RLock()
        self._closed = False
        self._task: Task | None = None
        self.rate_hz = 0.0
        self.on_msg(self._on_view_message)

    # -- lifecycle ------------------------------------------------------------------

    def _start(self, rate_hz: float) -> None:
        """Register the tick with the shared scheduler (a static source is read once, here, instead)."""
        if is_static(self._client):
            self.tick()
            return
        self._task = shared_scheduler().add(self.tick, rate_hz, name=type(self).__name__)
        self.rate_hz = float(rate_hz)
        logger.debug("%r ticking at %s Hz", self, rate_hz)

    @property
    def client(self) -> Any:
        """The ``KrakenClient`` this widget reads."""
        return self._client

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def ticking(self) -> bool:
        """Whether the scheduler still runs this widget's tick."""
        return self._task is not None and not self._task.cancelled

    def tick(self) -> None:
        """Run one update now: refresh ``status`` and send what changed (the scheduler calls this)."""
        with self._lock:
            if self._closed:
                return
            status = self._status()
            if status != self.status:
                self.status = status
            detail = status_detail(self._client, status)
            if detail != self.status_detail:
                self.status_detail = detail
            if status == "closed":
                self._stop_ticking()
                return
            if status == "failed":
                return  # nothing streams any more; keep ticking to show "closed" after close()
            self._update()

    def close(self) -> None:
        """Stop this widget's tick and close it (idempotent)."""
        if getattr(self, "_lock", None) is None:  # __init__ failed before the widget was set up
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stop_ticking()
        super().close()

    def _stop_ticking(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _subscribe_instruments(self) -> None:
        """Subscribe the instrument channel, whose pair precisions format prices and quantities."""
        try:
            self._client.subscribe("instrument")
        except KrakenError as error:
            logger.info("instrument channel unavailable (%s); numbers use default precisions", error)

    def _precisions(self, symbol: str) -> tuple[int, int] | None:
        """``(price_precision, qty_precision)`` of ``symbol``, or None while the client has no instrument."""
        info = self._client.instrument(symbol)
        if not info:
            return None
        return int(info["price_precision"]), int(info["qty_precision"])

    # -- subclass hooks -----------------------------------------------------------------

    def _status(self) -> str:
        return client_status(self._client)

    def _update(self) -> None:
        raise NotImplementedError

    def _snapshot(self) -> None:
        raise NotImplementedError

    # -- view handshake -------------------------------------------------------------------

    def _on_view_message(self, _widget: object, content: Any, buffers: list[Any]) -> None:
        if not isinstance(content, dict):
            return
        with self._lock:
            if self._closed:
                return
            self._handle(content, buffers)

    def _handle(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """React to a message from a view; ``ready`` gets a full snapshot."""
        if content.get("type") == "ready":
            self._snapshot()
