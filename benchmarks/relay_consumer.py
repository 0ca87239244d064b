"""One ``KrakenClient.from_nats`` client in its own process, for the relay benchmark's fan-out rows.

``python -m benchmarks.relay_consumer --nats URL --symbol BTC/USD ... --target N``
prints ``{"ready": true}`` once imported, then answers commands:

* ``run`` — connect a new client (start="first"), subscribe to trade, book
  (depth 10) and ticker for the symbols, wait until its session has handled
  ``N`` frames more than the acks and snapshots of those subscriptions, close
  it, and answer ``{"messages", "seconds", "subscribing", "mismatches",
  "gaps"}`` (the time runs from the first subscribe; ``subscribing`` is how
  long the three subscribes took, which is mostly nats-server creating the
  consumers);
* ``quit`` — stop.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kraken_nb import KrakenClient

__all__ = ["main"]

CHANNELS = ("trade", "book", "ticker")


def _answer(payload: object) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    """Serve ``run`` and ``quit`` on stdin."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay_consumer")
    parser.add_argument("--nats", required=True)
    parser.add_argument("--symbol", action="append", required=True)
    parser.add_argument("--target", type=int, required=True, help="data frames in the stream for the symbols")
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    _answer({"ready": True})
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            # nats-server 2.9 creates consumers slowly while it pushes to 16 clients: wait for them
            with KrakenClient.from_nats(args.nats, start="first", timeout=args.timeout) as client:
                before = client.stats()["messages"]
                started = time.perf_counter()
                for channel in CHANNELS:
                    client.subscribe(channel, args.symbol)
                subscribed = time.perf_counter()
                # acks: one per symbol and channel, plus the instrument's ack and snapshot frame
                extra = len(CHANNELS) * len(args.symbol) + 2
                goal = before + extra + args.target
                client.wait_until(lambda c, goal=goal: c.stats()["messages"] >= goal, timeout=args.timeout)
                seconds = time.perf_counter() - started
                stats = client.stats()
            _answer(
                {
                    "messages": stats["messages"] - before - extra,
                    "seconds": seconds,
                    "subscribing": subscribed - started,
                    "mismatches": stats["checksum_mismatches"],
                    "gaps": stats["gaps"],
                }
            )
        elif command == "quit":
            break
        else:
            _answer({"error": f"unknown command {command!r}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
