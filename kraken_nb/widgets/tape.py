"""TradeTape: the newest trades of one symbol, newest first, with running buy/sell volume.

Each tick sends only the trades whose ``trade_id`` is above the last one sent,
as a ``{"type": "trades", "trades": [[time_ms, side, price, qty, trade_id], ...]}``
custom message (oldest first; the view prepends them and keeps ``rows``). A
view that renders asks for ``{"type": "snapshot", "trades": [...]}``: the last
``rows`` trades the widget has seen.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import traitlets

from kraken_nb.core.params import validate_symbol
from kraken_nb.errors import InvalidParams
from kraken_nb.widgets.base import StreamWidget, frontend

__all__ = ["TradeTape"]

_ESM, _CSS = frontend("tape")

SCAN_LIMIT = 5000
"""At most this many of the newest trades are examined per tick."""

# One tape entry: [time in ms since the epoch (UTC), side, price, qty, trade_id].
TapeEntry = list[Any]


class TradeTape(StreamWidget):
    """A bounded, newest-first trade tape for ``symbol`` (time, side colour, price, qty).

    Parameters: ``client``, ``symbol`` (subscribes to its trade channel),
    ``rows`` (tape length, default 50) and ``rate_hz`` (default 5). Synced
    state: ``symbol``, ``rows``, ``price_precision``, ``qty_precision``,
    ``summary`` (``buy_qty``, ``sell_qty``, ``buy_count``, ``sell_count``,
    ``buy_notional``, ``sell_notional`` over every trade the tape has seen,
    including those already received when it opened) and ``status``.
    """

    _esm = _ESM
    _css = _CSS

    symbol = traitlets.Unicode().tag(sync=True)
    rows = traitlets.Int(50).tag(sync=True)
    price_precision = traitlets.Int(2).tag(sync=True)
    qty_precision = traitlets.Int(8).tag(sync=True)
    summary = traitlets.Dict().tag(sync=True)

    def __init__(self, client: Any, symbol: str, *, rows: int = 50, rate_hz: float = 5) -> None:
        validate_symbol(symbol)
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= 1000:
            raise InvalidParams("rows", rows, "an integer from 1 to 1000")
        super().__init__(client, symbol=symbol, rows=rows)
        self._last_id: int | None = None
        self._version: int | None = None
        self._recent: deque[TapeEntry] = deque(maxlen=rows)
        self._totals = {"buy_qty": 0.0, "sell_qty": 0.0, "buy_count": 0, "sell_count": 0}
        self._notional = {"buy": 0.0, "sell": 0.0}
        self.summary = self._summary()
        self._subscribe_instruments()
        self._has_precision = self._load_precision()
        client.subscribe("trade", [symbol])
        self._start(rate_hz)

    @property
    def last_trade_id(self) -> int | None:
        """The highest ``trade_id`` sent so far."""
        return self._last_id

    def _load_precision(self) -> bool:
        found = self._precisions(self.symbol)
        if found is None:
            return False
        self.price_precision, self.qty_precision = found
        return True

    def _summary(self) -> dict[str, float | int]:
        summary: dict[str, float | int] = dict(self._totals)
        summary["buy_notional"] = self._notional["buy"]
        summary["sell_notional"] = self._notional["sell"]
        return summary

    def _update(self) -> None:
        version = self._client.versions().get(("trade", self.symbol), 0)
        if version == self._version:
            return
        if not self._has_precision:
            self._has_precision = self._load_precision()
        self._version = version
        frame = self._client.trades(self.symbol, last=SCAN_LIMIT)
        if frame.empty:
            return
        ids = frame["trade_id"].to_numpy(dtype=np.int64)
        fresh = np.flatnonzero(ids > self._last_id) if self._last_id is not None else np.arange(len(ids))
        if fresh.size == 0:
            return
        new = frame.iloc[fresh]
        new = new.iloc[np.argsort(new["trade_id"].to_numpy(dtype=np.int64), kind="stable")]
        entries = _entries(new)
        self._accumulate(entries)
        self._last_id = int(entries[-1][4])
        shown = entries[-self.rows :]
        self._recent.extend(shown)
        self.summary = self._summary()
        self.send({"type": "trades", "trades": shown})

    def _accumulate(self, entries: list[TapeEntry]) -> None:
        for _, side, price, qty, _ in entries:
            if side not in ("buy", "sell"):
                continue
            self._totals[f"{side}_qty"] += qty
            self._totals[f"{side}_count"] += 1
            if price is not None:
                self._notional[side] += price * qty

    def _snapshot(self) -> None:
        self.send({"type": "snapshot", "trades": list(self._recent)})

    def __repr__(self) -> str:
        return (
            f"TradeTape({self.symbol!r}, rows={self.rows}, last_trade_id={self._last_id}, "
            f"status={self.status!r})"
        )


def _entries(frame: Any) -> list[TapeEntry]:
    """Tape entries for the rows of a ``client.trades()`` frame, in frame order."""
    times = frame["time"].dt.as_unit("ms").astype("int64").tolist()
    sides = frame["side"].astype(str).tolist()
    prices = frame["price"].astype(float).tolist()
    qtys = frame["qty"].astype(float).tolist()
    ids = frame["trade_id"].astype("int64").tolist()
    return [
        [t, side, price if math.isfinite(price) else None, qty if math.isfinite(qty) else 0.0, trade_id]
        for t, side, price, qty, trade_id in zip(times, sides, prices, qtys, ids, strict=True)
    ]
