"""History beyond memory: record to a hive-partitioned Parquet dataset, query it with DuckDB.

``client.record_to(DIR)`` (or ``kraken-nb record --format parquet``) runs a
:class:`Recorder` writing the dataset; :class:`History` reads it. The layout
is ``DIR/<table>/symbol=<BTC-USD>/date=<YYYY-MM-DD>/part-<n>.parquet`` (see
:mod:`kraken_nb.history.layout`), readable by any Parquet reader with hive
partition discovery.
"""

from __future__ import annotations

from kraken_nb.history.reader import History
from kraken_nb.history.recorder import Recorder

__all__ = ["History", "Recorder"]
