"""A helper process of a benchmark, driven by one text command per line on its stdin.

The child prints one JSON line when it is ready (e.g. ``{"url": ...}``) and
then one JSON line answering each command. Running the other side of a
benchmark in its own process keeps it off the measured client's GIL.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from typing import Any

from benchmarks.settings import HERE

__all__ = ["Child"]


class Child:
    """``python -m <module> <args>`` with a command pipe; ``hello`` is its first line."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=HERE.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.module = module
        self.hello: Any = self._read()

    def _read(self) -> Any:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.module} ended (exit code {self.process.poll()})")
        return json.loads(line)

    def ask(self, command: str) -> Any:
        """Send one command line and return the decoded answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Ask the child to quit; kill it if it does not within 10 s."""
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            self.ask("quit")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
