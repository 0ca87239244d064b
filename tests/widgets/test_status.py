"""Status, close() and the Dashboard: reconnecting after a drop, closed with the client, idempotent close."""

from __future__ import annotations

import asyncio
import threading

import pytest
from servers import STATUS, ack_subscribes, loopback_server

from kraken_nb import KrakenClient
from kraken_nb.widgets import CandleChart, Dashboard, DepthHeatmap, TickerBoard, TradeTape, dashboard
from kraken_nb.widgets.base import client_status

from .helpers import MANUAL, record_sends, wait_for

SYMBOL = "BTC/USD"


def _all_widgets(client, rate_hz: float) -> list:
    return [
        TickerBoard(client, [SYMBOL], rate_hz=rate_hz),
        TradeTape(client, SYMBOL, rate_hz=rate_hz),
        CandleChart(client, SYMBOL, rate_hz=rate_hz),
        DepthHeatmap(client, SYMBOL, depth=10, rate_hz=rate_hz),
    ]


def test_status_follows_the_connection(own_client) -> None:
    widgets = _all_widgets(own_client, rate_hz=50)
    try:
        wait_for(lambda: all(w.status == "live" for w in widgets), what="every widget live")
        seen: dict[int, set[str]] = {id(w): set() for w in widgets}
        for widget in widgets:
            widget.observe(lambda change, w=widget: seen[id(w)].add(change["new"]), names="status")
        own_client.simulator.drop_connections()
        wait_for(lambda: all("reconnecting" in s for s in seen.values()), what="every widget reconnecting")
        wait_for(lambda: all(w.status == "live" for w in widgets), timeout=20, what="every widget live again")
    finally:
        for widget in widgets:
            widget.close()


def test_a_final_1008_close_is_shown_as_failed_with_the_servers_reason() -> None:
    reason = "<img src=x onerror=alert(1)> banned"
    release = threading.Event()

    async def handler(ws) -> None:
        await ws.send(STATUS)

        async def answer() -> None:
            async for text in ws:
                await ack_subscribes(ws, text)

        answering = asyncio.ensure_future(answer())
        while not release.is_set():
            await asyncio.sleep(0.02)
        answering.cancel()
        await ws.close(1008, reason)

    with loopback_server(handler) as server, KrakenClient(server.url, timeout=5) as client:
        tape = TradeTape(client, SYMBOL, rate_hz=50)
        try:
            wait_for(lambda: tape.status == "live", what="the tape live")
            assert tape.status_detail == ""
            release.set()
            wait_for(lambda: tape.status == "failed", what="the tape showing failed")
            assert tape.status_detail == f"1008 policy violation: {reason}"
            assert tape.ticking, "still ticking, so that closing the client shows closed"
            client.close()
            wait_for(lambda: tape.status == "closed", what="the tape showing closed")
            assert tape.status_detail == ""
        finally:
            tape.close()


def test_maintenance_is_shown_until_the_system_is_online_again(own_client) -> None:
    tape = TradeTape(own_client, SYMBOL, rate_hz=50)
    try:
        wait_for(lambda: tape.status == "live", what="the tape live")
        own_client.simulator.set_status("maintenance")
        wait_for(lambda: tape.status == "maintenance", what="the tape showing maintenance")
        own_client.simulator.set_status("online")
        wait_for(lambda: tape.status == "live", what="the tape live again")
    finally:
        tape.close()


def test_an_invalid_book_is_shown_and_not_drawn(client, monkeypatch) -> None:
    heatmap = DepthHeatmap(client, SYMBOL, depth=10, rate_hz=MANUAL)
    sent = record_sends(heatmap)
    try:
        wait_for(lambda: (b := client.book(SYMBOL)) is not None and b.valid, what="a valid book")
        heatmap.tick()
        assert heatmap.status == "live"
        assert len(sent.of_type("column")) == 1
        original = client.book

        def invalid_book(symbol):
            book = original(symbol)
            book.valid = False
            return book

        monkeypatch.setattr(client, "book", invalid_book)
        version = client.versions()[("book", SYMBOL)]
        wait_for(lambda: client.versions()[("book", SYMBOL)] != version, what="a book change")
        heatmap.tick()
        assert heatmap.status == "book invalid"
        assert len(sent.of_type("column")) == 1
    finally:
        heatmap.close()


def test_closing_the_client_shows_closed_and_stops_ticking(own_client) -> None:
    widgets = _all_widgets(own_client, rate_hz=50)
    try:
        wait_for(lambda: all(w.status == "live" for w in widgets), what="every widget live")
        own_client.close()
        wait_for(lambda: all(w.status == "closed" for w in widgets), what="every widget closed")
        wait_for(lambda: not any(w.ticking for w in widgets), what="ticks to stop")
        assert not any(w.closed for w in widgets)  # the views stay, showing "closed"
    finally:
        for widget in widgets:
            widget.close()


def test_close_stops_ticks_and_is_idempotent(client) -> None:
    widgets = _all_widgets(client, rate_hz=50)
    tasks = [w._task for w in widgets]
    wait_for(lambda: all(task.runs >= 2 for task in tasks), what="ticks to run")
    for widget in widgets:
        widget.close()
        widget.close()
    assert all(w.closed and not w.ticking for w in widgets)
    assert all(w.comm is None for w in widgets)
    runs = [task.runs for task in tasks]
    probe = TickerBoard(client, [SYMBOL], rate_hz=50)
    try:
        wait_for(lambda: probe._task.runs >= 5, what="the scheduler to keep running")
    finally:
        probe.close()
    assert [task.runs for task in tasks] == runs


class _FakeState:
    def __init__(self, connection_state: str, system_status: str | None, behind: bool = False) -> None:
        self.connection_state = connection_state
        self.system_status = system_status
        self.behind = behind


@pytest.mark.parametrize(
    ("connection", "system", "expected"),
    [
        ("live", "online", "live"),
        ("live", "online+behind", "behind"),
        ("live", "maintenance+behind", "maintenance"),
        ("reconnecting", "online+behind", "reconnecting"),
        ("live", None, "live"),
        ("live", "maintenance", "maintenance"),
        ("live", "cancel_only", "cancel_only"),
        ("reconnecting", "maintenance", "reconnecting"),
        ("connecting", None, "connecting"),
        ("closed", "online", "closed"),
        ("failed", "online", "failed"),
    ],
)
def test_client_status_precedence(connection, system, expected) -> None:
    behind = system is not None and system.endswith("+behind")
    if behind:
        system = system.removesuffix("+behind")
    assert client_status(_FakeState(connection, system, behind)) == expected


def test_dashboard_composes_and_closes_every_part(client) -> None:
    board = dashboard(client, SYMBOL, symbols=["BTC/USD", "ETH/USD"], depth=10)
    try:
        assert isinstance(board, Dashboard)
        kinds = [TickerBoard, CandleChart, TradeTape, DepthHeatmap]
        assert all(isinstance(part, kind) for part, kind in zip(board.parts, kinds, strict=True))
        assert list(board.ticker.symbols) == ["BTC/USD", "ETH/USD"]
        assert board.heatmap.depth == 10
        wait_for(lambda: all(part.status == "live" for part in board.parts), what="every part live")
    finally:
        board.close()
    assert all(part.closed and not part.ticking for part in board.parts)
    board.close()
