"""Raw frames captured with plain ``websockets`` clients, checked against Kraken's wire facts.

The numbers are read as wire text (string digits, never floats), the way
Kraken's docs ask a client to build the checksum. Three connections run at
once: book depth 10 plus trade, ticker and ohlc on every pair; book depth 100
plus bbo tickers on every pair; and a quiet one with only the instrument
channel. See docs/protocol.md for the source of each fact.
"""

from __future__ import annotations

import json
import re
import threading
import time
import zlib
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from websockets.sync.client import connect

from kraken_nb.simulator import PAIR_SPECS, Simulator

from .wire import WireClient

CAPTURE_S = 3.0
HEARTBEAT_S = 0.3
PRICE_FIELDS = ("price", "bid", "ask", "last", "low", "high", "vwap", "change", "open", "close")
QTY_FIELDS = ("qty", "bid_qty", "ask_qty", "volume")
_NUMBER = re.compile(r'"([a-z_]+)":(-?[0-9][0-9.eE+-]*)')
_LEVEL = re.compile(r'\{"price":([0-9.]+),"qty":([0-9.]+)\}')
_SYMBOL = re.compile(r'"symbol":"([A-Z]+/[A-Z]+)"')


@dataclass
class Connection:
    """One raw connection: the requests it sent and every frame with its receive time."""

    requests: list[dict]
    frames: list[tuple[float, str]] = field(default_factory=list)

    def channel(self, name: str) -> list[tuple[float, str]]:
        prefix = f'{{"channel":"{name}"'
        return [(t, text) for t, text in self.frames if text.startswith(prefix)]

    def acks(self) -> list[dict]:
        return [json.loads(text) for _, text in self.frames if text.startswith('{"method":"subscribe"')]


def read(url: str, requests: list[dict], seconds: float, out: Connection) -> None:
    with connect(url, open_timeout=5, close_timeout=1, compression=None) as ws:
        for request in requests:
            ws.send(json.dumps(request))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                text = ws.recv(timeout=left)
            except TimeoutError:
                break
            assert isinstance(text, str)
            out.frames.append((time.monotonic(), text))


def subscribe(channel: str, symbols: list[str] | None = None, **params) -> dict:
    body = {"channel": channel, **params}
    if symbols is not None:
        body["symbol"] = symbols
    return {"method": "subscribe", "params": body, "req_id": 1}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=17, speed=20, heartbeat_interval=HEARTBEAT_S).running() as simulator:
        yield simulator


@pytest.fixture(scope="module")
def capture(sim: Simulator) -> dict[str, Connection]:
    pairs = list(sim.market.symbols)
    plans = {
        "book10": [
            subscribe("instrument"),
            subscribe("book", pairs, depth=10),
            subscribe("trade", pairs),
            subscribe("ticker", pairs),
            subscribe("ohlc", pairs, interval=1),
        ],
        "book100": [subscribe("book", pairs, depth=100), subscribe("ticker", pairs, event_trigger="bbo")],
        "quiet": [subscribe("instrument")],
    }
    connections = {name: Connection(requests) for name, requests in plans.items()}
    threads = [
        threading.Thread(target=read, args=(sim.url, c.requests, CAPTURE_S, c), daemon=True)
        for c in connections.values()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CAPTURE_S + 10)
    return connections


# -- books from the wire text ----------------------------------------------------------


def side_levels(text: str, side: str) -> list[tuple[str, str]]:
    """The (price, qty) texts of one side of a book frame, in wire order."""
    start = text.index(f'"{side}":[') + len(side) + 4
    return _LEVEL.findall(text, start, text.index("]", start))


def checksum_of(asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> int:
    """Kraken's CRC32 built from the wire strings: point removed, leading zeros stripped."""
    parts = [
        p.replace(".", "").lstrip("0") + q.replace(".", "").lstrip("0") for p, q in asks[:10] + bids[:10]
    ]
    return zlib.crc32("".join(parts).encode())


class TextBook:
    """One side pair of a book held as wire strings, kept to ``depth`` by truncation."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.keys: dict[str, list[Decimal]] = {"bids": [], "asks": []}  # ascending best first
        self.levels: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}

    def apply(self, side: str, price: str, qty: str) -> None:
        key = -Decimal(price) if side == "bids" else Decimal(price)
        keys, levels = self.keys[side], self.levels[side]
        at = bisect_left(keys, key)
        held = at < len(keys) and keys[at] == key
        if Decimal(qty) == 0:
            if held:
                del keys[at]
                del levels[key]
        else:
            if not held:
                keys.insert(at, key)
            levels[key] = (price, qty)

    def holds(self, side: str, price: str) -> bool:
        return (-Decimal(price) if side == "bids" else Decimal(price)) in self.levels[side]

    def truncate(self, side: str) -> None:
        keys = self.keys[side]
        for key in keys[self.depth :]:
            del self.levels[side][key]
        del keys[self.depth :]

    def checksum(self) -> int:
        top = {side: [self.levels[side][k] for k in self.keys[side][:10]] for side in ("bids", "asks")}
        return checksum_of(top["asks"], top["bids"])


@dataclass
class Replay:
    verified: Counter = field(default_factory=Counter)
    mismatches: list[str] = field(default_factory=list)
    stray_deletes: int = 0
    sizes: Counter = field(default_factory=Counter)
    updates: list[tuple[str, str, list[tuple[str, str]]]] = field(default_factory=list)
    """(symbol, side, levels) of every update, for the shape checks."""


def replay(frames: list[tuple[float, str]], depth: int) -> Replay:
    """Maintain each book twice: truncating per message, and per level (python-kraken-sdk's way)."""
    result = Replay()
    per_message: dict[str, TextBook] = {}
    per_level: dict[str, TextBook] = {}
    for _, text in frames:
        symbol = _SYMBOL.search(text).group(1)
        checksum = int(re.search(r'"checksum":(\d+)', text).group(1))
        sides = {side: side_levels(text, side) for side in ("bids", "asks")}
        if '"type":"snapshot"' in text:
            per_message[symbol], per_level[symbol] = TextBook(depth), TextBook(depth)
        else:
            touched = [side for side in sides if sides[side]]
            result.sizes[sum(len(v) for v in sides.values())] += 1
            for side in touched:
                result.updates.append((symbol, side, sides[side]))
                result.stray_deletes += sum(
                    Decimal(q) == 0 and not per_message[symbol].holds(side, p) for p, q in sides[side]
                )
        for book, truncate_each_level in ((per_message[symbol], False), (per_level[symbol], True)):
            for side in ("asks", "bids"):  # python-kraken-sdk applies asks first
                for price, qty in sides[side]:
                    book.apply(side, price, qty)
                    if truncate_each_level:
                        book.truncate(side)
                book.truncate(side)
            if book.checksum() != checksum:
                kind = "per level" if truncate_each_level else "per message"
                result.mismatches.append(f"{symbol} {kind}: {text[:160]}")
        result.verified[symbol] += 1
    return result


@pytest.fixture(scope="module")
def replays(capture: dict[str, Connection]) -> dict[int, Replay]:
    return {
        10: replay(capture["book10"].channel("book"), 10),
        100: replay(capture["book100"].channel("book"), 100),
    }


@pytest.mark.parametrize("depth", [10, 100])
def test_every_book_checksum_reproduces_from_the_wire_text_per_message_and_per_level(replays, depth):
    result = replays[depth]
    assert result.mismatches == []
    assert set(result.verified) == set(PAIR_SPECS)
    assert min(result.verified.values()) >= 30, result.verified


@pytest.mark.parametrize("depth", [10, 100])
def test_book_updates_are_one_sided_short_and_list_each_deletion_before_its_replacement(replays, depth):
    result = replays[depth]
    assert sum(result.sizes.values()) == len(result.updates), "an update touched both sides"
    assert max(result.sizes) <= 10 and min(result.sizes) >= 1
    short = sum(n for size, n in result.sizes.items() if size <= 3)
    assert short >= 0.95 * sum(result.sizes.values()), result.sizes
    assert result.stray_deletes == 0, "a deletion of a level the client does not hold"
    deletions = 0
    for _, side, levels in result.updates:
        worse = (lambda a, b: a < b) if side == "bids" else (lambda a, b: a > b)
        if any(Decimal(q) == 0 for _, q in levels):
            assert Decimal(levels[0][1]) == 0, f"a deletion after another change: {levels}"
        for index, (price, qty) in enumerate(levels):
            if Decimal(qty) == 0:
                deletions += 1
                entering_price, entering_qty = levels[index + 1]
                assert Decimal(entering_qty) > 0 and worse(Decimal(entering_price), Decimal(price)), levels
    assert deletions >= 50


def precision_of(token: str) -> int:
    return len(token.partition(".")[2])


def test_every_number_is_printed_at_the_pairs_precision(capture):
    checked: Counter = Counter()
    frames = [f for c in capture.values() for f in c.frames if not f[1].startswith('{"channel":"instrument"')]
    for _, text in frames:
        match = _SYMBOL.search(text)
        if match is None or '"method"' in text[:12]:
            continue
        spec = PAIR_SPECS[match.group(1)]
        for name, token in _NUMBER.findall(text):
            assert "e" not in token.lower(), f"exponent form in a data frame: {name}={token}"
            if name in PRICE_FIELDS:
                assert precision_of(token) == spec.price_precision, (name, token, text[:120])
            elif name in QTY_FIELDS:
                assert precision_of(token) == spec.qty_precision, (name, token, text[:120])
            elif name == "change_pct":
                assert precision_of(token) == 2, token
            else:
                continue
            checked[name] += 1
    assert set(checked) >= {*PRICE_FIELDS, *QTY_FIELDS, "change_pct"}
    trailing_zeros = [
        t for _, text in frames for n, t in _NUMBER.findall(text) if n in QTY_FIELDS and t.endswith("0")
    ]
    assert len(trailing_zeros) > 100, "quantities with trailing zeros are common on the real feed"
    deletes = capture["book10"].channel("book")
    assert any('"qty":0.00000000}' in text for _, text in deletes)


def test_heartbeats_only_fill_silences(capture):
    for name, connection in capture.items():
        last = None
        for received, text in connection.frames:
            if text == '{"channel":"heartbeat"}' and last is not None:
                assert received - last >= HEARTBEAT_S / 2, (
                    f"{name}: a heartbeat {received - last:.3f} s after data"
                )
            if not text.startswith('{"method"'):
                last = received
    quiet = sum(text == '{"channel":"heartbeat"}' for _, text in capture["quiet"].frames)
    assert quiet >= CAPTURE_S / HEARTBEAT_S / 2, "a silent subscribed connection must get heartbeats"


def test_ohlc_frames_carry_a_nanosecond_timestamp_and_interval_begin(capture):
    frames = capture["book10"].channel("ohlc")
    kinds = Counter(json.loads(text)["type"] for _, text in frames)
    assert kinds["snapshot"] == len(PAIR_SPECS) and kinds["update"] > 10
    stamp = r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z"'
    for _, text in frames:
        assert re.match(
            r'\{"channel":"ohlc","type":"(snapshot|update)","timestamp":' + stamp + ',"data":\\[', text
        )
        message = json.loads(text)
        for candle in message["data"]:
            assert re.fullmatch(stamp[1:-1], candle["interval_begin"]), candle["interval_begin"]
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", candle["timestamp"])
            assert candle["interval_begin"] <= message["timestamp"]


def test_book_snapshots_carry_no_timestamp_and_updates_do(capture):
    for name in ("book10", "book100"):
        frames = [json.loads(text) for _, text in capture[name].channel("book")]
        snapshots = [f["data"][0] for f in frames if f["type"] == "snapshot"]
        assert len(snapshots) == len(PAIR_SPECS)
        assert all("timestamp" not in entry for entry in snapshots)
        assert all(isinstance(f["data"][0]["timestamp"], str) for f in frames if f["type"] == "update")


def test_book_snapshot_timestamps_can_be_switched_on():
    with Simulator(seed=1, pairs=["BTC/USD"], book_snapshot_timestamps=True).running() as sim:
        client = WireClient(sim.url)
        try:
            client.subscribe("book", ["BTC/USD"])
            snapshot, _ = client.until(lambda m: m.get("channel") == "book")
        finally:
            client.close()
    assert snapshot["type"] == "snapshot" and isinstance(snapshot["data"][0]["timestamp"], str)


def test_acks_carry_krakens_deprecation_warnings_in_the_result(capture):
    acks = capture["book10"].acks()
    warnings = {
        (a["result"]["channel"], a["result"].get("symbol")): a["result"].get("warnings") for a in acks
    }
    assert warnings.pop(("instrument", None)) == ["tick_size is deprecated, use price_increment"]
    for symbol in PAIR_SPECS:
        assert warnings.pop(("ohlc", symbol)) == ["timestamp is deprecated, use interval_begin"]
    assert warnings and all(value is None for value in warnings.values())
    first = next(text for _, text in capture["book10"].frames if text.startswith('{"method":"subscribe"'))
    assert list(json.loads(first)) == sorted(json.loads(first)), "Kraken lists reply keys alphabetically"


def test_instrument_pairs_carry_tick_size_margin_fields_and_exponent_increments(capture):
    ((_, text),) = capture["quiet"].channel("instrument")
    assert (
        '"qty_increment":1e-08,' in text and '"qty_min":5e-05}' in text and '"price_increment":1e-07,' in text
    )
    pairs = {p["symbol"]: p for p in json.loads(text)["data"]["pairs"]}
    for symbol, pair in pairs.items():
        spec = PAIR_SPECS[symbol]
        assert pair["tick_size"] == pair["price_increment"] == 10.0**-spec.price_precision
        margin = {"margin_initial", "position_limit_long", "position_limit_short"}
        assert margin <= set(pair) if pair["marginable"] else not margin & set(pair)
        if pair["marginable"]:
            assert pair["margin_initial"] == float(spec.margin_initial)
            assert isinstance(pair["position_limit_long"], int) and pair["position_limit_long"] > 0
    assert (pairs["BTC/USD"]["margin_initial"], pairs["BTC/USD"]["position_limit_long"]) == (0.2, 250)


def test_error_texts_are_krakens(sim):
    client = WireClient(sim.url)
    try:
        client.send(subscribe("nonsense", ["BTC/USD"]))
        reply = client.recv()
        assert (reply["success"], reply["error"], reply["method"]) == (
            False,
            "Subscription name invalid",
            "subscribe",
        )
        client.send(subscribe("status"))
        status, answer = client.recv(), client.recv()
        assert status["channel"] == "status" and status["data"][0]["system"] == "online"
        assert (answer["success"], answer["error"]) == (False, "Symbol(s) not found")
        client.send({"method": "unsubscribe", "params": {"channel": "nonsense", "symbol": ["BTC/USD"]}})
        assert client.recv()["error"] == "Subscription name invalid"
    finally:
        client.close()


def test_the_capture_saw_every_channel(capture):
    seen = defaultdict(int)
    for connection in capture.values():
        for _, text in connection.frames:
            seen[json.loads(text).get("channel", "reply")] += 1
    assert {"status", "book", "trade", "ticker", "ohlc", "instrument", "heartbeat", "reply"} <= set(seen)
