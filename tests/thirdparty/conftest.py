"""The third-party schema tests run only under tests.thirdparty.settings.

``make test-thirdparty`` selects that module (``--ds tests.thirdparty.settings``);
under the main suite's settings these apps are not installed and the tests here are
not collected. A third-party package that is missing is named in a banner at the
start and the end of the run, and the tests that need it are skipped.
"""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.conftest import banner

THIRDPARTY_SETTINGS = "tests.thirdparty.settings"

collect_ignore_glob = []
if settings.SETTINGS_MODULE != THIRDPARTY_SETTINGS:
    collect_ignore_glob = ["test_*.py"]

# Timings and sizes measured by the tests, printed at the end of the run.
FIGURES: list[str] = []


def missing_lines() -> list[str]:
    missing = getattr(settings, "THIRDPARTY_MISSING", [])
    if not missing:
        return []
    return [
        "THIRD-PARTY APPS NOT INSTALLED: THEIR TESTS ARE SKIPPED, NOT PASSED.",
        "Missing packages: " + ", ".join(missing),
        "Install them with: pip install -r requirements.txt",
    ]


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    lines = missing_lines()
    if lines and settings.SETTINGS_MODULE == THIRDPARTY_SETTINGS:
        writer = config.get_terminal_writer()
        for line in banner(lines):
            writer.line(line, red=True, bold=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if settings.SETTINGS_MODULE != THIRDPARTY_SETTINGS:
        return
    for line in banner(missing_lines()) if missing_lines() else []:
        terminalreporter.write_line(line, red=True, bold=True)
    if FIGURES:
        terminalreporter.write_sep("-", "third-party schema figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
