"""A real browser for the admin: Debian's chromium driven by Playwright.

Without chromium or Playwright the browser tests are skipped, loudly; with
``BACKUPS_REQUIRE_BROWSER=1`` (CI sets it) their absence fails the run instead.
Screenshots go to ``BACKUPS_SCREENSHOT_DIR`` when it is set (docs/screenshots to
refresh the documentation), else to a temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("BACKUPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

_missing: list[str] = []


def browser_missing() -> str | None:
    """Return why no browser can run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install playwright)"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"chromium is not at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="session")
def browser():
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("BACKUPS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"BACKUPS_REQUIRE_BROWSER=1 but {reason}.", pytrace=False)
        _missing.append(reason)
        pytest.skip(f"NO BROWSER, BROWSER TESTS SKIPPED: {reason}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test body
    # still uses the ORM synchronously, which is safe here.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(page, tmp_path):
    directory = Path(os.environ.get("BACKUPS_SCREENSHOT_DIR") or tmp_path)
    directory.mkdir(parents=True, exist_ok=True)

    def take(name: str, *, full_page: bool = False) -> Path:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return take


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if _missing:
        line = "NO BROWSER: THE BROWSER TESTS WERE SKIPPED, NOT PASSED: " + _missing[0]
        terminalreporter.write_line("!" * len(line), red=True, bold=True)
        terminalreporter.write_line(line, red=True, bold=True)
        terminalreporter.write_line(
            "Set BACKUPS_REQUIRE_BROWSER=1 to make this an error.", red=True, bold=True
        )
        terminalreporter.write_line("!" * len(line), red=True, bold=True)
