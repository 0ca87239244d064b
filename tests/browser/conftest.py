"""Fixtures for browser tests: one JupyterLab and one Chromium for this package, a fresh page per test.

Both are package-scoped, not session-scoped: playwright's sync API keeps an
event loop running on the main thread while a browser is open, which would
break every later test that calls ``asyncio.run``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, sync_playwright

from .lab import (
    VIEWPORT,
    LabServer,
    launch_browser,
    screenshot,
    shutdown_kernels,
    start_lab_server,
    stop_lab_server,
)

__all__ = ["browser", "lab_server", "page"]

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under ``tests/browser`` with ``browser`` so ``-m 'not browser'`` skips them all."""
    for item in items:
        if _HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item so the `page` fixture can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="package")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A JupyterLab on loopback for the browser tests; kernels and server are shut down afterwards."""
    server = start_lab_server(tmp_path_factory.mktemp("jupyterlab"))
    try:
        yield server
    finally:
        stop_lab_server(server)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless system Chromium for the browser tests."""
    with sync_playwright() as playwright:
        chromium = launch_browser(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Browser, lab_server: LabServer, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh context (1400×1000); ``page.console_errors`` lists console errors and page errors.

    On teardown a failed test gets a screenshot in the artefacts, and every kernel the test started
    is shut down so kernels do not pile up over the session.
    """
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught: {error.message}")

    new_page.on("console", on_console)
    new_page.on("pageerror", on_page_error)
    new_page.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield new_page
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Error):
                screenshot(new_page, f"FAILED-{request.node.name}")
        context.close()
        shutdown_kernels(lab_server)
