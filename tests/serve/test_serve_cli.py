"""``kraken-nb serve`` as a real subprocess: it serves, and SIGTERM or Ctrl-C stop it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading

import httpx
import pytest

from .helpers import mcp, post, result


class Served:
    """The command running in the background, with its output collected as it comes."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kraken_nb.cli", "-v", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read_out, daemon=True).start()
        self._err = threading.Thread(target=self._read_err, daemon=True)
        self._err.start()

    def _read_out(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C"):
                self._ready.set()
        self._ready.set()

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        self.errors.extend(line.rstrip("\n") for line in self.process.stderr)

    def urls(self) -> tuple[str, str]:
        assert self._ready.wait(60), "the server did not say it was ready"
        text = "\n".join(self.lines)
        rest = re.search(r"^REST (http://\S+)", text, re.M)
        mcp_url = re.search(r"^MCP  (http://\S+)", text, re.M)
        assert rest and mcp_url, (text, self.errors)
        return rest.group(1), mcp_url.group(1)

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self._err.join(5)
        return code


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_simulator_answers_both_surfaces_and_stops_cleanly(sig: int) -> None:
    served = Served("--simulator", "--speed", "20", "--rest-port", "0", "--mcp-port", "0")
    try:
        rest_url, mcp_url = served.urls()
        assert f'MCP client configuration: {{"type": "http", "url": "{mcp_url}"}}' in served.lines
        with httpx.Client(base_url=rest_url, timeout=30) as rest:
            assert result(post(rest, "trade", "publish", {"symbol": ["BTC/USD"]}))["sent"] == ["BTC/USD"]
            assert result(post(rest, "trade", "subscribe", {"symbol": ["BTC/USD"]}))["channel"] == "trade"
        tools, [pong] = mcp(mcp_url, ("send-ping-server", {"channel": "ping"}))
        assert len(tools.tools) == 12 and not pong.is_error
    finally:
        code = served.stop(sig)
    assert code == 0, served.errors
    assert served.lines[-1] == "Stopped."
    assert not any("Traceback" in line for line in served.errors), "\n".join(served.errors)
    assert any("serving REST at" in line for line in served.errors)  # -v logs lifecycle events
    with pytest.raises(httpx.ConnectError):
        httpx.get(rest_url + "/v1/health", timeout=2)


def run(
    *args: str, env: dict[str, str] | None = None, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", code] if code else [sys.executable, "-m", "kraken_nb.cli", "serve", *args]
    )
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


def test_binding_beyond_loopback_without_a_key_is_refused() -> None:
    done = run("--simulator", "--host", "0.0.0.0", "--rest-port", "0", "--mcp-port", "0")
    assert done.returncode == 1 and "api_key" in done.stderr and "Traceback" not in done.stderr
    missing = run("--simulator", "--api-key-env", "KRAKEN_NB_TEST_NO_SUCH_VARIABLE")
    assert missing.returncode == 2 and "KRAKEN_NB_TEST_NO_SUCH_VARIABLE is not set" in missing.stderr


def test_without_the_serve_extra_the_error_names_it() -> None:
    code = (
        "import sys; sys.modules['fastapi'] = None\n"
        "from kraken_nb.cli import main\n"
        "sys.exit(main(['serve', '--simulator']))"
    )
    done = run(code=code)
    assert done.returncode == 2
    assert 'pip install "kraken_nb[serve]"' in done.stderr and "FastAPI" in done.stderr
    library = (
        "import sys; sys.modules['mcp'] = None\n"
        "from kraken_nb import KrakenClient\n"
        "client = KrakenClient.simulated()\n"
        "try:\n"
        "    client.serve(0, 0)\n"
        "except ModuleNotFoundError as exc:\n"
        "    print(exc)\n"
        "finally:\n"
        "    client.close()\n"
    )
    done = run(code=library)
    assert 'pip install "kraken_nb[serve]"' in done.stdout and "MCP SDK" in done.stdout, done.stderr
