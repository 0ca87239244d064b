"""Every live widget renders in JupyterLab, keeps updating from the simulator and shows its status."""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page

from .lab import ARTIFACTS_DIR, LabServer, cell_errors, open_and_run_all, screenshot, write_notebook

__all__: list[str] = []

pytestmark = pytest.mark.browser

SETUP = """
from kraken_nb import KrakenClient
from kraken_nb.widgets import CandleChart, Dashboard, DepthHeatmap, TickerBoard, TradeTape

client = KrakenClient.simulated(seed=7, speed=5)
"""

FAILED_DETAIL = "1008 policy violation: <img src=x onerror=window.knPwned=1> banned"

CELLS = [
    SETUP,
    'TickerBoard(client, ["BTC/USD", "ETH/USD", "SOL/USD", "XRP/EUR", "DOGE/USD"])',
    'TradeTape(client, "BTC/USD", rows=30)',
    'CandleChart(client, "BTC/USD")',
    'DepthHeatmap(client, "BTC/USD", depth=100)',
    'Dashboard(client, "ETH/USD", symbols=["BTC/USD", "ETH/USD", "SOL/USD"])',
    # A board whose client is closed right away must say so.
    """
    other = KrakenClient.simulated(seed=3, speed=5)
    orphan = TickerBoard(other, ["BTC/USD"])
    display(orphan)
    other.close()
    """,
    # A failed connection (close code 1008) shows the server's reason as text, never as HTML.
    f"""
    third = KrakenClient.simulated(seed=5, speed=5)
    failed = TradeTape(third, "BTC/USD", rows=5)
    failed._stop_ticking()
    failed.status, failed.status_detail = "failed", {FAILED_DETAIL!r}
    display(failed)
    third.close()
    """,
]


# Cell index → the widget roots it shows.
ROOTS = {1: ".kraken-ticker", 2: ".kraken-tape", 3: ".kraken-candles", 4: ".kraken-depth"}


def _cell(page: Page, index: int) -> Locator:
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def _changes(page: Page, read: str, root: Locator, seconds: float = 8.0) -> bool:
    """Whether the JS expression ``read(el)`` on ``root``'s element changes within ``seconds``."""
    before = root.evaluate(read)
    deadline = seconds * 1000
    waited = 0
    while waited < deadline:
        page.wait_for_timeout(200)
        waited += 200
        if root.evaluate(read) != before:
            return True
    return False


# Reads of each widget's changing numbers.
TICKER_TEXT = "el => [...el.querySelectorAll('tbody td.kn-num')].map(td => td.textContent).join('|')"
TAPE_TEXT = "el => el.querySelector('tbody').textContent + el.querySelector('.kn-tp-summary').textContent"
CANDLE_TEXT = "el => el.querySelector('.kn-cd-ohlc').textContent"
CANVAS_PIXELS = "el => el.querySelector('canvas.kn-dp-heat').toDataURL()"

# Counts the heatmap canvas pixels that differ from the background (a drawn, non-empty heatmap).
PAINTED_PIXELS = """el => {
  const canvas = el.querySelector('canvas.kn-dp-heat');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (Math.abs(data[i] - 13) + Math.abs(data[i + 1] - 17) + Math.abs(data[i + 2] - 23) > 60) painted++;
  }
  return painted;
}"""


@pytest.mark.timeout(300)  # eight cells and five live widgets; a busy shared machine needs the room
def test_every_widget_renders_updates_and_shows_status(page: Page, lab_server: LabServer) -> None:
    name = "widgets_live.ipynb"
    write_notebook(lab_server.root_dir, name, CELLS)
    open_and_run_all(page, lab_server, name, timeout=120)

    roots = {index: _cell(page, index).locator(selector).first for index, selector in ROOTS.items()}
    # Generous first waits: on a shared 2-core machine the page can be starved for seconds while
    # five live widgets render; once they are up, the checks below use the normal timeouts.
    for root in roots.values():
        root.wait_for(state="visible", timeout=60_000)
    for index, root in roots.items():
        status = root.locator(".kn-status")
        page.wait_for_function(
            "el => el.textContent.trim() === 'live'", arg=status.element_handle(), timeout=20_000
        )
        assert status.get_attribute("class") == "kn-status kn-status--live", index

    ticker, tape, candles, depth = (roots[i] for i in sorted(roots))
    # Rows for every symbol, with numbers that move.
    assert ticker.locator("tbody tr").count() == 5
    assert [t.strip() for t in ticker.locator("tbody td.kn-tk-sym").all_inner_texts()] == [
        "BTC/USD",
        "ETH/USD",
        "SOL/USD",
        "XRP/EUR",
        "DOGE/USD",
    ]
    assert _changes(page, TICKER_TEXT, ticker)
    # The tape fills up, stays bounded and keeps moving.
    page.wait_for_function(
        "el => el.querySelectorAll('tbody tr').length >= 5", arg=tape.element_handle(), timeout=20_000
    )
    assert tape.locator("tbody tr").count() <= 30
    assert tape.locator("tbody tr.kn-tp-buy, tbody tr.kn-tp-sell").count() == tape.locator("tbody tr").count()
    assert _changes(page, TAPE_TEXT, tape)
    # plotly.js (served by the kernel, no CDN) draws candles and volume bars.
    candles.locator(".main-svg").first.wait_for(state="visible", timeout=30_000)
    assert candles.locator("g.trace.boxes, g.cartesianlayer .trace").count() >= 2
    assert _changes(page, CANDLE_TEXT, candles)
    # The canvas heatmap is painted and redrawn as the book moves.
    page.wait_for_function(f"el => ({PAINTED_PIXELS})(el) > 500", arg=depth.element_handle())
    assert _changes(page, CANVAS_PIXELS, depth)

    # The dashboard holds one of each.
    dashboard = _cell(page, 5).locator(".kraken-dashboard")
    for selector in ROOTS.values():
        dashboard.locator(selector).wait_for(state="visible", timeout=20_000)
    assert _changes(page, TICKER_TEXT, dashboard.locator(".kraken-ticker"))

    # A board whose client closed says "closed".
    orphan = _cell(page, 6).locator(".kraken-ticker .kn-status")
    page.wait_for_function(
        "el => el.textContent.trim() === 'closed'", arg=orphan.element_handle(), timeout=20_000
    )

    # A failed connection is shown with its reason, as text.
    failed = _cell(page, 7).locator(".kraken-tape .kn-status")
    failed.wait_for(state="visible", timeout=20_000)
    assert failed.get_attribute("class") == "kn-status kn-status--failed"
    assert failed.locator(".kn-status-label").text_content() == "failed"
    assert failed.locator(".kn-status-detail").text_content() == FAILED_DETAIL
    assert failed.locator("img").count() == 0
    assert page.evaluate("() => window.knPwned") is None

    assert cell_errors(page, name) == []
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert page.console_errors == []

    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    shots = {"ticker": ticker, "tape": tape, "candles": candles, "depth": depth, "dashboard": dashboard}
    for label, root in shots.items():
        # Scroll with the DOM and clip the page: live widgets never stop changing, so Playwright's
        # wait for a stable element can outlast a starved renderer on a busy machine.
        root.evaluate("el => el.scrollIntoView({block: 'start'})")
        box = root.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, label
        path = ARTIFACTS_DIR / f"widget_{label}.png"
        page.screenshot(path=str(path), clip=box, animations="disabled", timeout=30_000)
        assert path.stat().st_size > 5_000, label
    screenshot(page, "widgets_notebook")
