"""Run a local ``nats-server -js`` on loopback: for tests, benchmarks and trying the relay out.

``LocalNatsServer`` starts Debian's ``nats-server`` (``apt-get install
nats-server``) on 127.0.0.1 with JetStream and a store directory of its own,
waits until it accepts connections, and can be stopped, killed and started
again on the same port and store (a restart keeps the streams and durable
consumers). An optional config text adds users and permissions.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from kraken_nb.errors import RelayError

__all__ = ["LocalNatsServer", "free_port", "nats_server_binary"]


def nats_server_binary() -> str | None:
    """The path of ``nats-server`` (``$PATH``, then Debian's ``/usr/sbin``), or None."""
    found = shutil.which("nats-server")
    if found is None and os.access("/usr/sbin/nats-server", os.X_OK):
        found = "/usr/sbin/nats-server"
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalNatsServer:
    """A ``nats-server -js`` process on 127.0.0.1 with its own store directory.

    ``config`` is extra nats-server configuration text (e.g. an
    ``authorization`` block); without it the server has no authentication.
    ``with LocalNatsServer() as server: server.url`` gives ``nats://127.0.0.1:PORT``.
    """

    def __init__(
        self, *, port: int | None = None, store_dir: Path | None = None, config: str | None = None
    ) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise RelayError("nats-server is not installed (apt-get install nats-server)")
        self.binary = binary
        self.port = port if port is not None else free_port()
        self._own_dir = tempfile.TemporaryDirectory(prefix="kraken-nb-nats-") if store_dir is None else None
        self.store_dir = Path(self._own_dir.name) if self._own_dir is not None else store_dir
        assert self.store_dir is not None
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config = config
        self.log_path = self.store_dir / "nats-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``nats://127.0.0.1:PORT``."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> LocalNatsServer:
        """Start the process and wait until it accepts connections."""
        if self.running:
            return self
        command = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.store_dir)]
        if self.config is not None:
            path = self.store_dir / "nats-server.conf"
            path.write_text(self.config, encoding="utf-8")
            command += ["-c", str(path)]
        log = open(self.log_path, "ab")  # noqa: SIM115 (the process keeps writing to it)
        try:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RelayError(f"nats-server exited with {self._process.returncode}: {self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.2):
                return self
            time.sleep(0.02)
        self.kill()
        raise RelayError(f"nats-server did not accept connections within {timeout:g} s: {self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process gracefully (SIGTERM), killing it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self, *, kill: bool = False) -> None:
        """Stop (or kill) and start again on the same port and store."""
        if kill:
            self.kill()
        else:
            self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and remove a store directory it created."""
        self.stop()
        if self._own_dir is not None:
            self._own_dir.cleanup()

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-800:].strip()
        return "(no log)"

    def __enter__(self) -> LocalNatsServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
