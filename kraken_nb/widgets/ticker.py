"""TickerBoard: a live quote board for several symbols.

``rows`` holds one dict per symbol on the Python side. A view gets them all
once (``{"type": "snapshot", "rows": [...]}``, when it asks) and afterwards
only the fields that changed (``{"type": "rows", "rows": [{"symbol": ...,
field: value}, ...]}``), sent when one of the symbols' ticker versions moved;
the front end flashes the cells whose value moved.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import traitlets

from kraken_nb.core.buffers import TICKER_FIELDS
from kraken_nb.core.params import validate_symbol
from kraken_nb.errors import InvalidParams
from kraken_nb.widgets.base import StreamWidget, frontend

__all__ = ["TICKER_FIELDS", "TickerBoard"]


_ESM, _CSS = frontend("ticker")


def _number(value: Any) -> float | None:
    """A JSON-safe float: None for missing or non-finite values."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _changed(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """The fields of ``new`` that differ from ``old``, with the symbol; None when nothing did."""
    fields = {key: value for key, value in new.items() if old.get(key) != value}
    if not fields:
        return None
    fields["symbol"] = new["symbol"]
    return fields


class TickerBoard(StreamWidget):
    """Last, bid/ask, spread, 24h change and volume for ``symbols``, updated in place.

    Parameters: ``client`` (a ``KrakenClient``), ``symbols`` (one or more
    ``BASE/QUOTE`` names; the board subscribes to their ticker channel) and
    ``rate_hz`` (board refreshes per second, default 5). ``rows`` holds one
    dict per symbol, in the order given, with the ticker fields, ``spread`` and
    the pair's ``price_precision``/``qty_precision``; views receive it as a
    snapshot and then as per-field changes. Synced state: ``symbols``, ``status``.
    """

    _esm = _ESM
    _css = _CSS

    symbols = traitlets.List(traitlets.Unicode()).tag(sync=True)
    rows = traitlets.List(traitlets.Dict())

    def __init__(self, client: Any, symbols: str | Iterable[str], *, rate_hz: float = 5) -> None:
        names = [symbols] if isinstance(symbols, str) else list(symbols)
        if not names:
            raise InvalidParams("symbols", symbols, "one or more 'BASE/QUOTE' names")
        names = list(dict.fromkeys(validate_symbol(name) for name in names))
        super().__init__(client, symbols=names)
        self._versions: tuple[int, ...] | None = None
        self._known: dict[str, tuple[int, int]] = {}
        self._subscribe_instruments()
        client.subscribe("ticker", names)
        self.rows = [self._empty_row(name) for name in names]
        self._start(rate_hz)

    def _precision(self, symbol: str) -> tuple[int, int] | None:
        if symbol not in self._known:
            found = self._precisions(symbol)
            if found is None:
                return None
            self._known[symbol] = found
        return self._known[symbol]

    def _empty_row(self, symbol: str) -> dict[str, Any]:
        row: dict[str, Any] = {"symbol": symbol, "spread": None}
        row.update(dict.fromkeys(TICKER_FIELDS))
        price_precision, qty_precision = self._precision(symbol) or (None, None)
        row["price_precision"] = price_precision
        row["qty_precision"] = qty_precision
        return row

    def _update(self) -> None:
        versions = self._client.versions()
        current = tuple(versions.get(("ticker", name), 0) for name in self.symbols)
        if current == self._versions:
            return
        self._versions = current
        latest = self._client.ticker_latest()
        rows = [self._row(name, latest) for name in self.symbols]
        changes = [change for old, new in zip(self.rows, rows, strict=True) if (change := _changed(old, new))]
        self.rows = rows
        if changes:
            self.send({"type": "rows", "rows": changes})

    def _row(self, symbol: str, latest: Any) -> dict[str, Any]:
        row = self._empty_row(symbol)
        if symbol not in latest.index:
            return row
        record = latest.loc[symbol]
        for field in TICKER_FIELDS:
            row[field] = _number(record.get(field))
        bid, ask = row["bid"], row["ask"]
        if bid is not None and ask is not None:
            precision = row["price_precision"]
            spread = ask - bid
            row["spread"] = round(spread, precision) if precision is not None else spread
        return row

    def _snapshot(self) -> None:
        self.send({"type": "snapshot", "rows": self.rows})

    def __repr__(self) -> str:
        return f"TickerBoard(symbols={list(self.symbols)!r}, status={self.status!r})"
