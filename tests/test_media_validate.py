"""validatebackup of a backup with media: per source, files missing, changed, extra."""

from __future__ import annotations

import contextlib
from io import StringIO
from pathlib import Path

import orjson
import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.media.blobs import BlobStore, blob_name
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.media_utils import clear_media, populate_media, put, sha
from tests.mediaapp.models import Document, Photo
from tests.test_media_restore import change_everything
from tests.utils import run_command

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class MediaValidationTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        clear_media()
        self.rows = populate_media()
        self.file = self.tmp_path / "media.jsonl.gz"
        create_backup(self.file, media=True, media_storages=["memory"])

    def media(self, report) -> dict[str, object]:
        return {m.source: m for m in report.media}

    def test_an_unchanged_site_matches(self):
        report = validate_backup(self.file)
        assert report.ok
        assert report.summary_line().endswith(
            f"; media: {len(report.media)} sources match, 0 differ"
        )
        documents = self.media(report)["mediaapp.Document.file"]
        assert (documents.files, documents.storage) == (4, "default")

    def test_files_missing_changed_and_extra_with_example_keys(self):
        change_everything(self.rows)
        report = validate_backup(self.file)
        assert not report.ok
        media = self.media(report)
        documents = media["mediaapp.Document.file"]
        # a.txt changed (two rows reference it), b.pdf missing, new.txt extra.
        assert (documents.missing, documents.changed, documents.extra) == (1, 2, 1)
        assert documents.missing_examples == [self.rows["b"].pk]
        assert documents.changed_examples == [
            self.rows["a"].pk,
            self.rows["a"].pk + 4,
        ]
        new = Document.objects.get(title="new")
        assert documents.extra_examples == [new.pk]
        images = media["mediaapp.Photo.image"]
        assert (images.missing, images.changed, images.extra) == (0, 2, 1)
        p3 = Photo.objects.get(image="photos/p3.png")
        assert images.extra_examples == [str(p3.pk)]
        attachments = media["mediaapp.Attachment.file"]
        assert (attachments.missing, attachments.changed, attachments.extra) == (
            1,
            0,
            1,
        )
        whole = media["storage 'memory'"]
        assert (whole.missing, whole.changed, whole.extra) == (0, 2, 1)
        assert whole.extra_examples == ["photos/p3.png"]
        assert sorted(whole.changed_examples) == ["photos/p1.png", "photos/p2.png"]
        assert media["mediaapp.Photo.thumbnail"].matches

    def test_after_a_restore_the_media_match_again(self):
        change_everything(self.rows)
        restore_backup(self.file, safety_backup=False, prune_media=True)
        assert validate_backup(self.file).ok

    def test_a_row_whose_file_was_missing_at_backup_time_is_counted_not_compared(
        self,
    ):
        Document.objects.filter(pk=self.rows["b"].pk).update(file="documents/gone")
        path = self.tmp_path / "gone.jsonl.gz"
        create_backup(path, media=True)
        report = validate_backup(path)
        documents = self.media(report)["mediaapp.Document.file"]
        assert (documents.files, documents.absent_at_backup) == (3, 1)
        assert documents.matches

    def test_json_and_text(self):
        default_storage.delete("documents/b.pdf")
        with pytest.raises(CommandError) as excinfo:
            run_command("validatebackup", str(self.file), "--json")
        assert excinfo.value.returncode == 1
        stdout, _ = run_command_allowing_failure("validatebackup", str(self.file))
        assert "mediaapp.Document.file" in stdout
        assert (
            f"  mediaapp.Document.file: missing files, pk {self.rows['b'].pk}"
        ) in stdout
        assert "media: " in stdout.splitlines()[-1]
        data = orjson.loads(
            run_command_allowing_failure("validatebackup", str(self.file), "--json")[0]
        )
        documents = next(
            m for m in data["media"] if m["source"] == "mediaapp.Document.file"
        )
        assert documents["missing"] == 1
        assert documents["missing_examples"] == [self.rows["b"].pk]
        assert documents["status"] == "differ"
        assert data["ok"] is False

    def test_no_media_compares_the_rows_only(self):
        default_storage.delete("documents/b.pdf")
        report = validate_backup(self.file, media=False)
        assert report.ok
        assert report.media == []

    def test_file_only_reads_the_blobs_through(self):
        report = validate_backup(self.file, file_only=True)
        assert report.ok
        assert report.blobs.checked == 7
        assert report.summary_line().endswith(", 7 media blobs")
        BlobStore().delete(sha(b"thumb"))
        blob = Path(BlobStore().storage.path(blob_name(sha(b"alpha\n"))))
        blob.write_bytes(b"alphA\n")
        report = validate_backup(self.file, file_only=True)
        assert not report.ok
        assert (report.blobs.missing, report.blobs.damaged) == (1, 1)
        assert sorted(report.blobs.examples) == [
            "documents/a.txt: damaged (its content does not match its digest)",
            "thumbnails/t1.png: missing",
        ]
        with pytest.raises(CommandError) as excinfo:
            run_command("validatebackup", str(self.file), "--file-only")
        assert excinfo.value.returncode == 2
        assert str(excinfo.value) == (
            f"{self.file} cannot be restored: Backup damaged: 1 media blobs "
            "missing, 1 damaged, of 7."
        )

    def test_an_unchanged_file_is_not_reported_whatever_its_modification_time(self):
        put("default", "documents/a.txt", b"alpha\n")  # rewritten, same content
        assert validate_backup(self.file).ok


def run_command_allowing_failure(*args) -> tuple[str, str]:
    """Run a command that may exit with a CommandError; return its output."""
    stdout, stderr = StringIO(), StringIO()
    with contextlib.suppress(CommandError):
        call_command(*args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()
