"""The whole admin flow in a real browser: back up, validate, change, restore, validate."""

from __future__ import annotations

import re

import pytest
from admin_interface.cache import del_cached_active_theme
from django.contrib.auth import get_user_model

from backups_app.models import BackupRecord
from tests.factories import mutate_zoo, populate_zoo
from tests.test_admin import clear_storage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SUMMARY = re.compile(r"(\d+) tables match exactly, (\d+) differ")


@pytest.fixture
def admin_user():
    clear_storage()
    # The theme cache outlives the tables of earlier tests; with it cleared, the first
    # page creates the active theme row, as on a fresh site, before anything is
    # backed up.
    del_cached_active_theme()
    yield get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    clear_storage()


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/login/?next=/admin/backups_app/backuprecord/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/backups_app/backuprecord/")


def assert_themed(page) -> None:
    """django-admin-interface renders every page: its body class is there."""
    assert "admin-interface" in (page.get_attribute("body", "class") or "")


def summary(page) -> tuple[int, int]:
    text = page.inner_text("#validation-summary")
    found = SUMMARY.search(text)
    assert found, text
    return int(found.group(1)), int(found.group(2))


def validate(page, live_server, record: BackupRecord) -> tuple[int, int]:
    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/{record.pk}/validate/")
    assert_themed(page)
    page.select_option("#id_database", "default")
    page.click("#validate-form input[type=submit]")
    page.wait_for_selector("#validation-summary")
    assert_themed(page)
    return summary(page)


def test_back_up_validate_change_restore_validate(
    live_server, page, screenshot, admin_user
):
    populate_zoo()
    page.goto(f"{live_server.url}/admin/login/")
    assert_themed(page)
    screenshot("01-login")
    log_in(page, live_server)
    assert_themed(page)

    # Back up now.
    page.click("text=Back up now")
    page.wait_for_selector("#backup-form")
    assert_themed(page)
    screenshot("02-backup-form")
    page.select_option("#id_database", "default")
    page.click("#backup-form input[type=submit]")
    page.wait_for_selector("#operation-status")
    assert "Succeeded" in page.inner_text("#operation-status")
    assert_themed(page)
    screenshot("03-backup-done")
    record = BackupRecord.objects.get()

    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/")
    assert record.name in page.inner_text("#result_list")
    assert "intact" in page.inner_text("#result_list")
    screenshot("04-backup-list")

    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/{record.pk}/change/")
    assert_themed(page)
    screenshot("05-backup-detail")

    # Validate: everything matches, with one row per table.
    matching, differing = validate(page, live_server, record)
    assert differing == 0 and matching > 20
    rows = page.locator("#validation-tables tbody tr")
    assert rows.count() == matching
    assert "testapp.AllFields" in page.inner_text("#validation-tables")
    screenshot("06-validation-match")

    # Change the data behind the admin's back; validation now finds it.
    mutate_zoo()
    _matching, differing = validate(page, live_server, record)
    assert differing > 0
    assert "differs" in page.inner_text("#validation-tables")
    screenshot("07-validation-differ")

    # Restore: preview, a wrong confirmation, then the right one.
    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/{record.pk}/restore/")
    page.wait_for_selector("#restore-plan")
    assert_themed(page)
    assert "testapp.AllFields" in page.inner_text("#restore-plan")
    assert "safety-default-" in page.content()
    screenshot("08-restore-preview", full_page=True)
    page.fill("#id_confirm", "nope")
    page.click("#restore-confirm-form input[type=submit]")
    page.wait_for_selector(".errorlist")
    assert "Type default exactly" in page.inner_text(".errorlist")
    page.fill("#id_confirm", "default")
    page.click("#restore-confirm-form input[type=submit]")
    page.wait_for_selector("#operation-status")
    assert "Succeeded" in page.inner_text("#operation-status")
    safety = BackupRecord.objects.get(origin="safety")
    assert safety.name in page.inner_text("#safety-backup")
    assert_themed(page)
    screenshot("09-restore-done")

    # Validate again: the database is the backup again, row for row.
    matching, differing = validate(page, live_server, record)
    assert differing == 0, page.inner_text("#validation-tables")
    screenshot("10-validation-after-restore")

    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/upload/")
    assert_themed(page)
    screenshot("11-upload-form")
    page.goto(f"{live_server.url}/admin/backups_app/backuprecord/")
    screenshot("12-backup-list-after")
