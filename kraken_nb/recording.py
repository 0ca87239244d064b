"""Recordings of raw WebSocket frames: the file format, its reader and writer, and offline replay.

A recording is gzip-compressed JSON lines. The first line is a header::

    {"format": "kraken_nb.recording", "format_version": 1, "version": "0.1.0",
     "url": "wss://ws.kraken.com/v2", "started": 1700000000000000000,
     "subscriptions": [{"channel": "trade", "symbol": ["BTC/USD"]}]}

and every further line is one received frame with its receive time in
nanoseconds since the epoch, the frame kept as the exact text that arrived::

    {"t": 1700000000123456789, "frame": "{\\"channel\\":\\"heartbeat\\"}"}

``replay`` feeds a recording to a fresh :class:`~kraken_nb.core.session.Session`
(the same subscriptions in the same order, so request ids line up) and returns
the session and a :class:`ReplaySummary`; it needs no network and no clock.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from os import PathLike
from types import TracebackType
from typing import IO, Any, Final

from kraken_nb.core.params import Subscription, validate_subscription
from kraken_nb.core.session import Session
from kraken_nb.errors import RecordingError

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Frame",
    "RecordingError",
    "RecordingHeader",
    "RecordingReader",
    "RecordingWriter",
    "ReplaySummary",
    "decode_line",
    "encode_frame",
    "encode_header",
    "replay",
    "subscriptions_of",
]

FORMAT: Final = "kraken_nb.recording"
FORMAT_VERSION: Final = 1

Path = str | PathLike[str]


@dataclass(frozen=True, slots=True)
class RecordingHeader:
    """What was recorded: the server, the subscriptions (request params) and the start time."""

    url: str
    subscriptions: tuple[Mapping[str, Any], ...]
    started_ns: int
    version: str = field(default="")

    def to_json(self) -> dict[str, Any]:
        """The header line's JSON object."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "url": self.url,
            "started": self.started_ns,
            "subscriptions": [dict(s) for s in self.subscriptions],
        }


@dataclass(frozen=True, slots=True)
class Frame:
    """One received frame: receive time (ns since the epoch) and its exact text."""

    t: int
    text: str


def encode_header(header: RecordingHeader) -> str:
    """The header as one JSON line (without the newline)."""
    return json.dumps(header.to_json(), separators=(",", ":"))


def encode_frame(t_ns: int, text: str | bytes) -> str:
    """One frame as one JSON line (without the newline); bytes are decoded as UTF-8."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return json.dumps({"t": t_ns, "frame": text}, separators=(",", ":"), ensure_ascii=False)


def decode_line(line: str, where: str = "recording") -> RecordingHeader | Frame:
    """Decode one line: a header or a frame; ``where`` names the line in errors."""
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise RecordingError(f"{where}: not JSON ({exc})") from None
    except RecursionError:
        raise RecordingError(f"{where}: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise RecordingError(f"{where}: expected a JSON object, got {line[:80]!r}")
    if "frame" in obj:
        t, text = obj.get("t"), obj["frame"]
        if isinstance(t, bool) or not isinstance(t, int) or not isinstance(text, str):
            raise RecordingError(f"{where}: a frame needs an integer 't' and a string 'frame'")
        return Frame(t, text)
    if obj.get("format") != FORMAT:
        raise RecordingError(f"{where}: not a {FORMAT} header (format={obj.get('format')!r})")
    if obj.get("format_version") != FORMAT_VERSION:
        raise RecordingError(
            f"{where}: format_version {obj.get('format_version')!r} is not supported "
            f"(expected {FORMAT_VERSION})"
        )
    subscriptions = obj.get("subscriptions")
    started = obj.get("started")
    if not isinstance(subscriptions, list) or not all(isinstance(s, dict) for s in subscriptions):
        raise RecordingError(f"{where}: 'subscriptions' must be a list of objects")
    if isinstance(started, bool) or not isinstance(started, int):
        raise RecordingError(f"{where}: 'started' must be an integer (ns since the epoch)")
    return RecordingHeader(
        url=str(obj.get("url", "")),
        subscriptions=tuple(subscriptions),
        started_ns=started,
        version=str(obj.get("version", "")),
    )


def subscriptions_of(header: RecordingHeader) -> list[Subscription]:
    """The header's subscriptions, validated (``InvalidParams`` names a bad one)."""
    result = []
    for params in header.subscriptions:
        params = dict(params)
        channel = params.pop("channel", None)
        symbols = params.pop("symbol", None)
        result.append(validate_subscription(channel, symbols, **params))  # type: ignore[arg-type]
    return result


class RecordingWriter:
    """Write a recording: the header on open, then :meth:`write` per frame. A context manager."""

    def __init__(self, path: Path, header: RecordingHeader) -> None:
        self.path = path
        self.frames = 0
        self._file: IO[str] = gzip.open(path, "wt", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._file.write(encode_header(header) + "\n")

    def write(self, t_ns: int, text: str | bytes) -> None:
        """Append one received frame."""
        self._file.write(encode_frame(t_ns, text) + "\n")
        self.frames += 1

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if not self._file.closed:
            self._file.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RecordingReader:
    """Read a recording: ``header`` at once, frames by iterating. A context manager.

    A recording cut off by a crash (a truncated last line or gzip stream)
    ends the frames early but keeps those read: ``truncated`` then says so
    and ``lines`` how many lines were read whole. Any other bad content (not
    gzip, not UTF-8, not a frame, JSON nested too deeply) raises
    :class:`RecordingError` naming the file and line.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.truncated = False
        """Whether the file ended in the middle of a line or of its gzip stream."""
        self.lines = 1
        """Lines read whole so far (the header counts)."""
        self._file: IO[bytes] = gzip.open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            first = self._file.readline()
            if not first:
                raise RecordingError(f"{path}: empty recording")
            header = decode_line(_text(first, f"{path}:1"), f"{path}:1")
        except (OSError, EOFError, zlib.error) as exc:
            self._file.close()
            raise RecordingError(f"{path}: not a gzip recording ({exc})") from None
        except BaseException:
            self._file.close()
            raise
        if not isinstance(header, RecordingHeader):
            self._file.close()
            raise RecordingError(f"{path}:1: the first line must be the header")
        self.header = header

    def __iter__(self) -> Iterator[Frame]:
        lineno = self.lines
        where = f"{self.path}:{lineno + 1}"
        try:
            for line in self._file:
                lineno += 1
                where = f"{self.path}:{lineno}"
                if not line.endswith(b"\n"):
                    self.truncated = True  # cut off mid-line
                    return
                frame = decode_line(_text(line, where), where)
                if not isinstance(frame, Frame):
                    raise RecordingError(f"{where}: a second header")
                self.lines = lineno
                yield frame
        except EOFError:
            self.truncated = True  # gzip stream cut off: keep what was read
        except (OSError, zlib.error) as exc:
            raise RecordingError(f"{where}: corrupt gzip data ({exc})") from None

    def close(self) -> None:
        """Close the file (idempotent)."""
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _text(line: bytes, where: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordingError(f"{where}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


@dataclass(frozen=True, slots=True)
class ReplaySummary:
    """What a replay produced."""

    frames: int
    seconds: float
    trades: int
    tickers: int
    candles: int
    book_updates: int
    books: int
    books_valid: int
    checksum_mismatches: int
    resyncs: int
    malformed: int
    truncated: bool = False
    """Whether the recording was cut off (the frames before the cut were replayed)."""

    def lines(self) -> list[str]:
        """``name: value`` lines for a terminal (booleans as ``true``/``false``)."""
        return [f"{f.name}: {_shown(getattr(self, f.name))}" for f in fields(self)]


def _shown(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def replay(header: RecordingHeader, frames: Iterable[Frame], session: Session | None = None) -> ReplaySummary:
    """Feed ``frames`` to ``session`` (a fresh one by default) as if received live; summarise.

    The session subscribes to the header's subscriptions first, in order, so
    that its request ids match the recorded acks; requests it queues while
    replaying (e.g. a resync) are dropped, since the recording already holds
    what the server answered to the recorder's. When ``frames`` is a
    :class:`RecordingReader`, the summary says whether the file was truncated.
    """
    session = session if session is not None else Session()
    for subscription in subscriptions_of(header):
        session.subscribe(subscription)
    session.connection_made(header.started_ns)
    session.data_to_send()
    count, first, last = 0, None, None
    events: dict[str, int] = {}
    for frame in frames:
        count += 1
        first = frame.t if first is None else first
        last = frame.t
        for event in session.feed(frame.text, frame.t):
            events[event.kind] = events.get(event.kind, 0) + 1
        session.data_to_send()
    return ReplaySummary(
        frames=count,
        seconds=0.0 if first is None or last is None else (last - first) / 1e9,
        trades=session.counters["trades"],
        tickers=events.get("ticker", 0),
        candles=events.get("ohlc", 0),
        book_updates=events.get("book", 0),
        books=len(session.books),
        books_valid=sum(1 for book in session.books.values() if book.valid),
        checksum_mismatches=session.counters["checksum_mismatches"],
        resyncs=session.counters["resyncs"],
        malformed=session.counters["malformed"],
        truncated=isinstance(frames, RecordingReader) and frames.truncated,
    )
