"""CandleChart: the last candle sent equals client.candles()'s last row; updates are one-candle deltas."""

from __future__ import annotations

import pytest

from kraken_nb.errors import InvalidParams
from kraken_nb.widgets import CandleChart
from kraken_nb.widgets.candles import plotly_js

from .helpers import MANUAL, message_bytes, ready, record_sends, wait_for

SYMBOL = "BTC/USD"


def _record_candles(monkeypatch: pytest.MonkeyPatch, client: object) -> list:
    frames: list = []
    original = client.candles

    def candles(*args, **kwargs):
        frame = original(*args, **kwargs)
        frames.append(frame)
        return frame

    monkeypatch.setattr(client, "candles", candles)
    return frames


def _wire(row) -> list:
    """A candles() row as the chart should send it, computed independently of the widget."""
    begin_ms = int(row["interval_begin"].timestamp() * 1000)
    return [begin_ms, *(float(row[name]) for name in ("open", "high", "low", "close", "volume"))]


def test_last_candle_sent_equals_the_clients_last_row(client, monkeypatch) -> None:
    chart = CandleChart(client, SYMBOL, window=20, rate_hz=MANUAL)
    sent = record_sends(chart)
    try:
        wait_for(lambda: len(client.candles(SYMBOL)) >= 1, what="a candle")
        frames = _record_candles(monkeypatch, client)
        chart.tick()
        assert frames, "the chart did not read candles"
        content, _ = sent.of_type("candles")[-1]
        assert content["candles"][-1] == _wire(frames[-1].iloc[-1])
        assert len(content["candles"]) <= 20
        # Every sent candle is one of the client's rows, oldest first.
        expected = [_wire(row) for _, row in frames[-1].iterrows()]
        assert content["candles"] == expected[-len(content["candles"]) :]
    finally:
        chart.close()


def test_updates_of_the_current_candle_carry_one_candle(client) -> None:
    chart = CandleChart(client, SYMBOL, window=200, rate_hz=MANUAL)
    sent = record_sends(chart)
    try:
        wait_for(lambda: len(client.candles(SYMBOL)) >= 1, what="a candle")
        chart.tick()
        initial = len(sent)
        for _ in range(6):
            before = client.candles(SYMBOL).iloc[-1].to_dict()

            def changed(before=before) -> bool:
                return client.candles(SYMBOL).iloc[-1].to_dict() != before

            wait_for(changed, what="a candle change")
            chart.tick()
        updates = sent.of_type("candles")[initial:] if initial else sent.of_type("candles")[1:]
        assert updates, "no update was sent"
        for content, buffers in updates:
            # The moving candle, plus the one before it when a new candle just began.
            assert 1 <= len(content["candles"]) <= 2
            assert message_bytes(content, buffers) < 300
        assert any(len(content["candles"]) == 1 for content, _ in updates)
        begins = [content["candles"][-1][0] for content, _ in updates]
        assert begins == sorted(begins)
    finally:
        chart.close()


def test_window_stays_bounded_and_views_get_a_snapshot(client) -> None:
    window = 3
    chart = CandleChart(client, SYMBOL, window=window, rate_hz=MANUAL)
    sent = record_sends(chart)
    try:
        wait_for(lambda: len(client.candles(SYMBOL)) >= 1, what="a candle")
        chart.tick()
        ready(chart)
        (snapshot, _), *_ = sent.of_type("snapshot")
        frame = client.candles(SYMBOL)
        assert 1 <= len(snapshot["candles"]) <= window
        assert len(snapshot["candles"]) == min(window, len(frame))
        assert all(len(content["candles"]) <= window for content, _ in sent.of_type("candles"))
        begins = [candle[0] for candle in snapshot["candles"]]
        assert begins == sorted(set(begins))
    finally:
        chart.close()


def test_plotly_js_is_served_on_request_not_synced(client) -> None:
    chart = CandleChart(client, SYMBOL, rate_hz=MANUAL)
    sent = record_sends(chart)
    try:
        assert "plotly" not in "".join(chart.trait_names()).lower()
        chart._handle_custom_msg({"type": "plotly"}, [])
        (_, buffers), *_ = sent.of_type("plotly")
        assert buffers == [plotly_js()]
        assert b"plotly.js v" in buffers[0][:200]
        assert "https://cdn" not in chart._esm
    finally:
        chart.close()


@pytest.mark.parametrize(("interval", "window"), [(2, 200), (1, 1), (1, 10_000), (True, 200)])
def test_bad_interval_or_window_is_rejected(client, interval, window) -> None:
    with pytest.raises(InvalidParams):
        CandleChart(client, SYMBOL, interval, window=window)
