"""Shared helpers of the history tests: a live recording on the simulator, what the stream carried."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from kraken_nb import KrakenClient
from kraken_nb.core.messages import BookMessage
from kraken_nb.core.taps import Tap
from kraken_nb.transport import Backoff

FAST_RECONNECT = Backoff(initial=0.05, maximum=0.5, factor=2.0, jitter=0.5)
SYMBOLS = ["BTC/USD", "DOGE/USD"]
"""BTC/USD, and DOGE/USD whose whale quantities and volumes have 16-17 digits."""


class CarriedChecksums(Tap):
    """Every book message the session accepted: ``(received_ns, symbol, checksum)``, in order."""

    def __init__(self) -> None:
        self.books: list[tuple[int, str, int]] = []

    def frame(self, text: Any, message: Any, received_ns: int, events: list[Any]) -> None:
        if type(message) is not BookMessage:
            return
        applied = {event.symbol for event in events if event.kind == "book"}
        for entry in message.data:
            if entry["symbol"] in applied:
                self.books.append((received_ns, entry["symbol"], int(entry["checksum"])))


def compare(left: pd.DataFrame, right: pd.DataFrame) -> None:
    """Equal values (floats bit for bit) and dtypes; categories compared by value, not by category list.

    A History knows only the symbols it read, the live buffer every symbol it saw.
    """
    assert list(left.columns) == list(right.columns)
    categorical = [name for name in right.columns if isinstance(right[name].dtype, pd.CategoricalDtype)]
    for name in right.columns:
        if name in categorical:
            assert isinstance(left[name].dtype, pd.CategoricalDtype), name
        else:
            assert left[name].dtype == right[name].dtype, (name, left[name].dtype, right[name].dtype)
    plain = dict.fromkeys(categorical, "str")
    pd.testing.assert_frame_equal(left.astype(plain), right.astype(plain), check_exact=True)


@contextmanager
def simulated(**sim_options: Any) -> Iterator[KrakenClient]:
    """A client on a fresh simulator (20x, seeded), closed on exit."""
    options = {"speed": 20, "seed": 11, **sim_options}
    client = KrakenClient.simulated(
        client_options={"backoff": FAST_RECONNECT, "silence_timeout": 2.0, "timeout": 10.0}, **options
    )
    try:
        yield client
    finally:
        client.close()


def subscribe_all(
    client: KrakenClient, symbols: list[str] = SYMBOLS, *, trade_snapshot: bool = False
) -> None:
    """Trades (with the 50-trade snapshot if asked), tickers, 1-minute candles and depth-10 books."""
    client.subscribe("trade", symbols, **({"snapshot": True} if trade_snapshot else {}))
    client.subscribe("ticker", symbols)
    client.subscribe("ohlc", symbols, interval=1)
    client.subscribe("book", symbols, depth=10)


def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def parts(root: Path, table: str) -> list[Path]:
    return sorted((root / table).glob("symbol=*/date=*/part-*.parquet"))
