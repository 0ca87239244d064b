"""Property-based fuzzing of the other parsers: the book, timestamps, recordings, the simulator's requests.

Each either returns its result or raises its own typed error; nothing else
escapes. The simulator's ``parse_request`` is fuzzed, not changed here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kraken_nb.core.book import OrderBook
from kraken_nb.core.timestamps import format_rfc3339_ns, parse_rfc3339_ns
from kraken_nb.errors import MalformedMessage, RecordingError
from kraken_nb.recording import Frame, RecordingHeader, decode_line
from kraken_nb.simulator.protocol import Request, RequestError, parse_request

from .invariants import assert_book_honest
from .strategies import HOSTILE_VALUES, json_values

VECTOR = json.loads(
    (Path(__file__).parent.parent / "core" / "vectors" / "btcusd_book10_snapshot.json").read_text()
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# -- OrderBook.apply ------------------------------------------------------------------


def mostly(good: st.SearchStrategy[Any], rate: int = 8) -> st.SearchStrategy[Any]:
    """``good`` most of the time, a hostile value one time in ``rate``: entries reach the deep paths."""
    return st.integers(1, rate).flatmap(lambda pick: HOSTILE_VALUES if pick == 1 else good)


prices = mostly(
    st.one_of(
        st.floats(29400, 29460).map(lambda p: round(p, 1)),
        st.decimals(Decimal("29400"), Decimal("29460"), places=1),
    )
)
quantities = mostly(
    st.one_of(
        st.floats(0, 5).map(lambda q: round(q, 8)),
        st.just(0.0),
        st.decimals(Decimal(0), Decimal("99999999"), places=8),
    )
)
levels = mostly(st.fixed_dictionaries({"price": prices, "qty": quantities}), rate=20)
entries = st.fixed_dictionaries(
    {
        "symbol": mostly(st.just("BTC/USD")),
        "bids": mostly(st.lists(levels, max_size=6)),
        "asks": mostly(st.lists(levels, max_size=6)),
        "checksum": mostly(st.integers(0, 2**32 - 1)),
    },
    optional={"timestamp": mostly(st.just("2023-09-25T09:04:31.742599Z"))},
)


def state(book: OrderBook) -> tuple[Any, ...]:
    return (book.levels_exact("bid"), book.levels_exact("ask"), book.valid, book.last_checksum)


@given(st.lists(st.tuples(entries, st.sampled_from([None, False, True]), st.booleans()), max_size=5))
def test_order_book_apply_takes_or_refuses_any_entry_and_stays_honest(steps):
    book = OrderBook("BTC/USD", 10, price_precision=1, qty_precision=8, numeric_strings=False)
    assert book.apply(VECTOR["snapshot"]["data"][0], snapshot=True)
    for entry, snapshot, with_right_checksum in steps:
        if with_right_checksum:  # make some entries pass the checksum, to reach the valid paths
            trial = book.copy()
            try:
                trial.apply({**entry, "checksum": 0}, snapshot=snapshot)
                entry = {**entry, "checksum": trial.checksum()}
            except MalformedMessage:
                pass
        before = state(book)
        try:
            matches = book.apply(entry, snapshot=snapshot)
        except MalformedMessage:
            assert state(book) == before, "a refused entry changed the book"
        else:
            assert matches == (book.checksum() == entry["checksum"])
        assert_book_honest(book)


# -- timestamps -------------------------------------------------------------------------


@given(st.one_of(st.text(), st.text(alphabet="0123456789-:.TZz+ ", max_size=40)))
def test_parse_rfc3339_ns_returns_an_int_or_a_typed_error(text):
    try:
        value = parse_rfc3339_ns(text)
    except MalformedMessage as exc:
        assert exc.reason.startswith("not an RFC3339 timestamp") and len(exc.reason) < 300
    else:
        assert type(value) is int


@given(
    st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1)),
    st.integers(0, 999_999_999),
    st.integers(0, 9),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
)
def test_parse_rfc3339_ns_is_exact(moment, nanos, digits, offset_minutes):
    whole = moment.replace(microsecond=0)
    fraction = f"{nanos:09d}"[:digits]
    offset = timedelta(minutes=offset_minutes)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    text = whole.isoformat() + (f".{fraction}" if digits else "") + f"{sign}{hours:02d}:{minutes:02d}"
    utc = whole.replace(tzinfo=UTC) - offset
    expected = (utc - EPOCH) // timedelta(seconds=1) * 10**9 + int(fraction.ljust(9, "0") or 0)
    assert parse_rfc3339_ns(text) == expected
    if digits and offset_minutes == 0:
        assert parse_rfc3339_ns(text[:-6] + "Z") == expected
        assert format_rfc3339_ns(expected, digits) == text[:-6] + "Z"


# -- recordings ----------------------------------------------------------------------------

recording_lines = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.fixed_dictionaries({"t": HOSTILE_VALUES, "frame": HOSTILE_VALUES}).map(json.dumps),
    st.fixed_dictionaries(
        {"format": st.just("kraken_nb.recording"), "format_version": st.one_of(st.just(1), HOSTILE_VALUES)},
        optional={"subscriptions": json_values, "started": HOSTILE_VALUES, "url": HOSTILE_VALUES},
    ).map(json.dumps),
)


@given(recording_lines)
def test_recording_decode_line_returns_a_record_or_a_recording_error(line):
    try:
        record = decode_line(line, "fuzz:1")
    except RecordingError as exc:
        assert str(exc).startswith("fuzz:1: ")
    else:
        assert isinstance(record, (Frame, RecordingHeader))


# -- the simulator's request parser ---------------------------------------------------------

requests = st.one_of(
    st.text(),
    json_values.map(json.dumps),
    st.fixed_dictionaries(
        {"method": st.one_of(st.sampled_from(["subscribe", "unsubscribe", "ping"]), HOSTILE_VALUES)},
        optional={
            "req_id": HOSTILE_VALUES,
            "params": st.one_of(
                st.fixed_dictionaries(
                    {
                        "channel": st.one_of(
                            st.sampled_from(["trade", "book", "ticker", "ohlc", "instrument"]), HOSTILE_VALUES
                        )
                    },
                    optional={
                        "symbol": st.one_of(
                            st.lists(st.sampled_from(["BTC/USD", "ETH/USD"]), max_size=3), HOSTILE_VALUES
                        ),
                        "depth": HOSTILE_VALUES,
                        "interval": HOSTILE_VALUES,
                        "snapshot": HOSTILE_VALUES,
                        "event_trigger": HOSTILE_VALUES,
                    },
                ),
                HOSTILE_VALUES,
            ),
        },
    ).map(json.dumps),
)


@given(requests)
def test_simulator_parse_request_returns_a_request_or_a_request_error(text):
    try:
        request = parse_request(text)
    except RequestError as exc:
        assert isinstance(exc.error, str) and exc.error
    else:
        assert isinstance(request, Request)
