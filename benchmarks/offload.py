"""Prototype: decode + apply in a subprocess, new rows shipped back to the notebook's process.

``python -m benchmarks.offload URL PROGRAM_FILE`` runs a whole ``KrakenClient``
(its network thread, ``Session.feed``, books and buffers) in its own process,
subscribed to the program's channels, prints ``{"ready": true}`` and answers
one JSON line per command:

* ``pull`` — the trades and ticker rows that arrived since the last ``pull``
  (as lists of records) and the client's ``stats()["messages"]``;
* ``quit``.

:class:`OffloadedClient` is the notebook side: a thread that pulls every
``1 / rate_hz`` seconds and appends the rows to local DataFrames. The caller's
process then only pays for decoding a few hundred rows of JSON a few times a
second, not for every frame: what the GIL would no longer cost if the client
moved decode + apply out of the kernel's process.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import pandas as pd

from benchmarks.child import Child
from benchmarks.programs import read_program
from benchmarks.streaming import subscribe_program

__all__ = ["OffloadedClient", "main"]


class OffloadedClient:
    """The notebook side: the client in a child process, pulled ``rate_hz`` times a second."""

    def __init__(self, url: str, path: Path, rate_hz: float = 4.0) -> None:
        self.child = Child("benchmarks.offload", url, str(path))
        self.trades = pd.DataFrame()
        self.messages = 0
        self._period = 1.0 / rate_hz
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="offload-pull", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self.pull()

    def pull(self) -> None:
        """Fetch the rows that arrived in the child since the last pull."""
        with self._lock:
            if self._stop.is_set():
                return
            answer = self.child.ask("pull")
            if answer["trades"]:
                self.trades = pd.concat([self.trades, pd.DataFrame(answer["trades"])], ignore_index=True)
            self.messages = answer["messages"]

    def close(self) -> None:
        """Stop pulling and end the child."""
        self._stop.set()
        self._thread.join(5)
        with self._lock:
            self.child.close()


def main(argv: list[str] | None = None) -> int:
    """Run the client until ``quit``."""
    from kraken_nb import KrakenClient

    url, path = (argv if argv is not None else sys.argv[1:])[:2]
    program = read_program(Path(path))
    client = KrakenClient(url, timeout=30.0)
    seen_trades = 0
    seen_tickers = 0
    try:
        client.wait_connected()
        subscribe_program(client, program)
        sys.stdout.write(json.dumps({"ready": True}) + "\n")
        sys.stdout.flush()
        for line in sys.stdin:
            command = line.strip()
            if command == "pull":
                trades = client.trades()
                tickers = client.ticker()
                new_trades = trades.iloc[seen_trades:]
                new_tickers = tickers.iloc[seen_tickers:]
                seen_trades, seen_tickers = len(trades), len(tickers)
                answer = {
                    "trades": json.loads(new_trades.to_json(orient="records", date_format="iso")),
                    "tickers": len(new_tickers),
                    "messages": client.stats()["messages"],
                }
                sys.stdout.write(json.dumps(answer) + "\n")
                sys.stdout.flush()
            elif command == "quit":
                break
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
