"""The pairs and assets the simulator lists, with Kraken-like precisions and limits.

Precisions, increments and minimums follow what Kraken publishes for these
pairs; margin requirements and position limits are illustrative (BTC/USD's are
the values of Kraken's instrument docs example); the behaviour fields (start
price, level and trade sizes, spacing of book levels, volatility, event rates)
shape the simulated market.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from kraken_nb.errors import InvalidParams

__all__ = ["ASSET_SPECS", "DEFAULT_PAIRS", "PAIR_SPECS", "AssetSpec", "PairSpec", "resolve_pairs"]


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """One asset as the instrument channel lists it."""

    id: str
    precision: int
    precision_display: int
    borrowable: bool
    collateral_value: Decimal
    margin_rate: Decimal


@dataclass(frozen=True, slots=True)
class PairSpec:
    """One tradeable pair: exchange limits plus the parameters of its simulated market.

    Prices live on a grid of ``10**-price_precision`` and quantities on a grid
    of ``10**-qty_precision``.
    """

    symbol: str
    price_precision: int
    qty_precision: int
    qty_min: Decimal
    cost_min: Decimal
    cost_precision: int
    start_price: Decimal
    level_qty: float
    """Median resting size of a book level, in base units."""
    trade_qty: float
    """Median size of a random trade, in base units."""
    spacing: float
    """Mean gap between neighbouring book levels, in ticks."""
    volatility: float
    """Standard deviation of the log price per square root of a second."""
    trade_rate: float
    """Random trades per market second (sweeps come on top)."""
    book_rate: float
    """Random book changes (add, cancel, resize) per market second."""
    whale_share: float = 0.0
    """Share of new levels sized between 10**7 and 10**8 base units."""
    marginable: bool = True
    margin_initial: Decimal = Decimal("0.2")
    """Initial margin requirement of a marginable pair (0.2: leverage up to 5x)."""
    position_limit_long: int = 0
    """Largest long margin position, in base units (marginable pairs)."""
    position_limit_short: int = 0
    """Largest short margin position, in base units (marginable pairs)."""

    @property
    def base(self) -> str:
        """The base asset, e.g. ``BTC`` of ``BTC/USD``."""
        return self.symbol.split("/")[0]

    @property
    def quote(self) -> str:
        """The quote asset, e.g. ``USD`` of ``BTC/USD``."""
        return self.symbol.split("/")[1]

    @property
    def price_increment(self) -> Decimal:
        """The tick size."""
        return Decimal(1).scaleb(-self.price_precision)

    @property
    def qty_increment(self) -> Decimal:
        """The smallest quantity step."""
        return Decimal(1).scaleb(-self.qty_precision)


#: Initial margin and long/short position limits of the marginable pairs.
_MARGIN: Final[Mapping[str, tuple[str, int, int]]] = {
    "BTC/USD": ("0.2", 250, 200),
    "ETH/USD": ("0.2", 4000, 3000),
    "SOL/USD": ("0.25", 40000, 30000),
    "XRP/EUR": ("0.25", 2000000, 1500000),
    "ETH/BTC": ("0.2", 1000, 800),
    "ADA/USD": ("0.25", 2000000, 1500000),
    "DOGE/USD": ("0.25", 20000000, 10000000),
    "LTC/EUR": ("0.25", 10000, 8000),
}


def _pair(
    symbol: str,
    price_precision: int,
    qty_min: str,
    cost_min: str,
    cost_precision: int,
    start_price: str,
    level_qty: float,
    trade_qty: float,
    spacing: float,
    volatility: float,
    trade_rate: float,
    book_rate: float,
    **extra: object,
) -> PairSpec:
    margin_initial, limit_long, limit_short = _MARGIN[symbol]
    return PairSpec(
        symbol,
        price_precision,
        8,
        Decimal(qty_min),
        Decimal(cost_min),
        cost_precision,
        Decimal(start_price),
        level_qty,
        trade_qty,
        spacing,
        volatility,
        trade_rate,
        book_rate,
        margin_initial=Decimal(margin_initial),
        position_limit_long=limit_long,
        position_limit_short=limit_short,
        **extra,
    )  # type: ignore[arg-type]


PAIR_SPECS: Final[Mapping[str, PairSpec]] = {
    spec.symbol: spec
    for spec in (
        _pair("BTC/USD", 1, "0.00005", "0.5", 5, "64231.7", 0.45, 0.04, 3.0, 6e-5, 2.0, 6.0),
        _pair("ETH/USD", 2, "0.002", "0.5", 5, "3187.42", 6.0, 0.6, 4.0, 8e-5, 1.6, 5.0),
        _pair("SOL/USD", 2, "0.06", "0.5", 5, "148.37", 40.0, 5.0, 1.5, 1e-4, 1.5, 5.0),
        _pair("XRP/EUR", 5, "2", "0.45", 8, "0.52314", 4000.0, 600.0, 1.5, 1e-4, 1.2, 4.0),
        _pair("ETH/BTC", 6, "0.001", "0.00002", 10, "0.049623", 8.0, 0.8, 1.5, 5e-5, 1.2, 4.0),
        _pair("ADA/USD", 6, "5", "0.5", 8, "0.451234", 9000.0, 1200.0, 8.0, 1e-4, 1.3, 4.0),
        _pair(
            "DOGE/USD",
            7,
            "50",
            "0.5",
            9,
            "0.1612345",
            180000.0,
            25000.0,
            20.0,
            1.2e-4,
            1.5,
            5.0,
            whale_share=0.05,
        ),
        _pair("LTC/EUR", 2, "0.05", "0.45", 5, "72.15", 30.0, 3.0, 1.2, 8e-5, 1.2, 4.0),
    )
}

#: The symbols a simulator lists unless told otherwise.
DEFAULT_PAIRS: Final[tuple[str, ...]] = tuple(PAIR_SPECS)

ASSET_SPECS: Final[Mapping[str, AssetSpec]] = {
    asset.id: asset
    for asset in (
        AssetSpec("BTC", 10, 5, True, Decimal("1.0"), Decimal("0.01")),
        AssetSpec("ETH", 10, 5, True, Decimal("1.0"), Decimal("0.02")),
        AssetSpec("SOL", 10, 5, True, Decimal("0.925"), Decimal("0.02")),
        AssetSpec("XRP", 8, 5, True, Decimal("0.95"), Decimal("0.02")),
        AssetSpec("ADA", 8, 6, True, Decimal("0.9"), Decimal("0.02")),
        AssetSpec("DOGE", 8, 2, True, Decimal("0.925"), Decimal("0.02")),
        AssetSpec("LTC", 10, 5, True, Decimal("0.95"), Decimal("0.02")),
        AssetSpec("USD", 4, 2, True, Decimal("1.0"), Decimal("0.036")),
        AssetSpec("EUR", 4, 2, True, Decimal("1.0"), Decimal("0.036")),
    )
}


def resolve_pairs(symbols: Sequence[str] | None) -> tuple[PairSpec, ...]:
    """The specs of ``symbols`` (all default pairs when None), in the order given.

    Raises ``InvalidParams`` naming a symbol the simulator does not list.
    """
    if symbols is None:
        return tuple(PAIR_SPECS.values())
    if isinstance(symbols, str):
        symbols = [symbols]
    chosen = tuple(dict.fromkeys(symbols))
    if not chosen:
        raise InvalidParams("pairs", list(symbols), DEFAULT_PAIRS)
    for symbol in chosen:
        if symbol not in PAIR_SPECS:
            raise InvalidParams("pairs", symbol, DEFAULT_PAIRS)
    return tuple(PAIR_SPECS[symbol] for symbol in chosen)
