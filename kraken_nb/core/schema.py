"""What Kraken's v2 schema promises about each item, checked once, where frames are parsed.

Every check returns ``None`` for a good value and a short reason otherwise;
:mod:`kraken_nb.core.messages` turns reasons into ``MalformedMessage``
errors. Items are checked one by one so that one bad trade, ticker row,
candle, book entry, pair or asset can be rejected while the good items of
the same frame are kept.

The rules (Kraken's AsyncAPI description and its v2 documentation):

- numbers are JSON numbers: ``int``, ``float`` or (exact decoding) ``Decimal``,
  finite and below ``MAX_AMOUNT`` (10**20) in magnitude; ``bool`` and strings
  are not numbers;
- trade prices and quantities are > 0, ``side`` is ``buy``/``sell``,
  ``ord_type`` is ``limit``/``market``, ``trade_id`` an integer ≥ 0;
- ticker and candle values are ≥ 0, except the ticker's ``change`` and
  ``change_pct``, which may be negative; a candle's ``trades`` is an integer
  ≥ 0 and its ``interval`` one of the subscribable intervals;
- timestamps are RFC 3339 texts within the range of a nanosecond
  ``datetime64`` from the epoch on;
- ``symbol`` and asset ``id`` are non-empty strings; precisions are integers
  from 0 to ``MAX_PRECISION``;
- status ``system`` is one of ``SYSTEM_STATES``; the parameters an ack echoes
  (``channel``, ``symbol``, ``depth``, ``interval``, ``snapshot``) have their
  request types.

Book levels are not checked here: ``OrderBook.apply`` checks each level while
it applies it (that loop is the client's hot path), and the book header with
it: the checksum an unsigned 32-bit integer, the optional ``timestamp`` a
string. That timestamp is kept as the server's text and never becomes a row,
so it is not parsed: parsing it would cost about 5 % of the book path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from kraken_nb.core.buffers.tickers import TICKER_FIELDS
from kraken_nb.core.params import OHLC_INTERVALS
from kraken_nb.core.timestamps import parse_rfc3339_ns
from kraken_nb.errors import MalformedMessage, brief

__all__ = [
    "MAX_AMOUNT",
    "MAX_PRECISION",
    "SYSTEM_STATES",
    "Check",
    "ack_problem",
    "asset_problem",
    "book_entry_problem",
    "candle_problem",
    "is_finite",
    "is_non_negative",
    "is_positive",
    "is_timestamp",
    "pair_problem",
    "pong_problem",
    "status_problem",
    "ticker_problem",
    "trade_problem",
]

Check = Callable[[Any], "str | None"]
"""A check: ``None`` for a good item, else the reason it is bad."""

MAX_PRECISION: Final = 18
"""The largest price, quantity or asset precision accepted (Kraken's go up to about 10)."""

MAX_AMOUNT: Final = 10**20
"""Every price, quantity, volume and amount is below this in magnitude (a larger one is rejected).

The largest token supplies are about 10**15, so no market value comes near it;
with at most ``MAX_PRECISION`` decimals, every accepted value fits an exact
``decimal128(38, s)`` column.
"""

SYSTEM_STATES: Final = ("online", "maintenance", "cancel_only", "post_only")
"""The values of a status message's ``system``."""

_MAX_FLOAT = float(MAX_AMOUNT)  # floats inline: NaN fails every comparison too
_BIG = MAX_AMOUNT
_BIG_DECIMAL = Decimal(_BIG)
_MAX_ID = 2**63  # ids and counts are stored as int64
_MAX_NS = 2**63  # timestamps are stored as int64 nanoseconds
_GOOD_TIMES: set[str] = set()
_GOOD_TIMES_KEPT = 4096
_SIDES = ("buy", "sell")
_ORD_TYPES = ("limit", "market")
_TICKER_SIGNED = ("change", "change_pct")
_TICKER_UNSIGNED = tuple(name for name in TICKER_FIELDS if name not in _TICKER_SIGNED)
_CANDLE_VALUES = ("open", "high", "low", "close", "vwap", "volume")
_PAIR_STRINGS = ("base", "quote", "status")
_PAIR_PRECISIONS = ("price_precision", "qty_precision")
_PAIR_OPTIONAL_PRECISIONS = ("cost_precision",)
_PAIR_AMOUNTS = ("qty_min", "qty_increment", "price_increment", "cost_min", "tick_size", "margin_initial")
_PAIR_FLAGS = ("marginable", "has_index")
_PAIR_LIMITS = ("position_limit_long", "position_limit_short")
_ASSET_PRECISIONS = ("precision", "precision_display")
_ASSET_AMOUNTS = ("collateral_value", "margin_rate", "multiplier")


# -- values ---------------------------------------------------------------------


def is_finite(value: object) -> bool:
    """Whether ``value`` is a finite JSON number below ``MAX_AMOUNT`` in magnitude (not a bool or text)."""
    kind = type(value)
    if kind is float:
        return -_MAX_FLOAT < value < _MAX_FLOAT  # type: ignore[operator]
    if kind is int:
        return -_BIG < value < _BIG  # type: ignore[operator]
    if kind is Decimal:
        return value.is_finite() and -_BIG_DECIMAL < value < _BIG_DECIMAL  # type: ignore[union-attr,operator]
    return False


def is_positive(value: object) -> bool:
    """Whether ``value`` is a finite JSON number > 0 and below ``MAX_AMOUNT``."""
    kind = type(value)
    if kind is float:
        return 0.0 < value < _MAX_FLOAT  # type: ignore[operator]
    if kind is int:
        return 0 < value < _BIG  # type: ignore[operator]
    if kind is Decimal:
        return value.is_finite() and 0 < value < _BIG_DECIMAL  # type: ignore[union-attr,operator]
    return False


def is_non_negative(value: object) -> bool:
    """Whether ``value`` is a finite JSON number ≥ 0 and below ``MAX_AMOUNT``."""
    kind = type(value)
    if kind is float:
        return 0.0 <= value < _MAX_FLOAT  # type: ignore[operator]
    if kind is int:
        return 0 <= value < _BIG  # type: ignore[operator]
    if kind is Decimal:
        return value.is_finite() and 0 <= value < _BIG_DECIMAL  # type: ignore[union-attr,operator]
    return False


def is_timestamp(value: object) -> bool:
    """Whether ``value`` is an RFC 3339 text from the epoch to the end of int64 nanoseconds (2262).

    Good texts are remembered (a candle's ``interval_begin`` and the trades of
    one order repeat theirs), a few thousand at most.
    """
    if type(value) is not str:
        return False
    if value in _GOOD_TIMES:
        return True
    try:
        ns = parse_rfc3339_ns(value)
    except MalformedMessage:
        return False
    if not 0 <= ns < _MAX_NS:
        return False
    if len(_GOOD_TIMES) >= _GOOD_TIMES_KEPT:
        _GOOD_TIMES.clear()
    _GOOD_TIMES.add(value)
    return True


def _is_count(value: object, limit: int = _MAX_ID) -> bool:
    """Whether ``value`` is an ``int`` (not ``bool``) from 0 to below ``limit``."""
    return type(value) is int and 0 <= value < limit  # type: ignore[operator]


def _is_symbol(value: object) -> bool:
    return type(value) is str and value != ""


def _bad(name: str, value: object, wanted: str) -> str:
    return f"{name} must be {wanted}, got {brief(value, 60)}"


def _not_object(what: str, item: object) -> str:
    return f"{what} must be an object, got {type(item).__name__}"


# -- data items -----------------------------------------------------------------


def trade_problem(item: Any) -> str | None:
    """Why ``item`` is not a valid trade, or None."""
    if not isinstance(item, dict):
        return _not_object("a trade", item)
    get = item.get
    symbol = get("symbol")
    if type(symbol) is not str or not symbol:
        return _bad("symbol", symbol, "a non-empty string")
    if (side := get("side")) not in _SIDES:
        return _bad("side", side, "'buy' or 'sell'")
    # floats inline: the common case, a function call costs more than the check
    price = get("price")
    if not (0.0 < price < _MAX_FLOAT if type(price) is float else is_positive(price)):
        return _bad("price", price, "a finite number > 0 (below 1e20)")
    qty = get("qty")
    if not (0.0 < qty < _MAX_FLOAT if type(qty) is float else is_positive(qty)):
        return _bad("qty", qty, "a finite number > 0 (below 1e20)")
    if (ord_type := get("ord_type")) not in _ORD_TYPES:
        return _bad("ord_type", ord_type, "'limit' or 'market'")
    trade_id = get("trade_id")
    if type(trade_id) is not int or not 0 <= trade_id < _MAX_ID:
        return _bad("trade_id", trade_id, "an integer ≥ 0")
    if not is_timestamp(timestamp := get("timestamp")):
        return _bad("timestamp", timestamp, "an RFC 3339 timestamp")
    return None


def ticker_problem(item: Any) -> str | None:
    """Why ``item`` is not a valid ticker row, or None."""
    if not isinstance(item, dict):
        return _not_object("a ticker row", item)
    get = item.get
    if not _is_symbol(symbol := get("symbol")):
        return _bad("symbol", symbol, "a non-empty string")
    for name in _TICKER_UNSIGNED:
        value = get(name)
        if not (0.0 <= value < _MAX_FLOAT if type(value) is float else is_non_negative(value)):
            return _bad(name, value, "a finite number ≥ 0 (below 1e20)")
    for name in _TICKER_SIGNED:
        value = get(name)
        if not (-_MAX_FLOAT < value < _MAX_FLOAT if type(value) is float else is_finite(value)):
            return _bad(name, value, "a finite number (below 1e20 in magnitude)")
    return None


def candle_problem(item: Any) -> str | None:
    """Why ``item`` is not a valid OHLC candle, or None."""
    if not isinstance(item, dict):
        return _not_object("a candle", item)
    get = item.get
    if not _is_symbol(symbol := get("symbol")):
        return _bad("symbol", symbol, "a non-empty string")
    for name in _CANDLE_VALUES:
        value = get(name)
        if not (0.0 <= value < _MAX_FLOAT if type(value) is float else is_non_negative(value)):
            return _bad(name, value, "a finite number ≥ 0 (below 1e20)")
    if not _is_count(trades := get("trades")):
        return _bad("trades", trades, "an integer ≥ 0")
    interval = get("interval")
    if type(interval) is not int or interval not in OHLC_INTERVALS:
        return _bad("interval", interval, f"one of {OHLC_INTERVALS}")
    for name in ("interval_begin", "timestamp"):
        if not is_timestamp(value := get(name)):
            return _bad(name, value, "an RFC 3339 timestamp")
    return None


def book_entry_problem(item: Any) -> str | None:
    """Why ``item`` cannot be a book entry, or None (its levels are checked by ``OrderBook.apply``)."""
    if not isinstance(item, dict):
        return _not_object("a book entry", item)
    symbol = item.get("symbol")
    if not _is_symbol(symbol):
        return _bad("symbol", symbol, "a non-empty string")
    return None


def pair_problem(item: Any) -> str | None:
    """Why ``item`` is not a valid instrument pair, or None."""
    if not isinstance(item, dict):
        return _not_object("a pair", item)
    get = item.get
    if not _is_symbol(symbol := get("symbol")):
        return _bad("symbol", symbol, "a non-empty string")
    for name in _PAIR_PRECISIONS:
        if not _is_count(value := get(name), MAX_PRECISION + 1):
            return _bad(name, value, f"an integer from 0 to {MAX_PRECISION}")
    return _optional_problem(
        item,
        strings=_PAIR_STRINGS,
        precisions=_PAIR_OPTIONAL_PRECISIONS,
        amounts=_PAIR_AMOUNTS,
        flags=_PAIR_FLAGS,
        counts=_PAIR_LIMITS,
    )


def asset_problem(item: Any) -> str | None:
    """Why ``item`` is not a valid instrument asset, or None."""
    if not isinstance(item, dict):
        return _not_object("an asset", item)
    if not _is_symbol(asset_id := item.get("id")):
        return _bad("id", asset_id, "a non-empty string")
    return _optional_problem(
        item,
        strings=("status",),
        precisions=_ASSET_PRECISIONS,
        amounts=_ASSET_AMOUNTS,
        flags=("borrowable",),
        counts=(),
    )


def _optional_problem(
    item: Mapping[str, Any],
    *,
    strings: tuple[str, ...],
    precisions: tuple[str, ...],
    amounts: tuple[str, ...],
    flags: tuple[str, ...],
    counts: tuple[str, ...],
) -> str | None:
    """Check the optional reference-data fields that are present (``null`` counts as absent)."""
    get = item.get
    for name in strings:
        if (value := get(name)) is not None and type(value) is not str:
            return _bad(name, value, "a string")
    for name in precisions:
        if (value := get(name)) is not None and not _is_count(value, MAX_PRECISION + 1):
            return _bad(name, value, f"an integer from 0 to {MAX_PRECISION}")
    for name in amounts:
        if (value := get(name)) is not None and not is_non_negative(value):
            return _bad(name, value, "a finite number ≥ 0 (below 1e20)")
    for name in flags:
        if (value := get(name)) is not None and type(value) is not bool:
            return _bad(name, value, "true or false")
    for name in counts:
        if (value := get(name)) is not None and not _is_count(value):
            return _bad(name, value, "an integer ≥ 0")
    return None


# -- control frames -------------------------------------------------------------


def status_problem(entry: Any) -> str | None:
    """Why ``entry`` (the first element of a status message's data) is not a valid status, or None."""
    if not isinstance(entry, dict):
        return _not_object("a status", entry)
    get = entry.get
    if (system := get("system")) not in SYSTEM_STATES:
        return _bad("system", system, f"one of {SYSTEM_STATES}")
    for name in ("api_version", "version"):
        if (value := get(name)) is not None and type(value) is not str:
            return _bad(name, value, "a string")
    if (connection_id := get("connection_id")) is not None and not _is_count(connection_id, 2**64):
        return _bad("connection_id", connection_id, "an integer ≥ 0")
    return None


def _request_problem(frame: Mapping[str, Any]) -> str | None:
    """The fields acks and pongs share: ``req_id`` and the two RFC 3339 times."""
    req_id = frame.get("req_id")
    if req_id is not None and type(req_id) is not int:
        return _bad("req_id", req_id, "an integer")
    for name in ("time_in", "time_out"):
        if (value := frame.get(name)) is not None and not is_timestamp(value):
            return _bad(name, value, "an RFC 3339 timestamp")
    return None


def pong_problem(frame: Mapping[str, Any]) -> str | None:
    """Why ``frame`` is not a valid pong, or None."""
    return _request_problem(frame)


_ECHOED: Final[Mapping[str, tuple[type, str]]] = {
    "channel": (str, "a string"),
    "symbol": (str, "a string"),
    "depth": (int, "an integer"),
    "interval": (int, "an integer"),
    "snapshot": (bool, "true or false"),
    "event_trigger": (str, "a string"),
}


def ack_problem(frame: Mapping[str, Any]) -> str | None:
    """Why ``frame`` is not a valid acknowledgement, or None.

    The echoed parameters the session reads are checked for their types (an
    ``interval`` that is a list would otherwise reach a dict key).
    """
    if type(frame.get("success")) is not bool:
        return "an acknowledgement needs a boolean 'success'"
    if (method := frame.get("method")) is not None and type(method) is not str:
        return _bad("method", method, "a string")
    if (problem := _request_problem(frame)) is not None:
        return problem
    result = frame.get("result")
    if result is not None and not isinstance(result, dict):
        return _bad("result", result, "an object")
    for name, (kind, wanted) in _ECHOED.items():
        value = result.get(name) if result else None
        if value is not None and type(value) is not kind:
            return _bad(f"result {name}", value, wanted)
    for name in ("symbol", "error"):
        if (value := frame.get(name)) is not None and type(value) is not str:
            return _bad(name, value, "a string")
    for warnings in (frame.get("warnings"), result.get("warnings") if result else None):
        if warnings is not None and (
            not isinstance(warnings, list) or not all(type(w) is str for w in warnings)
        ):
            return _bad("warnings", warnings, "a list of strings")
    return None
