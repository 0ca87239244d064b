"""The pure market model: determinism, book invariants, trades, candles, ticker, exact numbers."""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from kraken_nb.core.wire import loads_exact
from kraken_nb.errors import InvalidParams
from kraken_nb.simulator import DEFAULT_PAIRS, PAIR_SPECS, MarketModel
from kraken_nb.simulator.encoding import dumps

START = datetime(2025, 3, 3, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def model() -> MarketModel:
    """A model run for 10 market minutes in uneven steps."""
    market = MarketModel(seed=21, start=START)
    for dt in [0.05, 0.4, 2.0, 3.0, 0.7] * 40:
        market.step(dt)
    return market


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_same_seed_gives_the_same_market_and_another_seed_does_not():
    runs = []
    for seed in (3, 3, 4):
        market = MarketModel(seed=seed, pairs=["BTC/USD", "DOGE/USD"], start=START)
        for dt in (0.5, 1.5, 3.0):
            market.step(dt)
        runs.append((market.trade_log("DOGE/USD"), market.levels("BTC/USD", "bids", 50)))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_lists_at_least_eight_pairs_and_rejects_unknown_ones():
    assert len(DEFAULT_PAIRS) >= 8
    assert {"BTC/USD", "ETH/USD", "SOL/USD", "XRP/EUR", "ETH/BTC", "ADA/USD", "DOGE/USD", "LTC/EUR"} <= set(
        DEFAULT_PAIRS
    )
    with pytest.raises(InvalidParams, match="BTC/XYZ"):
        MarketModel(pairs=["BTC/XYZ"])


def test_warm_up_leaves_fifty_trades_and_the_clock_at_start():
    market = MarketModel(seed=1, pairs=["LTC/EUR"], start=START)
    assert len(market.trade_log("LTC/EUR")) >= 50
    assert seconds(market.now) >= START.timestamp()


@pytest.mark.parametrize("symbol", DEFAULT_PAIRS)
def test_books_are_deep_sorted_on_the_grid_and_uncrossed(model, symbol):
    spec = model.spec(symbol)
    bids = model.levels(symbol, "bids", 5000)
    asks = model.levels(symbol, "asks", 5000)
    assert len(bids) >= 1000 and len(asks) >= 1000
    bid_ticks = [t for t, _ in bids]
    ask_ticks = [t for t, _ in asks]
    assert bid_ticks == sorted(bid_ticks, reverse=True) and len(set(bid_ticks)) == len(bid_ticks)
    assert ask_ticks == sorted(ask_ticks) and len(set(ask_ticks)) == len(ask_ticks)
    assert bid_ticks[0] < ask_ticks[0]
    min_units = spec.qty_min / spec.qty_increment
    assert all(min_units <= u < 10**8 * 10**spec.qty_precision for _, u in bids + asks)
    best_bid, best_ask = model.best_bid(symbol), model.best_ask(symbol)
    assert best_bid is not None and best_ask is not None
    assert best_bid[0] == best_bid[0].quantize(spec.price_increment)
    assert best_ask[1] == best_ask[1].quantize(spec.qty_increment)


def test_trades_never_take_more_than_rested_at_their_price():
    market = MarketModel(seed=9, start=START)
    checked = 0
    for _ in range(300):
        before = {
            s: (dict(market.levels(s, "bids", 5000)), dict(market.levels(s, "asks", 5000)))
            for s in market.symbols
        }
        for event in market.step(0.2):  # one sub-step: trades happen before new quotes
            taken: dict[tuple[str, Decimal], Decimal] = defaultdict(Decimal)
            for trade in getattr(event, "trades", []):
                taken[trade["side"], trade["price"]] += trade["qty"]
            bids, asks = before[event.symbol]
            increment = market.spec(event.symbol).price_increment
            for (side, price), qty in taken.items():
                resting = asks if side == "buy" else bids
                tick = int(price / increment)
                if tick in resting:
                    assert qty <= market.qty_of(event.symbol, resting[tick]), (event.symbol, side, price)
                    checked += 1
    assert checked > 500


@pytest.mark.parametrize("symbol", ["BTC/USD", "DOGE/USD", "ETH/BTC"])
def test_trade_ids_step_by_one_and_times_never_go_back(model, symbol):
    log = model.trade_log(symbol)
    assert len(log) > 300
    ids = [t["trade_id"] for t in log]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    times = [t["timestamp"] for t in log]
    assert times == sorted(times)
    assert {t["side"] for t in log} == {"buy", "sell"}
    assert {t["ord_type"] for t in log} == {"limit", "market"}
    assert all(t["qty"] >= model.spec(symbol).qty_min for t in log)


@pytest.mark.parametrize("interval", [1, 5, 15])
@pytest.mark.parametrize("symbol", ["BTC/USD", "XRP/EUR"])
def test_candles_agree_with_the_trade_log(model, symbol, interval):
    log = model.trade_log(symbol)
    span = interval * 60
    groups: dict[float, list[dict]] = defaultdict(list)
    for trade in log:
        ts = seconds(trade["timestamp"])
        groups[ts - ts % span].append(trade)
    candles = {seconds(c["interval_begin"]): c for c in model.candles(symbol, interval)}
    covered = [begin for begin in sorted(groups) if begin in candles]
    assert len(covered) >= min(len(groups), 2)
    increment = model.spec(symbol).price_increment
    for begin in covered:
        trades, candle = groups[begin], candles[begin]
        prices = [t["price"] for t in trades]
        volume = sum(t["qty"] for t in trades)
        assert candle["open"] == prices[0]
        assert candle["close"] == prices[-1]
        assert candle["high"] == max(prices)
        assert candle["low"] == min(prices)
        assert candle["volume"] == volume
        assert candle["trades"] == len(trades)
        vwap = sum(t["price"] * t["qty"] for t in trades) / volume
        assert abs(candle["vwap"] - vwap) <= increment / 2
        assert seconds(candle["timestamp"]) == begin + span
        assert candle["interval"] == interval


@pytest.mark.parametrize("interval", [1, 60, 21600])
def test_candle_history_is_a_plausible_series(model, interval):
    candles = model.candles("ETH/USD", interval)
    assert len(candles) == 100
    begins = [seconds(c["interval_begin"]) for c in candles]
    assert all(b % (interval * 60) == 0 for b in begins)
    assert begins == sorted(set(begins))
    for candle in candles:
        assert candle["low"] <= min(candle["open"], candle["close"])
        assert candle["high"] >= max(candle["open"], candle["close"])
        assert candle["low"] <= candle["vwap"] <= candle["high"]
        assert candle["volume"] > 0 and candle["trades"] > 0
    assert candles[-1]["close"] == model.trade_log("ETH/USD")[-1]["price"]


@pytest.mark.parametrize("symbol", DEFAULT_PAIRS)
def test_ticker_matches_the_book_and_the_last_trade(model, symbol):
    ticker = model.ticker(symbol)
    assert ticker["last"] == model.trade_log(symbol)[-1]["price"]
    assert (ticker["bid"], ticker["bid_qty"]) == model.best_bid(symbol)
    assert (ticker["ask"], ticker["ask_qty"]) == model.best_ask(symbol)
    assert ticker["low"] <= ticker["last"] <= ticker["high"]
    assert ticker["low"] <= ticker["vwap"] <= ticker["high"]
    assert ticker["volume"] > 0
    opened = ticker["last"] - ticker["change"]
    assert ticker["change_pct"] == (ticker["change"] * 100 / opened).quantize(Decimal("0.01"))


def reference_checksum(book: dict, price_precision: int, qty_precision: int) -> int:
    def text(value: Decimal, precision: int) -> str:
        return f"{value.quantize(Decimal(1).scaleb(-precision)):f}".replace(".", "").lstrip("0")

    def side(levels: list[dict]) -> str:
        return "".join(
            text(lv["price"], price_precision) + text(lv["qty"], qty_precision) for lv in levels[:10]
        )

    return zlib.crc32((side(book["asks"]) + side(book["bids"])).encode())


@pytest.mark.parametrize("symbol", DEFAULT_PAIRS)
def test_book_checksum_is_krakens_crc32(model, symbol):
    spec = model.spec(symbol)
    book = model.book(symbol, 25)
    assert len(book["bids"]) == len(book["asks"]) == 25
    assert book["checksum"] == reference_checksum(book, spec.price_precision, spec.qty_precision)
    assert model.checksum(symbol) == book["checksum"]


def test_doge_quantities_need_exact_decimals(model):
    spec = PAIR_SPECS["DOGE/USD"]
    quantities = [model.qty_of("DOGE/USD", u) for _, u in model.levels("DOGE/USD", "bids", 1100)]
    big = [q for q in quantities if q >= 10**7]
    assert big, "no DOGE level with 8 integer digits"
    assert all(q < 10**8 and q == q.quantize(spec.qty_increment) for q in quantities)
    # Some of them do not survive a trip through a binary float.
    assert any(Decimal(repr(float(q))) != q for q in big)


def test_frames_carry_decimals_as_exact_json_numbers():
    data = {
        "a": Decimal("12345678.12345678"),
        "b": Decimal("4.00000000"),
        "c": Decimal("0.00011621"),
        "d": Decimal("29430.3"),
        "e": [1, True, None, 'x"y'],
        "f": Decimal("-0.51"),
    }
    text = dumps(data)
    assert '"a":12345678.12345678,' in text
    assert '"b":4.00000000,' in text  # trailing zeros kept, as Kraken prints them
    assert '"c":0.00011621,' in text
    assert '"f":-0.51}' in text
    assert loads_exact(text) == data
    with pytest.raises(TypeError, match="set"):
        dumps({"bad": {1, 2}})


def test_instrument_lists_every_pair_with_its_precisions(model):
    data = model.instrument()
    pairs = {p["symbol"]: p for p in data["pairs"]}
    assert set(pairs) == set(DEFAULT_PAIRS)
    # Kraken publishes BTC/USD at 1 price decimal and 8 quantity decimals, DOGE/USD at 7 and 8.
    assert (pairs["BTC/USD"]["price_precision"], pairs["BTC/USD"]["qty_precision"]) == (1, 8)
    assert (pairs["DOGE/USD"]["price_precision"], pairs["DOGE/USD"]["qty_precision"]) == (7, 8)
    for pair in pairs.values():
        assert pair["price_increment"] == pair["tick_size"] == 10.0 ** -pair["price_precision"]
        assert pair["qty_increment"] == 10.0 ** -pair["qty_precision"]
        assert pair["base"] + "/" + pair["quote"] == pair["symbol"]
        assert pair["status"] == "online" and pair["qty_min"] > 0 and pair["cost_min"] > 0
    assets = {a["id"] for a in data["assets"]}
    assert {p["base"] for p in pairs.values()} | {p["quote"] for p in pairs.values()} == assets
