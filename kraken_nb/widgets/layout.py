"""Dashboard: the ticker board, candle chart, trade tape and depth heatmap in one layout."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets

from kraken_nb.widgets.candles import CandleChart
from kraken_nb.widgets.depth import DepthHeatmap
from kraken_nb.widgets.tape import TradeTape
from kraken_nb.widgets.ticker import TickerBoard

__all__ = ["Dashboard", "dashboard"]


class Dashboard(ipywidgets.VBox):
    """A trading view of ``symbol``: ticker board on top, candles beside the tape, depth heatmap below.

    Parameters: ``client``, ``symbol`` (the focus pair), ``symbols`` (the
    ticker board's pairs; default ``[symbol]``), ``interval`` (candle minutes,
    default 1), ``depth`` (book depth, default 100) and ``rate_hz`` (when given,
    every part's update rate). The parts are attributes: ``ticker``, ``chart``,
    ``tape``, ``heatmap``; ``close()`` closes them all.
    """

    def __init__(
        self,
        client: Any,
        symbol: str,
        *,
        symbols: Iterable[str] | None = None,
        interval: int = 1,
        depth: int = 100,
        rate_hz: float | None = None,
    ) -> None:
        board_symbols = [symbol] if symbols is None else list(dict.fromkeys([*symbols]))
        rates: dict[str, float] = {} if rate_hz is None else {"rate_hz": rate_hz}
        self.ticker = TickerBoard(client, board_symbols, **rates)
        self.chart = CandleChart(client, symbol, interval, **rates)
        self.tape = TradeTape(client, symbol, **rates)
        self.heatmap = DepthHeatmap(client, symbol, depth=depth, **rates)
        self.chart.layout = ipywidgets.Layout(flex="3 1 0%", min_width="420px")
        self.tape.layout = ipywidgets.Layout(flex="1 1 0%", min_width="280px", max_width="420px")
        middle = ipywidgets.HBox(
            [self.chart, self.tape], layout=ipywidgets.Layout(width="100%", grid_gap="8px")
        )
        super().__init__(
            [self.ticker, middle, self.heatmap],
            layout=ipywidgets.Layout(width="100%", grid_gap="8px"),
        )
        self.add_class("kraken-dashboard")

    @property
    def parts(self) -> tuple[TickerBoard, CandleChart, TradeTape, DepthHeatmap]:
        """The four live widgets."""
        return (self.ticker, self.chart, self.tape, self.heatmap)

    def close(self) -> None:
        """Close every part and the layout (idempotent)."""
        for part in self.parts:
            part.close()
        for child in list(self.children):
            child.close()
        super().close()


def dashboard(client: Any, symbol: str, **kwargs: Any) -> Dashboard:
    """A :class:`Dashboard` for ``symbol`` (keyword arguments as for ``Dashboard``)."""
    return Dashboard(client, symbol, **kwargs)
