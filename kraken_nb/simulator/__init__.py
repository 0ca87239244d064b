"""An embedded Kraken Spot WebSocket v2 simulator: a seeded market behind a real loopback server.

``Simulator`` serves the public v2 protocol (status, ticker, book with CRC32
checksums, ohlc, trade, instrument, ping, heartbeats) on 127.0.0.1, so the
same client code works against it and against ``wss://ws.kraken.com/v2``, and
it can inject faults (dropped connections, bad checksums, rejected
subscriptions, malformed frames, status changes, silent heartbeats).
``MarketModel`` is the pure, seeded market behind it.
"""

from __future__ import annotations

from kraken_nb.simulator.market import MarketModel
from kraken_nb.simulator.pairs import DEFAULT_PAIRS, PAIR_SPECS, PairSpec
from kraken_nb.simulator.server import SYSTEM_STATES, Simulator

__all__ = ["DEFAULT_PAIRS", "PAIR_SPECS", "SYSTEM_STATES", "MarketModel", "PairSpec", "Simulator"]
