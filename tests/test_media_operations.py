"""prunebackups and listbackups with media: blobs no kept backup needs, sizes."""

from __future__ import annotations

import json
import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.media.blobs import BlobStore, blob_name
from backups_app.media.collection import GRACE, collect
from backups_app.models import BackupRecord
from backups_app.operations.drill import run_drill
from backups_app.operations.prune import plan_blob_collection
from backups_app.records import read_header
from backups_app.restore import restore_backup
from tests.media_utils import (
    blob_digests,
    clear_media,
    media_state,
    populate_media,
    put,
    sha,
)
from tests.utils import run_command, snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def age_blobs(seconds: float = GRACE.total_seconds() + 60) -> None:
    """Make every blob look written ``seconds`` ago (older than the grace)."""
    then = time.time() - seconds
    for digest in blob_digests():
        os.utime(backup_storage().path(blob_name(digest)), (then, then))


class BlobCollectionTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        # A backup storage of its own (the media storages stay as they are).
        self.enterContext(
            override_settings(
                BACKUPS={"STORAGE": "own", "DIRECTORY": str(self.tmp_path / "own")}
            )
        )
        clear_media()
        self.rows = populate_media()
        self.first = create_backup(None, media=True).name
        put("default", "documents/a.txt", b"alpha, second edition\n")
        self.second = create_backup(None, media=True).name

    def test_blobs_only_a_deleted_backup_needed_go_with_it(self):
        age_blobs()
        stdout, _ = run_command("prunebackups", "--keep-last", "1")
        assert backup_storage().listdir("")[1] == [self.second]
        assert sha(b"alpha\n") not in blob_digests()
        assert sha(b"alpha, second edition\n") in blob_digests()
        assert len(blob_digests()) == 7
        assert stdout.splitlines()[-1] == (
            "Media blobs: 8 (69 B); deleted 1 that no kept backup needed (6 B); 7 kept."
        )
        # The backup left restores with all its files.
        put("default", "documents/b.pdf", b"other")
        restore_backup(self.second, safety_backup=False)

    def test_the_dry_run_deletes_nothing(self):
        age_blobs()
        blobs = blob_digests()
        stdout, _ = run_command("prunebackups", "--keep-last", "1", "--dry-run")
        assert blob_digests() == blobs
        assert stdout.splitlines()[-1] == (
            "Media blobs: 8 (69 B); would delete 1 that no kept backup needs (6 B); "
            "7 kept."
        )
        document = json.loads(
            run_command("prunebackups", "--keep-last", "1", "--dry-run", "--json")[0]
        )
        assert document["media"]["unneeded"] == 1

    def test_a_blob_every_backup_needs_is_kept_however_old(self):
        age_blobs()
        collection = collect(plan_blob_collection())
        assert (collection.blobs, collection.deleted) == (8, 0)

    def test_a_young_unneeded_blob_is_kept_for_a_backup_that_may_be_writing(self):
        BackupRecord.objects.all().delete()
        backup_storage().delete(self.first)
        collection = collect(plan_blob_collection())
        assert (collection.deleted, collection.young) == (0, 1)
        age_blobs()
        collection = collect(plan_blob_collection())
        assert collection.deleted == 1

    def test_a_backup_that_cannot_be_read_stops_the_collection(self):
        age_blobs()
        path = Path(backup_storage().path(self.second))
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        backup_storage().delete(self.first)
        collection = collect(plan_blob_collection())
        assert collection.deleted == 0
        assert collection.refused.startswith(
            f"{self.second} cannot be read to its end ("
        )
        _, stderr = run_command("prunebackups", "--keep-last", "5")
        assert stderr.startswith(f"Warning: no media blob deleted: {self.second}")

    def test_the_blobs_an_undo_file_names_are_kept(self):
        # Restoring the first backup, from the storage, writes an undo file whose
        # manifest holds the second edition of a.txt: once the second backup is
        # gone, only the undo file needs that blob.
        undo = restore_backup(self.first).safety_backup
        assert read_header(undo)["format"] == "backups_app-undo"
        backup_storage().delete(self.second)
        age_blobs()
        collection = collect(plan_blob_collection())
        assert collection.refused == ""
        assert collection.deleted == 0
        assert sha(b"alpha, second edition\n") in blob_digests()
        restore_backup(undo, safety_backup=False)
        assert media_state()[("default", "documents/a.txt")] == sha(
            b"alpha, second edition\n"
        )

    def test_files_that_are_not_backups_need_nothing(self):
        age_blobs()
        (Path(backup_storage().path("notes.txt"))).write_text("not a backup\n")
        backup_storage().delete(self.first)
        assert collect(plan_blob_collection()).deleted == 1

    def test_a_backup_stores_again_a_blob_deleted_while_it_ran(self):
        reused = sha(b"signed")

        def delete_a_reused_blob(progress):
            if progress.stage == "media" and progress.done == progress.total:
                BlobStore().delete(reused)

        before = snapshot()
        create_backup(None, media=True, progress=delete_a_reused_blob)
        assert reused in blob_digests()
        assert snapshot() == before

    def test_listbackups_shows_media_sizes_and_the_shared_size(self):
        stdout, _ = run_command("listbackups")
        lines = stdout.splitlines()
        header = lines[0].split()
        assert "media" in header
        assert lines[-1] == (
            "Media: 8 blobs, 69 B in the backup storage, shared by the backups with "
            "media (each content stored once)."
        )
        rows = {line.split()[0]: line for line in lines[2:-1]}
        assert "47 B" in rows[self.first]
        assert "63 B" in rows[self.second]
        listed = json.loads(run_command("listbackups", "--json")[0])
        by_name = {b["name"]: b for b in listed}
        assert by_name[self.first]["media_size"] == 6 + 14 + 0 + 8 + 8 + 5 + 6
        assert by_name[self.second]["media_size"] == 22 + 14 + 0 + 8 + 8 + 5 + 6
        assert by_name[self.first]["media"] is True

    def test_checkbackups_calls_a_backup_with_a_missing_blob_damaged(self):
        BlobStore().delete(sha(b"thumb"))
        stdout = StringIO()
        with pytest.raises(CommandError) as excinfo:
            call_command("checkbackups", "--max-age", "1h", stdout=stdout)
        assert excinfo.value.returncode == 1
        # The newest backup needs 7 of the 8 blobs (not the first a.txt).
        assert stdout.getvalue() == (
            "default: the newest backup is damaged: Backup damaged: 1 media blobs "
            "missing, 0 damaged, of 7\n"
        )
        stdout, _ = run_command("checkbackups", "--max-age", "1h", "--no-verify")
        assert "damaged" not in stdout


class MediaDrillTests(TestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def test_a_drill_restores_and_validates_the_rows_and_leaves_the_files_alone(self):
        self.enterContext(
            override_settings(
                BACKUPS={"STORAGE": "own", "DIRECTORY": str(self.tmp_path / "own")}
            )
        )
        clear_media()
        populate_media()
        create_backup(None, media=True)
        put("default", "documents/a.txt", b"changed since the backup")
        files = media_state()
        result = run_drill(scratch="other", migrate=False)
        assert result.ok, result
        assert snapshot("other") == snapshot("default")
        assert media_state() == files


class EncryptedMediaBackupTests(TestCase):
    """A backup with media compressed with zstd and encrypted with age: its manifest
    is inside the encrypted file, its blobs beside it."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        from pyrage import x25519

        self.key = x25519.Identity.generate()
        self.encryption = {
            "RECIPIENTS": [str(self.key.to_public())],
            "IDENTITIES": [str(self.key)],
        }
        self.enterContext(
            override_settings(
                BACKUPS={
                    "STORAGE": "own",
                    "DIRECTORY": str(self.tmp_path / "own"),
                    "ENCRYPTION": self.encryption,
                    "COMPRESSION": "zstd",
                }
            )
        )
        clear_media()
        self.rows = populate_media()

    def test_restore_and_collection_read_the_encrypted_manifest(self):
        first = create_backup(None, media=True)
        assert first.name.endswith(".jsonl.zst.age")
        files, rows = media_state(), snapshot()
        put("default", "documents/a.txt", b"edited")
        restore_backup(first.name, safety_backup=False)
        assert (media_state(), snapshot()) == (files, rows)
        age_blobs()
        # What the restore replaced was kept as a blob, which no backup needs.
        collection = collect(plan_blob_collection())
        assert (collection.backups_with_media, collection.deleted) == (1, 1)
        assert collection.unneeded == [(sha(b"edited"), 6)]
        assert sha(b"alpha\n") in blob_digests()

    def test_without_the_key_no_blob_is_deleted(self):
        name = create_backup(None, media=True).name
        age_blobs()
        with override_settings(
            BACKUPS={
                "STORAGE": "own",
                "DIRECTORY": str(self.tmp_path / "own"),
                "ENCRYPTION": {"RECIPIENTS": self.encryption["RECIPIENTS"]},
            }
        ):
            collection = collect(plan_blob_collection())
        assert collection.deleted == 0
        assert collection.refused.startswith(f"{name} cannot be read to its end (")
