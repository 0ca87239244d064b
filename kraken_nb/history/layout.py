"""Where a dataset's files live: one folder per table, hive partitions by symbol and date, part files.

::

    DIR/<table>/symbol=<BTC-USD>/date=<YYYY-MM-DD>/part-<n>.parquet

``symbol=`` holds the pair with its ``/`` written as ``-`` and any other
character outside ``A-Z a-z 0-9 . _`` percent-escaped (``%2D`` for a ``-`` of
the symbol itself), so every folder name maps back to exactly one symbol.
``date=`` is the UTC day of the rows' receive time. Part numbers count up per
partition folder; a part being written is ``.part-<n>.parquet.tmp`` until it
is complete (readers and globs ignore it).
"""

from __future__ import annotations

import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final
from urllib.parse import unquote

__all__ = [
    "NS_PER_DAY",
    "TABLES",
    "TMP_SUFFIX",
    "Part",
    "day_of",
    "decode_symbol",
    "encode_symbol",
    "part_name",
    "partition",
    "scan",
    "stale_parts",
    "symbol_folders",
]

TABLES: Final = ("trades", "ticker", "candles", "book_updates", "book_snapshots", "instruments")
"""The tables of a dataset, each a folder of its own."""

NS_PER_DAY: Final = 86_400 * 1_000_000_000
TMP_SUFFIX: Final = ".tmp"
_SAFE: Final = frozenset(string.ascii_letters + string.digits + "._")
_PART: Final = re.compile(r"part-(\d+)\.parquet")


def encode_symbol(symbol: str) -> str:
    """The ``symbol=`` folder value of ``symbol``: ``BTC/USD`` → ``BTC-USD``."""
    return "".join(
        "-" if char == "/" else char if char in _SAFE else "".join(f"%{b:02X}" for b in char.encode())
        for char in symbol
    )


def decode_symbol(value: str) -> str:
    """The symbol a ``symbol=`` folder value stands for: ``BTC-USD`` → ``BTC/USD``."""
    return unquote(value.replace("-", "/"))


def day_of(received_ns: int) -> date:
    """The UTC day of a receive time in ns since the epoch."""
    return datetime.fromtimestamp(received_ns // NS_PER_DAY * 86_400, UTC).date()


def partition(root: Path, table: str, symbol: str, day: date) -> Path:
    """The folder of one table, symbol and day."""
    return root / table / f"symbol={encode_symbol(symbol)}" / f"date={day.isoformat()}"


def part_name(number: int) -> str:
    """The file name of part ``number``."""
    return f"part-{number}.parquet"


@dataclass(frozen=True, slots=True, order=True)
class Part:
    """One complete part file of a table."""

    table: str
    symbol: str
    day: date
    number: int
    path: Path


def _folders(path: Path, key: str) -> Iterator[tuple[str, Path]]:
    """The ``key=value`` sub-folders of ``path`` as ``(value, folder)``."""
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return
    prefix = key + "="
    for entry in entries:
        if entry.name.startswith(prefix) and entry.is_dir():
            yield entry.name[len(prefix) :], Path(entry.path)


def symbol_folders(root: Path, table: str) -> dict[str, Path]:
    """The symbols ``table`` holds data for, with their ``symbol=`` folders."""
    return {decode_symbol(value): folder for value, folder in _folders(root / table, "symbol")}


def scan(root: Path, table: str) -> list[Part]:
    """Every complete part of ``table`` under ``root``, ordered by symbol, day and number.

    Folders that do not follow the layout (a ``date=`` that is not a date)
    and files that are not parts are ignored.
    """
    parts: list[Part] = []
    for value, symbol_folder in _folders(root / table, "symbol"):
        symbol = decode_symbol(value)
        for day_text, day_folder in _folders(symbol_folder, "date"):
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                continue
            for entry in os.scandir(day_folder):
                match = _PART.fullmatch(entry.name)
                if match is not None and entry.is_file():
                    parts.append(Part(table, symbol, day, int(match.group(1)), Path(entry.path)))
    parts.sort()
    return parts


def stale_parts(root: Path) -> list[Path]:
    """Parts left half-written (``.part-<n>.parquet.tmp``) by a recorder that was killed."""
    found: list[Path] = []
    for table in TABLES:
        for _, symbol_folder in _folders(root / table, "symbol"):
            for _, day_folder in _folders(symbol_folder, "date"):
                found.extend(
                    Path(entry.path)
                    for entry in os.scandir(day_folder)
                    if entry.name.startswith(".part-") and entry.name.endswith(TMP_SUFFIX)
                )
    return found
