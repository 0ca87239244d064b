"""Write the demo notebooks from the cell sources below: ``python notebooks/build.py``.

The notebooks are generated so that they stay small, carry no outputs and
share the same opening; edit the cells here, not in the ``.ipynb`` files.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

__all__ = ["NOTEBOOKS", "build"]

HERE = Path(__file__).resolve().parent

CONNECT_MD = """\
Data comes from Kraken's public WebSocket (`wss://ws.kraken.com/v2`) when it is reachable,
otherwise from the simulator that ships with `kraken_nb` (same protocol, made-up market).
Set `KRAKEN_NB_SOURCE` to `kraken`, `simulator` or `auto` (the default) to choose."""

CONNECT = """\
from kraken_nb.connect import connect, source_of

client = connect()
print("Data from", source_of(client))"""

QUICKSTART = [
    new_markdown_cell(
        "# kraken_nb in one screen\n\n"
        "A live dashboard on top, plain pandas DataFrames underneath.\n\n" + CONNECT_MD
    ),
    new_code_cell(CONNECT),
    new_markdown_cell(
        "## The dashboard\n\n"
        "Ticker, candles, trade tape and order-book depth for one pair. It keeps updating "
        "in the background while you run other cells."
    ),
    new_code_cell('SYMBOL = "BTC/USD"\n\ndash = client.dashboard(SYMBOL)\ndash'),
    new_markdown_cell(
        "## The same data as DataFrames\n\n"
        "Every channel fills a growing DataFrame. Wait until each has something in it "
        "(`wait_until` re-checks as data arrives, so there is no guessing with `sleep`):"
    ),
    new_code_cell(
        "def ready(c):\n"
        "    book = c.book(SYMBOL)\n"
        "    return (\n"
        "        len(c.trades(SYMBOL)) >= 3\n"
        "        and SYMBOL in c.ticker_latest().index\n"
        "        and len(c.candles(SYMBOL)) > 0\n"
        "        and book is not None\n"
        "        and book.valid\n"
        "    )\n\n"
        "client.wait_until(ready, timeout=90)"
    ),
    new_markdown_cell(
        "Trades in arrival order, de-duplicated by `trade_id`. Every frame has `time`, Kraken's own "
        "time of the row, and `received`, when it arrived here:"
    ),
    new_code_cell(
        "trades = client.trades(SYMBOL)\n"
        "assert len(trades) >= 3\n"
        "assert (trades.price > 0).all() and (trades.qty > 0).all()\n"
        "assert trades.trade_id.is_unique and trades.time.is_monotonic_increasing\n"
        "trades.tail()"
    ),
    new_markdown_cell("The latest ticker of each subscribed pair:"),
    new_code_cell(
        "ticker = client.ticker_latest()\n"
        'assert ticker.loc[SYMBOL, "bid"] < ticker.loc[SYMBOL, "ask"]\n'
        "ticker"
    ),
    new_markdown_cell("One-minute candles (the current one is updated in place):"),
    new_code_cell(
        "candles = client.candles(SYMBOL)\n"
        "assert (candles.low <= candles[['open', 'close']].min(axis=1)).all()\n"
        "assert (candles.high >= candles[['open', 'close']].max(axis=1)).all()\n"
        "candles.tail()"
    ),
    new_markdown_cell(
        "The order book, kept in sync and verified against Kraken's CRC32 checksum on every update:"
    ),
    new_code_cell(
        "book = client.book(SYMBOL)\n"
        "bid, ask = book.best_bid(), book.best_ask()\n"
        "assert book.valid and bid[0] < ask[0]\n"
        'print(f"bid {bid[0]}  ask {ask[0]}  spread {book.spread():g}  mid {book.mid():g}")\n'
        "book.to_frame().head(10)"
    ),
    new_markdown_cell("Counters for the connection:"),
    new_code_cell('stats = client.stats()\nassert stats["messages"] > 0\nstats'),
    new_markdown_cell(
        "## The same streams over REST and MCP\n\n"
        "`client.serve()` serves this very client in the background, so a script in another "
        "language, `curl`, or an assistant reads exactly what the widgets show, over the one "
        "upstream connection. Port 0 picks free ports here (the defaults are 8080 and 9090); "
        "`handle.urls` says where. Reading never subscribes: the book is subscribed above."
    ),
    new_code_cell(
        "import json\n"
        "from urllib.request import Request, urlopen\n\n"
        "handle = client.serve(rest_port=0, mcp_port=0)\n\n\n"
        "def post(path, body):\n"
        '    request = Request(handle.urls["rest"] + path, data=json.dumps(body).encode(),\n'
        '                      headers={"Content-Type": "application/json"})\n'
        "    with urlopen(request, timeout=30) as reply:\n"
        '        return json.load(reply)["result"]\n\n\n'
        "print(handle.urls)"
    ),
    new_markdown_cell(
        "`POST /v1/streams/book/subscribe` without a cursor answers one snapshot message, in "
        "Kraken's WebSocket shape, with the cursor to continue from; with `since` it answers the "
        "messages after that cursor (`wait` long-polls until there is one):"
    ),
    new_code_cell(
        'snapshot = post("/v1/streams/book/subscribe", {"channel": "book", "params": {"symbol": [SYMBOL]}})\n'
        'entry = snapshot["messages"][0]["data"][0]\n'
        'assert snapshot["messages"][0]["type"] == "snapshot" and entry["bids"][0]["price"] < entry["asks"][0]["price"]\n'
        'print("cursor", snapshot["cursor"], "best bid", entry["bids"][0], "best ask", entry["asks"][0])\n\n'
        'page = post("/v1/streams/book/subscribe",\n'
        '            {"channel": "book", "params": {"symbol": [SYMBOL], "since": snapshot["cursor"], "wait": 10}})\n'
        'assert page["messages"] and not page["gap"] and page["cursor"] > snapshot["cursor"]\n'
        'print(len(page["messages"]), "book updates after the snapshot; next cursor", page["cursor"])'
    ),
    new_markdown_cell(
        "The MCP server at `handle.urls[\"mcp\"]` offers the same operations as 12 tools; an "
        'assistant is configured with `{"type": "http", "url": "<that URL>"}`. The official MCP '
        "client calls one:"
    ),
    new_code_cell(
        "from mcp import Client\n\n"
        'async with Client(handle.urls["mcp"]) as assistant:\n'
        "    tools = await assistant.list_tools()\n"
        '    reply = await assistant.call_tool("receive-ticker-snapshot-and-updates",\n'
        '                                      {"channel": "ticker", "params": {"symbol": [SYMBOL]}})\n'
        "assert len(tools.tools) == 12 and not reply.is_error\n"
        "print(reply.content[0].text)"
    ),
    new_markdown_cell(
        "Next: `02_dataframes.ipynb` (analysis with pandas) and `03_order_book.ipynb` "
        "(the book in depth). Close the dashboard, the servers and the client when you are done "
        "(closing the client stops its servers too):"
    ),
    new_code_cell("dash.close()\nhandle.stop()\nclient.close()"),
]

DATAFRAMES = [
    new_markdown_cell(
        "# Analysing the growing DataFrames\n\n"
        "Every accessor (`trades()`, `ticker()`, `candles()`, `book_history()`) returns a fresh "
        "pandas DataFrame copy, so ordinary pandas works while data keeps streaming in.\n\n" + CONNECT_MD
    ),
    new_code_cell(CONNECT),
    new_markdown_cell(
        "Subscribe to trades (with the last 50 as a snapshot), candles and the top of the book:"
    ),
    new_code_cell(
        'SYMBOL = "BTC/USD"\n\n'
        'client.subscribe("trade", [SYMBOL], snapshot=True)\n'
        'client.subscribe("ohlc", [SYMBOL], interval=1)\n'
        'client.subscribe("book", [SYMBOL], depth=10)\n'
        "client.wait_until(\n"
        "    lambda c: len(c.trades(SYMBOL)) >= 50 and len(c.book_history(SYMBOL)) >= 20, timeout=90\n"
        ")"
    ),
    new_markdown_cell("## VWAP\n\nThe volume-weighted average price of the trades received so far:"),
    new_code_cell(
        "trades = client.trades(SYMBOL)\n"
        "vwap = (trades.price * trades.qty).sum() / trades.qty.sum()\n"
        "low, high = trades.price.min(), trades.price.max()\n"
        "assert low <= vwap <= high\n"
        'print(f"{len(trades)} trades, VWAP {vwap:,.2f} (low {low:,.2f}, high {high:,.2f})")'
    ),
    new_markdown_cell(
        "## Exact values\n\n"
        "Prices and quantities are float64 by default: fast, and exact for any value of up to 15 "
        "digits. `exact=True` returns them as exact decimals at the pair's precision instead "
        "(pyarrow `decimal128`), for values such as a quantity `92146638.43575985` that a float "
        "rounds. Sums, products and groupbys stay exact:"
    ),
    new_code_cell(
        "exact = client.trades(SYMBOL, exact=True)\n"
        "print(exact.dtypes[[\"price\", \"qty\"]])\n"
        "exact_vwap = (exact.price * exact.qty).sum() / exact.qty.sum()\n"
        "assert abs(float(exact_vwap) - vwap) <= 1e-9 * vwap\n"
        "exact.groupby(\"side\", observed=True).qty.sum()"
    ),
    new_markdown_cell(
        "## Latency\n\n"
        "`received - time` is how long a trade took from Kraken's matching engine to this notebook "
        "(the snapshot's trades are older than the subscription, so look at the newest):"
    ),
    new_code_cell(
        "latency = (trades.received - trades.time).tail(20)\n"
        "assert latency.notna().all()\n"
        "latency.describe()"
    ),
    new_markdown_cell("Buyers against sellers (the taker's side):"),
    new_code_cell(
        'by_side = trades.groupby("side", observed=True).agg(trades=("qty", "size"), volume=("qty", "sum"))\n'
        "assert by_side.trades.sum() == len(trades)\n"
        "by_side"
    ),
    new_markdown_cell(
        "## Trade sizes\n\nMost trades are small, a few are large: quantiles and a log-scale histogram."
    ),
    new_code_cell(
        "import numpy as np\n"
        "import plotly.express as px\n\n"
        "sizes = trades.qty.quantile([0.1, 0.5, 0.9, 0.99])\n"
        "assert sizes.is_monotonic_increasing and sizes.iloc[0] > 0\n"
        'display(sizes.rename("qty"))\n'
        'px.histogram(trades.assign(log10_qty=np.log10(trades.qty)), x="log10_qty", color="side", nbins=40,\n'
        '             title=f"{SYMBOL} trade size (log10 of qty)")'
    ),
    new_markdown_cell(
        "## Spread over time\n\n"
        "`book_history()` holds the top of the book after every book message. "
        "Resample it to one-second means by receive time (real Kraken book snapshots carry no "
        "timestamp, so their `time` is `NaT`):"
    ),
    new_code_cell(
        "tops = client.book_history(SYMBOL)\n"
        "valid = tops[tops.valid]\n"
        "assert len(valid) > 0 and (valid.spread > 0).all() and (valid.bid < valid.ask).all()\n"
        'spread = valid.set_index("received").spread.resample("1s").mean().dropna()\n'
        'px.line(spread, title=f"{SYMBOL} spread, 1 s mean", labels={"value": "spread", "received": ""})'
    ),
    new_markdown_cell(
        "## Candles, resampled\n\n"
        "The ohlc channel sends one-minute candles; pandas turns them into five-minute ones:"
    ),
    new_code_cell(
        "candles = client.candles(SYMBOL, interval=1)\n"
        'five = (candles.set_index("interval_begin")\n'
        '        .resample("5min")\n'
        '        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})\n'
        "        .dropna())\n"
        "assert len(five) > 0 and (five.low <= five.high).all()\n"
        "assert five.high.max() == candles.high.max()\n"
        "assert np.isclose(five.volume.sum(), candles.volume.sum())\n"
        "five.tail()"
    ),
    new_markdown_cell("Or build bars straight from the trades, here ten-second OHLC:"),
    new_code_cell(
        'bars = trades.set_index("time").price.resample("10s").ohlc().dropna()\n'
        "assert (bars.low <= bars.high).all() and bars.high.max() == trades.price.max()\n"
        "bars.tail()"
    ),
    new_markdown_cell(
        "## The frames keep growing\n\nAsk again and there is more. Wait for new trades, then compare:"
    ),
    new_code_cell(
        "before = len(trades)\n"
        "client.wait_until(lambda c: len(c.trades(SYMBOL)) > before, timeout=90)\n"
        "after = len(client.trades(SYMBOL))\n"
        "assert after > before\n"
        'print(f"{before} trades before, {after} now")'
    ),
    new_code_cell("client.close()"),
]

ORDER_BOOK = [
    new_markdown_cell(
        "# The order book\n\n"
        "`kraken_nb` keeps a level-2 book per pair, checks Kraken's CRC32 checksum after every "
        "update and resubscribes a pair whose book drifted.\n\n" + CONNECT_MD
    ),
    new_code_cell(CONNECT),
    new_code_cell(
        'SYMBOL = "BTC/USD"\n\n'
        'client.subscribe("book", [SYMBOL], depth=25)\n'
        "client.wait_until(lambda c: c.book(SYMBOL) is not None and c.book(SYMBOL).valid, timeout=60)"
    ),
    new_markdown_cell(
        "## A snapshot of the book\n\n`client.book()` returns a copy that does not change under you:"
    ),
    new_code_cell(
        "book = client.book(SYMBOL)\n"
        "(bid, bid_qty), (ask, ask_qty) = book.best_bid(), book.best_ask()\n"
        "assert bid < book.mid() < ask and book.spread() > 0\n"
        'print(f"best bid {bid} ({bid_qty}), best ask {ask} ({ask_qty}), spread {book.spread():g}")\n'
        "levels = book.to_frame()\n"
        'assert (levels.side == "bid").sum() <= 25 and (levels.side == "ask").sum() <= 25\n'
        "levels.head()"
    ),
    new_markdown_cell("Cumulative depth on each side of the mid:"),
    new_code_cell(
        "import plotly.express as px\n\n"
        'colors = {"bid": "seagreen", "ask": "crimson"}\n'
        'px.line(levels, x="price", y="cum_qty", color="side", line_shape="hv",\n'
        '        title=f"{SYMBOL} cumulative depth", color_discrete_map=colors)'
    ),
    new_markdown_cell(
        "## Checksums\n\n"
        "The checksum is a CRC32 over the top ten asks and bids, written with the pair's "
        "precisions. You can recompute it from the text the book exposes:"
    ),
    new_code_cell(
        "import zlib\n\n"
        "text = book.checksum_text()\n"
        "assert zlib.crc32(text.encode()) == book.checksum()\n"
        'print(f"checksum {book.checksum()} over {text[:40]}…")'
    ),
    new_markdown_cell(
        "Every book message was verified; a mismatch triggers a resubscribe of that pair, "
        "and the book is shown as invalid until the fresh snapshot arrives:"
    ),
    new_code_cell(
        "tops = client.book_history(SYMBOL)\n"
        "stats = client.stats()\n"
        'print(f"{len(tops)} book messages, {tops.valid.mean():.1%} valid; "\n'
        "      f\"{stats['checksum_mismatches']} checksum mismatches, {stats['resyncs']} resyncs\")\n"
        "assert tops.valid.any()"
    ),
    new_markdown_cell(
        "On the simulator we can break the next checksum on purpose and watch the client recover "
        "(skipped against Kraken itself):"
    ),
    new_code_cell(
        "if client.simulator is not None:\n"
        '    before = client.stats()["resyncs"]\n'
        "    client.simulator.corrupt_next_checksum(SYMBOL)\n"
        "    client.wait_until(\n"
        '        lambda c: c.stats()["resyncs"] > before and c.book(SYMBOL).valid, timeout=60\n'
        "    )\n"
        "    stats = client.stats()\n"
        '    assert stats["checksum_mismatches"] >= 1\n'
        "    print(f\"detected and resynced: {stats['checksum_mismatches']} mismatch(es), \"\n"
        "          f\"{stats['resyncs']} resync(s); book valid again\")\n"
        "else:\n"
        '    print("live Kraken: no fault injection")'
    ),
    new_markdown_cell(
        "## Imbalance\n\n"
        "`imbalance(n)` is (bid volume − ask volume) / (bid volume + ask volume) over the top `n` "
        "levels: positive means more resting bids."
    ),
    new_code_cell(
        "import pandas as pd\n\n"
        "book = client.book(SYMBOL)\n"
        'imbalance = pd.Series({n: book.imbalance(n) for n in (1, 5, 10, 25)}, name="imbalance")\n'
        "assert imbalance.between(-1, 1).all()\n"
        "imbalance"
    ),
    new_markdown_cell(
        "`depth_history()` samples the book about once a second (long format: time, side, price, qty, "
        "received; the levels of one sample share `received`). "
        "Wait for a few samples and compute the top-10 imbalance over time:"
    ),
    new_code_cell(
        "client.wait_until(lambda c: c.depth_history(SYMBOL).received.nunique() >= 3, timeout=60)\n"
        "depth = client.depth_history(SYMBOL)\n"
        'top10 = depth.groupby(["received", "side"], observed=True).head(10)\n'
        'volume = top10.pivot_table(index="received", columns="side", values="qty", aggfunc="sum",\n'
        "                            observed=True)\n"
        'history = ((volume["bid"] - volume["ask"]) / (volume["bid"] + volume["ask"])).rename("imbalance")\n'
        "assert len(history) >= 3 and history.between(-1, 1).all()\n"
        "history.tail()"
    ),
    new_markdown_cell(
        "## Depth heatmap\n\n"
        "Resting size by price over time, drawn on a canvas and updated with small deltas:"
    ),
    new_code_cell(
        "from kraken_nb.widgets import DepthHeatmap\n\n"
        "heatmap = DepthHeatmap(client, SYMBOL, depth=25)\n"
        "heatmap"
    ),
    new_code_cell("heatmap.close()\nclient.close()"),
]

NOTEBOOKS = {
    "01_quickstart.ipynb": QUICKSTART,
    "02_dataframes.ipynb": DATAFRAMES,
    "03_order_book.ipynb": ORDER_BOOK,
}


def build(folder: Path = HERE) -> list[Path]:
    """Write every notebook into ``folder``; return their paths."""
    written = []
    for name, cells in NOTEBOOKS.items():
        notebook = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {
                    "name": "python3",
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                },
                "language_info": {"name": "python"},
            },
        )
        for index, cell in enumerate(notebook.cells):
            cell["id"] = f"{Path(name).stem}-{index:02d}"
        nbformat.validate(notebook)
        path = folder / name
        nbformat.write(notebook, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in build():
        print(path)
