"""``python -m kraken_nb.simulator``: prints its URL, serves, stops on SIGTERM."""

from __future__ import annotations

import re
import subprocess
import sys
import threading

from kraken_nb.simulator.__main__ import main

from .wire import WireClient


def test_cli_prints_a_url_and_serves():
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kraken_nb.simulator",
            "--port",
            "0",
            "--speed",
            "5",
            "--pairs",
            "BTC/USD,ETH/USD",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(20)
        assert lines and lines[0], "no URL printed"
        url = lines[0].strip()
        assert re.fullmatch(r"ws://127\.0\.0\.1:\d+/v2", url), url
        client = WireClient(url)
        assert client.status["data"][0]["system"] == "online"
        (ack,), _ = client.acks(client.subscribe("ticker", ["ETH/USD"]), 1)
        assert ack["success"] is True
        client.close()
    finally:
        process.terminate()
        code = process.wait(10)
    assert code == 0
    assert "listening on" in process.stderr.read()


def test_main_reports_bad_arguments():
    assert main(["--port", "0", "--speed", "-1"]) == 2
    assert main(["--port", "0", "--pairs", "NOPE/USD"]) == 2
