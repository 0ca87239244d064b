"""RFC3339 timestamps ↔ integer nanoseconds since the Unix epoch (UTC).

Kraken stamps trades, candles and books like ``2023-09-25T09:04:31.742599Z``.
``datetime.fromisoformat`` keeps at most microseconds, so the parser splits the
text: the ``YYYY-MM-DDTHH:MM:SS`` head goes through ``fromisoformat`` once and
is cached (trades of one burst share it), the fraction is read as an integer
(up to 9 digits, nanosecond precision) and the offset is applied. A cache hit
costs well under a microsecond.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache

from kraken_nb.errors import InvalidParams, MalformedMessage, brief

__all__ = ["format_rfc3339_ns", "parse_rfc3339_ns"]

_NS_PER_S = 1_000_000_000
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
_DIGITS = frozenset("0123456789")
_SCALE = tuple(10 ** (9 - count) for count in range(10))


@lru_cache(maxsize=4096)
def _head_seconds(head: str) -> int:
    """Seconds since the epoch of a naive ``YYYY-MM-DDTHH:MM:SS`` text."""
    if (
        len(head) != 19
        or head[4] != "-"
        or head[7] != "-"
        or head[10] not in "Tt"
        or head[13] != ":"
        or head[16] != ":"
        or not _DIGITS.issuperset(head[:4] + head[5:7] + head[8:10] + head[11:13] + head[14:16] + head[17:])
    ):
        raise ValueError(head)
    return (datetime.fromisoformat(head) - _NAIVE_EPOCH) // _ONE_SECOND


@lru_cache(maxsize=64)
def _offset_seconds(offset: str) -> int:
    """Seconds east of UTC of a ``+HH:MM`` / ``-HH:MM`` offset."""
    if len(offset) != 6 or offset[0] not in "+-" or offset[3] != ":":
        raise ValueError(offset)
    hours, minutes = offset[1:3], offset[4:6]
    if not _DIGITS.issuperset(hours + minutes) or int(hours) > 23 or int(minutes) > 59:
        raise ValueError(offset)
    seconds = int(hours) * 3600 + int(minutes) * 60
    return -seconds if offset[0] == "-" else seconds


def parse_rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch (UTC) of an RFC3339 timestamp.

    Accepts ``Z`` or a ``±HH:MM`` offset and a fraction of any length (digits
    past the ninth are truncated). Raises ``MalformedMessage`` naming the text
    when it is not an RFC3339 date-time.
    """
    try:
        seconds = _head_seconds(text[:19])
        end = len(text) - 1
        if text[end] in "Zz":
            offset = 0
        else:
            end -= 5
            offset = _offset_seconds(text[end:])
        if end == 19:
            nanos = 0
        else:
            digits = text[20:end]
            if end < 19 or text[19] != "." or not digits.isdigit() or not digits.isascii():
                raise ValueError(text)
            count = len(digits)
            nanos = int(digits) * _SCALE[count] if count <= 9 else int(digits[:9])
    except (ValueError, TypeError, IndexError):
        raise MalformedMessage(f"not an RFC3339 timestamp: {brief(text, 60)}") from None
    return (seconds - offset) * _NS_PER_S + nanos


def format_rfc3339_ns(ns: int, digits: int = 6) -> str:
    """The ``YYYY-MM-DDTHH:MM:SS.fffffffZ`` text of ``ns`` with ``digits`` (0–9) fraction digits."""
    if not 0 <= digits <= 9:
        raise InvalidParams("digits", digits, "0 to 9")
    seconds, nanos = divmod(int(ns), _NS_PER_S)
    head = (_NAIVE_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds")
    if digits == 0:
        return head + "Z"
    return f"{head}.{nanos:09d}"[: 20 + digits] + "Z"
