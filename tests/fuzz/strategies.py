"""Hypothesis strategies: JSON in Kraken's vocabulary, hostile values, mutations of real frames."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import strategies as st

__all__ = ["HOSTILE_VALUES", "json_values", "kraken_like_frames", "mutated", "paths_of"]

KEYS = (
    "channel", "type", "data", "method", "success", "result", "req_id", "error", "symbol", "side",
    "price", "qty", "ord_type", "trade_id", "timestamp", "bids", "asks", "checksum", "interval",
    "interval_begin", "open", "high", "low", "close", "vwap", "volume", "trades", "bid", "ask",
    "bid_qty", "ask_qty", "last", "change", "change_pct", "system", "pairs", "assets", "id",
    "price_precision", "qty_precision", "depth", "snapshot", "time_in", "time_out", "warnings",
)  # fmt: skip
WORDS = (
    "trade", "book", "ticker", "ohlc", "instrument", "status", "heartbeat", "pong", "subscribe",
    "unsubscribe", "snapshot", "update", "buy", "sell", "limit", "market", "online", "maintenance",
    "BTC/USD", "ETH/USD", "2023-09-25T09:04:31.742599Z", "1970-01-01T00:00:00Z",
)  # fmt: skip

HOSTILE_VALUES = st.one_of(
    st.sampled_from(
        [
            math.nan,
            math.inf,
            -math.inf,
            -1,
            0,
            -0.0,
            1e308,
            -1e308,
            5e-324,
            2**63,
            2**64,
            -(2**63),
            10**400,
            True,
            False,
            None,
            "",
            "x",
            "NaN",
            "1.5",
            [],
            {},
            [1],
            {"a": 1},
            [[[[]]]],
            "2023-13-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "1677-09-21T00:12:43Z",
            "buy ",
            "SELL",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), inner, max_size=8),
    ),
    max_leaves=20,
)


def kraken_like_frames() -> st.SearchStrategy[dict[str, Any]]:
    """Objects with a known ``channel`` or ``method`` and random fields: they reach the deep paths."""
    head = st.one_of(
        st.fixed_dictionaries({"channel": st.sampled_from(WORDS[:6]), "type": st.sampled_from(WORDS[10:12])}),
        st.fixed_dictionaries({"method": st.sampled_from(WORDS[7:10]), "success": st.booleans()}),
    )
    return st.tuples(head, st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)).map(
        lambda parts: {**parts[1], **parts[0]}
    )


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) to a node of a decoded frame, the root excluded."""
    paths: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        path = (*prefix, key)
        paths.append(path)
        paths.extend(paths_of(child, path))
    return paths


def mutated(text: str, path: tuple[Any, ...], action: str, value: Any) -> str:
    """``text`` with the node at ``path`` replaced by ``value``, deleted, or duplicated."""
    frame = json.loads(text)
    parent = frame
    for key in path[:-1]:
        parent = parent[key]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "duplicate" and isinstance(parent, list):
        parent.insert(last, parent[last])
    else:
        parent[last] = value
    return json.dumps(frame)
