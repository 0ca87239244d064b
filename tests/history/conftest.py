"""The dataset most history tests read: one live recording of the simulator, made once per session."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import SYMBOLS, CarriedChecksums, simulated, subscribe_all, wait_for


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("dataset")
    carried = CarriedChecksums()
    with simulated() as client:
        client.add_tap(carried)
        recorder = client.record_to(root, roll_seconds=0.3)
        subscribe_all(client)
        wait_for(lambda: len(client.trades("DOGE/USD")) >= 150 and len(client.trades("BTC/USD")) >= 150)
        wait_for(lambda: recorder.stats()["rolls"] >= 4)
        client.close()  # stops the stream, then the recorder (writing what is pending)
        live = {
            (name, symbol, exact): getattr(client, name)(symbol, exact=exact)
            for name in ("trades", "ticker")
            for symbol in SYMBOLS
            for exact in (False, True)
        }
        for symbol in SYMBOLS:
            for exact in (False, True):
                live[("candles", symbol, exact)] = client.candles(symbol, interval=1, exact=exact)
        live["all trades"] = client.trades(exact=True)
        stats = recorder.stats()
    return {"root": root, "live": live, "carried": carried.books, "stats": stats}
