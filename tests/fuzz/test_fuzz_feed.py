"""Property-based fuzzing of everything that parses frames: ``messages.parse`` and ``Session.feed``.

Inputs are random text and bytes, random JSON in Kraken's vocabulary, and
real frames recorded from the simulator with one field mutated. Properties:
``feed`` never raises and never needs its safety net; no DataFrame ever holds
a non-finite or non-positive price, a bad quantity or an unknown enum; every
book is either checksum-valid or flagged invalid.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from kraken_nb.core.messages import Message, parse
from kraken_nb.core.params import validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.errors import MalformedMessage

from .conftest import SUBSCRIPTIONS, SYMBOLS
from .invariants import assert_session_clean
from .strategies import HOSTILE_VALUES, json_values, kraken_like_frames, mutated, paths_of

T0 = 1_700_000_000_000_000_000


def subscribed_session() -> Session:
    """A session subscribed to every recorded channel, each subscription acknowledged."""
    session = Session()
    for channel, params in SUBSCRIPTIONS:
        session.subscribe(validate_subscription(channel, list(SYMBOLS), **params))
    session.connection_made(T0)
    for request in session.data_to_send():
        params = request["params"]
        for symbol in params.get("symbol") or [None]:
            result = {k: v for k, v in params.items() if k != "symbol"} | (
                {"symbol": symbol} if symbol else {}
            )
            ack = {
                "method": request["method"],
                "req_id": request["req_id"],
                "success": True,
                "result": result,
            }
            session.feed(json.dumps(ack), T0)
    return session


def is_data(text: str) -> bool:
    return '"method"' not in text[:40]


def parses_or_refuses(text: str | bytes) -> None:
    try:
        message = parse(text)
    except MalformedMessage:
        return
    assert isinstance(message, Message.__args__)  # type: ignore[attr-defined]


@given(st.one_of(st.text(), st.binary()))
def test_parse_and_feed_of_any_text_or_bytes(text):
    parses_or_refuses(text)
    session = subscribed_session()
    session.feed(text, T0)
    assert_session_clean(session)


@given(st.one_of(json_values, kraken_like_frames()))
def test_parse_and_feed_of_random_json(value):
    text = json.dumps(value)
    parses_or_refuses(text)
    session = subscribed_session()
    session.feed(text, T0)
    assert_session_clean(session)


@settings(max_examples=200)
@given(st.data())
def test_feed_of_real_frames_with_one_field_mutated(recorded_frames, data):
    frames = [text for text in recorded_frames if is_data(text)]
    index = data.draw(st.integers(0, len(frames) - 1), label="frame")
    paths = paths_of(json.loads(frames[index]))
    if paths:
        path = data.draw(st.sampled_from(paths), label="path")
        action = data.draw(
            st.sampled_from(["replace", "replace", "replace", "delete", "duplicate"]), label="do"
        )
        value = data.draw(HOSTILE_VALUES, label="value") if action == "replace" else None
        frames[index] = mutated(frames[index], path, action, value)
    session = subscribed_session()
    for text in frames:
        session.feed(text, T0)
    assert_session_clean(session)
    assert session.counters["malformed"] <= 1, "one mutated field made more than its frame malformed"


def test_the_recorded_frames_are_clean_and_cover_every_channel(recorded_frames):
    """The unmutated frames: nothing rejected, every book valid (the mutations' baseline)."""
    session = subscribed_session()
    for text in recorded_frames:
        if is_data(text):
            session.feed(text, T0)
    assert session.counters["malformed"] == 0 and session.counters["checksum_mismatches"] == 0
    assert len(session.trades) and len(session.tickers) and len(session.candles)
    assert set(session.books) == set(SYMBOLS) and all(book.valid for book in session.books.values())
    assert_session_clean(session)
