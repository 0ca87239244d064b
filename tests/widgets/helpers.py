"""Helpers for the widget tests: record what a widget sends, measure it, wait for conditions."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["MANUAL", "Sent", "message_bytes", "ready", "record_sends", "wait_for"]

MANUAL = 0.001
"""A rate so low that the scheduler never ticks during a test: the test calls ``tick()`` itself."""


class Sent(list):
    """The ``(content, buffers)`` pairs a widget sent, oldest first."""

    def of_type(self, kind: str) -> list[tuple[dict[str, Any], list[bytes]]]:
        return [(content, buffers) for content, buffers in self if content.get("type") == kind]


def record_sends(widget: Any) -> Sent:
    """Replace ``widget.send`` by a recorder; return the list it appends to."""
    sent = Sent()

    def send(content: dict[str, Any], buffers: list[Any] | None = None) -> None:
        sent.append((content, [bytes(buffer) for buffer in buffers or []]))

    widget.send = send
    return sent


def message_bytes(content: dict[str, Any], buffers: list[bytes]) -> int:
    """What one custom message puts on the wire: its compact JSON plus its binary buffers."""
    return len(json.dumps(content, separators=(",", ":"))) + sum(len(buffer) for buffer in buffers)


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def ready(widget: Any) -> None:
    """Act as a freshly rendered view: deliver ``{"type": "ready"}`` as the comm would."""
    widget._handle_custom_msg({"type": "ready"}, [])
