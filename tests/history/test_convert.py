"""``kraken-nb convert``: a gzip JSON-lines recording becomes the dataset a live recorder would have written.

The recording is made by ``kraken-nb record`` from the simulator over a real
socket; ``convert`` feeds it through a ``Session`` with the recorder's tap, the
same path as live, so History equals the frames of a session that replays it.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

from kraken_nb import History
from kraken_nb.cli import main
from kraken_nb.core.session import Session
from kraken_nb.recording import RecordingReader, replay

from .helpers import SYMBOLS, compare, parts


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recording") / "rec.jsonl.gz"
    args = ["record", "--simulator", "--speed", "20", "--seconds", "3", "--out", str(path)]
    for channel in ("trade", "ticker", "ohlc", "book"):
        args += ["--channel", channel]
    for symbol in SYMBOLS:
        args += ["--symbol", symbol]
    completed = subprocess.run(
        [sys.executable, "-m", "kraken_nb.cli", *args], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return path


def replayed(path: Path) -> Session:
    """A session fed the recording, as ``kraken-nb replay`` does."""
    session = Session()
    with RecordingReader(path) as reader:
        replay(reader.header, reader, session)
    return session


@pytest.mark.parametrize("exact", [True, False])
def test_convert_gives_the_frames_of_a_session_replaying_the_recording(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], exact: bool
) -> None:
    out = tmp_path / "data"
    assert main(["convert", str(recording), "--out", str(out), "--roll-seconds", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "Converted" in printed and "trades" in printed
    assert len(parts(out, "trades")) >= 4  # rolled on the recorded receive times
    session = replayed(recording)
    with History(out) as history:
        for symbol in SYMBOLS:
            compare(history.trades(symbol, exact=exact), session.trades.to_frame(symbol, exact=exact))
            compare(history.ticker(symbol, exact=exact), session.tickers.to_frame(symbol, exact=exact))
            compare(
                history.candles(symbol, 1, exact=exact),
                session.candles.to_frame(symbol, interval=1, exact=exact),
            )
            book = history.book_at(symbol, session.last_message_ns)
            assert book is not None and book.valid
            assert book.checksum() == session.books[symbol].checksum()


def test_converting_twice_adds_nothing(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "data"
    assert main(["convert", str(recording), "--out", str(out)]) == 0
    files = sorted(out.rglob("part-*.parquet"))
    capsys.readouterr()
    assert main(["convert", str(recording), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "no rows" in printed and "already held" in printed
    assert sorted(out.rglob("part-*.parquet")) == files
    with History(out) as history:
        trades = history.trades()
    assert not trades.duplicated(["symbol", "trade_id"]).any()


def test_a_recording_cut_off_by_a_crash_converts_up_to_the_cut(
    recording: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cut = tmp_path / "cut.jsonl.gz"
    data = gzip.decompress(recording.read_bytes())
    cut.write_bytes(gzip.compress(data[: len(data) // 2]))
    out = tmp_path / "data"
    assert main(["convert", str(cut), "--out", str(out)]) == 0
    assert "truncated" in capsys.readouterr().err
    session = replayed(cut)
    with History(out) as history:
        compare(history.trades(exact=True), session.trades.to_frame(exact=True))


def test_convert_reports_a_file_that_is_not_a_recording(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bogus = tmp_path / "bogus.jsonl.gz"
    bogus.write_bytes(b"not gzip at all")
    assert main(["convert", str(bogus), "--out", str(tmp_path / "data")]) == 1
    assert "kraken-nb convert: error:" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
