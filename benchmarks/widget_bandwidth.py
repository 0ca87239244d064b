"""Widget bandwidth: bytes each widget sends to the front end per second at 10 Hz, against full resends.

The four widgets run on a real client fed by the embedded simulator (speed
``SPEED``, a busy market) and tick at 10 Hz on their scheduler: a ticker
board of every listed pair, a 50-row trade tape, a 500-candle chart and a
200-column × 100-row depth heatmap, all on BTC/USD. Every message a widget
sends (state updates and custom messages alike) goes through its comm's
``send``, which is wrapped to count the JSON payload as Jupyter packs it plus
the binary buffers. (The view handshake and plotly.js bundle are one-off and
not part of the steady state.)

The comparison is resending everything at every tick: the ticker rows state,
the 50 newest trades, a plotly candlestick + volume figure of 500 candles and
a plotly heatmap figure of 200 × 100 cells with best bid/ask/mid lines, each
sized with ``Figure.to_json()``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from benchmarks.results import Report, Row
from benchmarks.settings import Settings
from kraken_nb import KrakenClient
from kraken_nb.simulator import DEFAULT_PAIRS

__all__ = ["NAME", "SPEED", "run"]

NAME = "widgets"
SPEED = 10.0
"""Simulator speed (market seconds per wall second) while measuring."""
RATE_HZ = 10.0
SYMBOL = "BTC/USD"
CANDLES = 500
HEATMAP_COLUMNS = 200
HEATMAP_ROWS = 100
TAPE_ROWS = 50
_WARM_UP_S = 1.0


def _packer() -> Callable[[Any], bytes]:
    try:
        from jupyter_client.session import json_packer
    except ImportError:  # pragma: no cover - jupyter_client comes with ipykernel
        return lambda obj: json.dumps(obj, default=str).encode()
    return json_packer


class _Meter:
    """Counts what one widget's comm sends: messages, JSON bytes and buffer bytes."""

    def __init__(self, widget: Any, pack: Callable[[Any], bytes]) -> None:
        self.messages = 0
        self.json_bytes = 0
        self.buffer_bytes = 0
        self._pack = pack
        comm = widget.comm
        original = comm.send

        def send(data: Any = None, metadata: Any = None, buffers: Any = None) -> Any:
            self.messages += 1
            self.json_bytes += len(self._pack(data))
            self.buffer_bytes += sum(memoryview(buffer).nbytes for buffer in buffers or ())
            return original(data=data, metadata=metadata, buffers=buffers)

        comm.send = send

    @property
    def total(self) -> int:
        """Bytes sent so far."""
        return self.json_bytes + self.buffer_bytes

    def reset(self) -> None:
        """Start counting from zero."""
        self.messages = self.json_bytes = self.buffer_bytes = 0


def _ticker_state_bytes(board: Any, pack: Callable[[Any], bytes]) -> int:
    return len(pack({"method": "custom", "content": {"type": "snapshot", "rows": board.rows}}))


def _tape_bytes(client: KrakenClient, pack: Callable[[Any], bytes]) -> int:
    frame = client.trades(SYMBOL, last=TAPE_ROWS)
    times = frame["time"].dt.as_unit("ms").astype("int64").tolist()
    entries = [
        [t, side, price, qty, trade_id]
        for t, side, price, qty, trade_id in zip(
            times,
            frame["side"].astype(str),
            frame["price"].tolist(),
            frame["qty"].tolist(),
            frame["trade_id"].tolist(),
            strict=True,
        )
    ]
    content = {"type": "snapshot", "trades": entries[::-1]}
    return len(pack({"method": "custom", "content": content}))


def _candle_figure_bytes(client: KrakenClient) -> int:
    """``to_json()`` of a candlestick + volume figure of ``CANDLES`` bars (real bars, tiled back in time)."""
    frame = client.candles(SYMBOL, interval=1)
    repeats = -(-CANDLES // max(len(frame), 1))
    bars = pd.concat([frame] * repeats, ignore_index=True).tail(CANDLES).reset_index(drop=True)
    end = frame["interval_begin"].iloc[-1]
    times = pd.date_range(end=end, periods=len(bars), freq="1min")
    figure = go.Figure(
        [
            go.Candlestick(
                x=times, open=bars["open"], high=bars["high"], low=bars["low"], close=bars["close"]
            ),
            go.Bar(x=times, y=bars["volume"], yaxis="y2"),
        ]
    )
    figure.update_layout(yaxis2={"overlaying": "y", "side": "right"}, xaxis_rangeslider_visible=False)
    return len(figure.to_json())


def _heatmap_figure_bytes(heatmap: Any) -> int:
    """``to_json()`` of a heatmap of ``HEATMAP_COLUMNS`` × ``HEATMAP_ROWS`` cells plus three lines."""
    history = heatmap.history
    if not history:
        raise RuntimeError("the depth heatmap sampled no book")
    columns = [history[i % len(history)] for i in range(HEATMAP_COLUMNS)]
    z = np.stack([column.bids.astype(np.float64) - column.asks for column in columns], axis=1)
    times = pd.to_datetime([column.t for column in columns], unit="ms", utc=True)
    prices = heatmap.price_lo + heatmap.price_step * np.arange(HEATMAP_ROWS)
    figure = go.Figure(
        [
            go.Heatmap(z=z, x=times, y=prices),
            go.Scatter(x=times, y=[column.best_bid for column in columns], mode="lines"),
            go.Scatter(x=times, y=[column.best_ask for column in columns], mode="lines"),
            go.Scatter(x=times, y=[column.mid for column in columns], mode="lines"),
        ]
    )
    return len(figure.to_json())


def run(settings: Settings) -> Report:
    """Measure each widget's bytes per second at 10 Hz against resending its full figure every tick."""
    from kraken_nb.widgets import CandleChart, DepthHeatmap, TickerBoard, TradeTape

    report = Report(NAME)
    pack = _packer()
    seconds = settings.widget_ticks / RATE_HZ
    client = KrakenClient.simulated(speed=SPEED, seed=settings.seed)
    widgets: dict[str, Any] = {}
    try:
        widgets["TickerBoard"] = TickerBoard(client, list(DEFAULT_PAIRS), rate_hz=RATE_HZ)
        widgets["TradeTape"] = TradeTape(client, SYMBOL, rows=TAPE_ROWS, rate_hz=RATE_HZ)
        widgets["CandleChart"] = CandleChart(client, SYMBOL, 1, window=CANDLES, rate_hz=RATE_HZ)
        widgets["DepthHeatmap"] = DepthHeatmap(
            client, SYMBOL, columns=HEATMAP_COLUMNS, price_rows=HEATMAP_ROWS, rate_hz=RATE_HZ
        )
        meters = {name: _Meter(widget, pack) for name, widget in widgets.items()}
        client.wait_until(lambda c: (book := c.book(SYMBOL)) is not None and book.valid, timeout=15)
        time.sleep(_WARM_UP_S)
        for meter in meters.values():
            meter.reset()
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        counts = {name: (m.messages, m.json_bytes, m.buffer_bytes) for name, m in meters.items()}
        full = {
            "TickerBoard": _ticker_state_bytes(widgets["TickerBoard"], pack),
            "TradeTape": _tape_bytes(client, pack),
            "CandleChart": _candle_figure_bytes(client),
            "DepthHeatmap": _heatmap_figure_bytes(widgets["DepthHeatmap"]),
        }
    finally:
        for widget in widgets.values():
            widget.close()
        client.close()
    what = {
        "TickerBoard": f"TickerBoard, {len(DEFAULT_PAIRS)} pairs",
        "TradeTape": f"TradeTape, {TAPE_ROWS} rows",
        "CandleChart": f"CandleChart, {CANDLES} candles + volume",
        "DepthHeatmap": f"DepthHeatmap, {HEATMAP_COLUMNS}×{HEATMAP_ROWS}",
    }
    full_what = {
        "TickerBoard": "the whole rows state",
        "TradeTape": f"the {TAPE_ROWS} newest trades",
        "CandleChart": "the full plotly figure",
        "DepthHeatmap": "the full plotly heatmap figure",
    }
    for name, (messages, json_bytes, buffer_bytes) in counts.items():
        rate = (json_bytes + buffer_bytes) / elapsed
        full_rate = full[name] * RATE_HZ
        report.rows.append(
            Row(
                f"{NAME}.{name}",
                NAME,
                f"{what[name]} at {RATE_HZ:g} Hz",
                rate,
                "B/s",
                ratio=rate / full_rate,
                compare=f"{{ratio}}× resending {full_what[name]} every tick",
                note=f"{messages / elapsed:.1f} msgs/s; full resend {full[name]:,} B per tick",
            )
        )
    report.details = [
        f"Simulator speed {SPEED:g}×, {elapsed:.1f} s measured after {_WARM_UP_S:g} s of warm-up. "
        "Bytes are the JSON payload as Jupyter packs it plus binary buffers, without the "
        "Jupyter message envelope (a few hundred bytes per message, so msgs/s matters too).",
    ]
    report.data = {"seconds": elapsed, "counts": counts, "full_bytes_per_tick": full}
    return report
