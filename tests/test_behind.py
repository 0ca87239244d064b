"""The client says when it is behind: a source faster than the client makes ``stats()["behind"]`` true.

The source is the benchmarks' frame source in its own process, sending
pre-encoded Kraken frames over a real loopback WebSocket as fast as the
socket takes them (behind) or at a slow, steady rate (not behind).
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("benchmarks") is None:  # pytest run from outside the repository
    sys.path.insert(0, str(ROOT))

from benchmarks.programs import load_program  # noqa: E402
from benchmarks.settings import Settings  # noqa: E402
from benchmarks.streaming import frame_source, subscribed_client  # noqa: E402
from kraken_nb.core.busy import Behind  # noqa: E402
from kraken_nb.widgets import TradeTape  # noqa: E402

CHANNELS = {"book": {"depth": 10}, "trade": {}}


def _watch(client, seconds: float) -> list[dict]:  # type: ignore[no-untyped-def]
    """``client.stats()`` every 0.1 s for ``seconds``."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(client.stats())
        time.sleep(0.1)
    return seen


@pytest.mark.timeout(180)
def test_a_source_faster_than_the_client_makes_it_behind_and_a_slow_one_does_not(tmp_path: Path) -> None:
    program, path = load_program(Settings(quick=True, corpus_dir=tmp_path), "behind", CHANNELS, 2000)
    with frame_source() as source:
        client, _ = subscribed_client(source, program, path)
        events: list[Behind] = []
        got = threading.Event()

        def on_behind(event) -> None:  # type: ignore[no-untyped-def]
            events.append(event.data)
            got.set()

        client.on("behind", on_behind)
        tape = TradeTape(client, program.symbols[0], rate_hz=20)
        shown: list[str] = []
        tape.observe(lambda change: shown.append(change["new"]), names="status")
        try:
            # slow: 200 frames/s, a few % of the network thread
            assert "error" not in source.ask("play 200 3")
            slow = _watch(client, 3.0)
            source.ask("wait")
            assert not any(s["behind"] for s in slow), [s["busy"] for s in slow]
            measured = [s["busy"] for s in slow if s["busy"] is not None]
            assert measured and max(measured) < 0.8, measured
            assert not events
            assert "behind" not in shown

            # fast: as fast as the socket takes frames, for 6 s
            assert "error" not in source.ask("play 0 6")
            fast = _watch(client, 6.0)
            source.ask("stop")
            assert any(s["behind"] for s in fast), [s["busy"] for s in fast]
            assert got.wait(5.0)
            assert events[0].behind and events[0].busy >= 0.95 and events[0].for_ns >= 1e9
            assert client.stats()["behind_episodes"] >= 1
            assert any((s["receive_backlog"] or 0) > 0 or (s["receive_buffered"] or 0) > 0 for s in fast)
            assert "behind" in shown  # the widgets' status pill says so
            assert "source is faster" in tape.status_detail or tape.status != "behind"

            # once the source stops, the client catches up and says so
            deadline = time.monotonic() + 20
            while client.stats()["behind"] and time.monotonic() < deadline:
                time.sleep(0.1)
            stats = client.stats()
            assert not stats["behind"]
            assert stats["behind_seconds"] > 0
            deadline = time.monotonic() + 5
            while len(events) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [e.behind for e in events][:2] == [True, False]
            assert stats["checksum_mismatches"] == 0 and stats["malformed"] == 0, stats
        finally:
            tape.close()
            client.close()
