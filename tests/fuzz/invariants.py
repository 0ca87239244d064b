"""What must hold after any input: no bad value in any frame or book, every book honest."""

from __future__ import annotations

import numpy as np

from kraken_nb.core.book import OrderBook
from kraken_nb.core.buffers import TICKER_FIELDS
from kraken_nb.core.params import OHLC_INTERVALS
from kraken_nb.core.session import Session

__all__ = ["assert_book_honest", "assert_session_clean"]


def _finite_positive(values: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(values)) and np.all(values > 0))


def assert_book_honest(book: OrderBook) -> None:
    """Valid means checksum-valid; every level a finite positive price and qty; sorted; within depth."""
    if book.valid:
        assert book.checksum() == book.last_checksum, "a book flagged valid whose checksum does not match"
    bid_prices, bid_qtys, ask_prices, ask_qtys = book.depth_arrays()
    for values in (bid_prices, bid_qtys, ask_prices, ask_qtys):
        assert _finite_positive(values), f"a bad level in {book!r}"
    assert np.all(np.diff(bid_prices) < 0) and np.all(np.diff(ask_prices) > 0)
    assert len(bid_prices) <= book.depth and len(ask_prices) <= book.depth


def assert_session_clean(session: Session) -> None:
    """No DataFrame holds a non-finite or non-positive price, a bad qty or an unknown enum.

    Empty buffers are skipped: building a DataFrame costs milliseconds, and
    most random inputs add no row.
    """
    assert session.counters["internal_errors"] == 0, "an input reached the safety net (a bug)"
    if len(session.trades):
        _check_trades(session)
    if len(session.tickers):
        _check_tickers(session)
    if len(session.candles):
        _check_candles(session)
    for book in session.books.values():
        assert_book_honest(book)
    if len(session.book_tops):
        tops = session.book_tops.to_frame()
        valid = tops[tops["valid"]]
        for column in ("bid", "bid_qty", "ask", "ask_qty"):
            present = valid[column].dropna().to_numpy(dtype=float)
            assert _finite_positive(present), f"a valid top of book with a bad {column}"
    if len(session.depths):
        depth = session.depths.to_frame()
        assert _finite_positive(depth["price"].to_numpy()) and _finite_positive(depth["qty"].to_numpy())


def _check_trades(session: Session) -> None:
    trades = session.trades.to_frame()
    assert _finite_positive(trades["price"].to_numpy()) and _finite_positive(trades["qty"].to_numpy())
    assert list(trades["side"].cat.categories) == ["buy", "sell"]
    assert list(trades["ord_type"].cat.categories) == ["limit", "market"]
    assert not trades["time"].isna().any() and (trades["trade_id"] >= 0).all()
    assert not trades["received"].isna().any()
    exact = session.trades.to_frame(exact=True)
    for column in ("price", "qty"):  # the float of each exact value is the float column's value
        assert exact[column].astype(float).tolist() == trades[column].tolist(), f"exact {column} differs"


def _check_tickers(session: Session) -> None:
    tickers = session.tickers.to_frame()
    assert np.all(np.isfinite(tickers[list(TICKER_FIELDS)].to_numpy(dtype=float)))
    unsigned = tickers[[f for f in TICKER_FIELDS if f not in ("change", "change_pct")]].to_numpy(dtype=float)
    assert np.all(unsigned >= 0)


def _check_candles(session: Session) -> None:
    candles = session.candles.to_frame()
    numbers = candles[["open", "high", "low", "close", "vwap", "volume"]].to_numpy(dtype=float)
    assert np.all(np.isfinite(numbers)) and np.all(numbers >= 0)
    assert (candles["trades"] >= 0).all() and candles["interval"].isin(OHLC_INTERVALS).all()
    assert not candles[["interval_begin", "time", "received"]].isna().any().any()
