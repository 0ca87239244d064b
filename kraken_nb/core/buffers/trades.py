"""Trades: ``TradeBuffer``, de-duplicated by trade id, and the ``TradeGap`` records of missed ids."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import index as as_int
from typing import Any, ClassVar

from kraken_nb.core.buffers.columnar import _BAD_ROW, ColumnarBuffer, _malformed
from kraken_nb.core.timestamps import parse_rfc3339_ns

__all__ = ["TradeBuffer", "TradeGap"]


@dataclass(frozen=True, slots=True)
class TradeGap:
    """Trades of ``symbol`` between ``after_id`` and ``before_id`` (exclusive) never arrived.

    ``time_ns`` is the time of the trade ``before_id`` that revealed the gap.
    """

    symbol: str
    after_id: int
    before_id: int
    time_ns: int

    @property
    def missing(self) -> int:
        """How many trade ids are missing."""
        return self.before_id - self.after_id - 1


class TradeBuffer(ColumnarBuffer):
    """Trades of every symbol, de-duplicated by ``(symbol, trade_id)``.

    Kraken's ``trade_id`` increases per book, so the buffer keeps the last id
    per symbol: an id at or below it is a duplicate (dropped and counted), an
    id more than one above it means trades were missed (a ``TradeGap`` is
    recorded and the trade kept). This state is O(1) per symbol and survives
    ``max_rows`` trimming, so replaying a snapshot after a reconnect adds only
    the new trades.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("side", "category"),
        ("price", "float"),
        ("qty", "float"),
        ("ord_type", "category"),
        ("trade_id", "int"),
    )
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "side": ("buy", "sell"),
        "ord_type": ("limit", "market"),
    }
    MAX_GAPS: ClassVar[int] = 10_000
    """How many of the newest gaps ``gaps`` keeps."""

    def __init__(self, *, capacity: int = 1024, max_rows: int | None = None) -> None:
        super().__init__(capacity=capacity, max_rows=max_rows)
        self._sides = self._codes["side"]
        self._ord_types = self._codes["ord_type"]
        self._last_ids: dict[int, int] = {}
        self._gaps: deque[TradeGap] = deque(maxlen=self.MAX_GAPS)
        self._gap_count = 0
        self._duplicates = 0

    @property
    def duplicates(self) -> int:
        """Trades dropped because their id was not above the symbol's last one."""
        return self._duplicates

    @property
    def gaps(self) -> list[TradeGap]:
        """The gaps in trade ids seen so far (the newest ``MAX_GAPS``), oldest first."""
        return list(self._gaps)

    @property
    def gap_count(self) -> int:
        """How many gaps were seen in total."""
        return self._gap_count

    def last_trade_id(self, symbol: str) -> int | None:
        """The highest trade id kept for ``symbol``, or None before its first trade."""
        code = self._symbol_codes.get(symbol)
        return None if code is None else self._last_ids.get(code)

    def _convert(self, row: Mapping[str, Any]) -> tuple[Any, ...]:
        try:
            time_ns = parse_rfc3339_ns(row["timestamp"])
            price = float(row["price"])
            qty = float(row["qty"])
            trade_id = as_int(row["trade_id"])
            side = self._sides[row["side"]]
            ord_type = self._ord_types[row["ord_type"]]
            symbol = self._symbol_codes[row["symbol"]]
        except _BAD_ROW as exc:
            raise _malformed("trade", row, exc) from exc
        return (time_ns, symbol, side, price, qty, ord_type, trade_id)

    def _add(self, values: tuple[Any, ...]) -> bool:
        code, trade_id = values[1], values[6]
        last = self._last_ids.get(code)
        if last is not None:
            if trade_id <= last:
                self._duplicates += 1
                return False
            if trade_id > last + 1:
                self._gaps.append(TradeGap(self._symbols[code], last, trade_id, values[0]))
                self._gap_count += 1
        self._last_ids[code] = trade_id
        # The base class's _write, inlined: this is the hottest path.
        at = self._stop
        if at == self._capacity:
            at = self._reserve(1)
        self._rows[at] = values
        self._stop = at + 1
        self._version += 1
        self._symbol_versions[code] += 1
        return True

    def append(self, row: Mapping[str, Any]) -> bool:
        """Add one trade (an element of a trade message's ``data``); False if it was a duplicate."""
        return self._add(self._convert(row))

    def extend(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Add trades in order; return how many were new.

        Every row is validated first, so a malformed row adds nothing.
        """
        converted = [self._convert(row) for row in rows]
        return sum(self._add(values) for values in converted)
