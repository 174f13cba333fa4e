"""The admin's usability promises (issue 16), through Django's test client.

No false alarms from the admin's own work, one status vocabulary, the dangerous
button, never a silent lock-out, progress, and the list's layout facts. The same
points in a real browser, at three widths, are in tests/browser/test_admin_ux.py.
"""

from __future__ import annotations

import io
import sqlite3
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from backups_app.admin.mixins import RESTORE_COOKIE
from backups_app.fileformat.streams import backup_storage
from backups_app.models import BackupRecord, Operation, ValidationRun
from backups_app.progress import Progress
from backups_app.tasks import OperationRunner
from tests.factories import mutate_zoo, populate_zoo
from tests.test_admin import AdminTestCase, backup_bytes, clear_storage, url
from tests.testapp.models import Node
from tests.utils import stored_files

User = get_user_model()


def log_rows() -> list[tuple]:
    """Every admin log row, read with SQL: what a validation compares."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, action_time, object_id, change_message FROM django_admin_log "
            "ORDER BY id"
        )
        return cursor.fetchall()


class NoFalseAlarmTests(AdminTestCase):
    databases = {"default", "other"}

    def test_the_admins_own_work_leaves_the_data_it_judges_alone(self):
        populate_zoo()
        response = self.client.post(url("backuprecord_backup"), {"database": "default"})
        assert response.status_code == 302
        record = BackupRecord.objects.get()
        before = log_rows()
        # Everything the admin does to its own records, after the backup.
        download = self.client.get(url("backuprecord_download", record.pk))
        b"".join(download.streaming_content)
        self.client.post(
            url("backuprecord_upload"),
            {"file": SimpleUploadedFile("other.jsonl.gz", backup_bytes("other"))},
        )
        self.client.post(url("backuprecord_sync"))
        uploaded = BackupRecord.objects.get(origin="upload")
        self.client.post(
            url("backuprecord_delete", uploaded.pk), {"post": "yes"}, follow=True
        )
        assert not BackupRecord.objects.filter(pk=uploaded.pk).exists()
        self.client.post(url("backuprecord_validate", record.pk), {"database": "other"})
        response = self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        run = ValidationRun.objects.filter(database="default").get()
        assert log_rows() == before
        assert run.ok, run.summary
        assert run.summary.endswith("tables match exactly, 0 differ")
        assert response.url == url("validationrun_change", run.pk)
        page = self.client.get(response.url).content.decode()
        assert '<span class="backup-status status-ok">' in page
        # The history is kept in our own tables instead.
        assert sorted(Operation.objects.values_list("kind", flat=True)) == [
            "backup",
            "download",
            "upload",
            "validate",
            "validate",
        ]

    def test_a_change_by_a_user_still_shows_red(self):
        populate_zoo()
        record = self.stored_backup()
        mutate_zoo()
        self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        run = ValidationRun.objects.get()
        assert not run.ok


class StatusWordTests(AdminTestCase):
    def validation(self, ok: bool) -> Operation:
        record = self.stored_backup()
        if not ok:
            mutate_zoo()
        self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        return Operation.objects.filter(kind="validate").latest("pk")

    def test_a_validation_that_found_differences_is_red_differs_everywhere(self):
        populate_zoo()
        operation = self.validation(ok=False)
        assert operation.status == "succeeded"
        badge = '<span class="backup-status status-bad">Differs</span>'
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert badge in page
        listed = self.client.get(url("operation_changelist")).content.decode()
        assert '<span class="backup-status status-bad">differs</span>' in listed
        assert (
            "succeeded" not in listed.split('id="result_list"')[1].split("</table")[0]
        )
        recent = self.client.get(url("backuprecord_changelist")).content.decode()
        recent = recent[recent.index('id="recent-operations"') :]
        assert '<span class="backup-status status-bad">differs</span>' in recent

    def test_a_validation_that_matched_is_green_matches(self):
        operation = self.validation(ok=True)
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert '<span class="backup-status status-ok">Matches</span>' in page

    def test_queued_and_running_are_told_apart(self):
        queued = Operation.objects.create(kind="backup", database="default")
        running = Operation.objects.create(
            kind="validate", database="default", status="running"
        )
        listed = self.client.get(url("operation_changelist")).content.decode()
        assert '<span class="backup-status status-unknown">queued</span>' in listed
        assert '<span class="backup-status status-running">running</span>' in listed
        assert queued.pk != running.pk


class DangerTests(AdminTestCase):
    def test_restore_is_red_and_the_refusal_is_where_the_user_looks(self):
        record = self.stored_backup()
        page = self.client.get(url("backuprecord_change", record.pk)).content.decode()
        restore = url("backuprecord_restore", record.pk)
        assert f'<a class="restorelink" href="{restore}">' in page
        download = url("backuprecord_download", record.pk)
        assert f'<a href="{download}">Download</a>' in page
        page = self.client.get(restore).content.decode()
        assert (
            '<form method="post" id="restore-confirm-form" class="restore-danger">'
        ) in page
        assert '<input type="submit" class="restore-button"' in page
        assert "autofocus" not in page
        response = self.client.post(restore, {"database": "default", "confirm": "x"})
        page = response.content.decode()
        assert "Type default exactly to confirm the restore." in page
        assert 'aria-invalid="true"' in page and "autofocus" in page
        assert not Operation.objects.exists()


class LockOutTests(AdminTestCase):
    def restore_as_newcomer(self) -> tuple[Operation, Client, BackupRecord]:
        record = self.stored_backup()
        newcomer = User.objects.create_superuser("newcomer", password="pw")
        client = Client()
        client.force_login(newcomer)
        response = client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        assert response.url == url("operation_outcome", operation.pk)
        return operation, client, record

    def test_the_logged_out_browser_is_told_what_happened_and_how_to_undo(self):
        operation, client, _record = self.restore_as_newcomer()
        assert operation.status == "succeeded", operation.message
        safety = BackupRecord.objects.get(origin="safety")
        response = client.get(url("operation_outcome", operation.pk))
        assert response.status_code == 200
        page = response.content.decode()
        assert (
            "You were logged out: your account is not in the restored data, so you "
            "cannot log in with it again."
        ) in page
        assert (
            f'<pre id="undo-command">python manage.py restore {safety.name} '
            "--database default</pre>"
        ) in page
        # Nothing behind the login is linked from there, and no empty sidebar
        # says it may see nothing.
        assert url("backuprecord_change", safety.pk) not in page
        assert 'id="nav-sidebar"' not in page
        assert "permission to view or edit anything" not in page

    def test_the_outcome_needs_that_browsers_signed_cookie(self):
        operation, client, _record = self.restore_as_newcomer()
        login = url("operation_change", operation.pk)
        for cookie in (None, "forged", client.cookies[RESTORE_COOKIE].value + "x"):
            other = Client()
            if cookie is not None:
                other.cookies[RESTORE_COOKIE] = cookie
            response = other.get(url("operation_outcome", operation.pk))
            assert response.status_code == 302, cookie
            assert response.url.startswith("/admin/login/"), cookie
            assert login in response.url
        # The cookie opens only the restore it was set for.
        later = Operation.objects.create(
            kind="restore", database="default", status="failed"
        )
        response = client.get(url("operation_outcome", later.pk))
        assert response.status_code == 302

    def test_the_session_alone_lost_says_log_in_again(self):
        record = self.stored_backup()
        # Logged in again after the backup: the user is in it, this session is not.
        client = Client()
        client.login(username="root", password="pw")
        response = client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        page = client.get(response.url).content.decode()
        assert (
            "You were logged out: your login session is not in the restored data. "
            "Log in again."
        ) in page


class SecondDatabaseTests(AdminTestCase):
    databases = {"default", "other"}

    def test_restoring_another_database_does_not_warn_about_your_account(self):
        stream = io.BytesIO(backup_bytes("other"))
        storage = backup_storage()
        name = storage.save("backup-other-1.jsonl.gz", stream)
        self.client.post(url("backuprecord_sync"))
        record = BackupRecord.objects.get(name=name)
        User.objects.db_manager("other").create_user("someone", password="pw")
        response = self.client.get(
            url("backuprecord_restore", record.pk), {"database": "other"}
        )
        assert response.status_code == 200
        assert response.context["user_survives"] is None
        assert response.context["session_survives"] is None
        page = response.content.decode()
        assert 'id="user-warning"' not in page and 'id="session-warning"' not in page
        # The same backup over default (whose users it does not hold) does warn.
        response = self.client.get(
            url("backuprecord_restore", record.pk), {"database": "default"}
        )
        assert response.context["user_survives"] is False
        assert 'id="user-warning"' in response.content.decode()


class ProgressTests(AdminTestCase):
    def test_rows_add_up_across_tables_with_an_estimate(self):
        operation = Operation.objects.create(
            kind="restore", database="default", status="running"
        )
        runner = OperationRunner(operation)
        runner.expect("restore", 4000)
        with mock.patch("backups_app.tasks.PROGRESS_INTERVAL", 0):
            runner.progress(Progress("restore", "a.A", 0, 1000))
            runner.progress(Progress("restore", "a.A", 1000, 1000))
            runner.progress(Progress("restore", "b.B", 500, 3000))
        operation.refresh_from_db()
        assert (operation.stage, operation.rows_done, operation.rows_total) == (
            "restore",
            1500,
            4000,
        )
        assert operation.progress == "b.B: 500 / 3,000 rows"
        assert operation.estimated_end is not None
        assert operation.estimated_end >= operation.step_started
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert '<td id="progress-step">Writing the backup’s rows</td>' in page
        assert "1,500 of about 4,000 (37 %)" in page
        assert "left in this step" in page
        # A new step counts from zero.
        with mock.patch("backups_app.tasks.PROGRESS_INTERVAL", 0):
            runner.progress(Progress("check", "", 0, None))
        operation.refresh_from_db()
        assert (operation.rows_done, operation.rows_total) == (0, None)
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert '<td id="progress-estimate">not known yet</td>' in page

    def test_a_backup_expects_the_rows_it_counted_first(self):
        populate_zoo()
        self.stored_backup()
        # More rows than the last backup had: the estimate is the counted rows.
        Node.objects.bulk_create(Node(name=f"more {i}") for i in range(10))
        seen = []
        original = OperationRunner._save

        def save(runner, **fields):
            if "rows_total" in fields:
                seen.append(fields["rows_total"])
            original(runner, **fields)

        with mock.patch.object(OperationRunner, "_save", save):
            self.client.post(url("backuprecord_backup"), {"database": "default"})
        first, last = BackupRecord.objects.order_by("pk")
        assert seen and seen[0] == last.rows == first.rows + 10

    @override_settings(
        TASKS={"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    )
    def test_a_queued_operation_nobody_picks_up_says_to_start_a_worker(self):
        operation = Operation.objects.create(kind="backup", database="default")
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert 'id="no-worker"' not in page
        Operation.objects.filter(pk=operation.pk).update(
            created=timezone.now() - timedelta(minutes=2)
        )
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert (
            "No worker seems to be running: nothing has picked this operation up"
            in (page)
        )
        assert "<code>python manage.py db_worker</code>" in page

    def test_without_a_queue_there_is_no_worker_to_miss(self):
        operation = Operation.objects.create(kind="backup", database="default")
        Operation.objects.filter(pk=operation.pk).update(
            created=timezone.now() - timedelta(minutes=2)
        )
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert 'id="no-worker"' not in page


class LayoutTests(AdminTestCase):
    def test_counts_are_grouped_and_times_have_their_age(self):
        BackupRecord.objects.create(
            name="big.jsonl.gz",
            database="default",
            created=timezone.now() - timedelta(minutes=11),
            table_count=1234,
            rows=1234567,
            size=2048,
        )
        page = self.client.get(url("backuprecord_changelist")).content.decode()
        assert "1,234 tables, 1,234,567 rows, 2.0 KB" in page
        assert "(11\xa0minutes ago)" in page

    def test_one_name_for_the_section_in_every_breadcrumb(self):
        record = self.stored_backup()
        for address in (
            url("backuprecord_changelist"),
            url("backuprecord_change", record.pk),
            url("backuprecord_validate", record.pk),
            url("backuprecord_restore", record.pk),
            url("backuprecord_backup"),
        ):
            page = self.client.get(address).content.decode()
            crumbs = page[page.index('class="breadcrumbs"') :].split("</div>")[0]
            assert "Stored backups" not in crumbs, address
            assert '/admin/backups_app/backuprecord/">Backups</a>' in crumbs or (
                address == url("backuprecord_changelist")
            ), address

    def test_an_upload_is_new_at_the_top_and_a_duplicate_is_recognised(self):
        old = backup_bytes()
        self.stored_backup()  # newer than the file about to be uploaded
        response = self.client.post(
            url("backuprecord_upload"),
            {"file": SimpleUploadedFile("old.jsonl.gz", old)},
        )
        assert response.status_code == 302
        uploaded = BackupRecord.objects.get(origin="upload")
        assert uploaded.digest
        page = self.client.get(url("backuprecord_changelist")).content.decode()
        rows = page[page.index('id="result_list"') :]
        assert rows.index(uploaded.name) < rows.index("backup-default-")
        files = stored_files()
        response = self.client.post(
            url("backuprecord_upload"),
            {"file": SimpleUploadedFile("again.jsonl.gz", old)},
            follow=True,
        )
        assert response.redirect_chain[-1][0] == url("backuprecord_change", uploaded.pk)
        assert (
            f"This file has the same contents as {uploaded.name}, which is already "
            "stored; the upload was not kept."
        ) in response.content.decode()
        assert BackupRecord.objects.filter(origin="upload").count() == 1
        assert stored_files() == files

    def test_the_delete_page_says_the_file_goes_too(self):
        record = self.stored_backup()
        page = self.client.get(url("backuprecord_delete", record.pk)).content.decode()
        assert (
            f"The file {record.name} is removed from the backup storage too; it "
            "cannot be restored or downloaded afterwards."
        ) in page
        page = self.client.post(
            url("backuprecord_changelist"),
            {"action": "delete_selected", "_selected_action": [record.pk]},
        ).content.decode()
        assert "Their files are removed from the backup storage too" in page


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="only SQLite locks the whole database (and its readers) while writing",
)
@pytest.mark.django_db(transaction=True)
def test_a_locked_sqlite_database_says_a_restore_is_running(client):
    clear_storage()
    client.force_login(User.objects.create_superuser("root", password="pw"))
    assert client.get(url("backuprecord_changelist")).status_code == 200
    # What a restore's transaction does to SQLite once its cache spills: an
    # exclusive lock that keeps readers out until it commits.
    locker = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        for address in (
            url("backuprecord_changelist"),
            url("operation_changelist"),
            url("operation_outcome", 1),
        ):
            response = client.get(address)
            assert response.status_code == 503, address
            assert response["Retry-After"] == "10"
            page = response.content.decode()
            assert "<h1>A restore is in progress</h1>" in page, address
    finally:
        locker.rollback()
        locker.close()
    assert client.get(url("backuprecord_changelist")).status_code == 200
