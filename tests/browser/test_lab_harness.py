"""End-to-end check of the browser harness and of background-thread widget updates in JupyterLab."""

from __future__ import annotations

import sys

import pytest

from .lab import (
    REPO_ROOT,
    LabHarnessError,
    LabServer,
    cell_errors,
    open_and_run_all,
    screenshot,
    wait_for_text_change,
    write_notebook,
)

__all__: list[str] = []

pytestmark = pytest.mark.browser

_COUNTER_CELL = '''
import threading

import anywidget
import traitlets


class Counter(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const span = document.createElement("span");
      span.className = "harness-count";
      const draw = () => { span.textContent = String(model.get("count")); };
      model.on("change:count", draw);
      draw();
      el.appendChild(span);
    }
    export default { render };
    """
    count = traitlets.Int(0).tag(sync=True)


counter = Counter()
stop_ticking = threading.Event()


def tick() -> None:
    while not stop_ticking.wait(0.2):
        counter.count += 1


threading.Thread(target=tick, name="harness-ticker", daemon=True).start()
counter
'''

_ENVIRONMENT_CELL = """
import importlib.util
import sys

print(sys.executable)
print(importlib.util.find_spec("kraken_nb").origin)
"""


def test_background_thread_updates_reach_chromium(page, lab_server: LabServer) -> None:
    name = "harness_counter.ipynb"
    write_notebook(lab_server.root_dir, name, [_COUNTER_CELL, _ENVIRONMENT_CELL, ""])

    state = open_and_run_all(page, lab_server, name, timeout=60)

    assert [cell["executionCount"] for cell in state["cells"]] == [1, 2, None]
    assert [cell["stderr"] for cell in state["cells"]] == [[], [], []]
    count = page.locator(".harness-count")
    before, after = wait_for_text_change(count, timeout=5)
    assert int(after) > int(before) >= 0
    # 0.2 s ticks: one more second must add several increments, not a single stray update.
    page.wait_for_timeout(1000)
    assert int(count.inner_text()) >= int(after) + 2

    environment = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea-output").inner_text().split()
    # The kernel runs this interpreter and imports kraken_nb from this checkout.
    assert environment == [sys.executable, str(REPO_ROOT / "kraken_nb" / "__init__.py")]
    assert cell_errors(page, name) == []
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    assert page.console_errors == []
    shot = screenshot(page, "harness_counter")
    assert shot.stat().st_size > 10_000


def test_raising_cell_fails_fast_and_console_errors_are_collected(page, lab_server: LabServer) -> None:
    name = "harness_raises.ipynb"
    write_notebook(lab_server.root_dir, name, ["", "raise ValueError('harness-boom')", "never_runs = 1"])

    with pytest.raises(LabHarnessError, match="ValueError: harness-boom"):
        # Far below the run timeout: a raising cell must be reported, not waited out.
        open_and_run_all(page, lab_server, name, timeout=30)

    assert cell_errors(page, name) == ["ValueError: harness-boom"]
    page.evaluate("console.error('harness-console-check')")
    assert page.console_errors == ["harness-console-check"]
