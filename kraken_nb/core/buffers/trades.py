"""Trades: ``TradeBuffer``, de-duplicated by trade id, and the ``TradeGap`` records of missed or odd ids."""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from operator import index as as_int
from typing import Any, ClassVar, Final

from kraken_nb.core.buffers.columnar import _BAD_ROW, ColumnarBuffer, _malformed, _time_ns
from kraken_nb.core.buffers.exact import FALLBACK_LIMITS, ExactRow, Precisions, exact_entries
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.core.timestamps import parse_rfc3339_ns

__all__ = ["GAP_REASONS", "TradeBuffer", "TradeGap"]

log = logging.getLogger(__name__)

SKIPPED: Final = "trade ids skipped"
JUMPED: Final = "trade id jumped ahead"
BACKWARDS: Final = "trade id went backwards"
GAP_REASONS: Final = (SKIPPED, JUMPED, BACKWARDS)
"""The ``reason`` of a ``TradeGap``: ids missing, or an id out of sequence (an anomaly)."""


@dataclass(frozen=True, slots=True)
class TradeGap:
    """Trade ids of ``symbol`` between ``after_id`` and ``before_id`` that did not arrive in sequence.

    ``reason`` is ``"trade ids skipped"`` when the ids in between never
    arrived, or an anomaly: ``"trade id jumped ahead"`` (further than
    ``TradeBuffer.MAX_SKIP``) or ``"trade id went backwards"``. ``time_ns`` is
    the time of the trade ``before_id`` that revealed it.
    """

    symbol: str
    after_id: int
    before_id: int
    time_ns: int
    reason: str = SKIPPED

    @property
    def missing(self) -> int:
        """How many trade ids are missing (0 for an anomaly: the ids in between need not exist)."""
        return self.before_id - self.after_id - 1 if self.reason == SKIPPED else 0

    @property
    def anomaly(self) -> bool:
        """Whether this is an id out of sequence rather than ids that never arrived."""
        return self.reason != SKIPPED


class _Sequence:
    """Dedupe and sequence state of one symbol's trade ids.

    The window of remembered ids is usually a plain range, ``first`` to
    ``last``: then no set is needed. After a gap or an anomaly the window is
    kept as a deque of the newest ids with a set for lookups (``first`` is
    None), until a full window of consecutive ids makes it a range again.
    """

    __slots__ = ("first", "last", "pending", "previous", "recent", "run", "seen")

    def __init__(self, trade_id: int) -> None:
        self.first: int | None = trade_id  # the window is first..last (None: use recent and seen)
        self.last: int = trade_id  # the id of the newest trade in sequence
        self.pending: int | None = None  # an out-of-sequence id that may start a new sequence
        self.previous = trade_id  # the id of the newest trade received
        self.run = 1  # how many of the newest trades received have consecutive ids
        self.seen: set[int] = set()
        self.recent: deque[int] = deque()

    def spread(self, window: int) -> None:
        """Turn the range window into a deque and set (before an id out of sequence)."""
        assert self.first is not None
        self.recent = deque(range(self.first, self.last + 1), maxlen=window)
        self.seen = set(self.recent)
        self.first = None


class TradeBuffer(ColumnarBuffer):
    """Trades of every symbol, de-duplicated by ``(symbol, trade_id)`` within a bounded window.

    A trade whose id is among the symbol's newest ``DEDUPE_WINDOW`` ids is an
    exact repeat (e.g. from the snapshot that bridges a reconnect): it is
    dropped and counted. Every other trade is kept. Kraken's ``trade_id``
    increases by one per trade of a book, so the buffer follows the sequence:
    an id more than one ahead records the skipped ids as a ``TradeGap``; an id
    further ahead than ``MAX_SKIP`` or behind the sequence is an anomaly
    (recorded, counted, logged, the trade kept). An anomaly starts a new
    sequence only when the next trade continues from it, so one bogus id
    (999999999 between real ones) costs one anomaly and drops nothing.

    A trade *snapshot* (the 50 trades that bridge a reconnect) is different:
    its trades at or behind the sequence that are not repeats are older than
    the stream (from before the first trade received, or inside a gap already
    recorded). They are dropped and counted as ``stale``, so the frame stays
    in trade order.
    """

    _fields = (
        ("time", "time"),
        ("symbol", "category"),
        ("side", "category"),
        ("price", "price"),
        ("qty", "qty"),
        ("ord_type", "category"),
        ("trade_id", "int"),
        ("received", "time"),
    )
    _preset_categories: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "side": ("buy", "sell"),
        "ord_type": ("limit", "market"),
    }
    MAX_GAPS: ClassVar[int] = 10_000
    """How many of the newest gaps ``gaps`` keeps."""
    DEDUPE_WINDOW: ClassVar[int] = 500
    """How many of each symbol's newest trade ids are remembered for de-duplication (10 snapshots)."""
    MAX_SKIP: ClassVar[int] = 1_000_000
    """The largest step ahead read as skipped ids; a larger one is an anomaly."""

    def __init__(
        self,
        *,
        capacity: int = 1024,
        max_rows: int | None = None,
        precisions: Precisions | None = None,
        counters: Counter[str] | None = None,
    ) -> None:
        """``counters`` (e.g. the session's) receives ``duplicate_trades``, ``stale_trades``,
        ``trade_gaps`` and ``trade_id_anomalies`` as they happen."""
        super().__init__(capacity=capacity, max_rows=max_rows, precisions=precisions)
        self._sides = self._codes["side"]
        self._ord_types = self._codes["ord_type"]
        self._sequences: dict[int, _Sequence] = {}
        self._gaps: deque[TradeGap] = deque(maxlen=self.MAX_GAPS)
        self._counts: Counter[str] = counters if counters is not None else Counter()
        self.new_gaps: list[TradeGap] = []
        """Gaps and anomalies recorded since the last ``take_gaps``."""
        self._log = ThrottledLog(log)
        self._limits = self.precisions.limits

    @property
    def duplicates(self) -> int:
        """Trades dropped because their id was among the symbol's recent ones."""
        return self._counts["duplicate_trades"]

    @property
    def stale(self) -> int:
        """Snapshot trades dropped because they are older than the symbol's sequence."""
        return self._counts["stale_trades"]

    @property
    def gaps(self) -> list[TradeGap]:
        """The gaps and anomalies in trade ids seen so far (the newest ``MAX_GAPS``), oldest first."""
        return list(self._gaps)

    @property
    def gap_count(self) -> int:
        """How many gaps of skipped ids were seen in total."""
        return self._counts["trade_gaps"]

    @property
    def anomalies(self) -> int:
        """How many out-of-sequence ids (far jumps ahead, steps back) were seen in total."""
        return self._counts["trade_id_anomalies"]

    def last_trade_id(self, symbol: str) -> int | None:
        """The id of ``symbol``'s newest trade in sequence, or None before its first trade."""
        code = self._symbol_codes.get(symbol)
        sequence = None if code is None else self._sequences.get(code)
        return None if sequence is None else sequence.last

    def _convert(self, row: Mapping[str, Any], received_ns: int) -> tuple[Any, ...]:
        try:
            time_ns = parse_rfc3339_ns(row["timestamp"])
            price = float(row["price"])
            qty = float(row["qty"])
            trade_id = as_int(row["trade_id"])
            side = self._sides[row["side"]]
            ord_type = self._ord_types[row["ord_type"]]
            name = row["symbol"]
            symbol = self._symbol_codes[name]
        except _BAD_ROW as exc:
            raise _malformed("trade", row, exc) from exc
        values = (time_ns, symbol, side, price, qty, ord_type, trade_id, received_ns)
        price_limit, qty_limit = self._limits.get(name, FALLBACK_LIMITS)
        if price < price_limit and qty < qty_limit:  # not negative
            return values
        return exact_entries(values, row, (("price", 3, price_limit), ("qty", 4, qty_limit)))

    def _add(self, values: tuple[Any, ...], snapshot: bool = False) -> bool:
        code, trade_id = values[1], values[6]
        sequence = self._sequences.get(code)
        if sequence is None:
            self._sequences[code] = _Sequence(trade_id)
        elif (first := sequence.first) is not None and trade_id == sequence.last + 1:
            # The usual case: the next id, with a window that is a plain range.
            sequence.last = sequence.previous = trade_id
            if trade_id - first >= self.DEDUPE_WINDOW:
                sequence.first = first + 1
        elif first is not None and first <= trade_id <= sequence.last:
            self._drop("duplicate_trades")
            return False
        elif first is not None and snapshot and trade_id < first:
            self._drop("stale_trades")
            return False
        elif not self._follow(sequence, code, trade_id, values[0], snapshot):
            return False
        # The base class's _write, inlined: this is the hottest path.
        at = self._stop
        if at == self._capacity:
            at = self._reserve(1)
        self._rows[at] = values
        if type(values) is ExactRow:
            self._keep_exact(at, values)
        self._stop = at + 1
        self._version += 1
        self._symbol_versions[code] += 1
        return True

    def _follow(self, sequence: _Sequence, code: int, trade_id: int, time_ns: int, snapshot: bool) -> bool:
        """Take ``trade_id`` into a window of single ids; record gaps and anomalies; False to drop it."""
        window = self.DEDUPE_WINDOW
        if sequence.first is not None:
            sequence.spread(window)
        if trade_id in sequence.seen:
            self._drop("duplicate_trades")
            return False
        last = sequence.last
        if snapshot and trade_id <= last:
            self._drop("stale_trades")
            return False
        pending = sequence.pending
        sequence.pending = None
        if pending is not None and trade_id == pending + 1:
            sequence.last = trade_id  # the out-of-sequence id was real: follow it
        elif trade_id == last + 1:
            sequence.last = trade_id
        elif last < trade_id <= last + self.MAX_SKIP:
            self._record(TradeGap(self._symbols[code], last, trade_id, time_ns))
            sequence.last = trade_id
        else:
            reason = JUMPED if trade_id > last else BACKWARDS
            self._record(TradeGap(self._symbols[code], last, trade_id, time_ns, reason))
            sequence.pending = trade_id
        sequence.run = sequence.run + 1 if trade_id == sequence.previous + 1 else 1
        sequence.previous = trade_id
        recent, seen = sequence.recent, sequence.seen
        if len(recent) == window:
            seen.discard(recent[0])  # about to fall out of the window
        recent.append(trade_id)
        seen.add(trade_id)
        if sequence.run >= window and sequence.pending is None and sequence.last == trade_id:
            sequence.first = trade_id - window + 1  # the window is a plain range again
            sequence.recent, sequence.seen = deque(), set()
        return True

    def _drop(self, why: str) -> None:
        self._counts[why] += 1

    def take_gaps(self) -> list[TradeGap]:
        """The gaps and anomalies recorded since the last call (forgets them)."""
        gaps, self.new_gaps = self.new_gaps, []
        return gaps

    def _record(self, gap: TradeGap) -> None:
        self._gaps.append(gap)
        self.new_gaps.append(gap)
        if gap.anomaly:
            self._counts["trade_id_anomalies"] += 1
            self._log.warning(
                f"trade id anomaly {gap.symbol}",
                "%s: %s (%d after %d); the trade is kept",
                gap.symbol,
                gap.reason,
                gap.before_id,
                gap.after_id,
            )
        else:
            self._counts["trade_gaps"] += 1

    def append(self, row: Mapping[str, Any], received_ns: int | None = None) -> bool:
        """Add one trade (an element of a trade message's ``data``); False if it was a duplicate.

        ``received_ns`` is the receive time (ns since the epoch; None: unknown, ``NaT``).
        """
        if type(received_ns) is not int:
            received_ns = _time_ns(received_ns, "received_ns")
        return self._add(self._convert(row, received_ns))

    def extend(self, rows: Iterable[Mapping[str, Any]], received_ns: int | None = None) -> int:
        """Add trades in order; return how many were new.

        Every row is validated first, so a malformed row adds nothing.
        """
        return len(self.extend_new(rows, received_ns))

    def extend_new(
        self, rows: Iterable[Mapping[str, Any]], received_ns: int | None = None, *, snapshot: bool = False
    ) -> list[Mapping[str, Any]]:
        """Add the trades of one frame in order; return the rows that were kept.

        ``snapshot`` tells that the frame is a trade snapshot (its older trades
        are stale, see the class docstring). Every row is converted and checked
        first, so a malformed row adds nothing. Values that may have lost
        digits are noted for the caller (``take_suspects``).
        """
        if type(received_ns) is not int:
            received_ns = _time_ns(received_ns, "received_ns")
        if not isinstance(rows, (list, tuple)):
            rows = list(rows)
        if len(rows) == 1:  # the usual frame
            row = rows[0]
            return [row] if self._add(self._convert(row, received_ns), snapshot) else []
        convert, add = self._convert, self._add
        converted = [convert(row, received_ns) for row in rows]
        if len(converted) > 1:
            self._positioned(converted)
        return [row for row, values in zip(rows, converted, strict=True) if add(values, snapshot)]
