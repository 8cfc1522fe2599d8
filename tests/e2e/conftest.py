"""Fixtures of the browser tests: one real server and one Chromium for the whole run, a fresh
browser context (= a fresh Streamlit session) per test.

Nothing is skipped: without Debian's chromium the tests fail and say how to install it.
On a failure the page is saved as ``artifacts/FAILED-<test>.png`` and the server log tail is
printed; ``artifacts/server.log`` holds the whole log.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.e2e import helpers as H

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
README_SCREENSHOT = Path(__file__).resolve().parent / "readme-screenshot.png"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Expose each phase's outcome to fixtures (``request.node.rep_call``) for failure artifacts.
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Directory for screenshots, downloads and the server log (git-ignored)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# Package scope: the server and the sync Playwright instance (whose event loop stays installed
# while it runs) end with the browser tests, so later tests can run their own asyncio loops.
@pytest.fixture(scope="package")
def server(artifacts: Path):
    """The real app: ``python -m streamlit run streamlit_app.py`` on a free port."""
    try:
        server = H.start_server(artifacts / "server.log")
    except H.E2EError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def browser():
    """Headless Debian Chromium (fails, never skips, when it is missing)."""
    try:
        H.require_chromium()
    except H.E2EError as exc:
        pytest.fail(str(exc), pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = H.launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server, request, artifacts: Path):
    """A fresh page in its own browser context (its own Streamlit session)."""
    page = H.new_page(browser)
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(f"{message.type}: {message.text}") if message.type in ("error", "warning") else None
        ),
    )
    page.on("pageerror", lambda error: console.append(f"page error: {error}"))
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print("browser console (errors and warnings):\n" + "\n".join(console[-30:]))
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        try:
            H.screenshot(page, artifacts / f"FAILED-{name}.png")
        except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            print(f"could not save a screenshot of the failed page: {exc}")
        print(f"status: {H.status_text(page)!r}\nserver log tail:\n{server.log(60)}")
    page.context.close()


@pytest.fixture
def update_readme_screenshot() -> Path | None:
    """Path of the README screenshot if SEG_UPDATE_README_SCREENSHOT=1, else None (CI never writes it)."""
    return README_SCREENSHOT if os.environ.get("SEG_UPDATE_README_SCREENSHOT") == "1" else None
