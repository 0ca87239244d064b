"""Where a restarted recorder continues: each stream's newest sequence number, receive time and trade ids.

Read from the newest parts of each stream (their footers' statistics, and
the trade ids of the newest trade parts), so a restart costs a few file
reads however large the dataset is. A part whose footer cannot be read is
skipped with a warning naming it (the reader skips it too).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from kraken_nb.history.layout import TABLES, Part, scan
from kraken_nb.history.tap import STREAMS, Prior

__all__ = ["RESUME_TRADE_IDS", "prior_state"]

log = logging.getLogger(__name__)

RESUME_TRADE_IDS: Final = 1_000
"""How many of a symbol's newest recorded trade ids a restarted recorder will not record again."""


def prior_state(root: Path) -> dict[tuple[str, str], Prior]:
    """What the dataset at ``root`` already holds, per ``(stream, symbol)``."""
    found: dict[tuple[str, str], Prior] = {}
    for table in TABLES:
        by_symbol: dict[str, list[Part]] = defaultdict(list)
        for part in scan(root, table):
            by_symbol[part.symbol].append(part)
        for symbol, parts in by_symbol.items():
            prior = _newest(parts, table == "trades")
            if prior is None:
                continue
            key = (STREAMS[table], symbol)
            found[key] = found[key].merge(prior) if key in found else prior
    return found


def _newest(parts: list[Part], trades: bool) -> Prior | None:
    """The state after the newest readable part (and, for trades, enough trade ids)."""
    prior: Prior | None = None
    ids: list[int] = []
    for part in sorted(parts, key=lambda p: (p.day, p.number), reverse=True):
        try:
            metadata = pq.read_metadata(part.path)
            seq, received = _max(metadata, "seq"), _max(metadata, "received")
            if seq is None or received is None:
                columns = pq.read_table(part.path, columns=["seq", "received"])
                seq = int(pc.max(columns["seq"]).as_py())
                received = int(pc.max(columns["received"].cast(pa.int64())).as_py())
            if trades:
                ids.extend(pq.read_table(part.path, columns=["trade_id"])["trade_id"].to_pylist())
        except (OSError, pa.ArrowException, ValueError, TypeError) as exc:
            log.warning("skipping unreadable part %s: %s", part.path, exc)
            continue
        if prior is None:
            prior = Prior(seq, received)
        if not trades or len(ids) >= RESUME_TRADE_IDS:
            break
    if prior is not None and ids:
        prior.trade_ids = frozenset(ids)  # at least the newest RESUME_TRADE_IDS (whole parts are read)
    return prior


def _max(metadata: pq.FileMetaData, column: str) -> int | None:
    """The largest value of an int64 (or timestamp) column from the footer, or None without statistics."""
    best: int | None = None
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema != column:
                continue
            statistics = chunk.statistics
            if statistics is None or not statistics.has_min_max:
                return None
            value = int(statistics.max_raw)
            best = value if best is None else max(best, value)
    return best
