"""Live notebook widgets on a ``KrakenClient``: ticker board, trade tape, candle chart, depth heatmap.

Every widget subscribes to the channels it needs, reads the client on one
shared background scheduler thread at a capped rate, skips ticks whose stream
versions did not change and sends only deltas to the front end. Each shows the
connection state in a synced ``status`` trait; ``close()`` stops it.
"""

from __future__ import annotations

from kraken_nb.widgets.base import StreamWidget
from kraken_nb.widgets.candles import CandleChart
from kraken_nb.widgets.depth import DepthHeatmap
from kraken_nb.widgets.layout import Dashboard, dashboard
from kraken_nb.widgets.scheduler import Scheduler, shared_scheduler
from kraken_nb.widgets.tape import TradeTape
from kraken_nb.widgets.ticker import TickerBoard

__all__ = [
    "CandleChart",
    "Dashboard",
    "DepthHeatmap",
    "Scheduler",
    "StreamWidget",
    "TickerBoard",
    "TradeTape",
    "dashboard",
    "shared_scheduler",
]
