"""The kraken-nb command, run for real against the simulator on loopback."""

from __future__ import annotations

import gzip
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient.exceptions import CellExecutionError
from nbformat.v4 import new_code_cell, new_notebook

from kraken_nb import KrakenClient
from kraken_nb.cli import _ticker_line, check_notebook, find_notebooks, main

SYMBOLS = ["BTC/USD", "ETH/USD"]


def read_url(process: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The first ws:// line the process prints (fails the test if none comes in time)."""
    found: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ws://"):
                found.append(line.strip())
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    assert found, f"no ws:// URL printed within {timeout} s"
    return found[0]


def stop(process: subprocess.Popen[str]) -> int:
    """Ctrl-C the process and return its exit status."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kraken_nb.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def recorded_frames(path: Path) -> tuple[dict, list[dict]]:
    """The header and the decoded frames of a recording, read with plain gzip + json."""
    with gzip.open(path, "rt") as raw:
        lines = [json.loads(line) for line in raw]
    return lines[0], [json.loads(line["frame"]) for line in lines[1:]]


def trade_ids(frames: list[dict]) -> set[tuple[str, int]]:
    return {
        (row["symbol"], row["trade_id"])
        for frame in frames
        if frame.get("channel") == "trade"
        for row in frame["data"]
    }


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """Two seconds of trades and books for two pairs from a fast simulator."""
    path = tmp_path_factory.mktemp("rec") / "market.jsonl.gz"
    args = ["record", "--simulator", "--speed", "5", "--seconds", "2", "--out", str(path)]
    args += ["--channel", "trade", "--channel", "book"]
    for symbol in SYMBOLS:
        args += ["--symbol", symbol]
    assert main(args) == 0
    return path


def test_record_writes_a_header_and_timestamped_frames(recording):
    header, frames = recorded_frames(recording)
    assert header["format"] == "kraken_nb.recording"
    assert header["url"].startswith("ws://127.0.0.1:")
    assert [s["channel"] for s in header["subscriptions"]] == ["trade", "book"]
    assert all(s["symbol"] == SYMBOLS for s in header["subscriptions"])
    channels = {frame.get("channel") for frame in frames}
    assert {"status", "instrument", "book", "trade"} <= channels
    with gzip.open(recording, "rt") as raw:
        times = [json.loads(line)["t"] for line in list(raw)[1:]]
    assert times == sorted(times)
    assert (times[-1] - times[0]) / 1e9 == pytest.approx(2.0, abs=0.5)


def test_replay_summary_matches_the_file(recording, capsys):
    capsys.readouterr()
    assert main(["replay", str(recording)]) == 0
    out = capsys.readouterr().out
    summary = dict(re.findall(r"^(\w+): ([\d.]+)$", out, flags=re.MULTILINE))
    _, frames = recorded_frames(recording)
    book_frames = [f for f in frames if f.get("channel") == "book"]
    assert int(summary["frames"]) == len(frames)
    assert int(summary["trades"]) == len(trade_ids(frames)) > 0
    assert int(summary["book_updates"]) == sum(len(f["data"]) for f in book_frames)
    assert int(summary["books"]) == int(summary["books_valid"]) == len(SYMBOLS)
    assert int(summary["checksum_mismatches"]) == 0


def test_replay_serve_plays_the_recording_to_a_client(recording):
    _, frames = recorded_frames(recording)
    expected = trade_ids(frames)
    server = cli("replay", str(recording), "--serve", "--port", "0", "--speed", "4")
    try:
        url = read_url(server)
        with KrakenClient(url, timeout=10) as client:
            client.wait_connected()
            client.subscribe("trade", SYMBOLS)
            client.subscribe("book", SYMBOLS)
            client.wait_until(lambda c: len(c.trades()) >= len(expected), timeout=20)
            trades = client.trades()
            assert set(zip(trades.symbol.astype(str), trades.trade_id, strict=True)) == expected
            assert all(client.book(symbol).valid for symbol in SYMBOLS)
            assert client.stats()["checksum_mismatches"] == 0
    finally:
        assert stop(server) == 0


def test_tail_prints_a_ticker_line_updating_in_place(capsys):
    assert main(["tail", "BTC/USD", "--simulator", "--speed", "5", "--seconds", "2"]) == 0
    out = capsys.readouterr().out
    updates = [line.strip() for line in out.split("\r") if line.strip()]
    assert len(updates) >= 2
    pattern = r"BTC/USD  last (\d+\.\d+)  bid (\d+\.\d+) / ask (\d+\.\d+)  spread \S+  24h [+-]\d+\.\d\d%"
    for line in updates:
        match = re.match(pattern, line)
        assert match, line
        last, bid, ask = map(float, match.groups())
        assert bid < ask and last > 0
    assert out.endswith("\n")


def test_tail_line_shows_krakens_time_or_else_the_receive_time():
    row = {"bid": 64000.0, "ask": 64000.2, "last": 64000.1, "change_pct": -0.14}
    latest = pd.DataFrame(
        [
            {
                **row,
                "time": pd.Timestamp("2024-03-01T12:00:01Z"),
                "received": pd.Timestamp("2024-03-01T12:00:09Z"),
            },
            {**row, "time": pd.NaT, "received": pd.Timestamp("2024-03-01T12:00:09Z")},
        ],
        index=["BTC/USD", "ETH/USD"],
    )
    assert _ticker_line("BTC/USD", latest).endswith("24h -0.14%  12:00:01")
    assert _ticker_line("ETH/USD", latest).endswith("24h -0.14%  12:00:09")
    assert _ticker_line("SOL/USD", latest) is None


def test_sim_prints_its_url_and_serves_until_interrupted():
    server = cli("sim", "--port", "0", "--speed", "5")
    try:
        url = read_url(server)
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v2", url)
        with KrakenClient(url, timeout=10) as client:
            client.wait_connected()
            client.subscribe("ticker", ["BTC/USD"])
            client.wait_until(lambda c: "BTC/USD" in c.ticker_latest().index, timeout=10)
    finally:
        assert stop(server) == 0


def test_errors_are_reported_with_an_exit_status(tmp_path, capsys):
    assert main(["replay", str(tmp_path / "missing.jsonl.gz")]) == 1
    assert "missing.jsonl.gz" in capsys.readouterr().err
    assert main(["record", "--out", str(tmp_path / "x.jsonl.gz"), "--symbol", "btcusd", "--simulator"]) == 1
    assert "btcusd" in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl.gz").exists()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    out = tmp_path / "never.jsonl.gz"
    assert main(["record", "--url", f"ws://127.0.0.1:{closed}/v2", "--seconds", "1", "--out", str(out)]) == 1
    assert str(closed) in capsys.readouterr().err
    assert not out.exists()
    assert main(["replay", str(tmp_path / "x.jsonl.gz"), "--speed", "0"]) == 2


def test_replay_of_a_truncated_recording_warns_and_keeps_the_frames(recording, tmp_path, capsys):
    data = gzip.decompress(recording.read_bytes())
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(data[: len(data) * 2 // 3]))  # cut in the middle of a line
    whole_lines = data[: len(data) * 2 // 3].count(b"\n")
    capsys.readouterr()
    assert main(["replay", str(cut)]) == 0
    captured = capsys.readouterr()
    assert f"warning: {cut} is truncated after line {whole_lines}" in captured.err
    summary = dict(re.findall(r"^(\w+): (\S+)$", captured.out, flags=re.MULTILINE))
    assert summary["truncated"] == "true"
    assert int(summary["frames"]) == whole_lines - 1
    assert main(["replay", str(recording)]) == 0
    captured = capsys.readouterr()
    assert "truncated: false" in captured.out and "warning" not in captured.err


def test_bad_recordings_end_in_a_clear_error_naming_file_and_line(tmp_path, capsys):
    from test_recording import bad_recordings

    for path, (where, complaint) in bad_recordings(tmp_path).items():
        assert main(["replay", path]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"kraken-nb replay: error: {where}: ") and complaint in err, err
        assert "Traceback" not in err
    noise = next(iter(bad_recordings(tmp_path)))
    run = subprocess.run(
        [sys.executable, "-m", "kraken_nb.cli", "replay", noise], capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1
    assert run.stderr.startswith(f"kraken-nb replay: error: {noise}:1: not UTF-8"), run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""


def test_the_notebooks_are_found_next_to_the_package():
    folder = find_notebooks()
    assert folder is not None
    names = {p.name for p in folder.glob("*.ipynb")}
    assert {"01_quickstart.ipynb", "02_dataframes.ipynb", "03_order_book.ipynb"} <= names


def test_demo_check_runs_the_quickstart_headless(capsys):
    assert main(["demo", "--check"]) == 0
    assert "OK: 01_quickstart.ipynb" in capsys.readouterr().out


def test_check_notebook_sets_the_source_and_fails_on_a_cell_error(tmp_path):
    passing = tmp_path / "ok.ipynb"
    nbformat.write(
        new_notebook(
            cells=[new_code_cell("import os\nassert os.environ['KRAKEN_NB_SOURCE'] == 'simulator'")]
        ),
        passing,
    )
    assert check_notebook(passing, cell_timeout=60) == 1
    failing = tmp_path / "bad.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("raise ValueError('boom in a cell')")]), failing)
    with pytest.raises(CellExecutionError, match="boom in a cell"):
        check_notebook(failing, cell_timeout=60)


def test_demo_check_fails_when_the_notebook_fails(tmp_path, monkeypatch, capsys):
    nbformat.write(
        new_notebook(cells=[new_code_cell("assert 1 + 1 == 3, 'arithmetic broke'")]),
        tmp_path / "01_quickstart.ipynb",
    )
    monkeypatch.setattr("kraken_nb.cli.find_notebooks", lambda: tmp_path)
    assert main(["demo", "--check"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 01_quickstart.ipynb" in err and "arithmetic broke" in err


def test_demo_explains_a_missing_notebooks_folder(monkeypatch, capsys):
    monkeypatch.setattr("kraken_nb.cli.find_notebooks", lambda: None)
    assert main(["demo", "--check"]) == 2
    assert "notebooks/ folder was not found" in capsys.readouterr().err
