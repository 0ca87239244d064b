"""Columnar growing buffers for the streams, read as pandas DataFrames.

Each buffer keeps one preallocated NumPy record array (one field per stored
column) and writes each row in place: appends are amortised O(1) because the
array doubles when full. With ``max_rows`` the array grows to at most
``2 * max_rows`` rows; when it is full the newest rows move to the front in one
copy, so dropping the oldest rows is amortised O(1) as well and memory stays
bounded. Categorical columns (symbol, side, ord_type) are stored as int32
codes with a category list, times as int64 nanoseconds since the epoch (UTC;
a missing time is ``NaT``), prices and quantities as float64 plus a side table
of the rare values a float cannot hold (:mod:`~kraken_nb.core.buffers.exact`).

Every frame has ``time``, the exchange's own time of the row (trade, ticker,
candle and book ``timestamp``), and ``received``, when the frame carrying it
arrived; latency is ``received - time``.

``to_frame()`` always returns copies (the buffer keeps writing into its
arrays) with proper dtypes: ``category``, ``datetime64[ns, UTC]``, ``float64``,
``int64`` and ``bool``, and a ``RangeIndex``; ``to_frame(exact=True)`` gives
prices and quantities as exact ``decimal128`` columns instead. The full frame
is cached until the next change and handed out as a shallow copy, which
pandas' copy-on-write makes safe to mutate.

Measured on a busy 2-core machine: appending 1M trade dicts costs 2–3.5 µs
per row, most of it parsing the timestamp and converting the numbers
(writing the row is about 0.4 µs); ``to_frame()`` of 1M trades takes
40–65 ms, no slower than ``pd.DataFrame`` built once from the same arrays,
and a cached call or ``last=100`` takes about a millisecond or less.

The buffers need no locks of their own: the client serialises appends and
reads.
"""

from __future__ import annotations

from kraken_nb.core.buffers.books import BookTopBuffer, DepthBuffer
from kraken_nb.core.buffers.candles import CandleBuffer
from kraken_nb.core.buffers.columnar import ColumnarBuffer
from kraken_nb.core.buffers.exact import Precisions, decimal_array
from kraken_nb.core.buffers.tickers import TICKER_FIELDS, TickerBuffer
from kraken_nb.core.buffers.trades import GAP_REASONS, TradeBuffer, TradeGap

__all__ = [
    "GAP_REASONS",
    "TICKER_FIELDS",
    "BookTopBuffer",
    "CandleBuffer",
    "ColumnarBuffer",
    "DepthBuffer",
    "Precisions",
    "TickerBuffer",
    "TradeBuffer",
    "TradeGap",
    "decimal_array",
]
