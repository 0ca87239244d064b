"""The recording format, its reader and writer, and offline replay into a Session."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from kraken_nb.core.session import Session
from kraken_nb.errors import InvalidParams
from kraken_nb.recording import (
    FORMAT,
    Frame,
    RecordingError,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    decode_line,
    encode_frame,
    encode_header,
    replay,
)

VECTORS = Path(__file__).parent / "core" / "vectors"
T0 = 1_700_000_000_000_000_000
BOOK_HEADER = RecordingHeader(
    url="wss://ws.kraken.com/v2",
    subscriptions=({"channel": "book", "symbol": ["BTC/USD"], "depth": 10},),
    started_ns=T0,
    version="test",
)
INSTRUMENT = json.dumps(
    {
        "channel": "instrument",
        "type": "snapshot",
        "data": {
            "assets": [{"id": "BTC", "precision": 10}, {"id": "USD", "precision": 4}],
            "pairs": [
                {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "price_precision": 1, "qty_precision": 8}
            ],
        },
    }
)


def kraken_book_frames(corrupt_update: int | None = None) -> list[Frame]:
    """Kraken's recorded BTC/USD depth-10 book (snapshot + updates, real checksums) as frames."""
    vector = json.loads((VECTORS / "btcusd_book10_snapshot.json").read_text())
    messages = [vector["snapshot"], *vector["updates"]]
    if corrupt_update is not None:
        messages[1 + corrupt_update]["data"][0]["checksum"] ^= 1
    texts = [INSTRUMENT, *(json.dumps(m) for m in messages)]
    return [Frame(T0 + i * 1_000_000, text) for i, text in enumerate(texts)]


def write(path: Path, header: RecordingHeader, frames: list[Frame]) -> None:
    with RecordingWriter(path, header) as writer:
        for frame in frames:
            writer.write(frame.t, frame.text)


# -- format -------------------------------------------------------------------------


def test_header_line_round_trips_and_names_the_format():
    line = encode_header(BOOK_HEADER)
    assert json.loads(line)["format"] == FORMAT
    assert decode_line(line) == BOOK_HEADER


def test_frame_line_keeps_the_exact_text():
    text = '{"channel":"trade","data":[{"price":29430.30000000,"qty":0.00011621}]}'
    line = encode_frame(T0, text)
    assert json.loads(line) == {"t": T0, "frame": text}
    assert decode_line(line) == Frame(T0, text)
    assert decode_line(encode_frame(T0, text.encode())) == Frame(T0, text)


@pytest.mark.parametrize(
    ("line", "complaint"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"t": "soon", "frame": "{}"}', "integer 't'"),
        ('{"t": 1, "frame": 5}', "string 'frame'"),
        ('{"format": "something else"}', "format='something else'"),
        (json.dumps({**BOOK_HEADER.to_json(), "format_version": 99}), "format_version 99"),
        (json.dumps({**BOOK_HEADER.to_json(), "subscriptions": "trade"}), "subscriptions"),
    ],
)
def test_bad_lines_raise_a_recording_error_naming_the_line(line, complaint):
    with pytest.raises(RecordingError, match=r"file\.jsonl:7") as info:
        decode_line(line, "file.jsonl:7")
    assert complaint in str(info.value)


# -- reader and writer ------------------------------------------------------------------


def test_writer_and_reader_round_trip_through_gzip(tmp_path):
    path = tmp_path / "book.jsonl.gz"
    frames = kraken_book_frames()
    write(path, BOOK_HEADER, frames)
    with gzip.open(path, "rt") as raw:
        lines = raw.read().splitlines()
    assert len(lines) == 1 + len(frames)
    with RecordingReader(path) as reader:
        assert reader.header == BOOK_HEADER
        assert list(reader) == frames


def test_writer_counts_frames(tmp_path):
    with RecordingWriter(tmp_path / "r.jsonl.gz", BOOK_HEADER) as writer:
        writer.write(T0, "{}")
        writer.write(T0 + 1, b"{}")
    assert writer.frames == 2


def test_a_recording_cut_off_mid_line_keeps_the_complete_frames(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    frames = kraken_book_frames()[:3]
    body = encode_header(BOOK_HEADER) + "\n" + "".join(encode_frame(f.t, f.text) + "\n" for f in frames)
    with gzip.open(path, "wt") as raw:
        raw.write(body + encode_frame(T0, "{}")[:10])
    with RecordingReader(path) as reader:
        assert list(reader) == frames
        assert reader.truncated and reader.lines == 1 + len(frames)
    with RecordingReader(path) as reader:
        summary = replay(reader.header, reader)
    assert summary.truncated and summary.frames == len(frames)
    assert "truncated: true" in summary.lines()


def test_a_whole_recording_is_not_truncated(tmp_path):
    path = tmp_path / "whole.jsonl.gz"
    write(path, BOOK_HEADER, kraken_book_frames())
    with RecordingReader(path) as reader:
        summary = replay(reader.header, reader)
        assert not reader.truncated
    assert not summary.truncated and "truncated: false" in summary.lines()


def test_a_truncated_gzip_stream_keeps_what_was_read(tmp_path):
    path = tmp_path / "crash.jsonl.gz"
    write(path, BOOK_HEADER, kraken_book_frames())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # lose the gzip trailer and some data
    with RecordingReader(path) as reader:
        frames = list(reader)
        assert reader.truncated
    assert 0 < len(frames) < len(kraken_book_frames())
    assert frames == kraken_book_frames()[: len(frames)]


def test_files_that_are_not_recordings_are_refused(tmp_path):
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text("hello\n")
    with pytest.raises(RecordingError, match="not a gzip recording"):
        RecordingReader(plain)
    frames_first = tmp_path / "frames_first.jsonl.gz"
    with gzip.open(frames_first, "wt") as raw:
        raw.write(encode_frame(T0, "{}") + "\n")
    with pytest.raises(RecordingError, match="first line must be the header"):
        RecordingReader(frames_first)
    empty = tmp_path / "empty.jsonl.gz"
    with gzip.open(empty, "wt"):
        pass
    with pytest.raises(RecordingError, match="empty recording"):
        RecordingReader(empty)


def bad_recordings(tmp_path) -> dict[str, tuple[object, str]]:
    """Files that must end in a clear ``FILE:LINE: ...`` error: path → expected location and complaint."""
    rng = random.Random(19)
    noise = tmp_path / "noise.jsonl.gz"
    noise.write_bytes(gzip.compress(rng.randbytes(4096)))
    late_noise = tmp_path / "late_noise.jsonl.gz"
    body = (encode_header(BOOK_HEADER) + "\n" + encode_frame(T0, "{}") + "\n").encode()
    late_noise.write_bytes(gzip.compress(body + b"\xff\xfe" + rng.randbytes(100) + b"\n"))
    nested = tmp_path / "nested.jsonl.gz"
    with gzip.open(nested, "wt") as raw:
        raw.write(encode_header(BOOK_HEADER) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n")
    nested_header = tmp_path / "nested_header.jsonl.gz"
    with gzip.open(nested_header, "wt") as raw:
        raw.write('{"a":' * 5000 + "1" + "}" * 5000 + "\n")
    return {
        str(noise): (f"{noise}:1", "not UTF-8"),
        str(late_noise): (f"{late_noise}:3", "not UTF-8"),
        str(nested): (f"{nested}:2", "nested too deeply"),
        str(nested_header): (f"{nested_header}:1", "nested too deeply"),
    }


def test_random_bytes_and_deep_nesting_raise_a_recording_error_naming_the_line(tmp_path):
    for path, (where, complaint) in bad_recordings(tmp_path).items():
        with pytest.raises(RecordingError) as info, RecordingReader(path) as reader:
            list(reader)
        assert str(info.value).startswith(f"{where}: ") and complaint in str(info.value), info.value


# -- replay ----------------------------------------------------------------------------


def test_replaying_krakens_recorded_book_keeps_it_valid():
    frames = kraken_book_frames()
    session = Session()
    summary = replay(BOOK_HEADER, frames, session)
    updates = len(frames) - 2  # all but the instrument frame and the snapshot
    assert summary.frames == len(frames)
    assert summary.book_updates == 1 + updates
    assert (summary.books, summary.books_valid) == (1, 1)
    assert summary.checksum_mismatches == 0 and summary.resyncs == 0
    assert summary.seconds == pytest.approx((len(frames) - 1) / 1000)
    assert session.books["BTC/USD"].valid


def test_replaying_a_corrupted_checksum_is_counted_and_resynced():
    summary = replay(BOOK_HEADER, kraken_book_frames(corrupt_update=5))
    assert summary.checksum_mismatches == 1
    assert summary.resyncs == 1
    # updates after the mismatch wait for a fresh snapshot the recording does not hold
    assert summary.books_valid == 0
    assert summary.book_updates == 1 + 5


def test_replay_counts_trades_once_per_trade_id():
    header = RecordingHeader("ws://x/v2", ({"channel": "trade", "symbol": ["BTC/USD"]},), T0)
    row = {"symbol": "BTC/USD", "side": "buy", "price": 100.5, "qty": 1.25, "ord_type": "limit"}
    batches = [[1, 2], [2, 3], [4]]
    frames = [
        Frame(
            T0 + i,
            json.dumps(
                {
                    "channel": "trade",
                    "type": "update",
                    "data": [
                        {**row, "trade_id": tid, "timestamp": "2024-01-01T00:00:00.000000Z"} for tid in ids
                    ],
                }
            ),
        )
        for i, ids in enumerate(batches)
    ]
    summary = replay(header, [*frames, Frame(T0 + 9, "{broken")])
    assert summary.trades == 4
    assert summary.malformed == 1
    assert summary.frames == 4


def test_summary_lines_print_every_count():
    summary = replay(BOOK_HEADER, kraken_book_frames())
    lines = dict(line.split(": ") for line in summary.lines())
    assert lines["frames"] == str(summary.frames)
    assert lines["books_valid"] == "1"
    assert lines["checksum_mismatches"] == "0"


def test_a_header_with_a_bad_subscription_names_it():
    header = RecordingHeader("ws://x/v2", ({"channel": "book", "symbol": ["BTC/USD"], "depth": 7},), T0)
    with pytest.raises(InvalidParams, match="depth"):
        replay(header, [])
