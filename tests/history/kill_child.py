"""A recorder to kill: a client on its own simulator recording to ``argv[1]``; prints its trade count.

Run by ``test_durability.py``: prints ``ready`` once subscribed, then every
10 ms ``<monotonic seconds> <trades received>``, until it is killed.
"""

from __future__ import annotations

import sys
import time

from kraken_nb import KrakenClient

ROLL_SECONDS = 0.1

if __name__ == "__main__":
    client = KrakenClient.simulated(speed=50, seed=int(sys.argv[2]))
    client.record_to(sys.argv[1], roll_seconds=ROLL_SECONDS)
    client.subscribe("trade", ["BTC/USD", "ETH/USD"])
    client.subscribe("book", ["BTC/USD"], depth=10)
    print("ready", flush=True)
    while True:
        print(time.monotonic(), client.stats()["trades"], flush=True)
        time.sleep(0.01)
