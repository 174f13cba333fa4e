"""The Backups admin: every view, its permission, CSRF, and the file-name guards."""

from __future__ import annotations

import io
from unittest import mock

from admin_interface.cache import del_cached_active_theme
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client, TestCase
from django.urls import reverse

from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.models import BackupRecord, Integrity, Operation, ValidationRun
from tests.factories import mutate_zoo, populate_zoo
from tests.testapp.models import Author
from tests.utils import snapshot, stored_files

User = get_user_model()


def url(name: str, *args) -> str:
    return reverse(f"admin:backups_app_{name}", args=args)


def clear_storage() -> None:
    storage = backup_storage()
    try:
        _directories, files = storage.listdir("")
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(name)


def staff(username: str, *codenames: str):
    user = User.objects.create_user(username, password="pw", is_staff=True)
    if codenames:
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="backups_app", codename__in=codenames
            )
        )
    return user


def backup_bytes(using: str = "default") -> bytes:
    stream = io.BytesIO()
    stream.name = "upload.jsonl.gz"
    create_backup(stream, using=using)
    return stream.getvalue()


class AdminTestCase(TestCase):
    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)
        self.superuser = User.objects.create_superuser("root", password="pw")
        self.client.force_login(self.superuser)
        # As on a live site, the first admin page creates the active theme row (and
        # caches it): before any backup, whatever earlier tests left in the cache.
        del_cached_active_theme()
        self.client.get(reverse("admin:index"))

    def stored_backup(self) -> BackupRecord:
        summary = create_backup()
        return BackupRecord.objects.get(name=summary.storage_name)


class PermissionTests(AdminTestCase):
    """Staff status alone opens nothing; each view checks its own permission."""

    def setUp(self):
        super().setUp()
        self.record = self.stored_backup()
        self.operation = Operation.objects.create(kind="backup", database="default")
        self.run = ValidationRun.objects.create(backup_name="x", database="default")

    def get_views(self):
        pk = self.record.pk
        return [
            url("backuprecord_changelist"),
            url("backuprecord_change", pk),
            url("backuprecord_backup"),
            url("backuprecord_upload"),
            url("backuprecord_download", pk),
            url("backuprecord_validate", pk),
            url("backuprecord_restore", pk),
            url("operation_change", self.operation.pk),
            url("validationrun_change", self.run.pk),
        ]

    def post_views(self):
        pk = self.record.pk
        return [
            url("backuprecord_backup"),
            url("backuprecord_upload"),
            url("backuprecord_sync"),
            url("backuprecord_validate", pk),
            url("backuprecord_restore", pk),
            url("backuprecord_delete", pk),
        ]

    def test_staff_without_permissions_gets_403_everywhere(self):
        self.client.force_login(staff("plain"))
        for address in self.get_views():
            assert self.client.get(address).status_code == 403, address
        for address in self.post_views():
            response = self.client.post(address, {"database": "default"})
            assert response.status_code == 403, address
        assert BackupRecord.objects.count() == 1
        assert Operation.objects.count() == 1

    def test_anonymous_is_sent_to_login(self):
        self.client.logout()
        for address in self.get_views():
            response = self.client.get(address)
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("admin:login"))

    def test_run_backup_does_not_allow_validate_or_restore(self):
        self.client.force_login(staff("runner", "run_backup", "view_backuprecord"))
        assert self.client.get(url("backuprecord_backup")).status_code == 200
        response = self.client.get(url("backuprecord_download", self.record.pk))
        assert response.status_code == 200
        b"".join(response.streaming_content)  # closes the file
        assert (
            self.client.get(url("backuprecord_validate", self.record.pk)).status_code
            == 403
        )
        assert (
            self.client.get(url("backuprecord_restore", self.record.pk)).status_code
            == 403
        )
        response = self.client.post(
            url("backuprecord_restore", self.record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert response.status_code == 403
        assert not Operation.objects.filter(kind="restore").exists()

    def test_validate_permission_does_not_allow_restore(self):
        self.client.force_login(staff("checker", "validate_backup"))
        assert (
            self.client.get(url("backuprecord_validate", self.record.pk)).status_code
            == 200
        )
        assert (
            self.client.get(url("validationrun_change", self.run.pk)).status_code == 200
        )
        assert (
            self.client.get(url("backuprecord_restore", self.record.pk)).status_code
            == 403
        )
        assert self.client.get(url("backuprecord_backup")).status_code == 403

    def test_restore_permission_opens_the_preview(self):
        self.client.force_login(staff("restorer", "restore_backup"))
        response = self.client.get(url("backuprecord_restore", self.record.pk))
        assert response.status_code == 200
        self.assertTemplateUsed(response, "admin/backups_app/restore_preview.html")

    def test_the_listing_needs_the_view_permission(self):
        self.client.force_login(staff("viewer", "view_backuprecord"))
        response = self.client.get(url("backuprecord_changelist"))
        assert response.status_code == 200
        assert self.record.name in response.content.decode()
        assert "Back up now" not in response.content.decode()


class CsrfTests(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.client = Client(enforce_csrf_checks=True)
        self.client.force_login(self.superuser)

    def token(self, address: str) -> str:
        self.client.get(address)
        return self.client.cookies["csrftoken"].value

    def test_state_changing_views_refuse_a_post_without_token(self):
        record = self.stored_backup()
        for address in (
            url("backuprecord_backup"),
            url("backuprecord_sync"),
            url("backuprecord_upload"),
            url("backuprecord_validate", record.pk),
            url("backuprecord_restore", record.pk),
            url("backuprecord_delete", record.pk),
        ):
            response = self.client.post(
                address, {"database": "default", "confirm": "default", "post": "yes"}
            )
            assert response.status_code == 403, address
        assert BackupRecord.objects.count() == 1
        assert not Operation.objects.exists()

    def test_a_post_with_the_token_works(self):
        token = self.token(url("backuprecord_backup"))
        response = self.client.post(
            url("backuprecord_backup"),
            {"database": "default", "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 302
        assert Operation.objects.get().status == "succeeded"

    def test_sync_only_answers_post(self):
        assert self.client.get(url("backuprecord_sync")).status_code == 405


class ListTests(AdminTestCase):
    def test_list_is_newest_first_searchable_and_filterable(self):
        first = self.stored_backup()
        second = self.stored_backup()
        response = self.client.get(url("backuprecord_changelist"))
        content = response.content.decode()
        assert content.index(second.name) < content.index(first.name)
        for text in ("Back up now", "Upload a backup", "Sync from storage", "intact"):
            assert text in content
        response = self.client.get(url("backuprecord_changelist"), {"q": first.name})
        assert list(response.context["cl"].result_list) == [first]
        response = self.client.get(
            url("backuprecord_changelist"), {"integrity__exact": "damaged"}
        )
        assert list(response.context["cl"].result_list) == []

    def test_detail_page_shows_record_and_tools(self):
        record = self.stored_backup()
        response = self.client.get(url("backuprecord_change", record.pk))
        content = response.content.decode()
        assert response.status_code == 200
        assert record.digest in content
        for name in ("download", "validate", "restore"):
            assert url(f"backuprecord_{name}", record.pk) in content


class RecordingTests(AdminTestCase):
    def test_command_backups_to_storage_are_recorded(self):
        call_command("backup", verbosity=0)
        record = BackupRecord.objects.get()
        assert record.origin == "command"
        assert record.integrity == Integrity.INTACT
        assert record.table_count > 10
        assert record.rows > 0
        assert record.size == backup_storage().size(record.name)

    def test_backups_to_a_path_are_not_recorded(self):
        create_backup(io.BytesIO())
        assert not BackupRecord.objects.exists()

    def test_sync_records_unknown_files_reading_only_the_header(self):
        record = self.stored_backup()
        name = record.name
        record.delete()
        storage = backup_storage()
        storage.save("junk.jsonl.gz", io.BytesIO(b"not a backup\n"))
        storage.save("safety-default-1.jsonl.gz", io.BytesIO(backup_bytes()))
        BackupRecord.objects.create(name="vanished.jsonl.gz")
        response = self.client.post(url("backuprecord_sync"))
        assert response.status_code == 302
        found = BackupRecord.objects.get(name=name)
        assert found.integrity == Integrity.UNCHECKED
        assert found.origin == "storage"
        assert found.database == "default"
        assert found.table_count > 10
        assert found.rows is None
        junk = BackupRecord.objects.get(name="junk.jsonl.gz")
        assert junk.integrity == Integrity.DAMAGED
        assert "not a backups_app backup" in junk.problem
        assert (
            BackupRecord.objects.get(name="safety-default-1.jsonl.gz").origin
            == "safety"
        )
        assert not BackupRecord.objects.filter(name="vanished.jsonl.gz").exists()
        # The admin log is user data that validations compare: nothing goes there.
        assert not LogEntry.objects.exists()


class BackupNowTests(AdminTestCase):
    def test_backup_now_records_who_outside_the_admin_log(self):
        Author.objects.bulk_create(Author(name=f"author {n}") for n in range(1000))
        response = self.client.get(url("backuprecord_backup"))
        self.assertTemplateUsed(response, "admin/backups_app/backup_form.html")
        response = self.client.post(url("backuprecord_backup"), {"database": "default"})
        operation = Operation.objects.get()
        self.assertRedirects(response, url("operation_change", operation.pk))
        assert operation.status == "succeeded", operation.message
        record = BackupRecord.objects.get()
        assert (record.origin, record.username) == ("admin", "root")
        assert operation.backup == record
        # Counts grouped as the tables show them.
        assert operation.message == (
            f"Backed up database default to {record.name}: {record.table_count} "
            f"tables, {record.rows:,} rows."
        )
        assert backup_storage().exists(record.name)
        assert not LogEntry.objects.exists()
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert "Succeeded" in page
        assert 'http-equiv="refresh"' not in page

    def test_database_choice_lists_every_alias(self):
        response = self.client.get(url("backuprecord_backup"))
        content = response.content.decode()
        assert '<option value="other"' in content
        self.client.post(url("backuprecord_backup"), {"database": "nope"})
        assert not Operation.objects.exists()


class BackupNowOtherDatabaseTests(AdminTestCase):
    databases = {"default", "other"}

    def test_backup_of_the_other_database(self):
        self.client.post(url("backuprecord_backup"), {"database": "other"})
        record = BackupRecord.objects.get()
        assert record.database == "other"
        assert record.name.startswith("backup-other-")


class DownloadTests(AdminTestCase):
    def test_download_streams_the_stored_file(self):
        record = self.stored_backup()
        response = self.client.get(url("backuprecord_download", record.pk))
        assert response.status_code == 200
        assert response.streaming
        assert f'filename="{record.name}"' in response["Content-Disposition"]
        with backup_storage().open(record.name, "rb") as file:
            assert b"".join(response.streaming_content) == file.read()
        assert not LogEntry.objects.exists()
        download = Operation.objects.get(kind="download")
        assert (download.status, download.backup, download.username) == (
            "succeeded",
            record,
            "root",
        )
        assert download.message == f"Downloaded {record.name}."

    def test_record_names_cannot_leave_the_storage(self):
        for name in ("../../etc/passwd", "/etc/passwd", "..", "a/../../b", "x\\..\\y"):
            record = BackupRecord.objects.create(name=name)
            for view in ("download", "validate", "restore"):
                response = self.client.get(url(f"backuprecord_{view}", record.pk))
                assert response.status_code == 404, (name, view)
            response = self.client.post(
                url("backuprecord_restore", record.pk),
                {"database": "default", "confirm": "default"},
            )
            assert response.status_code == 404
        assert not Operation.objects.exists()

    def test_missing_file_is_reported(self):
        record = BackupRecord.objects.create(name="gone.jsonl.gz")
        response = self.client.get(url("backuprecord_download", record.pk), follow=True)
        assert "no longer in the backup storage" in response.content.decode()


class UploadTests(AdminTestCase):
    def upload(self, name: str, content: bytes):
        return self.client.post(
            url("backuprecord_upload"), {"file": SimpleUploadedFile(name, content)}
        )

    def test_an_intact_backup_is_kept_and_recorded(self):
        response = self.upload("mine.jsonl.gz", backup_bytes())
        self.assertRedirects(response, url("backuprecord_changelist"))
        record = BackupRecord.objects.get()
        assert record.origin == "upload"
        assert record.integrity == Integrity.INTACT
        assert record.name.startswith("upload-") and record.name.endswith(
            "mine.jsonl.gz"
        )
        assert backup_storage().exists(record.name)
        assert record.rows > 0
        assert not LogEntry.objects.exists()
        upload = Operation.objects.get(kind="upload")
        assert (upload.backup, upload.message) == (record, f"Uploaded {record.name}.")

    def test_a_foreign_or_damaged_file_is_refused_and_removed(self):
        damaged = bytearray(backup_bytes())
        damaged[len(damaged) // 2] ^= 0xFF
        for name, content in (
            ("notes.txt", b"hello\n"),
            ("damaged.jsonl.gz", bytes(damaged)),
            ("truncated.jsonl.gz", backup_bytes()[:300]),
        ):
            response = self.upload(name, content)
            assert response.status_code == 200
            errors = response.context["form"].errors["file"]
            assert errors[0].startswith("This file was refused and not kept:"), errors
            assert name in errors[0]
        assert not BackupRecord.objects.exists()
        assert stored_files() == []

    def test_upload_names_cannot_leave_the_storage(self):
        for name in ("../../evil.jsonl.gz", "..\\..\\evil.jsonl.gz", "/etc/evil"):
            self.upload(name, backup_bytes())
        names = sorted(BackupRecord.objects.values_list("name", flat=True))
        assert len(names) == 3
        for name in names:
            assert "/" not in name and "\\" not in name and ".." not in name
        assert sorted(backup_storage().listdir("")[1]) == names


class ValidateTests(AdminTestCase):
    def test_validate_shows_the_summary_and_per_table_results(self):
        populate_zoo()
        record = self.stored_backup()
        response = self.client.get(url("backuprecord_validate", record.pk))
        self.assertTemplateUsed(response, "admin/backups_app/validate_form.html")
        response = self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        run = ValidationRun.objects.get()
        self.assertRedirects(response, url("validationrun_change", run.pk))
        assert run.ok and run.differing == 0
        page = self.client.get(url("validationrun_change", run.pk)).content.decode()
        assert f"{run.matching} tables match exactly, 0 differ" in page
        assert "testapp.AllFields" in page
        assert "matches" in page and "status-ok" in page
        record.refresh_from_db()
        assert record.last_validation_ok is True
        assert record.last_validation_summary == run.summary

        mutate_zoo()
        self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        second = ValidationRun.objects.exclude(pk=run.pk).get()
        assert not second.ok and second.differing > 0
        page = self.client.get(url("validationrun_change", second.pk)).content.decode()
        assert f"{second.differing} differ" in page
        assert "differs" in page and "status-bad" in page
        assert "missing pk" in page or "extra pk" in page or "changed pk" in page
        # The first run can still be viewed as it was.
        page = self.client.get(url("validationrun_change", run.pk)).content.decode()
        assert "0 differ" in page
        record.refresh_from_db()
        assert record.last_validation_ok is False
        # Both runs are listed, newest first, on the backup and on the validate form.
        for page_url in (
            url("backuprecord_change", record.pk),
            url("backuprecord_validate", record.pk),
        ):
            page = self.client.get(page_url).content.decode()
            listed = page[page.index('id="past-validations"') :]
            assert listed.index(second.summary) < listed.index(run.summary)
        assert not LogEntry.objects.exists()

    def test_a_damaged_file_fails_the_validation_and_is_marked(self):
        record = self.stored_backup()
        path = backup_storage().path(record.name)
        with open(path, "r+b") as file:
            file.seek(200)
            file.write(b"\x00\x00\x00\x00")
        self.client.post(
            url("backuprecord_validate", record.pk), {"database": "default"}
        )
        operation = Operation.objects.get()
        assert operation.status == "failed"
        assert path not in operation.message
        record.refresh_from_db()
        assert record.integrity == Integrity.DAMAGED


class RestoreTests(AdminTestCase):
    def test_preview_then_typed_confirmation_restores_exactly(self):
        populate_zoo()
        record = self.stored_backup()
        expected = snapshot()
        mutate_zoo()
        response = self.client.get(url("backuprecord_restore", record.pk))
        content = response.content.decode()
        assert response.status_code == 200
        plan = response.context["plan"]
        assert plan.can_restore
        assert "testapp.AllFields" in content
        assert "Rows to delete" in content and "Rows to insert" in content
        assert "safety-default-" in content
        assert response.context["user_survives"] is True

        # A wrong confirmation changes nothing.
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "Default"},
        )
        assert response.status_code == 200
        assert "Type default exactly" in response.content.decode()
        assert not Operation.objects.exists()

        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        # Through the outcome page, which the browser that started the restore can
        # still open if the restore logs it out; logged in, it leads to the status.
        self.assertRedirects(
            response,
            url("operation_outcome", operation.pk),
            target_status_code=302,
        )
        self.assertRedirects(
            self.client.get(url("operation_outcome", operation.pk)),
            url("operation_change", operation.pk),
        )
        assert operation.status == "succeeded", operation.message
        assert operation.exclusive is None
        # Exactly the backup's rows, admin log included: the restore is recorded in
        # its Operation, which restores leave alone, not in the log it replaced.
        assert snapshot() == expected
        assert operation.username == self.superuser.get_username()
        safety = BackupRecord.objects.get(origin="safety")
        assert operation.result["safety_backup"] == safety.name
        response = self.client.get(url("operation_change", operation.pk))
        page = response.content.decode()
        assert safety.name in page
        # The rows as the message counts them: an updated row is not also shown
        # as deleted and inserted.
        result = operation.result
        updated = result["rows_updated"]
        assert updated > 0
        for row, count in [
            ("deleted", result["rows_deleted"] - updated),
            ("inserted", result["rows_inserted"] - updated),
            ("updated", updated),
        ]:
            assert f'<td id="rows-{row}">{count:,}</td>' in page
            assert f"{count:,} {'row' if count == 1 else 'rows'} {row}" in (
                operation.message
            )
        # Where the time went, stage by stage (all of them: these are short).
        with mock.patch("backups_app.progress.SHORT_STAGE", 0):
            timed = self.client.get(url("operation_change", operation.pk)).content
        times = timed.decode().split('id="stage-times"')[1].split("</ul>")[0]
        assert times.count("<li>") == len(result["stages"])
        assert "Comparing the database with the backup: " in times
        # Undo: a normal restore of the safety backup, through its own preview.
        undo = f"{url('backuprecord_restore', safety.pk)}?database=default"
        assert f'id="undo-link" href="{undo}"' in page
        assert (
            f"python manage.py restore {safety.name} --database default"
            == response.context["undo_command"]
        )
        response = self.client.get(undo)
        assert response.status_code == 200
        assert response.context["plan"].can_restore

    def test_preview_warns_when_the_user_is_not_in_the_backup(self):
        record = self.stored_backup()
        newcomer = User.objects.create_superuser("newcomer", password="pw")
        self.client.force_login(newcomer)
        response = self.client.get(url("backuprecord_restore", record.pk))
        assert response.context["user_survives"] is False
        assert "is not in this backup" in response.content.decode()
        self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        assert operation.status == "succeeded"
        assert not User.objects.filter(username="newcomer").exists()
        # The session is gone with the user: the status page sends them to log in.
        response = self.client.get(url("operation_change", operation.pk))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    def test_schema_differences_block_the_restore(self):
        record = self.stored_backup()
        from backups_app.restore import plan_restore

        def differing_plan(source, *, using="default", **kwargs):
            plan = plan_restore(source, using=using)
            return type(plan)(
                plan.source,
                plan.database,
                plan.header,
                plan.tables,
                ("testapp.Book: column 'isbn' is not in the backup",),
                plan.ends,
            )

        with mock.patch("backups_app.restore.plan_restore", differing_plan):
            response = self.client.get(url("backuprecord_restore", record.pk))
        content = response.content.decode()
        assert "The restore is blocked" in content
        assert "column &#x27;isbn&#x27; is not in the backup" in content
        assert 'id="restore-confirm-form"' not in content

    def test_a_restore_refuses_to_start_beside_another(self):
        record = self.stored_backup()
        running = Operation.objects.create(
            kind="restore", database="default", status="running", exclusive="restore"
        )
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert "A restore is queued or running" in response.content.decode()
        response = self.client.post(url("backuprecord_backup"), {"database": "default"})
        assert "A restore is queued or running" in response.content.decode()
        assert Operation.objects.get() == running
        running.status = "succeeded"
        running.exclusive = None
        running.save()
        Operation.objects.create(kind="backup", database="default", status="running")
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert (
            "Another backup operation is queued or running" in response.content.decode()
        )

    def test_stale_operations_can_be_marked_failed(self):
        running = Operation.objects.create(
            kind="restore", database="default", status="running", exclusive="restore"
        )
        self.client.force_login(staff("runner", "run_backup"))
        self.client.post(
            url("operation_changelist"),
            {"action": "mark_failed", "_selected_action": [running.pk]},
        )
        running.refresh_from_db()
        assert running.status == "running"
        self.client.force_login(self.superuser)
        response = self.client.post(
            url("operation_changelist"),
            {"action": "mark_failed", "_selected_action": [running.pk]},
        )
        assert response.status_code == 302
        running.refresh_from_db()
        assert (running.status, running.exclusive) == ("failed", None)


class OperationPageTests(AdminTestCase):
    def test_an_active_operation_page_refreshes_itself(self):
        operation = Operation.objects.create(
            kind="backup", database="default", status="running", stage="backup"
        )
        response = self.client.get(url("operation_change", operation.pk))
        self.assertTemplateUsed(response, "admin/backups_app/operation_status.html")
        content = response.content.decode()
        assert '<meta http-equiv="refresh" content="2">' in content
        assert "Running" in content

    def test_pages_extend_the_local_base_and_the_themed_admin(self):
        record = self.stored_backup()
        response = self.client.get(url("backuprecord_restore", record.pk))
        self.assertTemplateUsed(response, "admin/backups_app/base.html")
        self.assertTemplateUsed(response, "admin/base_site.html")
        content = response.content.decode()
        assert '<div class="breadcrumbs">\n<ol>' in content
        assert "admin-interface" in content


class DeleteTests(AdminTestCase):
    def test_delete_asks_then_removes_file_and_record(self):
        record = self.stored_backup()
        response = self.client.get(url("backuprecord_delete", record.pk))
        assert "Are you sure" in response.content.decode()
        assert backup_storage().exists(record.name)
        response = self.client.post(
            url("backuprecord_delete", record.pk), {"post": "yes"}
        )
        assert response.status_code == 302
        assert not BackupRecord.objects.exists()
        assert not backup_storage().exists(record.name)


class ComposedAdminTests(AdminTestCase):
    """A project changes one page by subclassing BackupRecordAdmin (docs/admin.md)."""

    def test_a_subclass_changes_a_page_through_its_template_attribute_and_hook(self):
        from django.contrib import admin
        from django.test import RequestFactory

        from backups_app.admin.backups import BackupRecordAdmin

        class ShopBackupAdmin(BackupRecordAdmin):
            backup_template_name = "testapp/backup_form.html"

            def get_backup_context(self, request, **context):
                return super().get_backup_context(
                    request, shop_note="Backups of the shop", **context
                )

        request = RequestFactory().get(url("backuprecord_backup"))
        request.user = staff("runner", "run_backup")
        response = ShopBackupAdmin(BackupRecord, admin.site).backup_view(request)
        page = response.render().content.decode()
        assert '<p id="shop-note">Backups of the shop</p>' in page
        assert '<form method="post" id="backup-form">' in page

        request.user = staff("nobody")
        with self.assertRaises(PermissionDenied):
            ShopBackupAdmin(BackupRecord, admin.site).backup_view(request)


class OwnAdminSiteTests(AdminTestCase):
    """The ModelAdmins registered on a site of the project's own (tests/urls.py:
    ``ops``, under /ops/) link and redirect within that site."""

    def ops(self, name: str, *args) -> str:
        return reverse(f"admin:backups_app_{name}", args=args, current_app="ops")

    def assert_within_ops(self, page: str) -> None:
        assert 'href="/ops/backups_app/' in page
        assert "/admin/backups_app/" not in page

    def test_pages_and_redirects_stay_on_the_site(self):
        populate_zoo()
        record = self.stored_backup()
        expected = snapshot()
        mutate_zoo()
        assert self.ops("backuprecord_changelist") == "/ops/backups_app/backuprecord/"
        for address in (
            self.ops("backuprecord_changelist"),
            self.ops("backuprecord_change", record.pk),
            self.ops("backuprecord_restore", record.pk),
        ):
            with self.subTest(address=address):
                response = self.client.get(address)
                assert response.status_code == 200
                self.assert_within_ops(response.content.decode())
        response = self.client.post(
            self.ops("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        assert operation.status == "succeeded", operation.message
        assert snapshot() == expected
        self.assertRedirects(
            response,
            self.ops("operation_outcome", operation.pk),
            target_status_code=302,
        )
        outcome = self.client.get(self.ops("operation_outcome", operation.pk))
        self.assertRedirects(outcome, self.ops("operation_change", operation.pk))
        status = self.client.get(self.ops("operation_change", operation.pk))
        self.assert_within_ops(status.content.decode())
        assert 'id="undo-link" href="/ops/backups_app/backuprecord/' in (
            status.content.decode()
        )

    def test_a_backup_started_there_goes_to_its_status_there(self):
        response = self.client.post(
            self.ops("backuprecord_backup"), {"database": "default"}
        )
        operation = Operation.objects.get(kind="backup")
        self.assertRedirects(response, self.ops("operation_change", operation.pk))
