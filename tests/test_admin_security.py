"""Foreign files, the permission to upload and to restore them, and the file guards.

A backup made here carries a mac in its trailer; anything else is foreign. An
upload needs its own permission, and restoring a foreign file needs another one
plus a preview that names the accounts it would create or change.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
from pathlib import Path

import orjson
import pytest
from admin_interface.cache import del_cached_active_theme
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from django.utils.crypto import get_random_string

from backups_app.backup import create_backup
from backups_app.exceptions import BackupFormatError
from backups_app.fileformat.streams import backup_storage
from backups_app.models import (
    BackupRecord,
    DrillRun,
    Integrity,
    Operation,
    Provenance,
)
from backups_app.provenance import auth_changes
from backups_app.records import open_source
from backups_app.tasks import start_operation
from tests.test_admin import AdminTestCase, clear_storage, staff, url
from tests.test_provenance import ELSEWHERE, backup_file, crafted
from tests.utils import snapshot, stored_files

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

User = get_user_model()

LINE_BOUND = 1 << 16


class UploadAndRestoreForeignTests(AdminTestCase):
    """Issue 6: an upload could plant a superuser that a restore then installed."""

    def setUp(self):
        super().setUp()
        self.victim = User.objects.create_user("victim", password="pw")
        source = backup_file(self.tmp_path / "source.jsonl.gz")
        self.forged = crafted(
            source,
            self.tmp_path / "forged.jsonl",
            victim={"username": "mallory", "is_staff": True, "is_superuser": True},
        ).read_bytes()

    def upload(self, content: bytes, name: str = "forged.jsonl"):
        return self.client.post(
            url("backuprecord_upload"), {"file": SimpleUploadedFile(name, content)}
        )

    def test_the_backup_permission_does_not_allow_uploads(self):
        self.client.force_login(staff("runner", "run_backup", "view_backuprecord"))
        assert self.client.get(url("backuprecord_upload")).status_code == 403
        assert self.upload(self.forged).status_code == 403
        assert stored_files() == []
        page = self.client.get(url("backuprecord_changelist")).content.decode()
        assert "Upload a backup" not in page and "Back up now" in page

    def test_a_foreign_upload_is_kept_as_foreign_and_its_restore_refused(self):
        self.client.force_login(staff("uploader", "upload_backup"))
        response = self.upload(self.forged)
        assert response.status_code == 302
        record = BackupRecord.objects.get()
        assert (record.origin, record.integrity, record.provenance) == (
            "upload",
            Integrity.INTACT,
            Provenance.FOREIGN,
        )
        messages = [str(m) for m in response.wsgi_request._messages]
        assert messages == [
            f"Uploaded {record.name}: an intact backup of {record.table_count} "
            "tables, but not made by this installation (foreign); restoring it "
            "needs the permission to restore foreign backups."
        ]

        self.client.force_login(staff("restorer", "restore_backup"))
        response = self.client.get(url("backuprecord_restore", record.pk))
        assert response.status_code == 200
        content = response.content.decode()
        assert 'id="foreign-warning"' in content
        assert (
            '<strong class="backup-status status-bad">New user &#x27;mallory&#x27;: '
            "superuser, staff</strong>"
        ) in content
        assert "User &#x27;victim&#x27; is removed" in content
        assert 'id="foreign-permission"' in content
        assert 'id="restore-confirm-form"' not in content
        before = snapshot()
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert response.status_code == 403
        assert not Operation.objects.filter(kind="restore").exists()
        assert snapshot() == before

    def test_the_foreign_permission_allows_the_restore_after_the_warning(self):
        self.upload(self.forged)
        record = BackupRecord.objects.get()
        self.client.force_login(
            staff("trusted", "restore_backup", "restore_foreign_backup")
        )
        response = self.client.get(url("backuprecord_restore", record.pk))
        content = response.content.decode()
        assert 'id="foreign-warning"' in content
        assert 'id="foreign-permission"' not in content
        assert 'id="restore-confirm-form"' in content
        self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        assert operation.status == "succeeded", operation.message
        assert operation.allow_foreign is True
        mallory = User.objects.get(username="mallory")
        assert (mallory.pk, mallory.is_superuser) == (self.victim.pk, True)

    def test_the_worker_refuses_a_foreign_file_the_user_may_not_restore(self):
        self.upload(self.forged)
        record = BackupRecord.objects.get()
        before = snapshot()
        operation = start_operation(
            "restore", database="default", user=self.superuser, backup=record
        )
        assert operation.status == "failed"
        assert operation.message == (
            f"{record.name} was not made by this installation; restoring it needs "
            "the permission to restore foreign backups. Nothing was changed."
        )
        assert snapshot() == before

    def test_our_own_upload_is_ours_and_restores_without_the_warning(self):
        ours = io.BytesIO()
        ours.name = "ours.jsonl.gz"
        create_backup(ours)
        response = self.upload(ours.getvalue(), "ours.jsonl.gz")
        record = BackupRecord.objects.get()
        assert record.provenance == Provenance.OURS
        assert [str(m) for m in response.wsgi_request._messages] == [
            f"Uploaded {record.name}: an intact backup of {record.table_count} "
            "tables, made by this installation."
        ]
        self.client.force_login(staff("restorer", "restore_backup"))
        response = self.client.get(url("backuprecord_restore", record.pk))
        content = response.content.decode()
        assert 'id="foreign-warning"' not in content
        assert 'id="restore-confirm-form"' in content

    def test_a_synced_file_learns_its_provenance_from_the_preview(self):
        backup_storage().save("found.jsonl", io.BytesIO(self.forged))
        self.client.post(url("backuprecord_sync"))
        record = BackupRecord.objects.get(name="found.jsonl")
        assert record.provenance == Provenance.UNCHECKED
        self.client.force_login(staff("restorer", "restore_backup"))
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert response.status_code == 403
        record.refresh_from_db()
        assert record.provenance == Provenance.FOREIGN


class FileModeTests(AdminTestCase):
    def setUp(self):
        super().setUp()
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)

    def mode(self, name: str) -> int:
        return stat.S_IMODE(os.stat(backup_storage().path(name)).st_mode)

    def test_uploads_are_stored_with_the_mode_of_our_backups(self):
        self.client.post(url("backuprecord_backup"), {"database": "default"})
        made = BackupRecord.objects.get()
        ours = io.BytesIO()
        ours.name = "x.jsonl.gz"
        create_backup(ours)
        self.client.post(
            url("backuprecord_upload"),
            {"file": SimpleUploadedFile("up.jsonl.gz", ours.getvalue())},
        )
        uploaded = BackupRecord.objects.get(origin="upload")
        assert (self.mode(made.name), self.mode(uploaded.name)) == (0o600, 0o600)
        # Nothing else is left in the storage (no temporary copy).
        assert sorted(backup_storage().listdir("")[1]) == sorted(
            [made.name, uploaded.name]
        )


class LinkTests(AdminTestCase):
    """Only regular files inside the storage are served, validated or restored."""

    def setUp(self):
        super().setUp()
        self.outside = backup_file(self.tmp_path / "outside.jsonl.gz")
        storage = backup_storage()
        Path(storage.location).mkdir(parents=True, exist_ok=True)
        os.symlink(self.outside, storage.path("link.jsonl.gz"))

    def test_a_link_in_the_storage_is_not_followed(self):
        record = BackupRecord.objects.create(name="link.jsonl.gz")
        for view in ("download", "validate", "restore"):
            response = self.client.get(url(f"backuprecord_{view}", record.pk))
            assert response.status_code == 404, view
        response = self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        assert response.status_code == 404
        assert not Operation.objects.exists()

    def test_sync_records_a_link_as_damaged_without_reading_it(self):
        self.client.post(url("backuprecord_sync"))
        record = BackupRecord.objects.get(name="link.jsonl.gz")
        assert record.integrity == Integrity.DAMAGED
        assert record.problem == (
            "link.jsonl.gz: is not a regular file in the backup storage"
        )
        assert (record.database, record.table_count) == ("", None)


class DamagedSyncTests(AdminTestCase):
    def sync_twice(self):
        response = self.client.post(url("backuprecord_sync"), follow=True)
        assert [str(m) for m in response.context["messages"]] == [
            "Recorded 1 new file from the backup storage; forgot 0 records whose "
            "files are gone."
        ]
        first = list(BackupRecord.objects.values_list("name", "integrity", "problem"))
        response = self.client.post(url("backuprecord_sync"), follow=True)
        messages = [str(m) for m in response.context["messages"]]
        assert messages == [
            "Recorded 0 new files from the backup storage; forgot 0 records whose "
            "files are gone."
        ]
        assert (
            list(BackupRecord.objects.values_list("name", "integrity", "problem"))
            == first
        )
        return first

    def test_an_undecodable_file_is_recorded_damaged_once(self):
        backup_storage().save(
            "broken.jsonl.gz", io.BytesIO(b"\x1f\x8b\x08\x00" + b"\xff" * 64)
        )
        [(name, integrity, problem)] = self.sync_twice()
        assert (name, integrity) == ("broken.jsonl.gz", Integrity.DAMAGED)
        assert problem.startswith("broken.jsonl.gz: ")

    def test_an_oversized_header_line_is_recorded_damaged_once(self):
        # An intact backup whose header line is 8 MB long: a few KB of gzip.
        header, rest = gzip.decompress(self._ours()).split(b"\n", 1)
        padded = header[:-1] + b',"pad":"' + b"x" * (8 << 20) + b'"}\n' + rest
        backup_storage().save("bomb.jsonl.gz", io.BytesIO(gzip.compress(padded)))
        with override_settings(BACKUPS={"MAX_LINE_BYTES": LINE_BOUND}):
            [(name, integrity, problem)] = self.sync_twice()
        assert (name, integrity) == ("bomb.jsonl.gz", Integrity.DAMAGED)
        assert problem.startswith("bomb.jsonl.gz: ")

    def test_an_upload_with_an_oversized_line_is_refused_and_deleted(self):
        stream = io.BytesIO()
        stream.name = "plain.jsonl"
        create_backup(stream)
        lines = stream.getvalue().rstrip(b"\n").split(b"\n")
        assert len(lines[0]) < LINE_BOUND  # the header fits; one row does not
        start = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(b'{"kind":"table","label":"auth.User"')
        )
        lines.insert(start + 1, b'[1,"' + b"x" * (4 * LINE_BOUND) + b'"]')
        with override_settings(BACKUPS={"MAX_LINE_BYTES": LINE_BOUND}):
            response = self.client.post(
                url("backuprecord_upload"),
                {"file": SimpleUploadedFile("bomb.jsonl", redigest(lines))},
            )
        assert response.status_code == 200
        [error] = response.context["form"].errors["file"]
        assert error.startswith("This file was refused and not kept: bomb.jsonl")
        assert not BackupRecord.objects.exists()
        assert stored_files() == []

    def _ours(self) -> bytes:
        stream = io.BytesIO()
        stream.name = "x.jsonl.gz"
        create_backup(stream)
        return stream.getvalue()


class NonNumericIdTests(AdminTestCase):
    def test_ids_that_are_not_numbers_answer_404(self):
        record = self.stored_backup()
        operation = Operation.objects.create(kind="backup", database="default")
        assert self.client.get(url("backuprecord_change", record.pk)).status_code == 200
        assert self.client.get(url("operation_change", operation.pk)).status_code == 200
        for bad in ("abc", "1.5", "-1", "0", "99999999999999999999999", "1%00"):
            for name in (
                "backuprecord_change",
                "backuprecord_delete",
                "backuprecord_history",
                "validationrun_change",
                "validationrun_delete",
                "validationrun_history",
                "operation_change",
                "operation_history",
            ):
                response = self.client.get(url(name, bad))
                assert response.status_code == 404, (name, bad)
        for view in ("download", "validate", "restore"):
            address = url(f"backuprecord_{view}", 99999999999999999999999)
            assert self.client.get(address).status_code == 404, view


# -- the permission matrix ---------------------------------------------------------

KINDS = [
    "anonymous",
    "active non-staff",
    "staff",
    "view_backuprecord",
    "run_backup",
    "upload_backup",
    "validate_backup",
    "restore_backup",
    "restore_foreign_backup",
    "delete_backuprecord",
    "view_operation",
    "view_validationrun",
    "view_drillrun",
    "superuser",
]
ALL_CODENAMES = KINDS[3:-1]


def allowed(kind: str, *codenames: str) -> bool:
    """Whether a staff member of this kind holds every one of ``codenames``."""
    return kind == "superuser" or all(kind == name for name in codenames)


def expected(kind: str, cell: str) -> int:
    """The status a user of ``kind`` gets for ``cell`` ("METHOD view")."""
    if kind in ("anonymous", "active non-staff"):
        return 302  # to the login page: admin_view wants active staff
    method, view = cell.split(" ", 1)
    ok = 302 if method == "POST" else 200
    rules = {
        "changelist": ("view_backuprecord",),
        "change": ("view_backuprecord",),
        "history": ("view_backuprecord",),
        "backup": ("run_backup",),
        "upload": ("upload_backup",),
        "download": ("run_backup",),
        "validate": ("validate_backup",),
        "restore": ("restore_backup",),
        "restore-foreign": ("restore_backup", "restore_foreign_backup"),
        "delete": ("delete_backuprecord",),
        "validationrun_changelist": ("view_validationrun",),
        "validationrun_change": ("view_validationrun",),
    }
    if view == "sync":
        if method == "GET":
            return 405  # require_POST answers before the permission check
        return ok if allowed(kind, "run_backup") else 403
    if view in ("operation_changelist", "operation_change"):
        permitted = kind in (
            "superuser",
            "view_operation",
            "run_backup",
            "validate_backup",
            "restore_backup",
        )
    elif view.startswith("validationrun") and kind == "validate_backup":
        permitted = True
    elif view.startswith("drillrun"):
        permitted = kind in ("superuser", "view_drillrun", "validate_backup")
    elif view == "restore-foreign" and method == "GET":
        # The preview opens with restore_backup alone; it shows the warning.
        permitted = allowed(kind, "restore_backup")
    else:
        permitted = allowed(kind, *rules[view])
    if not permitted:
        return 403
    if method == "POST" and view in ("backup", "upload", "validate", "restore"):
        return 200  # the form comes back with its error: nothing starts
    if method == "POST" and view == "restore-foreign":
        return 200
    return ok


def make_user(kind: str):
    if kind == "anonymous":
        return None
    if kind == "superuser":
        return User.objects.create_superuser("matrix", password="pw")
    user = User.objects.create_user(
        "matrix", password="pw", is_staff=kind != "active non-staff"
    )
    codenames = ALL_CODENAMES if kind == "active non-staff" else [kind]
    user.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="backups_app", codename__in=codenames
        )
    )
    return user


@pytest.mark.django_db
@pytest.mark.parametrize("kind", KINDS)
def test_permission_matrix(kind, tmp_path):
    """Every admin URL of the app, GET and POST (with a valid CSRF token)."""
    clear_storage()
    try:
        _permission_matrix(kind, tmp_path)
    finally:
        clear_storage()


def _permission_matrix(kind: str, tmp_path: Path) -> None:
    del_cached_active_theme()
    ours = BackupRecord.objects.get(name=create_backup().storage_name)
    with override_settings(BACKUPS=ELSEWHERE):
        elsewhere = create_backup(tmp_path / "elsewhere.jsonl.gz")
    with open(elsewhere.path, "rb") as file:
        backup_storage().save("foreign.jsonl.gz", file)
    foreign = BackupRecord.objects.create(
        name="foreign.jsonl.gz", provenance=Provenance.FOREIGN
    )
    operation = Operation.objects.create(kind="backup", database="default")
    run = ours.validations.create(backup_name=ours.name, database="default")
    drill = DrillRun.objects.create(
        backup_name=ours.name, source_database="default", scratch_database="other"
    )
    cells = {
        "GET changelist": url("backuprecord_changelist"),
        "GET change": url("backuprecord_change", ours.pk),
        "GET history": url("backuprecord_history", ours.pk),
        "GET backup": url("backuprecord_backup"),
        "GET upload": url("backuprecord_upload"),
        "GET sync": url("backuprecord_sync"),
        "GET download": url("backuprecord_download", ours.pk),
        "GET validate": url("backuprecord_validate", ours.pk),
        "GET restore": url("backuprecord_restore", ours.pk),
        "GET restore-foreign": url("backuprecord_restore", foreign.pk),
        "GET delete": url("backuprecord_delete", ours.pk),
        "GET operation_changelist": url("operation_changelist"),
        "GET operation_change": url("operation_change", operation.pk),
        "GET validationrun_changelist": url("validationrun_changelist"),
        "GET validationrun_change": url("validationrun_change", run.pk),
        "GET drillrun_changelist": url("drillrun_changelist"),
        "GET drillrun_change": url("drillrun_change", drill.pk),
        # POSTs that pass the permission check stop at a form error (unknown
        # database, no file, no typed confirmation), except sync and delete.
        "POST backup": url("backuprecord_backup"),
        "POST upload": url("backuprecord_upload"),
        "POST sync": url("backuprecord_sync"),
        "POST validate": url("backuprecord_validate", ours.pk),
        "POST restore": url("backuprecord_restore", ours.pk),
        "POST restore-foreign": url("backuprecord_restore", foreign.pk),
        "POST delete": url("backuprecord_delete", ours.pk),
    }
    client = Client(enforce_csrf_checks=True)
    Client().get(reverse("admin:login"))  # the theme row, as on a live site
    user = make_user(kind)
    if user is not None:
        client.force_login(user)
    token = get_random_string(32)
    client.cookies["csrftoken"] = token
    got = {}
    for cell, address in cells.items():
        if cell.startswith("GET"):
            response = client.get(address)
        else:
            response = client.post(
                address, {"csrfmiddlewaretoken": token, "database": "nope"}
            )
        got[cell] = response.status_code
        if response.streaming:
            b"".join(response.streaming_content)  # closes the file
        if response.status_code == 302 and kind in ("anonymous", "active non-staff"):
            assert response["Location"].startswith(reverse("admin:login")), cell
    want = {cell: expected(kind, cell) for cell in cells}
    assert got == want
    if not allowed(kind, "delete_backuprecord"):
        assert BackupRecord.objects.filter(pk=ours.pk).exists()
    # Only downloads (recorded as they happen) were started by the matrix.
    assert not Operation.objects.exclude(pk=operation.pk).exclude(kind="download")


def redigest(lines: list[bytes]) -> bytes:
    """Join record and row lines into a file whose counts and digests all match.

    What an attacker does after editing rows, however malformed; there is no mac.
    """
    out = []
    file_digest = hashlib.sha256()
    tables = rows = 0
    table_digest, table_rows = None, 0
    for line in lines:
        if line.startswith(b"["):
            table_digest.update(line + b"\n")
            table_rows += 1
        else:
            record = orjson.loads(line)
            if record["kind"] == "table":
                table_digest, table_rows = hashlib.sha256(), 0
            elif record["kind"] == "end":
                record.update(rows=table_rows, digest=table_digest.hexdigest())
                tables, rows = tables + 1, rows + table_rows
                line = orjson.dumps(record)
            elif record["kind"] == "trailer":
                line = orjson.dumps(
                    {
                        "kind": "trailer",
                        "tables": tables,
                        "rows": rows,
                        "digest": file_digest.hexdigest(),
                    }
                )
        out.append(line + b"\n")
        if not line.startswith(b'{"kind":"trailer"'):
            file_digest.update(line + b"\n")
    return b"".join(out)


class MalformedAccountRowsTests(AdminTestCase):
    """Recomputed digests over rows that are not lists of their columns' values."""

    def file_with_user_row(self, row: bytes) -> bytes:
        User.objects.create_user("victim", password="pw")
        stream = io.BytesIO()
        stream.name = "plain.jsonl"
        create_backup(stream)
        lines = stream.getvalue().rstrip(b"\n").split(b"\n")
        start = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(b'{"kind":"table","label":"auth.User"')
        )
        lines[start + 1] = row
        return redigest(lines)

    def upload_and_preview(self, content: bytes):
        self.client.post(
            url("backuprecord_upload"),
            {"file": SimpleUploadedFile("short.jsonl", content)},
        )
        record = BackupRecord.objects.get()
        assert record.provenance == Provenance.FOREIGN
        response = self.client.get(url("backuprecord_restore", record.pk))
        assert response.status_code == 200
        return record, response.context["error"]

    def test_a_short_user_row_is_reported_not_a_server_error(self):
        record, error = self.upload_and_preview(self.file_with_user_row(b"[1]"))
        # The preview compares the file's rows with the database's: the row that
        # differs is checked, and refused, before anything else reads it.
        assert error == (
            f"{record.name}: line 8: a row of auth.User has 1 values for 11 columns"
        )
        with (
            open_source(record.name) as source,
            pytest.raises(BackupFormatError) as caught,
        ):
            auth_changes(source, "default")
        assert str(caught.value) == (
            f"{record.name}: its user, group and permission rows cannot be read "
            "(IndexError: list index out of range)"
        )

    def test_a_user_row_that_is_not_json_is_refused_at_upload(self):
        # The reader checks that every row line is one JSON array before the upload
        # is kept, so such a file never reaches a restore preview.
        response = self.client.post(
            url("backuprecord_upload"),
            {
                "file": SimpleUploadedFile(
                    "short.jsonl", self.file_with_user_row(b"[1,")
                )
            },
        )
        assert response.status_code == 200
        [error] = response.context["form"].errors["file"]
        assert error.startswith("This file was refused and not kept: short.jsonl")
        assert not BackupRecord.objects.exists()
        assert stored_files() == []
