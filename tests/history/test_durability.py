"""Durability: a recorder killed with SIGKILL, restarted, out of disk space, or given an unusable folder."""

from __future__ import annotations

import logging
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kraken_nb import DatasetError, History, KrakenClient
from kraken_nb.simulator import Simulator

from .helpers import FAST_RECONNECT, SYMBOLS, parts, simulated, subscribe_all, wait_for

CHILD = Path(__file__).with_name("kill_child.py")
KILLS = 20
ROLL_SECONDS = 0.1
WRITE_ALLOWANCE = 2.0  # a roll writes and fsyncs several parts and folders: slow on a busy shared disk
"""Seconds a roll may take on a busy shared machine (taking the rows, writing and renaming the parts)."""


class _Child:
    """One recorder process to kill, and what it printed."""

    def __init__(self, root: Path, seed: int) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), str(root), str(seed)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.times = self.counts = np.zeros(0)
        self.ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("ready"):
                self.ready.set()
            else:
                self.lines.append(line)

    def kill(self) -> tuple[np.ndarray, np.ndarray]:
        """SIGKILL it; the (monotonic time, trades received) it printed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self._reader.join(10)
        samples = [tuple(map(float, line.split())) for line in self.lines if len(line.split()) == 2]
        assert samples, "the child printed no counts"
        return np.array([t for t, _ in samples]), np.array([n for _, n in samples])


@pytest.mark.timeout(300)
def test_sigkill_at_random_points_leaves_a_readable_dataset_missing_at_most_one_roll(tmp_path: Path) -> None:
    rng = random.Random(2024)
    losses: list[int] = []
    for pair in range(KILLS // 2):  # two at a time: the machine has two cores
        children = [_Child(tmp_path / f"run{2 * pair + i}", 2 * pair + i) for i in range(2)]
        try:
            for child in children:
                assert child.ready.wait(60), "the child did not start"
            delays = sorted(rng.uniform(0.3, 3.0) for _ in children)
            started = time.monotonic()
            for child, delay in zip(children, delays, strict=True):
                time.sleep(max(0.0, started + delay - time.monotonic()))
                child.times, child.counts = child.kill()
        finally:
            for child in children:
                if child.process.poll() is None:
                    child.process.kill()
        for child in children:
            losses.append(_check_killed(child.root, child.times, child.counts))
    logging.getLogger(__name__).info("trades lost per kill: %s", losses)


def _check_killed(root: Path, times: np.ndarray, counts: np.ndarray) -> int:
    """Check the dataset a killed recorder left; return how many trades it lost."""
    last_time, last_count = times[-1], int(counts[-1])
    with History(root) as history:
        trades = history.trades()
        assert history.skipped == []
        book = history.book_at("BTC/USD", trades["received"].max()) if len(trades) else None
    recorded = len(trades)
    # Never more than was received, never a hole: each symbol's ids are a gapless run.
    assert recorded <= last_count + 50, (recorded, last_count)
    for _, ids in trades.groupby("symbol", observed=True)["trade_id"]:
        assert ids.is_unique and (ids.diff().dropna() == 1).all()
    # At most the rows of the last roll (plus one roll in flight) are lost.
    received_before = int(counts[times <= last_time - ROLL_SECONDS - WRITE_ALLOWANCE].max(initial=0))
    assert recorded >= received_before, (root, recorded, received_before, last_count)
    if book is not None:
        assert book.valid  # the book stream in the files is consistent up to the cut
    assert all(path.stat().st_size > 0 for path in parts(root, "trades"))
    return last_count - recorded


def test_a_restarted_recorder_appends_without_duplicates_or_overwrites(tmp_path: Path) -> None:
    simulator = Simulator(speed=20, seed=4)
    url = simulator.start_in_thread()
    try:
        first_trades, _ = _record_once(simulator, url, tmp_path, first=True)
        before = {path: path.read_bytes() for path in tmp_path.rglob("part-*.parquet")}
        with History(tmp_path) as history:
            first = {
                table: history.sql(f"SELECT symbol, max(seq) AS seq FROM {table} GROUP BY symbol")
                for table in ("trades", "ticker", "book_updates", "book_snapshots")
            }
        second_trades, stats = _record_once(simulator, url, tmp_path, first=False)
    finally:
        simulator.close()
    assert stats["skipped_recorded"] >= 2 * 50  # the second client's trade snapshots
    for path, content in before.items():
        assert path.read_bytes() == content, f"{path} was overwritten"
    with History(tmp_path) as history:
        trades = history.trades()
        for symbol in SYMBOLS:
            mine = trades[trades["symbol"] == symbol]["trade_id"]
            assert mine.is_unique and mine.is_monotonic_increasing, symbol
            assert (mine.diff().dropna() == 1).all(), symbol  # nothing missed, nothing twice
            assert len(set(first_trades[symbol]) & set(second_trades[symbol])) == 50  # the snapshot
            assert set(mine) == set(first_trades[symbol]) | set(second_trades[symbol])
        for table, earlier in first.items():
            key = "symbol, seq, kind" if table == "book_snapshots" else "symbol, seq"
            seqs = history.sql(f"SELECT DISTINCT {key} FROM {table}")
            for _, row in earlier.iterrows():
                mine = seqs[seqs["symbol"] == row["symbol"]]["seq"]
                assert mine.max() > row["seq"], table  # the second run continued the numbering
            if table in ("trades", "ticker"):
                rows = history.sql(f"SELECT symbol, seq FROM {table}")
                assert not rows.duplicated().any(), table  # no number used twice


def _record_once(
    simulator: Simulator, url: str, root: Path, *, first: bool
) -> tuple[dict[str, list[int]], dict[str, object]]:
    """Record with a fresh client: the trade ids it received per symbol, the recorder's stats.

    The first run ends with the market paused; the second subscribes while it
    still is, so its 50-trade snapshots are trades the first run recorded.
    """
    with KrakenClient(url, backoff=FAST_RECONNECT) as client:
        client.wait_connected()
        recorder = client.record_to(root, roll_seconds=0.2)
        subscribe_all(client, trade_snapshot=True)
        if not first:
            simulator.resume()
        wait_for(lambda: all(len(client.trades(s)) >= 80 for s in SYMBOLS))
        if first:
            simulator.pause()
            time.sleep(0.3)  # let the frames in flight arrive
        client.close()
        stats = recorder.stats()
        assert stats["state"] == "stopped"
        return {symbol: client.trades(symbol)["trade_id"].tolist() for symbol in SYMBOLS}, stats


# -- a folder the recorder cannot use ---------------------------------------------------------


def _no_space() -> None:
    """In the child: no file may grow past 1,500 bytes (writes fail with EFBIG, as on a full disk ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_500, 1_500))


def _record_parquet(*options: str, **run: Any) -> subprocess.CompletedProcess[str]:
    """``kraken-nb record --format parquet --simulator OPTIONS`` in a child process, its output captured."""
    command = [sys.executable, "-m", "kraken_nb.cli", "record", "--format", "parquet", "--simulator"]
    return subprocess.run([*command, *options], capture_output=True, text=True, check=False, **run)


def test_a_full_disk_stops_the_cli_recorder_with_an_error(tmp_path: Path) -> None:
    started = time.monotonic()
    completed = _record_parquet(
        "--speed",
        "20",
        "--channel",
        "book",
        "--symbol",
        "BTC/USD",
        "--seconds",
        "60",
        "--roll-seconds",
        "0.2",
        "--out",
        str(tmp_path / "data"),
        timeout=120,
        preexec_fn=_no_space,
    )
    assert completed.returncode == 1, completed
    assert "kraken-nb record: error: cannot write" in completed.stderr
    assert "no space left" in completed.stderr
    assert time.monotonic() - started < 50  # it stopped at the failure, not at --seconds
    assert not list((tmp_path / "data").rglob("*.tmp"))  # the half-written part was removed


def test_an_unusable_folder_is_a_clear_error_at_once(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    with simulated() as client:
        for where in (a_file, a_file / "below"):
            with pytest.raises(DatasetError, match="cannot record to") as raised:
                client.record_to(where)
            assert raised.value.path == where
        assert client.connection_state == "live"
    completed = _record_parquet("--seconds", "1", "--out", str(a_file), timeout=60)
    assert completed.returncode == 1 and "kraken-nb record: error: cannot record to" in completed.stderr


def test_a_write_failing_later_stops_the_recorder_and_the_handle_reports_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with simulated() as client:
        recorder = client.record_to(tmp_path, roll_seconds=0.1)
        client.subscribe("trade", SYMBOLS)
        wait_for(lambda: len(parts(tmp_path, "trades")) >= 2)
        shutil.rmtree(tmp_path / "trades")
        (tmp_path / "trades").write_text("the disk went read-only")  # every trades part now fails
        wait_for(lambda: recorder.state == "failed")
        assert isinstance(recorder.error, DatasetError)
        assert "cannot write" in str(recorder.error) and "trades" in str(recorder.error)
        stats = recorder.stats()
        assert stats["state"] == "failed" and stats["error"] == str(recorder.error)
        assert stats["rows_lost"] > 0
        assert any(r.levelno == logging.ERROR and "stopped" in r.getMessage() for r in caplog.records)
        with pytest.raises(DatasetError):
            recorder.stop()
        with pytest.raises(DatasetError):
            recorder.stop()  # never silent, however often asked
        count = len(client.trades())
        wait_for(lambda: len(client.trades()) > count)  # the client itself goes on
        again = client.record_to(tmp_path / "elsewhere", roll_seconds=0.1)  # the folder was released
        again.stop()


def test_one_recorder_per_folder_and_per_client(tmp_path: Path) -> None:
    with simulated() as client, simulated() as other:
        recorder = client.record_to(tmp_path)
        with pytest.raises(DatasetError, match="being recorded by another recorder"):
            other.record_to(tmp_path)
        with pytest.raises(DatasetError, match="already has a recorder"):
            client.record_to(tmp_path / "second")
        recorder.stop()
        other.record_to(tmp_path).stop()
