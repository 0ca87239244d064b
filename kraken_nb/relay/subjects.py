"""Where each frame goes on NATS, and the message id that makes a second publish a duplicate.

Pure functions, no I/O. Subjects (``kraken.v2.<channel>.<SYMBOL with / as ->``):

========================================  ==========================================
``kraken.v2.trade.BTC-USD`` (and book,    raw data frames, unchanged, in the main
ticker, ohlc)                             stream
``kraken.v2.status``                      Kraken's status frames
``kraken.v2.instrument``                  instrument frames (reference data)
``kraken.v2.gap``                         the relay's gap records (JSON, not Kraken's)
``kraken.v2.other``                       frames the relay could not classify (malformed,
                                          unknown kinds, no item passing the schema),
                                          kept so nothing vanishes
``kraken.v2.book.snapshot.BTC-USD``       the latest checksum-valid book, in the snapshot
                                          stream (last message per subject)
``kraken.v2.instrument.snapshot``         the latest instrument snapshot, same stream
``kraken.v2.manifest.<relay>``            what each relay carries, same stream
========================================  ==========================================

A symbol's ``.`` (the NATS token separator) becomes ``_``. Acks, pongs and
heartbeats answer or keep alive the relay's own connection and are not
published (clients get acks synthesised from the manifest).

Message ids (``Nats-Msg-Id``) are derived from the frame, so a restarted relay
or a hot standby on its own connection produces the same id for the same
frame, and JetStream stores it once (within the stream's duplicate window):

- trades: ``trade:<SYMBOL>:<newest trade_id>``: two connections may batch
  trades differently, but a frame ending at the same trade is the same news;
  a batch ending elsewhere is stored and its older trades are dropped by the
  client's de-duplication by trade id;
- everything else: the channel, the symbol, a 96-bit BLAKE2b digest of the
  exact text and how many times the same text came before on that subject
  among the last ``Occurrences.WINDOW`` frames (:class:`Occurrences`). A book
  level set, removed and set again within one timestamp gives the same text
  twice, and both must be stored; two connections that receive the same
  frames in the same order count alike.
"""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from typing import ClassVar, Final, NamedTuple

from kraken_nb.core.messages import (
    Ack,
    Heartbeat,
    InstrumentMessage,
    Message,
    Pong,
    Status,
    TradeMessage,
    Unknown,
)

__all__ = [
    "DATA_CHANNELS",
    "GAP_SUBJECT",
    "INSTRUMENT_SNAPSHOT_SUBJECT",
    "INSTRUMENT_SUBJECT",
    "MAIN_SUBJECTS",
    "OTHER_SUBJECT",
    "PREFIX",
    "SNAPSHOT_SUBJECTS",
    "STATUS_SUBJECT",
    "Occurrences",
    "Route",
    "book_snapshot_subject",
    "data_subject",
    "digest",
    "manifest_subject",
    "routes",
    "snapshot_stream_name",
    "symbol_token",
]

PREFIX: Final = "kraken.v2"
DATA_CHANNELS: Final = ("trade", "book", "ticker", "ohlc")
STATUS_SUBJECT: Final = f"{PREFIX}.status"
INSTRUMENT_SUBJECT: Final = f"{PREFIX}.instrument"
GAP_SUBJECT: Final = f"{PREFIX}.gap"
OTHER_SUBJECT: Final = f"{PREFIX}.other"
INSTRUMENT_SNAPSHOT_SUBJECT: Final = f"{PREFIX}.instrument.snapshot"

MAIN_SUBJECTS: Final = (
    *(f"{PREFIX}.{channel}.*" for channel in DATA_CHANNELS),
    STATUS_SUBJECT,
    INSTRUMENT_SUBJECT,
    GAP_SUBJECT,
    OTHER_SUBJECT,
)
"""The subjects of the main stream (raw frames and gap records)."""

SNAPSHOT_SUBJECTS: Final = (f"{PREFIX}.book.snapshot.*", INSTRUMENT_SNAPSHOT_SUBJECT, f"{PREFIX}.manifest.*")
"""The subjects of the snapshot stream, which keeps the last message per subject."""


class Route(NamedTuple):
    """Where one frame is published and under which id."""

    subject: str
    channel: str
    symbol: str | None
    msg_id: str


class Occurrences:
    """How often each text came before on one subject, among its last ``WINDOW`` frames."""

    WINDOW: ClassVar[int] = 1024

    def __init__(self) -> None:
        self._recent: deque[str] = deque()
        self._counts: Counter[str] = Counter()

    def count(self, text_digest: str) -> int:
        """The occurrences of ``text_digest`` before this one; then note this one."""
        before = self._counts[text_digest]
        self._recent.append(text_digest)
        self._counts[text_digest] += 1
        if len(self._recent) > self.WINDOW:
            old = self._recent.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        return before


def symbol_token(symbol: str) -> str:
    """``BTC/USD`` → ``BTC-USD``: a symbol as one NATS subject token."""
    return symbol.replace("/", "-").replace(".", "_")


def data_subject(channel: str, symbol: str) -> str:
    """The subject of ``channel`` data for ``symbol``, e.g. ``kraken.v2.trade.BTC-USD``."""
    return f"{PREFIX}.{channel}.{symbol_token(symbol)}"


def book_snapshot_subject(symbol: str) -> str:
    """The snapshot stream's subject of ``symbol``'s book."""
    return f"{PREFIX}.book.snapshot.{symbol_token(symbol)}"


def manifest_subject(relay: str) -> str:
    """The snapshot stream's subject of the manifest of the relay named ``relay``."""
    return f"{PREFIX}.manifest.{symbol_token(relay)}"


def snapshot_stream_name(stream: str) -> str:
    """The name of the snapshot stream that goes with the main stream ``stream``."""
    return f"{stream}_SNAPSHOTS"


def digest(payload: bytes) -> str:
    """A 96-bit BLAKE2b digest of ``payload`` in hex."""
    return hashlib.blake2b(payload, digest_size=12).hexdigest()


def routes(
    payload: bytes, message: Message | None, occurrences: dict[str, Occurrences] | None = None
) -> list[Route]:
    """Where the frame ``payload`` (parsed as ``message``, None if malformed) goes; [] if nowhere.

    A data frame goes to the subject of each symbol it names (Kraken sends
    one symbol per frame, so that is one subject). ``occurrences`` (kept by
    the caller per subject, across frames) numbers repeated texts; without
    it every text counts as new.
    """

    def numbered(subject: str, prefix: str, text_digest: str) -> str:
        if occurrences is None:
            return f"{prefix}:{text_digest}:0"
        counter = occurrences.get(subject)
        if counter is None:
            counter = occurrences[subject] = Occurrences()
        return f"{prefix}:{text_digest}:{counter.count(text_digest)}"

    if isinstance(message, (Ack, Pong, Heartbeat)):
        return []
    if isinstance(message, Status):
        return [Route(STATUS_SUBJECT, "status", None, numbered(STATUS_SUBJECT, "status", digest(payload)))]
    if isinstance(message, InstrumentMessage):
        instrument_id = numbered(INSTRUMENT_SUBJECT, "instrument", digest(payload))
        return [Route(INSTRUMENT_SUBJECT, "instrument", None, instrument_id)]
    if message is None or isinstance(message, Unknown):
        return [Route(OTHER_SUBJECT, "other", None, numbered(OTHER_SUBJECT, "other", digest(payload)))]
    channel = message.channel
    symbols = message.symbols()
    if not symbols:  # every item failed the schema: kept as it came, for the record
        return [Route(OTHER_SUBJECT, "other", None, numbered(OTHER_SUBJECT, "other", digest(payload)))]
    if isinstance(message, TradeMessage):
        newest = {row["symbol"]: row["trade_id"] for row in message.data}
        return [
            Route(data_subject(channel, symbol), channel, symbol, f"trade:{symbol}:{newest[symbol]}")
            for symbol in symbols
        ]
    text_digest = digest(payload)
    found = []
    for symbol in symbols:
        subject = data_subject(channel, symbol)
        found.append(Route(subject, channel, symbol, numbered(subject, f"{channel}:{symbol}", text_digest)))
    return found
