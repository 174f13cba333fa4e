"""restore of a backup with media: exactly the referenced files, or nothing changed."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.core.files.storage import default_storage
from django.test import TestCase, TransactionTestCase

from backups_app.backup import create_backup
from backups_app.exceptions import BackupFormatError, RestoreError
from backups_app.fileformat.streams import backup_storage
from backups_app.media.blobs import BlobStore, blob_name
from backups_app.records import read_header
from backups_app.restore import plan_restore, restore_backup
from tests.media_utils import (
    blob_digests,
    clear_media,
    media_state,
    populate_media,
    put,
    read,
    referenced_files,
    sha,
)
from tests.mediaapp.models import Attachment, Document, Photo
from tests.test_exit_codes import environment
from tests.test_processes import ROOT
from tests.utils import run_command, snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def change_everything(rows) -> dict[tuple[str, str], bytes]:
    """Add, change, delete and rename files (and their rows) after a backup; return
    the files added meanwhile, which no row of the backup references."""
    # Added: a new row with a new file, a photo with new files.
    put("default", "documents/new.txt", b"new document")
    Document.objects.create(title="new", file="documents/new.txt")
    put("memory", "photos/p3.png", b"\x89PNG three")
    Photo.objects.create(image="photos/p3.png")
    # Changed: the same names, other content.
    put("default", "documents/a.txt", b"alpha, edited\n")
    put("memory", "photos/p1.png", b"\x89PNG one, retouched")
    # Deleted: a file whose row stays, and a row with its file.
    default_storage.delete("documents/b.pdf")
    rows["p2"].delete()
    put("memory", "photos/p2.png", b"")  # and its name reused by other content
    # Renamed: the file moves, the row follows.
    private = Attachment._meta.get_field("file").storage
    put(private, "secret/contract-v2.txt", b"signed")
    private.delete("secret/contract.txt")
    Attachment.objects.update(file="secret/contract-v2.txt")
    return {
        ("default", "documents/new.txt"): b"new document",
        ("memory", "photos/p3.png"): b"\x89PNG three",
        ("private", "secret/contract-v2.txt"): b"signed",
    }


class MediaRestoreTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        clear_media()
        self.rows = populate_media()
        self.file = self.tmp_path / "media.jsonl.gz"
        create_backup(self.file, media=True)
        self.rows_then = snapshot()
        self.files_then = media_state()

    def test_round_trip_after_files_were_added_changed_deleted_and_renamed(self):
        added = change_everything(self.rows)
        summary = restore_backup(self.file, safety_backup=False)
        assert snapshot() == self.rows_then
        # Every file of the backup is back; the files added since are left alone.
        assert media_state() == {
            **self.files_then,
            **{key: sha(content) for key, content in added.items()},
        }
        # Written: a.txt, p1.png and p2.png (changed), b.pdf and contract.txt
        # (missing); empty.txt and t1.png were right.
        assert summary.media == {
            "files": 7,
            "written": 5,
            "bytes_written": 6 + 8 + 8 + 14 + 6,
            "unchanged": 2,
        }

    def test_prune_media_deletes_what_no_row_references_after_the_restore(self):
        change_everything(self.rows)
        plan = plan_restore(self.file, prune_media=True)
        assert sorted(plan.media.prune_names()) == [
            ("default", "documents/new.txt"),
            ("memory", "photos/p3.png"),
            ("tests.mediaapp.models.PrivateStorage", "secret/contract-v2.txt"),
        ]
        summary = restore_backup(plan, safety_backup=False)
        assert sorted(summary.media["pruned"]) == [
            "default: documents/new.txt",
            "memory: photos/p3.png",
            "tests.mediaapp.models.PrivateStorage: secret/contract-v2.txt",
        ]
        assert media_state() == self.files_then
        assert snapshot() == self.rows_then

    def test_prune_media_keeps_files_that_rows_out_of_scope_reference(self):
        path = self.tmp_path / "documents-only.jsonl.gz"
        create_backup(path, media=True, exclude=["mediaapp.Photo"])
        put("memory", "photos/p4.png", b"four")
        Photo.objects.create(image="photos/p4.png")
        put("default", "documents/new.txt", b"new")
        Document.objects.create(title="new", file="documents/new.txt")
        summary = restore_backup(path, safety_backup=False, prune_media=True)
        assert summary.media["pruned"] == ["default: documents/new.txt"]
        assert read("memory", "photos/p4.png") == b"four"

    def test_files_already_right_are_not_rewritten(self):
        put("default", "documents/b.pdf", b"%PDF-1.4 beta, v2\n")
        path = Path(default_storage.path("documents/a.txt"))
        before = path.stat()
        summary = restore_backup(self.file, safety_backup=False)
        after = path.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
        assert summary.media["written"] == 1
        assert read("default", "documents/b.pdf") == b"%PDF-1.4 beta\n"

    def test_the_plan_says_what_would_change_and_changes_nothing(self):
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        plan = plan_restore(self.file)
        assert (plan.media.files, plan.media.unchanged) == (7, 2)
        assert (plan.media.missing, plan.media.changed) == (2, 3)
        assert plan.to_dict()["media"]["bytes_to_write"] == 42
        assert (snapshot(), media_state()) == (rows, files)

    def test_a_missing_blob_refuses_the_restore_before_anything_changes(self):
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        blobs = BlobStore()
        blobs.delete(sha(b"%PDF-1.4 beta\n"))
        with pytest.raises(BackupFormatError) as excinfo:
            restore_backup(self.file)
        assert str(excinfo.value) == (
            f"{self.file} cannot be restored: the content of mediaapp.Document.file, "
            f"pk {self.rows['b'].pk}: 'documents/b.pdf' is missing in the backup "
            f"storage ({blob_name(sha(b'%PDF-1.4 beta' + bytes([10])))}). Nothing was "
            "changed."
        )
        assert (snapshot(), media_state()) == (rows, files)

    def test_a_damaged_blob_refuses_the_restore_before_anything_changes(self):
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        blob = Path(BlobStore().storage.path(blob_name(sha(b"alpha\n"))))
        blob.write_bytes(b"alphA\n")  # same size, other content
        with pytest.raises(BackupFormatError) as excinfo:
            restore_backup(self.file)
        assert (
            "'documents/a.txt' is damaged (its content does not match its digest)"
            in (str(excinfo.value))
        )
        assert (snapshot(), media_state()) == (rows, files)

    def test_a_damaged_blob_that_is_not_needed_does_not_matter(self):
        blob = Path(BlobStore().storage.path(blob_name(sha(b"alpha\n"))))
        blob.write_bytes(b"damaged")
        Document.objects.filter(pk=self.rows["b"].pk).update(title="renamed")
        restore_backup(self.file, safety_backup=False)
        assert snapshot() == self.rows_then

    def test_a_blob_damaged_after_the_plan_fails_the_restore_and_undoes_the_files(self):
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        plan = plan_restore(self.file)
        # Written in order of storage and name: documents/a.txt before b.pdf.
        blob = Path(BlobStore().storage.path(blob_name(sha(b"%PDF-1.4 beta\n"))))
        blob.write_bytes(b"%PDF-1.4 BETA\n")
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(plan, safety_backup=False)
        assert str(excinfo.value).startswith(
            f"Restore of {self.file} failed and was rolled back: media files: "
        )
        assert (snapshot(), media_state()) == (rows, files)
        # The content the restore replaced, then put back, is kept as a blob.
        assert sha(b"alpha, edited\n") in blob_digests()

    def test_no_media_restores_the_rows_only(self):
        change_everything(self.rows)
        files = media_state()
        summary = restore_backup(self.file, safety_backup=False, media=False)
        assert summary.media is None
        assert snapshot() == self.rows_then
        assert media_state() == files

    def test_an_undo_file_has_the_media_the_restore_replaces(self):
        # A restore from the storage writes an undo file, with the manifest of
        # the files as a whole safety backup would have it.
        stored = create_backup(None, media=True).name
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        referenced = referenced_files()
        summary = restore_backup(stored)
        assert summary.rows_updated or summary.tables_changed
        with backup_storage().open(summary.safety_backup, "rb") as stream:
            header = orjson.loads(gzip.decompress(stream.read()).split(b"\n", 1)[0])
        assert (header["format"], header["version"]) == ("backups_app-undo", 3)
        assert header["undo"]["backup"] == stored
        assert [s.get("label") for s in header["media"]["sources"]] == [
            s.get("label") for s in read_header(stored)["media"]["sources"]
        ]
        # Restoring the undo file brings back the rows and the files they
        # referenced before the restore.
        undone = restore_backup(
            summary.safety_backup, safety_backup=False, prune_media=True
        )
        assert undone.media["written"] > 0
        assert snapshot() == rows
        now = media_state()
        kept = referenced & set(files)
        assert {key: now[key] for key in kept} == {key: files[key] for key in kept}

    def test_the_safety_backup_has_the_media_the_restore_replaces(self):
        change_everything(self.rows)
        rows, files = snapshot(), media_state()
        referenced = referenced_files()
        summary = restore_backup(self.file)
        # Restoring the safety backup undoes the restore: the rows, and every
        # file they referenced. (Files no row referenced are not in it: b.pdf,
        # missing then, stays put back; p2.png, whose row was gone, keeps the
        # backup's content.)
        restore_backup(summary.safety_backup, safety_backup=False, prune_media=True)
        assert snapshot() == rows
        now = media_state()
        kept = referenced & set(files)
        assert {key: now[key] for key in kept} == {key: files[key] for key in kept}
        assert now[("default", "documents/b.pdf")] == sha(b"%PDF-1.4 beta\n")

    def test_the_command_shows_the_plan_and_the_prune_list(self):
        change_everything(self.rows)
        stdout, _ = run_command("restore", str(self.file), "--dry-run", "--prune-media")
        assert (
            "Media: 7 files in the backup: 2 already right, 2 missing and 3 changed, "
            "to write (42 B)"
        ) in stdout
        listed = stdout.split(
            "--prune-media deletes 3 files that no row references after the restore:\n"
        )[1].splitlines()[:3]
        assert sorted(listed) == [
            "  default: documents/new.txt",
            "  memory: photos/p3.png",
            "  tests.mediaapp.models.PrivateStorage: secret/contract-v2.txt",
        ]
        assert "Dry run: nothing was changed." in stdout
        stdout, _ = run_command(
            "restore", str(self.file), "--noinput", "--no-safety-backup"
        )
        assert "Media: 5 files written (42 B), 2 already right" in stdout
        assert media_state()[("default", "documents/a.txt")] == sha(b"alpha\n")
        assert os.path.exists(default_storage.path("documents/new.txt"))


class StoppedRestoreTests(TransactionTestCase):
    """A restore stopped once its files are written, before its commit.

    The child process sees the test's databases and folders, not its in-memory
    storage: only the FileSystemStorage fields have files here.
    """

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        clear_media()
        put("default", "documents/a.txt", b"alpha\n")
        put("default", "documents/b.pdf", b"%PDF-1.4 beta\n")
        put("private", "secret/contract.txt", b"signed")
        a = Document.objects.create(title="a", file="documents/a.txt")
        Document.objects.create(title="b", file="documents/b.pdf")
        Attachment.objects.create(document=a, file="secret/contract.txt")
        self.file = self.tmp_path / "media.jsonl.gz"
        create_backup(self.file, media=True)
        self.rows_then, self.files_then = snapshot(), media_state()
        put("default", "documents/a.txt", b"alpha, edited\n")
        default_storage.delete("documents/b.pdf")
        Document.objects.create(title="new", file="")
        self.rows_before, self.files_before = snapshot(), media_state()

    def stop(self, sent: signal.Signals) -> tuple[int, str]:
        marker = self.tmp_path / "paused"
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "restore",
                str(self.file),
                "--noinput",
                "--no-safety-backup",
            ],
            env=environment(
                "pause",
                BACKUPS_TEST_PAUSE="restore-media",
                BACKUPS_TEST_PAUSE_MARKER=str(marker),
            ),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline, "never reached the pause"
                time.sleep(0.02)
            child.send_signal(sent)
            _, stderr = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        return child.returncode, stderr

    def test_ctrl_c_leaves_the_database_and_the_files_as_they_were(self):
        code, stderr = self.stop(signal.SIGINT)
        assert (code, stderr) == (
            130,
            "Restore interrupted: database 'default' was left unchanged.\n",
        )
        assert snapshot() == self.rows_before
        assert media_state() == self.files_before

    def test_a_killed_restore_leaves_the_database_unchanged(self):
        code, _ = self.stop(signal.SIGKILL)
        assert code == -signal.SIGKILL
        # The server rolled the transaction back (SQLite: the journal does).
        deadline = time.monotonic() + 30
        while snapshot() != self.rows_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert snapshot() == self.rows_before
        # The files it had written hold the backup's content under the backup's
        # names; what they replaced is kept as a blob, and the restore, run
        # again, completes.
        assert media_state() == self.files_then
        assert sha(b"alpha, edited\n") in blob_digests()
        restore_backup(self.file, safety_backup=False)
        assert (snapshot(), media_state()) == (self.rows_then, self.files_then)
