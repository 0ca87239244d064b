"""CandleChart: a live plotly candlestick + volume chart fed with deltas.

Why not ``plotly.graph_objects.FigureWidget``: it resends a whole trace array
on every property change, so updating the current candle of a 200-bar window
costs several KB per update (about 33 KB at 2,000 bars, measured), while a
delta message carrying the one changed candle costs about 150 bytes. So this is
an anywidget that drives plotly.js itself: Python sends only the candles that
changed (``{"type": "candles", "candles": [[begin_ms, open, high, low, close,
volume], ...]}``: the current candle when it moved, new candles when they
start) and the view upserts them into a bounded window and redraws locally.

plotly.js comes from the installed ``plotly`` package (``package_data/plotly.min.js``,
no CDN). It is not a synced trait (that would store ~5 MB per chart in a saved
notebook): the first view on a page asks for it with ``{"type": "plotly"}`` and
receives it once as a binary buffer; later charts on that page reuse it.
"""

from __future__ import annotations

import math
import pathlib
from functools import cache
from typing import Any

import plotly
import traitlets

from kraken_nb.core.params import OHLC_INTERVALS, validate_symbol
from kraken_nb.errors import InvalidParams
from kraken_nb.widgets.base import StreamWidget, frontend

__all__ = ["CandleChart", "plotly_js"]

_ESM, _CSS = frontend("candles")

# One candle on the wire: [interval_begin in ms since the epoch (UTC), open, high, low, close, volume].
Candle = list[Any]


@cache
def plotly_js() -> bytes:
    """The plotly.js bundle shipped inside the installed plotly package."""
    return (pathlib.Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


class CandleChart(StreamWidget):
    """Candlesticks and volume bars for ``symbol`` at ``interval`` minutes, updated in place.

    Parameters: ``client``, ``symbol`` (subscribes to its ohlc channel at
    ``interval``), ``interval`` (minutes, one of Kraken's OHLC intervals),
    ``window`` (bars kept, default 200) and ``rate_hz`` (default 4). Synced
    state: ``symbol``, ``interval``, ``window``, ``price_precision``, ``status``.

    ``client`` may be a recorded range (``History(DIR).range(start, end)``):
    the chart then shows that range's last ``window`` candles, once.
    """

    _esm = _ESM
    _css = _CSS

    symbol = traitlets.Unicode().tag(sync=True)
    interval = traitlets.Int(1).tag(sync=True)
    window = traitlets.Int(200).tag(sync=True)
    price_precision = traitlets.Int(2).tag(sync=True)

    def __init__(
        self, client: Any, symbol: str, interval: int = 1, *, window: int = 200, rate_hz: float = 4
    ) -> None:
        validate_symbol(symbol)
        if interval not in OHLC_INTERVALS or isinstance(interval, bool):
            raise InvalidParams("interval", interval, OHLC_INTERVALS)
        if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= 5000:
            raise InvalidParams("window", window, "an integer from 2 to 5000")
        super().__init__(client, symbol=symbol, interval=interval, window=window)
        self._version: int | None = None
        self._sent: dict[int, Candle] = {}
        self._last_begin: int | None = None
        self._subscribe_instruments()
        self._has_precision = self._load_precision()
        client.subscribe("ohlc", [symbol], interval=interval)
        self._start(rate_hz)

    def _load_precision(self) -> bool:
        found = self._precisions(self.symbol)
        if found is not None:
            self.price_precision = found[0]
        return found is not None

    def _frame(self) -> Any:
        return self._client.candles(self.symbol, interval=self.interval, last=self.window)

    def _update(self) -> None:
        version = self._client.versions().get(("ohlc", self.symbol), 0)
        if version == self._version:
            return
        self._version = version
        if not self._has_precision:
            self._has_precision = self._load_precision()
        candles = _candles(self._frame())
        changed = [
            candle
            for candle in candles
            if (self._last_begin is None or candle[0] >= self._last_begin)
            and self._sent.get(candle[0]) != candle
        ]
        if not changed:
            return
        self._remember(changed)
        self.send({"type": "candles", "candles": changed})

    def _remember(self, candles: list[Candle]) -> None:
        for candle in candles:
            self._sent[candle[0]] = candle
        self._last_begin = max(self._sent)
        if len(self._sent) > self.window:
            for begin in sorted(self._sent)[: len(self._sent) - self.window]:
                del self._sent[begin]

    def _snapshot(self) -> None:
        candles = _candles(self._frame())
        self._sent = {}
        self._last_begin = None
        if candles:
            self._remember(candles)
        self.send({"type": "snapshot", "candles": candles})

    def _handle(self, content: dict[str, Any], buffers: list[Any]) -> None:
        if content.get("type") == "plotly":
            self.send({"type": "plotly"}, [plotly_js()])
        else:
            super()._handle(content, buffers)

    def __repr__(self) -> str:
        return (
            f"CandleChart({self.symbol!r}, interval={self.interval}, window={self.window}, "
            f"status={self.status!r})"
        )


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def _candles(frame: Any) -> list[Candle]:
    """Wire candles for the rows of a ``client.candles()`` frame, oldest first."""
    if frame is None or frame.empty:
        return []
    begins = frame["interval_begin"].dt.as_unit("ms").astype("int64").tolist()
    columns = [frame[name].astype(float).tolist() for name in ("open", "high", "low", "close", "volume")]
    return [
        [begin, *(_finite(value) for value in values)]
        for begin, *values in zip(begins, *columns, strict=True)
    ]
