"""The admin with media: sizes in the list, media in the preview, the results, a restore."""

from __future__ import annotations

from django.core.files.storage import default_storage

from backups_app.backup import create_backup
from backups_app.models import BackupRecord, Operation, ValidationRun
from tests.media_utils import clear_media, media_state, populate_media, put
from tests.test_admin import AdminTestCase, url
from tests.utils import snapshot


class MediaAdminTests(AdminTestCase):
    def setUp(self):
        super().setUp()
        clear_media()
        self.rows = populate_media()
        summary = create_backup(None, media=True)
        self.record = BackupRecord.objects.get(name=summary.storage_name)

    def test_the_list_and_the_page_show_the_media_size_and_the_shared_size(self):
        assert (self.record.media_files, self.record.media_size) == (7, 47)
        page = self.client.get(url("backuprecord_changelist")).content.decode()
        assert "; media 47 B" in page
        assert (
            "Media: 7 blobs, 47 B in the backup storage, shared by the backups "
            "with media (each content is stored once)."
        ) in page
        page = self.client.get(url("backuprecord_change", self.record.pk))
        assert (
            "7 files, 47 B (stored once per content, shared with other backups)"
        ) in page.content.decode()

    def test_validation_results_list_media_per_source(self):
        default_storage.delete("documents/b.pdf")
        self.client.post(
            url("backuprecord_validate", self.record.pk), {"database": "default"}
        )
        run = ValidationRun.objects.get()
        assert not run.ok
        documents = next(
            m for m in run.media if m["source"] == "mediaapp.Document.file"
        )
        assert (documents["missing"], documents["status"]) == (1, "differ")
        page = self.client.get(url("validationrun_change", run.pk)).content.decode()
        assert "Media files, per source" in page
        assert 'id="media-mediaappdocumentfile"' in page
        assert f"missing: {self.rows['b'].pk}" in page

    def test_the_preview_says_what_happens_to_the_files_and_the_restore_does_it(self):
        expected_rows, expected_files = snapshot(), media_state()
        put("default", "documents/a.txt", b"edited")
        default_storage.delete("documents/b.pdf")
        self.rows["a"].delete()
        response = self.client.get(url("backuprecord_restore", self.record.pk))
        page = response.content.decode()
        assert (
            "7 in the backup: 5 already right, 1 missing and 1 changed, written "
            "before the commit"
        ) in page
        self.client.post(
            url("backuprecord_restore", self.record.pk),
            {"database": "default", "confirm": "default"},
        )
        operation = Operation.objects.get(kind="restore")
        assert operation.status == "succeeded", operation.message
        assert snapshot() == expected_rows
        assert media_state() == expected_files
