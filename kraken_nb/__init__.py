"""Live Kraken Spot WebSocket v2 market data for Jupyter notebooks."""

from __future__ import annotations

import logging

from kraken_nb.client import KRAKEN_WS_URL, KrakenClient
from kraken_nb.connect import connect, source_of
from kraken_nb.core.book import OrderBook
from kraken_nb.core.subscriptions import SubscriptionStatus
from kraken_nb.errors import (
    ChecksumMismatch,
    ClientClosed,
    ConnectionFailed,
    DatasetError,
    InvalidParams,
    KrakenError,
    MalformedMessage,
    RecordingError,
    RelayError,
    RequestTimeout,
    ServerError,
    SubscriptionRejected,
)
from kraken_nb.history import History, Recorder

__all__ = [
    "KRAKEN_WS_URL",
    "ChecksumMismatch",
    "ClientClosed",
    "ConnectionFailed",
    "DatasetError",
    "History",
    "InvalidParams",
    "KrakenClient",
    "KrakenError",
    "MalformedMessage",
    "OrderBook",
    "Recorder",
    "RecordingError",
    "RelayError",
    "RequestTimeout",
    "ServerError",
    "SubscriptionRejected",
    "SubscriptionStatus",
    "__version__",
    "connect",
    "source_of",
]

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
