"""Drive a real JupyterLab in headless Chromium: server lifecycle, notebooks, waits, screenshots."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import nbformat
from playwright.sync_api import Browser, Locator, Page, Playwright

__all__ = [
    "ARTIFACTS_DIR",
    "CHROMIUM_ARGS",
    "CHROMIUM_PATH",
    "REPO_ROOT",
    "VIEWPORT",
    "LabHarnessError",
    "LabServer",
    "cell_errors",
    "launch_browser",
    "notebook_state",
    "open_and_run_all",
    "open_notebook",
    "screenshot",
    "shutdown_kernels",
    "start_lab_server",
    "stop_lab_server",
    "wait_for_text_change",
    "write_notebook",
]

logger = logging.getLogger(__name__)

REPO_ROOT: Path = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR: Path = REPO_ROOT / "test-artifacts" / "browser"
CHROMIUM_PATH: Path = Path(os.environ.get("KRAKEN_NB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)
VIEWPORT: dict[str, int] = {"width": 1400, "height": 1000}

# User settings that keep first-run popups, autosave and cell windowing out of the tests' way.
_LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    # Attach every cell to the DOM so locators see widgets in off-screen cells too.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}

# Finds the open notebook panel whose document path is `path`, or null.
_FIND_PANEL_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) { return null; }
  for (const w of Array.from(app.shell.widgets('main'))) {
    if (w.context && w.context.path === path && w.content && w.sessionContext) { return w; }
  }
  return null;
}
"""

_KERNEL_READY_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL_JS})(path);
  if (!panel || !panel.context.isReady || !panel.sessionContext.isReady) {{ return false; }}
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}}
"""

_RUN_ALL_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL_JS})(path);
  window.jupyterapp.shell.activateById(panel.id);
  // Not awaited: the caller polls with a timeout instead of blocking on this promise.
  void window.jupyterapp.commands.execute('notebook:run-all-cells');
  return true;
}}
"""

_STATE_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL_JS})(path);
  if (!panel) {{ return null; }}
  const session = panel.sessionContext.session;
  const kernel = session ? session.kernel : null;
  const cells = panel.content.widgets.map((cell) => {{
    const model = cell.model;
    const outputs = model.type === 'code' ? model.outputs.toJSON() : [];
    const text = (o) => (Array.isArray(o.text) ? o.text.join('') : o.text);
    return {{
      type: model.type,
      blank: model.sharedModel.getSource().trim() === '',
      executionCount: model.type === 'code' ? model.executionCount : null,
      errors: outputs.filter((o) => o.output_type === 'error').map((o) => `${{o.ename}}: ${{o.evalue}}`),
      stderr: outputs.filter((o) => o.output_type === 'stream' && o.name === 'stderr').map(text),
    }};
  }});
  return {{ kernelStatus: kernel ? kernel.status : null, cells }};
}}
"""

_RUN_FINISHED_JS = f"""
(path) => {{
  const state = ({_STATE_JS})(path);
  if (!state || state.kernelStatus !== 'idle') {{ return false; }}
  // Lab never sends blank cells to the kernel, so they keep a null execution count.
  const code = state.cells.filter((c) => c.type === 'code' && !c.blank);
  return code.some((c) => c.errors.length > 0) || code.every((c) => c.executionCount !== null);
}}
"""


class LabHarnessError(RuntimeError):
    """The JupyterLab/Chromium harness did not reach the state a test waited for."""


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab subprocess serving `root_dir` on loopback."""

    base_url: str
    token: str
    root_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def url_for(self, notebook_name: str, workspace: str | None = None) -> str:
        """Return the lab URL opening `notebook_name` in a freshly reset workspace, token included."""
        workspace = workspace or re.sub(r"[^A-Za-z0-9_-]+", "-", Path(notebook_name).stem) or "test"
        return (
            f"{self.base_url}/lab/workspaces/{quote(workspace)}/tree/{quote(notebook_name)}"
            f"?reset&token={self.token}"
        )

    def api(self, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
        """Call the server's REST API (`path` like ``/api/kernels``) and return the decoded JSON answer."""
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = response.read()
        return json.loads(answer) if answer else None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last `lines` lines of the server's combined stdout/stderr."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError as exc:
            return f"<server log unreadable: {exc}>"
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_jupyter_dirs(state_dir: Path) -> dict[str, str]:
    """Create isolated Jupyter config/data/runtime/settings dirs; return the env vars pointing at them."""
    dirs = {
        name: state_dir / sub
        for name, sub in [
            ("JUPYTER_CONFIG_DIR", "config"),
            ("JUPYTER_DATA_DIR", "data"),
            ("JUPYTER_RUNTIME_DIR", "runtime"),
            ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
            ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"),
            ("IPYTHONDIR", "ipython"),
        ]
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    # The `python3` kernel must run this very interpreter, where kraken_nb and its deps are installed.
    kernel_dir = dirs["JUPYTER_DATA_DIR"] / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    kernelspec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": True},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernelspec, indent=1))
    # No network: never fetch the news feed or check for updates (null is not expressible on a command line).
    lab_config = {
        "LabApp": {
            "news_url": None,
            "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        }
    }
    (dirs["JUPYTER_CONFIG_DIR"] / "jupyter_server_config.json").write_text(json.dumps(lab_config))
    for plugin, values in _LAB_SETTINGS.items():
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / f"{plugin}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    return {name: str(path) for name, path in dirs.items()}


def _spawn(state_dir: Path, root_dir: Path, env: dict[str, str], token: str) -> LabServer:
    """Start one JupyterLab process on a free port, logging to ``state_dir/jupyterlab.log``."""
    port = _free_port()
    log_path = state_dir / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyterlab",
        "--allow-root",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=root_dir,
            env={**env, "JUPYTER_TOKEN": token},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return LabServer(f"http://127.0.0.1:{port}", token, root_dir, process, log_path)


def _wait_until_up(server: LabServer, deadline: float) -> None:
    """Poll ``/api/status`` until it answers; raise `LabHarnessError` on early exit or at `deadline`."""
    while True:
        if server.process.poll() is not None:
            raise LabHarnessError(
                f"JupyterLab exited with code {server.process.returncode} during startup; log tail:\n"
                f"{server.log_tail()}"
            )
        try:
            server.api("GET", "/api/status", timeout=2.0)
            return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                stop_lab_server(server)
                raise LabHarnessError(
                    f"JupyterLab at {server.base_url} did not answer /api/status in time; "
                    f"log tail:\n{server.log_tail()}"
                ) from None
            time.sleep(0.1)


def start_lab_server(state_dir: Path, *, startup_timeout: float = 60.0, attempts: int = 3) -> LabServer:
    """Start JupyterLab on a free loopback port with notebooks in ``state_dir/notebooks``.

    Blocks until ``/api/status`` answers; retries when another process grabbed the port first, and
    raises `LabHarnessError` with the server log tail on any other failure.
    """
    root_dir = state_dir / "notebooks"
    root_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **_prepare_jupyter_dirs(state_dir)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    env.pop("JUPYTER_PATH", None)
    token = os.urandom(24).hex()
    started = time.monotonic()
    for attempt in range(1, attempts + 1):
        server = _spawn(state_dir, root_dir, env, token)
        try:
            _wait_until_up(server, started + startup_timeout)
            break
        except LabHarnessError:
            if attempt == attempts or "is already in use" not in server.log_tail():
                raise
            logger.warning("port of %s was taken; retrying on another port", server.base_url)
    logger.info("JupyterLab up at %s in %.1f s", server.base_url, time.monotonic() - started)
    return server


def shutdown_kernels(server: LabServer, timeout: float = 10.0) -> int:
    """Shut down every session and kernel on `server`; return how many kernels were running."""
    sessions = server.api("GET", "/api/sessions", timeout=timeout)
    for session in sessions:
        server.api("DELETE", f"/api/sessions/{session['id']}", timeout=timeout)
    kernels = server.api("GET", "/api/kernels", timeout=timeout)
    for kernel in kernels:
        server.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=timeout)
    return len({s["kernel"]["id"] for s in sessions if s.get("kernel")} | {k["id"] for k in kernels})


def _descendants(pid: int) -> list[int]:
    """Return the ids of all live descendants of `pid` (empty where /proc is unavailable)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _kill(pids: Sequence[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def stop_lab_server(server: LabServer, *, timeout: float = 15.0) -> None:
    """Shut down the server's kernels and the server itself; escalate to signals if it does not exit."""
    process = server.process
    if process.poll() is not None:
        return
    kernels = _descendants(process.pid)
    try:
        server.api("POST", "/api/shutdown", timeout=timeout / 3)
        process.wait(timeout=timeout)
    except (urllib.error.URLError, OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("JupyterLab did not shut down cleanly (%s); terminating it", exc)
        _kill([process.pid], signal.SIGTERM)
        try:
            process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            _kill([process.pid], signal.SIGKILL)
            process.wait(timeout=5.0)
    _kill([pid for pid in kernels if Path(f"/proc/{pid}").exists()], signal.SIGKILL)


def launch_browser(playwright: Playwright) -> Browser:
    """Launch the system Chromium headless with the flags this offline CI needs."""
    if not CHROMIUM_PATH.exists():
        raise LabHarnessError(
            f"Chromium not found at {CHROMIUM_PATH}: install it (apt-get install -y chromium), set "
            "KRAKEN_NB_CHROMIUM, or deselect these tests with -m 'not browser'"
        )
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS), timeout=30_000
    )


def write_notebook(root_dir: Path, name: str, cells: Sequence[str]) -> Path:
    """Write a notebook of code `cells` (no outputs, `python3` kernelspec) to ``root_dir/name``.

    Each cell's source is dedented and stripped, so indented triple-quoted strings read naturally.
    """
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    notebook.cells = [nbformat.v4.new_code_cell(textwrap.dedent(source).strip()) for source in cells]
    path = root_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def screenshot(page: Page, name: str) -> Path:
    """Save a PNG of `page` as ``test-artifacts/browser/<name>.png`` and return its path."""
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]+", "_", name).strip("_") or "screenshot"
    path = ARTIFACTS_DIR / (stem if stem.endswith(".png") else f"{stem}.png")
    page.screenshot(path=str(path), timeout=30_000)
    return path


def _fail(page: Page, name: str, message: str) -> LabHarnessError:
    """Screenshot the page and build the error to raise, naming where the screenshot went."""
    try:
        shot = f"screenshot: {screenshot(page, Path(name).stem + '-failed')}"
    except Exception as exc:  # the page itself may be gone
        shot = f"no screenshot ({exc})"
    return LabHarnessError(f"{message} ({shot})")


def _remaining_ms(deadline: float) -> float:
    return max(1.0, deadline - time.monotonic()) * 1000


def notebook_state(page: Page, name: str) -> dict[str, Any] | None:
    """Return ``{"kernelStatus", "cells"}`` of open notebook `name`, or None if it is not open.

    Each cell is ``{"type", "blank", "executionCount", "errors": ["ename: evalue"], "stderr": [text]}``.
    """
    return page.evaluate(_STATE_JS, name)


def open_notebook(page: Page, lab_server: LabServer, name: str, timeout: float = 60.0) -> None:
    """Open notebook `name` in a reset workspace and wait (at most `timeout` s) until its kernel is idle."""
    deadline = time.monotonic() + timeout
    # Starting the session first lets the kernel boot while the lab front end loads; lab attaches to it.
    session = {"path": name, "name": name, "type": "notebook", "kernel": {"name": "python3"}}
    lab_server.api("POST", "/api/sessions", session, timeout=timeout)
    try:
        page.goto(lab_server.url_for(name), wait_until="domcontentloaded", timeout=_remaining_ms(deadline))
        page.wait_for_function(_KERNEL_READY_JS, arg=name, timeout=_remaining_ms(deadline), polling=100)
    except Exception as exc:
        raise _fail(page, name, f"kernel of {name!r} not idle within {timeout:.0f} s: {exc}") from exc


def open_and_run_all(
    page: Page, lab_server: LabServer, name: str, timeout: float = 60.0, *, allow_errors: bool = False
) -> dict[str, Any]:
    """Open `name`, run all cells and wait until every code cell has run and the kernel is idle.

    `timeout` bounds the whole call. Raises `LabHarnessError` (with a screenshot in the artefacts)
    on timeout or, unless `allow_errors`, as soon as a cell raised. Returns the final `notebook_state`.
    """
    deadline = time.monotonic() + timeout
    open_notebook(page, lab_server, name, timeout=timeout)
    page.evaluate(_RUN_ALL_JS, name)
    try:
        page.wait_for_function(_RUN_FINISHED_JS, arg=name, timeout=_remaining_ms(deadline), polling=100)
        state = notebook_state(page, name)
    except Exception as exc:
        raise _fail(page, name, f"{name!r} did not finish running within {timeout:.0f} s: {exc}") from exc
    if state is None:
        raise _fail(page, name, f"notebook {name!r} is no longer open")
    errors = [error for cell in state["cells"] for error in cell["errors"]]
    if errors and not allow_errors:
        raise _fail(page, name, f"{name!r} raised in a cell: {errors}")
    return state


def cell_errors(page: Page, name: str) -> list[str]:
    """Return ``"ename: evalue"`` of every error output in open notebook `name`."""
    state = notebook_state(page, name)
    if state is None:
        raise LabHarnessError(f"notebook {name!r} is not open in this page")
    return [error for cell in state["cells"] for error in cell["errors"]]


def wait_for_text_change(locator: Locator, timeout: float = 5.0, poll: float = 0.05) -> tuple[str, str]:
    """Wait until `locator`'s text differs from its current text; return ``(before, after)``."""
    before = locator.inner_text(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        locator.page.wait_for_timeout(poll * 1000)
        after = locator.inner_text(timeout=max(1.0, deadline - time.monotonic()) * 1000)
        if after != before:
            return before, after
    raise LabHarnessError(f"text of {locator} stayed {before!r} for {timeout:.1f} s")
