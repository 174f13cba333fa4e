"""Issue 16 in a real browser, at a phone's, a laptop's and a desktop's width.

Each test runs at 390, 1280 and 1920 px. Screenshots are named ux-<what>-<width>.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from admin_interface.cache import del_cached_active_theme
from django.contrib.auth import get_user_model
from django.utils import timezone

from backups_app.backup import create_backup
from backups_app.models import BackupRecord, Operation
from tests.factories import mutate_zoo, populate_zoo
from tests.test_admin import clear_storage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTHS = (390, 1280, 1920)
LIST = "/admin/backups_app/backuprecord/"


@pytest.fixture(params=WIDTHS, ids=[f"{width}px" for width in WIDTHS])
def width(request, page):
    page.set_viewport_size({"width": request.param, "height": 900})
    return request.param


@pytest.fixture
def admin_user():
    clear_storage()
    del_cached_active_theme()
    yield get_user_model().objects.create_superuser("admin", "a@example.com", "pw")
    clear_storage()


def log_in(page, live_server, username: str = "admin") -> None:
    page.goto(f"{live_server.url}/admin/login/?next={LIST}")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"**{LIST}")


def assert_no_sideways_scroll(page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


FITS = """selector => {
    const table = document.querySelector(selector);
    const box = table.parentElement;
    return table.getBoundingClientRect().right
        <= document.documentElement.clientWidth
        && box.scrollWidth <= box.clientWidth + 1;
}"""
WIDTHS_JS = """() => {
    const table = document.querySelector("#result_list");
    return [table.scrollWidth, table.parentElement.clientWidth];
}"""


def colour(page, selector: str, prop: str = "backgroundColor") -> tuple[int, int, int]:
    value = page.eval_on_selector(
        selector, f"element => getComputedStyle(element).{prop}"
    )
    red, green, blue = (int(part) for part in re.findall(r"[\d.]+", value)[:3])
    return red, green, blue


def is_red(rgb: tuple[int, int, int]) -> bool:
    red, green, blue = rgb
    return red > green + 60 and red > blue + 60


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    height = page.viewport_size["height"]
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= height


def validate(page, live_server, record: BackupRecord) -> str:
    page.goto(f"{live_server.url}{LIST}{record.pk}/validate/")
    page.select_option("#id_database", "default")
    page.click("#validate-form input[type=submit]")
    page.wait_for_selector("#validation-summary")
    return page.inner_text("#validation-summary")


def test_green_when_unchanged_red_when_changed_and_a_dangerous_restore(
    live_server, page, width, screenshot, admin_user
):
    populate_zoo()
    log_in(page, live_server)
    page.click("text=Back up now")
    page.select_option("#id_database", "default")
    page.click("#backup-form input[type=submit]")
    page.wait_for_selector("#operation-status")
    record = BackupRecord.objects.get()

    # The admin's own work after the backup: a download and an upload.
    page.goto(f"{live_server.url}{LIST}{record.pk}/change/")
    with page.expect_download() as download:
        page.click("text=Download")
    path = download.value.path()
    page.goto(f"{live_server.url}{LIST}upload/")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-form input[type=submit]")
    # Same contents as the stored backup: recognised, not kept twice.
    page.wait_for_url(f"**{LIST}{record.pk}/change/")
    assert "has the same contents as" in page.inner_text(".messagelist")
    assert BackupRecord.objects.count() == 1
    assert_no_sideways_scroll(page)
    screenshot(f"ux-duplicate-upload-{width}")
    page.goto(f"{live_server.url}{LIST}")
    assert_no_sideways_scroll(page)
    if width >= 1280:
        # Every column in view, beside the filters, without a scrolling box.
        assert page.evaluate(FITS, "#result_list"), page.evaluate(WIDTHS_JS)
    screenshot(f"ux-list-{width}", full_page=True)

    # A validation right after: green, "0 differ".
    text = validate(page, live_server, record)
    assert text.endswith("tables match exactly, 0 differ"), text
    assert "status-ok" in page.get_attribute("#validation-summary span", "class")
    assert_no_sideways_scroll(page)

    # A real change: red, "differs", in the report and in the operations list.
    mutate_zoo()
    text = validate(page, live_server, record)
    assert not text.endswith(" 0 differ"), text
    assert "status-bad" in page.get_attribute("#validation-summary span", "class")
    screenshot(f"ux-validation-differ-{width}")
    page.goto(f"{live_server.url}/admin/backups_app/validationrun/")
    assert is_red(colour(page, "#result_list .status-bad", "color"))
    assert_no_sideways_scroll(page)
    if width >= 1280:
        assert page.evaluate(FITS, "#result_list"), page.evaluate(WIDTHS_JS)
    page.goto(f"{live_server.url}/admin/backups_app/operation/")
    statuses = page.inner_text("#result_list")
    assert "differs" in statuses and "matches" in statuses
    assert is_red(colour(page, "#result_list .status-bad", "color"))
    assert not is_red(colour(page, "#result_list .status-ok", "color"))
    screenshot(f"ux-operations-{width}")
    assert_no_sideways_scroll(page)
    if width >= 1280:
        assert page.evaluate(FITS, "#result_list"), page.evaluate(WIDTHS_JS)

    # Restore is red on the backup page, Download is not.
    page.goto(f"{live_server.url}{LIST}{record.pk}/change/")
    assert is_red(colour(page, ".object-tools a.restorelink"))
    assert not is_red(colour(page, ".object-tools a:text-is('Download')"))
    assert_no_sideways_scroll(page)
    page.click("a.restorelink")
    page.wait_for_selector("#restore-plan")
    assert is_red(colour(page, "#restore-confirm-form .restore-button"))
    assert not is_red(colour(page, "#restore-confirm-form .cancel-link"))
    assert_no_sideways_scroll(page)
    # A wrong confirmation: the error is on screen, the cursor in the field.
    page.fill("#id_confirm", "nope")
    page.click("#restore-confirm-form .restore-button")
    page.wait_for_selector("#confirm-error")
    # The browser focuses an autofocus field (and scrolls to it) after the page
    # is parsed, in a later rendering step: wait for the focus, then look.
    page.wait_for_function("document.activeElement?.id === 'id_confirm'")
    assert in_view(page, "#confirm-error")
    screenshot(f"ux-restore-refused-{width}")
    page.fill("#id_confirm", "default")
    page.click("#restore-confirm-form .restore-button")
    page.wait_for_selector("#undo-restore")
    safety = BackupRecord.objects.get(origin="safety")
    assert safety.name in page.inner_text("#safety-backup")
    assert_no_sideways_scroll(page)
    screenshot(f"ux-restore-done-{width}", full_page=True)
    # Undo: the safety backup's own preview and confirmation.
    page.click("#undo-link")
    page.wait_for_selector("#restore-plan")
    assert safety.name in page.inner_text("#content")
    assert page.locator("#restore-confirm-form").count() == 1


def test_a_restore_that_logs_you_out_says_so_and_how_to_undo(
    live_server, page, width, screenshot, admin_user
):
    create_backup()
    record = BackupRecord.objects.get()
    get_user_model().objects.create_superuser("newcomer", "n@example.com", "pw")
    log_in(page, live_server, "newcomer")
    page.goto(f"{live_server.url}{LIST}{record.pk}/restore/")
    assert "Your account (newcomer) is not in this backup" in page.inner_text(
        "#user-warning"
    )
    page.fill("#id_confirm", "default")
    page.click("#restore-confirm-form .restore-button")
    page.wait_for_selector("#logged-out")
    text = page.inner_text("#logged-out")
    assert "You were logged out: your account is not in the restored data" in text
    safety = BackupRecord.objects.get(origin="safety")
    assert page.inner_text("#undo-command") == (
        f"python manage.py restore {safety.name} --database default"
    )
    assert Operation.objects.get(kind="restore").status == "succeeded"
    assert_no_sideways_scroll(page)
    screenshot(f"ux-logged-out-{width}", full_page=True)


def test_the_delete_page_says_the_file_goes(
    live_server, page, width, screenshot, admin_user
):
    create_backup()
    record = BackupRecord.objects.get()
    log_in(page, live_server)
    page.goto(f"{live_server.url}{LIST}{record.pk}/delete/")
    assert "removed from the backup storage too" in page.inner_text("#file-removed")
    assert_no_sideways_scroll(page)
    screenshot(f"ux-delete-{width}")


def test_progress_and_a_missing_worker(
    live_server, page, width, screenshot, admin_user, settings
):
    now = timezone.now()
    running = Operation.objects.create(
        kind="restore",
        database="default",
        status="running",
        started=now - timedelta(seconds=30),
        stage="restore",
        progress="shop.OrderItem: 250,000 / 1,000,000 rows",
        rows_done=1_250_000,
        rows_total=5_000_000,
        step_started=now - timedelta(seconds=20),
        estimated_end=now + timedelta(minutes=10),
    )
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/backups_app/operation/{running.pk}/change/")
    assert page.inner_text("#progress-step") == "Writing the backup’s rows"
    assert page.inner_text("#progress-rows").startswith(
        "1,250,000 of about 5,000,000 (25 %)"
    )
    assert page.inner_text("#progress-estimate") in (
        "about 9\xa0minutes left in this step",
        "about 10\xa0minutes left in this step",
    )
    assert_no_sideways_scroll(page)
    screenshot(f"ux-progress-{width}")
    Operation.objects.filter(pk=running.pk).update(status="failed", exclusive=None)

    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    queued = Operation.objects.create(kind="backup", database="default")
    Operation.objects.filter(pk=queued.pk).update(created=now - timedelta(minutes=3))
    page.goto(f"{live_server.url}/admin/backups_app/operation/{queued.pk}/change/")
    assert "No worker seems to be running" in page.inner_text("#no-worker")
    assert "python manage.py db_worker" in page.inner_text("#no-worker")
    assert_no_sideways_scroll(page)
    screenshot(f"ux-no-worker-{width}")
