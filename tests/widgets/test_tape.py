"""TradeTape: only new trade_ids are sent, once each, bounded, with a matching running summary."""

from __future__ import annotations

import numpy as np
import pytest

from kraken_nb.errors import InvalidParams
from kraken_nb.widgets import TradeTape

from .helpers import MANUAL, message_bytes, ready, record_sends, wait_for

SYMBOL = "BTC/USD"


def _sent_entries(sent) -> list[list]:
    return [entry for content, _ in sent.of_type("trades") for entry in content["trades"]]


def test_messages_carry_only_new_trades_once(client) -> None:
    tape = TradeTape(client, SYMBOL, rows=500, rate_hz=MANUAL)
    sent = record_sends(tape)
    try:
        for _ in range(12):
            before = len(client.trades(SYMBOL))
            wait_for(lambda before=before: len(client.trades(SYMBOL)) > before, what="a new trade")
            tape.tick()
            tape.tick()  # nothing new in between: must not resend
        entries = _sent_entries(sent)
        ids = [entry[4] for entry in entries]
        assert len(ids) == len(set(ids)), "a trade was sent twice"
        assert ids == sorted(ids)
        # Every sent entry is the client's own trade, formatted faithfully.
        trades = client.trades(SYMBOL).set_index("trade_id")
        for time_ms, side, price, qty, trade_id in entries:
            row = trades.loc[trade_id]
            assert side == row["side"]
            assert price == float(row["price"])
            assert qty == float(row["qty"])
            assert time_ms == row["time"].value // 1_000_000
        # The summary covers exactly the trades sent (none were cut: rows=500).
        buys = [entry for entry in entries if entry[1] == "buy"]
        sells = [entry for entry in entries if entry[1] == "sell"]
        assert tape.summary["buy_count"] == len(buys)
        assert tape.summary["sell_count"] == len(sells)
        assert tape.summary["buy_qty"] == pytest.approx(sum(entry[3] for entry in buys))
        assert tape.summary["sell_qty"] == pytest.approx(sum(entry[3] for entry in sells))
        assert tape.last_trade_id == ids[-1]
    finally:
        tape.close()


def test_unchanged_versions_send_nothing(client, monkeypatch) -> None:
    tape = TradeTape(client, SYMBOL, rate_hz=MANUAL)
    sent = record_sends(tape)
    try:
        wait_for(lambda: len(client.trades(SYMBOL)) > 0, what="a trade")
        tape.tick()
        assert len(sent) == 1
        frozen = client.versions()
        monkeypatch.setattr(client, "versions", lambda: dict(frozen))
        count = len(client.trades(SYMBOL))
        wait_for(lambda: len(client.trades(SYMBOL)) > count, what="a trade behind the frozen version")
        tape.tick()
        assert len(sent) == 1
    finally:
        tape.close()


def test_updates_are_deltas_and_bounded(client) -> None:
    rows = 5
    tape = TradeTape(client, SYMBOL, rows=rows, rate_hz=MANUAL)
    sent = record_sends(tape)
    try:
        wait_for(lambda: len(client.trades(SYMBOL)) >= rows + 3, what="enough trades")
        tape.tick()
        first = sent.of_type("trades")[0][0]["trades"]
        assert len(first) == rows
        expected = client.trades(SYMBOL)["trade_id"].to_numpy(dtype=np.int64)
        assert [entry[4] for entry in first] == [int(i) for i in expected[expected <= first[-1][4]][-rows:]]
        last_id = first[-1][4]
        wait_for(lambda: int(client.trades(SYMBOL)["trade_id"].max()) > last_id, what="a newer trade")
        tape.tick()
        content, buffers = sent.of_type("trades")[-1]
        assert content["trades"] and all(entry[4] > last_id for entry in content["trades"])
        assert len(content["trades"]) <= rows
        # A delta: a few dozen bytes per trade plus a small envelope, never the whole tape again.
        assert message_bytes(content, buffers) <= 40 + 90 * len(content["trades"])
    finally:
        tape.close()


def test_a_new_view_gets_the_last_rows_trades(client) -> None:
    rows = 8
    tape = TradeTape(client, SYMBOL, rows=rows, rate_hz=MANUAL)
    sent = record_sends(tape)
    try:
        for _ in range(3):
            before = len(client.trades(SYMBOL))
            wait_for(lambda before=before: len(client.trades(SYMBOL)) > before, what="a new trade")
            tape.tick()
        ready(tape)
        (snapshot, _), *_ = sent.of_type("snapshot")
        ids = [entry[4] for entry in snapshot["trades"]]
        all_sent = [entry[4] for entry in _sent_entries(sent)]
        assert ids == all_sent[-rows:]
        assert len(ids) == min(rows, len(all_sent))
    finally:
        tape.close()


def test_precisions_come_from_the_instrument(client) -> None:
    tape = TradeTape(client, "XRP/EUR", rate_hz=MANUAL)
    try:
        info = client.instrument("XRP/EUR")
        assert (tape.price_precision, tape.qty_precision) == (info["price_precision"], info["qty_precision"])
    finally:
        tape.close()


@pytest.mark.parametrize("rows", [0, -3, 1001, 2.5, True])
def test_rows_must_be_a_sensible_integer(client, rows) -> None:
    with pytest.raises(InvalidParams, match="rows"):
        TradeTape(client, SYMBOL, rows=rows)
