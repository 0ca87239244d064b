"""OrderBook: Kraken's checksum vectors, book maintenance, validation, views and depth 1000."""

from __future__ import annotations

import itertools
import json
import random
import zlib
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from kraken_nb.core.book import OrderBook
from kraken_nb.core.wire import loads_exact
from kraken_nb.errors import InexactNumber, InvalidParams, MalformedMessage

VECTORS = Path(__file__).resolve().parent / "vectors"
SYMBOL = "TEST/USD"


def load_vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


# -- an independent reference: plain dicts, sorted() and Decimal.quantize -------------


def ref_text(value: Decimal | str, precision: int) -> str:
    """One number's checksum text, built with quantize instead of a format precision."""
    quantized = Decimal(value).quantize(Decimal(1).scaleb(-precision))
    return f"{quantized:f}".replace(".", "").lstrip("0")


def ref_top(levels: dict[Decimal, Decimal], side: str) -> list[tuple[Decimal, Decimal]]:
    return sorted(levels.items(), reverse=(side == "bid"))


def ref_checksum(
    bids: dict[Decimal, Decimal], asks: dict[Decimal, Decimal], price_precision: int, qty_precision: int
) -> int:
    def texts(levels: list[tuple[Decimal, Decimal]]) -> str:
        return "".join(ref_text(p, price_precision) + ref_text(q, qty_precision) for p, q in levels[:10])

    return zlib.crc32((texts(ref_top(asks, "ask")) + texts(ref_top(bids, "bid"))).encode())


def ref_apply(book: dict[Decimal, Decimal], side: str, levels: Iterable[tuple[str, str]], depth: int) -> None:
    for price, qty in levels:
        if Decimal(qty) == 0:
            book.pop(Decimal(price), None)
        else:
            book[Decimal(price)] = Decimal(qty)
    if len(book) > depth:
        for price, _ in ref_top(book, side)[depth:]:
            del book[price]


def wire_levels(levels: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"price": price, "qty": qty} for price, qty in levels]


def make_entry(
    bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]], checksum: int
) -> dict[str, Any]:
    return {"symbol": SYMBOL, "bids": wire_levels(bids), "asks": wire_levels(asks), "checksum": checksum}


class Tracked:
    """An OrderBook fed in lockstep with the reference, each entry carrying the reference checksum."""

    def __init__(self, depth: int = 10, price_precision: int = 1, qty_precision: int = 8) -> None:
        self.book = OrderBook(SYMBOL, depth, price_precision=price_precision, qty_precision=qty_precision)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}

    def entry(
        self, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = (), *, snapshot: bool = False
    ) -> dict[str, Any]:
        if snapshot:
            self.bids, self.asks = {}, {}
        ref_apply(self.bids, "bid", bids, self.book.depth)
        ref_apply(self.asks, "ask", asks, self.book.depth)
        expected = ref_checksum(self.bids, self.asks, self.book.price_precision, self.book.qty_precision)
        return make_entry(bids, asks, expected)

    def apply(self, bids: list[tuple[str, str]] = (), asks: list[tuple[str, str]] = (), **kw: bool) -> bool:
        snapshot = kw.get("snapshot", False)
        return self.book.apply(self.entry(bids, asks, snapshot=snapshot), snapshot=snapshot or None)

    def assert_matches(self) -> None:
        assert self.book.levels_exact("bid") == ref_top(self.bids, "bid")
        assert self.book.levels_exact("ask") == ref_top(self.asks, "ask")


BIDS = [("100.0", "1.5"), ("99.5", "2"), ("99.0", "0.5")]
ASKS = [("100.5", "1"), ("101.0", "3")]


@pytest.fixture
def tracked() -> Tracked:
    t = Tracked()
    assert t.apply(BIDS, ASKS, snapshot=True)
    return t


# -- recorded and documented vectors --------------------------------------------------


def decode_plain(frame: dict[str, Any]) -> dict[str, Any]:
    return frame


def decode_exact(frame: dict[str, Any]) -> dict[str, Any]:
    return loads_exact(json.dumps(frame))


@pytest.mark.parametrize("decode", [decode_plain, decode_exact], ids=["json-floats", "loads_exact"])
def test_recorded_btcusd_vector_every_checksum_matches(decode: Callable[[dict], dict]) -> None:
    vector = load_vector("btcusd_book10_snapshot.json")
    book = OrderBook(
        "BTC/USD",
        vector["depth"],
        price_precision=vector["price_precision"],
        qty_precision=vector["qty_precision"],
    )
    snapshot = decode(vector["snapshot"])
    assert book.apply(snapshot["data"][0]) is True
    assert book.valid
    for number, frame in enumerate(vector["updates"]):
        for entry in decode(frame)["data"]:
            assert book.apply(entry) is True, f"update {number} failed its checksum"
            assert len(book.bids()) <= 10 and len(book.asks()) <= 10
    assert book.valid and book.mismatches == 0
    assert book.version == 1 + len(vector["updates"])
    assert book.timestamp == vector["updates"][-1]["data"][0]["timestamp"]
    assert book.last_checksum == vector["updates"][-1]["data"][0]["checksum"]
    assert book.checksum() == book.last_checksum


def test_recorded_btcusd_vector_depth_ten_is_the_top_of_a_deeper_book() -> None:
    """The server leaves levels past depth behind; the depth-10 book drops them, keeping the same top."""
    vector = load_vector("btcusd_book10_snapshot.json")
    book = OrderBook("BTC/USD", 10, price_precision=1, qty_precision=8)
    deep = OrderBook("BTC/USD", 1000, price_precision=1, qty_precision=8)
    longest = 0
    for frame in [vector["snapshot"], *vector["updates"]]:
        assert book.apply(frame["data"][0]) is True
        deep.apply(frame["data"][0])
        assert book.levels_exact("bid") == deep.levels_exact("bid", 10)
        assert book.levels_exact("ask") == deep.levels_exact("ask", 10)
        longest = max(longest, len(deep.bids()), len(deep.asks()))
    assert longest > 10


def docs_btc_book(entry: dict[str, Any]) -> OrderBook:
    book = OrderBook("BTC/USD", 10, price_precision=1, qty_precision=8)
    assert book.apply(entry) is True
    return book


def test_kraken_docs_btcusd_checksum_example_from_strings() -> None:
    vector = load_vector("kraken_docs_btcusd_book_checksum_example.json")
    entry = {
        "symbol": "BTC/USD",
        "bids": vector["bids_best_first"],
        "asks": vector["asks_best_first"],
        "checksum": vector["expected_checksum"],
    }
    book = docs_btc_book(entry)
    assert book.checksum() == 3310070434 == vector["expected_checksum"]
    assert book.checksum_text() == vector["expected_checksum_input"]
    assert len(book.checksum_text()) == vector["expected_checksum_input_length"]
    assert book.checksum_text() == vector["expected_asks_string"] + vector["expected_bids_string"]
    assert book.checksum() != vector["negative_result_for_reference"]["naive_str_of_python_float_checksum"]


@pytest.mark.parametrize("decode", [json.loads, loads_exact], ids=["json-floats", "loads_exact"])
def test_kraken_docs_btcusd_checksum_example_from_wire_frame(decode: Callable[[str], Any]) -> None:
    vector = load_vector("kraken_docs_btcusd_book_checksum_example.json")
    book = docs_btc_book(decode(vector["wire_frame"])["data"][0])
    assert book.checksum_text() == vector["expected_checksum_input"]
    assert book.best_bid() == (45283.5, 0.1)
    assert book.best_ask() == (45285.2, 0.001)


@pytest.mark.parametrize("decode", [json.loads, loads_exact], ids=["json-floats", "loads_exact"])
def test_kraken_docs_maticusd_snapshot_and_update(decode: Callable[[str], Any]) -> None:
    vector = load_vector("kraken_docs_maticusd_book_snapshot_update.json")
    book = OrderBook(
        "MATIC/USD",
        vector["depth"],
        price_precision=vector["price_precision"],
        qty_precision=vector["qty_precision"],
    )
    snapshot = decode(vector["snapshot_frame_as_printed"])["data"][0]
    assert book.apply(snapshot) is True
    assert book.checksum() == vector["expected_snapshot_checksum"]
    update = decode(vector["update_frame_as_printed"])["data"][0]
    assert book.apply(update) is True
    assert book.checksum() == vector["expected_checksum_after_update"]
    assert book.valid and book.version == 2
    assert book.bids()[-1] == (0.5657, 1098.3947558)


def test_maticusd_needs_reformatting_to_precision() -> None:
    """Stripping the printed numbers as they are gives the documented wrong CRC, not the book's."""
    vector = load_vector("kraken_docs_maticusd_book_snapshot_update.json")
    raw = json.loads(vector["snapshot_frame_as_printed"], parse_float=str)["data"][0]

    def strip(levels: list[dict[str, str]]) -> str:
        return "".join((lv["price"] + lv["qty"]).replace(".", "").lstrip("0") for lv in levels)

    naive = zlib.crc32((strip(raw["asks"]) + strip(raw["bids"])).encode())
    assert naive == vector["checksum_if_text_stripped_as_printed_without_reformatting"]
    assert naive != raw["checksum"]


# -- exact digits -------------------------------------------------------------------


def test_large_quantities_keep_exact_digits_where_floats_do_not() -> None:
    rng = random.Random(20240601)
    candidates = [f"{rng.randrange(10**7, 10**8)}.{rng.randrange(10**8):08d}" for _ in range(400)]
    # Both float routes: formatting the float, and re-reading its shortest repr.
    lossy = [q for q in candidates if f"{float(q):.8f}" != q and f"{Decimal(repr(float(q))):.8f}" != q]
    assert lossy, "expected some 8+8 digit quantities that a float cannot carry"
    qtys = (lossy * 20)[:20]
    asks = [(f"0.{1235 + i:04d}", qtys[i]) for i in range(10)]
    bids = [(f"0.{1234 - i:04d}", qtys[10 + i]) for i in range(10)]
    expected_text = "".join((p + q).replace(".", "").lstrip("0") for p, q in asks + bids)
    expected_crc = zlib.crc32(expected_text.encode("ascii"))

    def level_json(levels: list[tuple[str, str]]) -> str:
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in levels)

    frame = (
        '{"channel":"book","type":"snapshot","data":[{"symbol":"LOW/USD",'
        f'"bids":[{level_json(bids)}],"asks":[{level_json(asks)}],"checksum":{expected_crc}}}]}}'
    )
    exact = OrderBook("LOW/USD", 10, price_precision=4, qty_precision=8)
    assert exact.apply(loads_exact(frame)["data"][0]) is True
    assert exact.checksum() == expected_crc
    assert exact.checksum_text() == expected_text
    assert exact.levels_exact("ask", 1) == [(Decimal(asks[0][0]), Decimal(asks[0][1]))]

    # Floats of such quantities are refused, never formatted into a wrong checksum text.
    via_floats = OrderBook("LOW/USD", 10, price_precision=4, qty_precision=8)
    with pytest.raises(InexactNumber, match="Decimals"):
        via_floats.apply(json.loads(frame)["data"][0])
    assert len(via_floats) == 0
    assert not via_floats.valid


def test_a_float_value_past_15_digits_is_refused_and_the_update_undone(tracked: Tracked) -> None:
    book = tracked.book
    before = (book.levels_exact("bid"), book.levels_exact("ask"), book.checksum(), book.version)
    entry = tracked.entry([("99.9", "7")], [("100.7", "3")])
    entry["asks"].append({"price": 100.8, "qty": 12345678.12345678})  # 16 digits at qty precision 8
    with pytest.raises(InexactNumber):
        book.apply(entry)
    assert (book.levels_exact("bid"), book.levels_exact("ask"), book.checksum(), book.version) == before
    # The same value as a Decimal is exact and applies.
    entry["asks"][-1]["qty"] = Decimal("12345678.12345678")
    book.apply(entry)
    assert (Decimal("100.8"), Decimal("12345678.12345678")) in book.levels_exact("ask")


# -- maintenance --------------------------------------------------------------------


def test_snapshot_sets_both_sides_best_first(tracked: Tracked) -> None:
    book = tracked.book
    assert book.valid and book.version == 1 and len(book) == 5
    assert book.bids() == [(100.0, 1.5), (99.5, 2.0), (99.0, 0.5)]
    assert book.asks() == [(100.5, 1.0), (101.0, 3.0)]
    assert book.levels_exact("bid", 1) == [(Decimal("100.0"), Decimal("1.5"))]
    tracked.assert_matches()


def test_deletes_existing_and_ignores_missing_levels(tracked: Tracked) -> None:
    assert tracked.apply([("99.5", "0")], [("100.5", "0.0"), ("250.0", "0")])
    book = tracked.book
    assert book.bids() == [(100.0, 1.5), (99.0, 0.5)]
    assert book.asks() == [(101.0, 3.0)]
    assert book.valid and book.version == 2
    tracked.assert_matches()


def test_update_sets_and_inserts_on_both_sides(tracked: Tracked) -> None:
    assert tracked.apply([("99.5", "7"), ("99.7", "0.25")], [("100.7", "4"), ("100.5", "0.5")])
    assert tracked.book.bids() == [(100.0, 1.5), (99.7, 0.25), (99.5, 7.0), (99.0, 0.5)]
    assert tracked.book.asks() == [(100.5, 0.5), (100.7, 4.0), (101.0, 3.0)]
    tracked.assert_matches()


def test_snapshot_with_eleven_levels_is_truncated_to_depth_ten() -> None:
    t = Tracked(depth=10)
    bids = [(f"{500 - i}.0", "1") for i in range(11)]
    asks = [(f"{600 + i}.0", "2") for i in range(11)]
    assert t.apply(bids, asks, snapshot=True)
    assert len(t.book.bids()) == 10 and len(t.book.asks()) == 10
    assert t.book.bids()[-1][0] == 491.0 and t.book.asks()[-1][0] == 609.0
    t.assert_matches()


def test_better_level_pushes_the_worst_out_and_it_stays_out() -> None:
    t = Tracked(depth=10)
    assert t.apply(
        [(f"{500 - i}.0", "1") for i in range(10)], [(f"{600 + i}.0", "2") for i in range(10)], snapshot=True
    )
    assert t.apply([("500.5", "3")], [("599.5", "4")])
    assert t.book.bids()[0] == (500.5, 3.0) and (491.0, 1.0) not in t.book.bids()
    assert t.book.asks()[0] == (599.5, 4.0) and (609.0, 2.0) not in t.book.asks()
    assert len(t.book) == 20
    # A level worse than the worst one kept falls off at once.
    assert t.apply([("400.0", "1")], [("700.0", "1")])
    assert 400.0 not in [p for p, _ in t.book.bids()] and 700.0 not in [p for p, _ in t.book.asks()]
    # Deleting the best level does not bring the dropped ones back.
    assert t.apply([("500.5", "0")], [("599.5", "0")])
    assert len(t.book.bids()) == 9 and len(t.book.asks()) == 9
    t.assert_matches()


def test_checksum_mismatch_invalidates_until_next_snapshot(tracked: Tracked) -> None:
    book = tracked.book
    entry = tracked.entry([("99.8", "1")])
    entry["checksum"] = (entry["checksum"] + 1) % 2**32
    assert book.apply(entry) is False
    assert not book.valid and book.mismatches == 1
    assert book.last_checksum == entry["checksum"]
    assert book.version == 2
    assert book.bids()[1] == (99.8, 1.0)  # the update was still applied
    assert tracked.apply([("99.9", "1")]) is True  # later updates still apply...
    assert not book.valid  # ...but the book stays invalid
    assert book.mismatches == 1
    assert tracked.apply(BIDS, ASKS, snapshot=True) is True
    assert book.valid and book.bids() == [(100.0, 1.5), (99.5, 2.0), (99.0, 0.5)]


def test_snapshot_with_wrong_checksum_is_invalid() -> None:
    book = OrderBook(SYMBOL, price_precision=1, qty_precision=8)
    assert not book.valid
    assert book.apply(make_entry(BIDS, ASKS, 12345)) is False
    assert not book.valid and book.mismatches == 1 and len(book) == 5


def test_empty_book_treats_first_entry_as_snapshot_and_snapshot_flag_replaces(tracked: Tracked) -> None:
    book = tracked.book
    assert book.apply(tracked.entry([("50.0", "1")], [("60.0", "1")], snapshot=True), snapshot=True)
    assert book.bids() == [(50.0, 1.0)] and book.asks() == [(60.0, 1.0)]
    book.reset()
    assert len(book) == 0 and not book.valid and book.best_bid() is None
    assert book.last_checksum is None and book.timestamp is None
    assert book.apply(tracked.entry(BIDS, ASKS, snapshot=True))  # snapshot=None on an empty book
    assert book.valid and len(book) == 5


def test_timestamp_is_the_last_entry_s(tracked: Tracked) -> None:
    entry = tracked.entry([("99.9", "1")])
    entry["timestamp"] = "2023-07-30T15:29:58.343415Z"
    assert tracked.book.apply(entry)
    assert tracked.book.timestamp == "2023-07-30T15:29:58.343415Z"


def test_values_may_be_str_int_float_or_decimal() -> None:
    t = Tracked(depth=10, price_precision=2, qty_precision=3)
    entry = t.entry([("10.25", "2"), ("10", "0.5")], [("11.5", "1.125")], snapshot=True)
    entry["bids"] = [{"price": Decimal("10.25"), "qty": 2}, {"price": 10, "qty": 0.5}]
    entry["asks"] = [{"price": 11.5, "qty": "1.125"}]
    assert t.book.apply(entry) is True
    assert t.book.checksum_text() == "11501125" + "1025" + "2000" + "1000" + "500"
    t.assert_matches()


# -- validation ---------------------------------------------------------------------


def _without(key: str) -> Callable[[dict], None]:
    return lambda e: e.pop(key)


def _set(key: str, value: Any) -> Callable[[dict], None]:
    return lambda e: e.__setitem__(key, value)


MALFORMED: dict[str, Callable[[dict], None]] = {
    "missing checksum": _without("checksum"),
    "string checksum": _set("checksum", "123"),
    "float checksum": _set("checksum", 123.0),
    "bool checksum": _set("checksum", True),
    "negative checksum": _set("checksum", -1),
    "oversized checksum": _set("checksum", 2**32),
    "wrong symbol": _set("symbol", "ETH/USD"),
    "missing symbol": _without("symbol"),
    "missing bids": _without("bids"),
    "missing asks": _without("asks"),
    "bids not a list": _set("bids", {"price": "1", "qty": "1"}),
    "level without qty": _set("bids", [{"price": "99.9", "qty": "1"}, {"price": "99.8"}]),
    "level without price": _set("asks", [{"price": "100.6", "qty": "1"}, {"qty": "1"}]),
    "level not an object": _set("asks", [["100.6", "1"]]),
    "negative qty": _set("bids", [{"price": "99.9", "qty": "1"}, {"price": "99.8", "qty": "-1"}]),
    "negative price": _set("asks", [{"price": "-100.6", "qty": "1"}]),
    "non-numeric price": _set("asks", [{"price": "abc", "qty": "1"}]),
    "null qty": _set("bids", [{"price": "99.8", "qty": None}]),
    "nan qty": _set("bids", [{"price": "99.8", "qty": float("nan")}]),
    "decimal nan qty": _set("bids", [{"price": "99.8", "qty": Decimal("NaN")}]),
    "infinite price": _set("asks", [{"price": float("inf"), "qty": "1"}]),
    "price a float cannot hold": _set("asks", [{"price": Decimal("123456789.123456789"), "qty": "1"}]),
    "timestamp not text": _set("timestamp", 12),
    # A bad level after a delete, a change and an insert: all three are undone.
    "bad level after changes": _set(
        "bids",
        [
            {"price": 100.0, "qty": 0.0},
            {"price": 99.5, "qty": 7.0},
            {"price": 99.7, "qty": 1.0},
            {"price": 99.6, "qty": float("nan")},
        ],
    ),
    "bad ask after bid changes": lambda entry: entry.update(
        bids=[{"price": "99.0", "qty": "0"}, {"price": "98.0", "qty": "4"}],
        asks=[{"price": "100.6", "qty": "2"}, {"price": "100.9", "qty": True}],
    ),
}


@pytest.mark.parametrize("mutate", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_entries_raise_and_leave_the_book_unchanged(
    tracked: Tracked, mutate: Callable[[dict], None]
) -> None:
    book = tracked.book
    entry = tracked.entry([("99.9", "5")], [("100.6", "5")])
    mutate(entry)
    before = (book.levels_exact("bid"), book.levels_exact("ask"), book.version, book.valid, book.checksum())
    state = (book.timestamp, book.last_checksum, book.mismatches)
    with pytest.raises(MalformedMessage):
        book.apply(entry)
    assert (
        book.levels_exact("bid"),
        book.levels_exact("ask"),
        book.version,
        book.valid,
        book.checksum(),
    ) == before
    assert (book.timestamp, book.last_checksum, book.mismatches) == state


def test_malformed_message_names_the_bad_value(tracked: Tracked) -> None:
    entry = tracked.entry([("99.8", "-3.25")])
    with pytest.raises(MalformedMessage, match=r"-3\.25"):
        tracked.book.apply(entry)
    entry = tracked.entry()
    entry["symbol"] = "ETH/USD"
    with pytest.raises(MalformedMessage, match="ETH/USD"):
        tracked.book.apply(entry)
    with pytest.raises(MalformedMessage):
        tracked.book.apply(["not", "a", "mapping"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"symbol": "", "depth": 10, "price_precision": 1, "qty_precision": 8},
        {"symbol": "A/B", "depth": 0, "price_precision": 1, "qty_precision": 8},
        {"symbol": "A/B", "depth": 10, "price_precision": -1, "qty_precision": 8},
        {"symbol": "A/B", "depth": 10, "price_precision": 1, "qty_precision": 1.5},
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidParams):
        OrderBook(kwargs.pop("symbol"), kwargs.pop("depth"), **kwargs)


def test_levels_exact_rejects_unknown_side(tracked: Tracked) -> None:
    with pytest.raises(InvalidParams, match="middle"):
        tracked.book.levels_exact("middle")


# -- views --------------------------------------------------------------------------


def test_best_spread_mid_imbalance(tracked: Tracked) -> None:
    book = tracked.book
    assert book.best_bid() == (100.0, 1.5)
    assert book.best_ask() == (100.5, 1.0)
    assert book.spread() == 0.5
    assert book.mid() == 100.25
    assert book.imbalance() == 0.0  # 4 on each side
    assert book.imbalance(1) == pytest.approx((1.5 - 1.0) / 2.5)
    assert book.bids(2) == [(100.0, 1.5), (99.5, 2.0)] and book.asks(0) == []


def test_spread_is_computed_from_exact_prices() -> None:
    t = Tracked()
    assert t.apply([("29430.2", "1")], [("29430.3", "1")], snapshot=True)
    assert 29430.3 - 29430.2 != 0.1  # the float difference is off...
    assert t.book.spread() == 0.1  # ...the book's is not
    assert t.book.mid() == 29430.25


def test_empty_book_views() -> None:
    book = OrderBook(SYMBOL, price_precision=1, qty_precision=8)
    assert book.best_bid() is None and book.best_ask() is None
    assert book.spread() is None and book.mid() is None and book.imbalance() is None
    assert len(book) == 0 and book.bids() == [] and book.asks() == []
    frame = book.to_frame()
    assert list(frame.columns) == ["side", "price", "qty", "cum_qty"] and len(frame) == 0
    assert all(a.shape == (0,) and a.dtype == np.float64 for a in book.depth_arrays())
    assert "TEST/USD" in repr(book) and "valid=False" in repr(book)


def test_to_frame_columns_order_and_cumulative_qty(tracked: Tracked) -> None:
    frame = tracked.book.to_frame()
    assert list(frame.columns) == ["side", "price", "qty", "cum_qty"]
    assert isinstance(frame["side"].dtype, pd.CategoricalDtype)
    assert set(frame["side"].cat.categories) == {"bid", "ask"}
    assert frame["side"].tolist() == ["bid", "bid", "bid", "ask", "ask"]
    assert frame["price"].tolist() == [100.0, 99.5, 99.0, 100.5, 101.0]
    assert frame["qty"].tolist() == [1.5, 2.0, 0.5, 1.0, 3.0]
    assert frame["cum_qty"].tolist() == [1.5, 3.5, 4.0, 1.0, 4.0]
    for column in ("price", "qty", "cum_qty"):
        assert frame[column].dtype == np.float64


def test_depth_arrays(tracked: Tracked) -> None:
    bid_prices, bid_qtys, ask_prices, ask_qtys = tracked.book.depth_arrays()
    for array in (bid_prices, bid_qtys, ask_prices, ask_qtys):
        assert array.dtype == np.float64 and array.ndim == 1
    np.testing.assert_array_equal(bid_prices, [100.0, 99.5, 99.0])
    np.testing.assert_array_equal(bid_qtys, [1.5, 2.0, 0.5])
    np.testing.assert_array_equal(ask_prices, [100.5, 101.0])
    np.testing.assert_array_equal(ask_qtys, [1.0, 3.0])
    top = tracked.book.depth_arrays(1)
    assert [a.tolist() for a in top] == [[100.0], [1.5], [100.5], [1.0]]


def test_copy_is_independent(tracked: Tracked) -> None:
    book = tracked.book
    snapshot = book.copy()
    assert snapshot.levels_exact("bid") == book.levels_exact("bid")
    assert snapshot.version == book.version and snapshot.valid and snapshot.checksum() == book.checksum()
    assert tracked.apply([("100.0", "0")], [("100.2", "9")])
    assert snapshot.bids()[0] == (100.0, 1.5) and snapshot.asks()[0] == (100.5, 1.0)
    assert snapshot.version == 1 and book.version == 2
    snapshot.reset()
    assert len(book) == 5 and book.valid


# -- depth 1000 ---------------------------------------------------------------------


def test_depth_1000_random_updates_match_reference() -> None:
    rng = random.Random(1000)
    t = Tracked(depth=1000, price_precision=1, qty_precision=8)

    def qty() -> str:
        return f"{rng.randrange(1, 10**4)}.{rng.randrange(10**8):08d}"

    bid_grid = [f"{p / 10:.1f}" for p in range(250_000, 300_000)]  # 25000.0 .. 29999.9
    ask_grid = [f"{p / 10:.1f}" for p in range(300_000, 350_000)]  # 30000.0 .. 34999.9
    snap_bids = [(p, qty()) for p in rng.sample(bid_grid, 1100)]
    snap_asks = [(p, qty()) for p in rng.sample(ask_grid, 1100)]
    assert t.apply(snap_bids, snap_asks, snapshot=True)
    assert len(t.book.bids()) == 1000 and len(t.book.asks()) == 1000
    t.assert_matches()

    def changes(levels: dict[Decimal, Decimal], grid: list[str]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for _ in range(rng.randrange(0, 5)):
            roll = rng.random()
            if roll < 0.3 and levels:
                out.append((str(rng.choice(list(levels))), "0"))  # delete an existing level
            elif roll < 0.4:
                out.append((rng.choice(grid), "0"))  # delete, usually missing
            elif roll < 0.6 and levels:
                out.append((str(rng.choice(list(levels))), qty()))  # change a quantity
            else:
                out.append((rng.choice(grid), qty()))  # insert anywhere, maybe past depth
        return out

    def as_wire(levels: list[dict[str, str]]) -> list[dict[str, Any]]:
        # Mix the value types a caller may hand over.
        kinds = (str, Decimal, float)
        return [
            {"price": rng.choice(kinds)(lv["price"]), "qty": rng.choice(kinds)(lv["qty"])} for lv in levels
        ]

    for step in range(200):
        entry = t.entry(changes(t.bids, bid_grid), changes(t.asks, ask_grid))
        entry["bids"], entry["asks"] = as_wire(entry["bids"]), as_wire(entry["asks"])
        assert t.book.apply(entry) is True, f"step {step}"
        bid_prices = [p for p, _ in t.book.levels_exact("bid")]
        ask_prices = [p for p, _ in t.book.levels_exact("ask")]
        assert all(a > b for a, b in itertools.pairwise(bid_prices))
        assert all(a < b for a, b in itertools.pairwise(ask_prices))
        assert len(bid_prices) <= 1000 and len(ask_prices) <= 1000
        assert t.book.checksum() == entry["checksum"] == t.book.last_checksum
        if step % 50 == 0:
            t.assert_matches()
    t.assert_matches()
    assert t.book.valid and t.book.version == 201
