"""Refuse to pretend: an unreachable database fails the run or skips it loudly.

``BACKUPS_REQUIRE_DBS`` (a comma list such as ``postgres,mysql``) names the
vendors whose absence fails the whole session. Any other missing vendor skips the
tests that need it, with a banner at the start and at the end of the report.
"""

from __future__ import annotations

import functools
import os
import signal
import sqlite3

import django
import pytest
from django.conf import settings

from tests import settings as test_settings

# The S3 server fixture (SeaweedFS), for the tests of object storage.
pytest_plugins = ["tests.s3server"]

ENGINE_NAMES = {"sqlite3": "SQLite", "postgresql": "PostgreSQL", "mysql": "MySQL"}

# Started in the background by a shell without job control (``make test &``, a CI
# step), the run inherits SIGINT ignored, and so would every command it starts:
# the tests that interrupt a command could not. A handler of our own here is reset
# to the default in each child, which then turns SIGINT into KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@functools.cache
def missing_databases() -> dict[str, tuple[str, str]]:
    """Return ``{alias: (vendor, reason)}`` for each alias this run cannot use."""
    missing = {}
    reason = test_settings.vendor_unreachable_reason(test_settings.TEST_DB)
    if reason is not None:
        for alias in ("default", "other"):
            missing[alias] = (test_settings.TEST_DB, reason)
    for alias, reason in test_settings.CROSSVENDOR_MISSING.items():
        missing[alias] = (test_settings.CROSSVENDOR_ALIASES[alias], reason)
    return missing


def required_vendors() -> set[str]:
    """Return the vendors named by ``BACKUPS_REQUIRE_DBS``."""
    names = os.environ.get("BACKUPS_REQUIRE_DBS", "")
    required = {name.strip().lower() for name in names.split(",") if name.strip()}
    unknown = required - set(test_settings.VENDORS)
    if unknown:
        raise pytest.UsageError(
            "BACKUPS_REQUIRE_DBS names unknown vendors: "
            + ", ".join(sorted(unknown))
            + "; known: "
            + ", ".join(test_settings.VENDORS)
            + "."
        )
    return required


def banner(lines: list[str]) -> list[str]:
    """Frame ``lines`` in exclamation marks."""
    width = max(len(line) for line in lines) + 4
    framed = ["! " + line.ljust(width - 4) + " !" for line in lines]
    return ["!" * width, *framed, "!" * width]


def write_banner(config: pytest.Config, lines: list[str]) -> None:
    writer = config.get_terminal_writer()
    writer.line()
    for line in banner(lines):
        writer.line(line, red=True, bold=True)
    writer.line()


def skipped_lines() -> list[str]:
    reasons = sorted({reason for _vendor, reason in missing_databases().values()})
    if not reasons:
        return []
    return [
        "DATABASE UNREACHABLE: ITS TESTS ARE SKIPPED, NOT PASSED.",
        *reasons,
        "Set BACKUPS_REQUIRE_DBS="
        + ",".join(test_settings.VENDORS[1:])
        + " to make this an error.",
    ]


@pytest.hookimpl(trylast=True)  # after the terminal reporter is registered
def pytest_configure(config: pytest.Config) -> None:
    required = required_vendors()
    fatal = sorted(
        {
            reason
            for vendor, reason in missing_databases().values()
            if vendor in required
        }
    )
    if fatal:
        write_banner(
            config, ["REQUIRED BY BACKUPS_REQUIRE_DBS, BUT UNREACHABLE:", *fatal]
        )
        pytest.exit("Required database unreachable: " + "; ".join(fatal), returncode=1)
    lines = skipped_lines()
    if lines:
        # Written straight to the terminal so that -q does not hide it.
        write_banner(config, lines)


def pytest_report_header(config: pytest.Config) -> list[str]:
    header = [
        "backups_app: Django "
        + django.get_version()
        + ", BACKUPS_TEST_DB="
        + test_settings.TEST_DB
        + ", BACKUPS_CROSSVENDOR="
        + ("1" if test_settings.CROSSVENDOR else "0")
    ]
    for alias in settings.DATABASES:
        header.append("  " + alias + ": " + describe_server(alias))
    for alias, (_vendor, reason) in missing_databases().items():
        if alias not in settings.DATABASES:
            header.append("  " + alias + ": left out, " + reason)
    return header


def describe_server(alias: str) -> str:
    """Return the vendor and server version behind ``alias``, for the header."""
    if alias in missing_databases():
        return "UNREACHABLE (" + missing_databases()[alias][1] + ")"
    config = settings.DATABASES[alias]
    engine = config["ENGINE"].rsplit(".", 1)[-1]
    name = ENGINE_NAMES.get(engine, engine)
    try:
        version = server_version(engine, config)
    except Exception as exc:  # noqa: BLE001  (a header line only; tests will tell)
        return name + ", version unknown: " + repr(exc)
    return name + " " + version


def server_version(engine: str, config: dict) -> str:
    """Ask the server for its version through the driver, outside pytest-django.

    The test databases do not exist yet when the header is written, and
    pytest-django blocks Django's own connections outside tests.
    """
    if engine == "sqlite3":
        return sqlite3.sqlite_version
    if engine == "postgresql":
        import psycopg

        with psycopg.connect(
            host=config["HOST"],
            port=config["PORT"],
            user=config["USER"],
            password=config["PASSWORD"],
            dbname="postgres",
            connect_timeout=2,
        ) as connection:
            return str(connection.execute("SHOW server_version").fetchone()[0])
    import MySQLdb

    connection = MySQLdb.connect(
        host=config["HOST"],
        port=config["PORT"],
        user=config["USER"],
        password=config["PASSWORD"],
        connect_timeout=2,
    )
    try:
        cursor = connection.cursor()
        cursor.execute("SELECT VERSION()")
        return str(cursor.fetchone()[0])
    finally:
        connection.close()


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    missing = missing_databases()
    for item in items:
        aliases = item_databases(item)
        reason = None
        crossvendor = "crossvendor" in item.keywords or bool(
            aliases & set(test_settings.CROSSVENDOR_ALIASES)
        )
        if crossvendor and not test_settings.CROSSVENDOR:
            reason = "cross-vendor tests run only with BACKUPS_CROSSVENDOR=1"
        if reason is None and "default" in missing:
            reason = missing["default"][1]
        for alias in sorted(aliases):
            if reason is None and alias in missing:
                reason = missing[alias][1]
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def item_databases(item: pytest.Item) -> set[str]:
    """Return the aliases ``item`` declares, by Django test class or django_db."""
    declared = getattr(getattr(item, "cls", None), "databases", None)
    marker = item.get_closest_marker("django_db")
    if marker is not None and marker.kwargs.get("databases"):
        declared = marker.kwargs["databases"]
    if declared is None:
        return set()
    if declared == "__all__":
        return set(settings.DATABASES)
    return set(declared)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = skipped_lines()
    if lines:
        for line in banner(lines):
            terminalreporter.write_line(line, red=True, bold=True)


@pytest.fixture
def tmp_path_on_test_case(request, tmp_path):
    """Give the methods of a Django TestCase ``self.tmp_path``.

    unittest-style test methods take no fixtures; a module marks itself with
    ``pytest.mark.usefixtures("tmp_path_on_test_case")`` instead.
    """
    if request.instance is not None:
        request.instance.tmp_path = tmp_path
    return tmp_path
