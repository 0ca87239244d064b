"""TickerBoard against the simulator: rows mirror ticker_latest(), unchanged versions send nothing."""

from __future__ import annotations

import math

import pytest

from kraken_nb.errors import InvalidParams
from kraken_nb.widgets import TickerBoard
from kraken_nb.widgets.ticker import TICKER_FIELDS

from .helpers import MANUAL, wait_for

SYMBOLS = ["BTC/USD", "ETH/USD", "XRP/EUR"]


def _recorded_ticker(monkeypatch: pytest.MonkeyPatch, client: object) -> list:
    """Record every frame ``client.ticker_latest()`` returns (the board reads nothing else)."""
    frames: list = []
    original = client.ticker_latest

    def ticker_latest():
        frame = original()
        frames.append(frame)
        return frame

    monkeypatch.setattr(client, "ticker_latest", ticker_latest)
    return frames


def test_rows_equal_ticker_latest(client, monkeypatch) -> None:
    board = TickerBoard(client, SYMBOLS, rate_hz=MANUAL)
    try:
        wait_for(lambda: set(SYMBOLS) <= set(client.ticker_latest().index), what="tickers of every symbol")
        frames = _recorded_ticker(monkeypatch, client)
        board.tick()
        assert len(frames) == 1
        latest = frames[0]
        assert [row["symbol"] for row in board.rows] == SYMBOLS
        for row in board.rows:
            expected = latest.loc[row["symbol"]]
            for field in TICKER_FIELDS:
                assert row[field] == pytest.approx(float(expected[field]), rel=0, abs=0), field
            info = client.instrument(row["symbol"])
            assert row["price_precision"] == info["price_precision"]
            assert row["qty_precision"] == info["qty_precision"]
            spread = float(expected["ask"]) - float(expected["bid"])
            assert row["spread"] == pytest.approx(spread, abs=10.0 ** -info["price_precision"] / 2)
            assert row["spread"] > 0
    finally:
        board.close()


def test_unchanged_versions_skip_the_read(client, monkeypatch) -> None:
    board = TickerBoard(client, ["BTC/USD"], rate_hz=MANUAL)
    try:
        wait_for(lambda: "BTC/USD" in client.ticker_latest().index, what="a BTC/USD ticker")
        board.tick()
        frozen = client.versions()
        monkeypatch.setattr(client, "versions", lambda: dict(frozen))
        frames = _recorded_ticker(monkeypatch, client)
        changes: list = []
        board.observe(changes.append, names="rows")
        for _ in range(3):
            board.tick()
        assert frames == []
        assert changes == []
    finally:
        board.close()


def test_scheduler_keeps_the_board_moving(client) -> None:
    board = TickerBoard(client, ["BTC/USD"], rate_hz=20)
    try:
        seen: set[float] = set()

        def moved() -> bool:
            last = board.rows[0]["last"]
            if last is not None and math.isfinite(last):
                seen.add(last)
            return len(seen) >= 2

        wait_for(moved, timeout=15, what="two different last prices")
        assert board.status == "live"
    finally:
        board.close()


@pytest.mark.parametrize("symbols", [[], "BTCUSD", [""], [None]])
def test_bad_symbols_are_rejected(client, symbols) -> None:
    with pytest.raises(InvalidParams, match="symbol"):
        TickerBoard(client, symbols)


def test_views_get_a_snapshot_then_only_changed_fields(client, monkeypatch) -> None:
    board = TickerBoard(client, SYMBOLS, rate_hz=MANUAL)
    try:
        sent: list[dict] = []
        monkeypatch.setattr(board, "send", lambda content, buffers=None: sent.append(content))
        wait_for(lambda: set(SYMBOLS) <= set(client.ticker_latest().index), what="tickers of every symbol")
        board.tick()
        first = [dict(row) for row in board.rows]
        board._handle({"type": "ready"}, [])
        assert sent[-1] == {"type": "snapshot", "rows": board.rows}

        versions = client.versions()
        wait_for(
            lambda: client.versions().get(("ticker", "BTC/USD")) != versions.get(("ticker", "BTC/USD")),
            what="a new BTC/USD ticker",
        )
        sent.clear()
        board.tick()
        assert [message["type"] for message in sent] == ["rows"]
        changes = sent[0]["rows"]
        assert changes, "a moved ticker sends its row"
        for change in changes:
            before = next(row for row in first if row["symbol"] == change["symbol"])
            after = next(row for row in board.rows if row["symbol"] == change["symbol"])
            assert {key for key in change if key != "symbol"} == {
                key for key in after if after[key] != before[key]
            }
            assert all(after[key] == value for key, value in change.items())
        unchanged = {row["symbol"] for row in first} - {change["symbol"] for change in changes}
        for symbol in unchanged:
            before = next(row for row in first if row["symbol"] == symbol)
            assert next(row for row in board.rows if row["symbol"] == symbol) == before
    finally:
        board.close()
