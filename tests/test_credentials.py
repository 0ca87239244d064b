"""A canary credential in the URL never shows: repr, stats, errors, logs at every level, recordings, CLI."""

from __future__ import annotations

import base64
import gzip
import logging
import socket

import pytest

from kraken_nb import InvalidParams, KrakenClient, RequestTimeout
from kraken_nb.cli import main
from kraken_nb.recording import RecordingHeader, RecordingWriter
from kraken_nb.simulator import Simulator

CANARY = "S3CRET-canary-4b9d"
BASIC = base64.b64encode(f"user:{CANARY}".encode()).decode()


def with_credentials(url: str) -> str:
    """``ws://host:port/v2`` → ``ws://user:CANARY@host:port/v2?token=CANARY&api_key=CANARY``."""
    scheme, rest = url.split("://", 1)
    return f"{scheme}://user:{CANARY}@{rest}?token={CANARY}&api_key={CANARY}"


def client_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged on the client's side (the simulator is the server: it may see what it is sent)."""
    return "\n".join(
        caplog.handler.format(record)
        for record in caplog.records
        if not record.name.startswith("kraken_nb.simulator")
    )


def assert_clean(*texts: str) -> None:
    for text in texts:
        assert CANARY not in text and BASIC not in text, text[:2000]


@pytest.fixture
def simulator():
    with Simulator(seed=3, speed=20).running() as sim:
        yield sim


def test_the_client_never_shows_the_secret(simulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, every level: websockets logs its request and headers
    url = with_credentials(simulator.url)
    with KrakenClient(url, timeout=10, silence_timeout=2.0) as client:
        client.wait_connected()
        client.subscribe("trade", "BTC/USD")
        simulator.drop_connections()
        client.wait_until(lambda c: c.stats()["reconnects"] >= 1 and c.connection_state == "live")
        shown = [repr(client), client.url, str(client.stats()), str(client.subscriptions())]
    assert "token=***" in client.url and "***@" in client.url
    assert "> GET /v2?token=***" in client_logs(caplog), "the websockets request line was not logged"
    assert "Authorization: Basic ***" in client_logs(caplog)
    assert_clean(*shown, client_logs(caplog))


def test_errors_never_show_the_secret(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with KrakenClient(with_credentials(f"ws://127.0.0.1:{closed}/v2"), timeout=1.0) as client:
        with pytest.raises(RequestTimeout) as timeout:
            client.wait_connected()
        client.wait_until(lambda c: c.stats()["last_error"] is not None, timeout=5)
        last_error = client.stats()["last_error"]
    with pytest.raises(InvalidParams, match="url") as refused:
        KrakenClient(f"ws://user:{CANARY}@127.0.0.1:notaport/v2?token={CANARY}")
    assert "token=***" in str(refused.value)
    assert_clean(str(timeout.value), last_error, str(refused.value), client_logs(caplog))


def test_recordings_and_the_cli_never_show_the_secret(simulator, tmp_path, capsys, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "secret.jsonl.gz"
    url = with_credentials(simulator.url)
    assert main(["record", "--url", url, "--seconds", "1", "--out", str(out)]) == 0
    assert out.exists()
    assert main(["replay", str(out)]) == 0
    raw = gzip.decompress(out.read_bytes()).decode()
    assert "token=***" in raw.splitlines()[0] and '"channel":"trade"' in raw
    # an older recording that stored the secret is shown redacted too
    old = tmp_path / "old.jsonl.gz"
    with RecordingWriter(old, RecordingHeader(url, ({"channel": "trade", "symbol": ["BTC/USD"]},), 1)):
        pass
    assert main(["replay", str(old)]) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    failing = with_credentials(f"ws://127.0.0.1:{closed}/v2")
    assert main(["record", "--url", failing, "--seconds", "1", "--out", str(tmp_path / "x.jsonl.gz")]) == 1
    captured = capsys.readouterr()
    assert "Recording of ws://***@" in captured.out and str(closed) in captured.err
    assert_clean(raw, captured.out, captured.err, client_logs(caplog))
