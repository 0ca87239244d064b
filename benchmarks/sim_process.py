"""The simulator in its own process, counting what it queues for clients (driven over stdin).

``python -m benchmarks.sim_process --seed 7 --speed 1 --tick 0.005`` prints the
URL, then
answers one JSON line per command read from stdin:

* ``stats`` — wall clock (``time.time_ns``), frames and bytes queued so far
  for all clients, and this process's CPU seconds;
* ``speed X`` — set the market speed;
* ``trades`` — ``[[symbol, trade_id, queued_ns], ...]`` for every trade queued
  since the last ``trades`` (the first trade of each frame shares the
  frame's time);
* ``quit`` — stop.

The counting wraps the simulator's ``Connection.send`` in this process only,
and ``--tick`` sets the wall time between market steps (50 ms in the
library): the simulator sends at most one trade, ticker and ohlc frame per
pair per step, so a shorter tick is what lets the message rate rise with
``speed``.
The frames themselves are unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from kraken_nb.simulator import Simulator, server
from kraken_nb.simulator.connection import Connection

__all__ = ["main"]

_TRADE_PREFIX = '{"channel":"trade","type":"update"'


class _Counter:
    """Frames queued and trade queue times, shared by the simulator thread and the command loop."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.queued = 0
        self.bytes = 0
        self.trades: list[tuple[str, int, int]] = []

    def install(self) -> None:
        original = Connection.send
        counter = self

        def counting_send(connection: Connection, text: str, *, update: bool = True) -> None:
            now = time.time_ns()
            was_closed = connection.closed
            original(connection, text, update=update)
            if was_closed:
                return
            with counter.lock:
                counter.queued += 1
                counter.bytes += len(text)
                if text.startswith(_TRADE_PREFIX):
                    for trade in json.loads(text)["data"]:
                        counter.trades.append((trade["symbol"], trade["trade_id"], now))

        Connection.send = counting_send  # type: ignore[method-assign]


def _answer(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Serve until ``quit`` or end of stdin."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sim_process")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--tick", type=float, default=server.TICK_SECONDS, help="seconds between steps")
    args = parser.parse_args(argv)
    server.TICK_SECONDS = args.tick  # type: ignore[misc]
    counter = _Counter()
    counter.install()
    simulator = Simulator(seed=args.seed, speed=args.speed)
    _answer({"url": simulator.start_in_thread()})
    try:
        for line in sys.stdin:
            command, _, argument = line.strip().partition(" ")
            if command == "stats":
                with counter.lock:
                    queued, size = counter.queued, counter.bytes
                _answer(
                    {"wall_ns": time.time_ns(), "queued": queued, "bytes": size, "cpu_s": time.process_time()}
                )
            elif command == "speed":
                simulator.speed = float(argument)
                _answer({"speed": simulator.speed})
            elif command == "trades":
                with counter.lock:
                    trades, counter.trades = counter.trades, []
                _answer(trades)
            elif command == "quit":
                break
            else:
                _answer({"error": f"unknown command {command!r}"})
    finally:
        simulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
