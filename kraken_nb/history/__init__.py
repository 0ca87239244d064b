"""History beyond memory: record to a hive-partitioned Parquet dataset, query it with DuckDB.

``client.record_to(DIR)`` (or ``kraken-nb record --format parquet``) writes a
:class:`Recorder`'s dataset; :class:`History` reads it.
"""

from __future__ import annotations

from kraken_nb.history.recorder import Recorder

__all__ = ["Recorder"]
