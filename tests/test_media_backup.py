"""backup --media: the files rows reference, as content-addressed blobs and a manifest."""

from __future__ import annotations

import gzip
from pathlib import Path
from unittest import mock

import orjson
import pytest
from django.core.files.base import ContentFile
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.exceptions import BackupError, CannotRunError
from backups_app.fileformat.manifest import source_name
from backups_app.fileformat.reader import BackupReader, verify_file
from backups_app.media import files
from backups_app.media.blobs import PREFIX, BlobStore, blob_name
from tests.media_utils import (
    blob_digests,
    clear_media,
    populate_media,
    put,
    read,
    sha,
)
from tests.mediaapp.models import Document, Photo
from tests.utils import run_command

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def manifest(path: Path) -> tuple[dict, list[list]]:
    """The header's media object and the manifest's entries of a backup file."""
    with gzip.open(path, "rb") as stream:
        reader = BackupReader(stream, path.name)
        entries = []
        for section in reader.tables(media=True):
            for block in section.blocks():
                if section is reader.media:
                    entries += section.parse(block)
    return reader.header["media"], entries


def by_source(path: Path) -> dict[str, list[list]]:
    """The manifest's entries of each source (without the source's number)."""
    media, entries = manifest(path)
    found: dict[str, list[list]] = {source_name(s): [] for s in media["sources"]}
    for entry in entries:
        found[source_name(media["sources"][entry[0]])].append(entry[1:])
    return found


class MediaBackupTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        clear_media()
        self.rows = populate_media()

    def backup(self, name="media.jsonl.gz", **kwargs):
        path = self.tmp_path / name
        return path, create_backup(path, media=True, **kwargs)

    def test_every_referenced_file_is_a_blob_named_by_its_digest(self):
        path, summary = self.backup()
        media, _ = manifest(path)
        sources = [
            (s.get("label"), s.get("field"), s["storage"])
            for s in media["sources"]
            if s["label"].startswith("mediaapp.")
        ]
        assert sources == [
            # Tables in dependency order (an attachment points at a document).
            ("mediaapp.Document", "file", "default"),
            ("mediaapp.Attachment", "file", "tests.mediaapp.models.PrivateStorage"),
            ("mediaapp.Photo", "image", "memory"),
            ("mediaapp.Photo", "thumbnail", "memory"),
        ]
        entries = by_source(path)
        documents = entries["mediaapp.Document.file"]
        assert [(e[1], e[2], e[3]) for e in documents] == [
            ("documents/a.txt", 6, sha(b"alpha\n")),
            ("documents/b.pdf", 14, sha(b"%PDF-1.4 beta\n")),
            ("documents/empty.txt", 0, sha(b"")),
            ("documents/a.txt", 6, sha(b"alpha\n")),
        ]
        assert [e[0] for e in documents] == [
            self.rows["a"].pk,
            self.rows["b"].pk,
            self.rows["a"].pk + 2,
            self.rows["a"].pk + 4,
        ]
        photos = sorted(
            (e[0], e[1])
            for source in ("mediaapp.Photo.image", "mediaapp.Photo.thumbnail")
            for e in entries[source]
        )
        assert photos == sorted(
            [
                (str(self.rows["p1"].pk), "photos/p1.png"),
                (str(self.rows["p1"].pk), "thumbnails/t1.png"),
                (str(self.rows["p2"].pk), "photos/p2.png"),
            ]
        )
        store = BlobStore()
        for content in (b"alpha\n", b"%PDF-1.4 beta\n", b"", b"thumb", b"signed"):
            with store.storage.open(blob_name(sha(content)), "rb") as blob:
                assert blob.read() == content
        assert summary.media.references == 8
        assert summary.media.files == 7
        assert summary.media.blobs_added == 7
        assert summary.media.size == 6 + 14 + 0 + 8 + 8 + 5 + 6
        assert summary.media.missing == 0

    def test_a_file_with_media_is_version_3_and_verifies(self):
        path, summary = self.backup()
        with gzip.open(path, "rb") as stream:
            first = orjson.loads(stream.readline())
        assert first["version"] == 3
        with gzip.open(path, "rb") as stream:
            verified = verify_file(stream, path.name, rows=True)
        assert verified.media.rows == 8
        assert verified.digest == summary.digest

    def test_a_backup_without_media_stays_version_2(self):
        path = self.tmp_path / "rows.jsonl.gz"
        create_backup(path)
        with gzip.open(path, "rb") as stream:
            first = orjson.loads(stream.readline())
        assert first["version"] == 2
        assert "media" not in first
        assert blob_digests() == set()

    def test_unchanged_media_adds_no_blob_and_a_changed_file_adds_one(self):
        _, first = self.backup("first.jsonl.gz")
        blobs = blob_digests()
        _, second = self.backup("second.jsonl.gz")
        assert blob_digests() == blobs
        assert (second.media.blobs_added, second.media.bytes_added) == (0, 0)
        put("memory", "photos/p1.png", b"\x89PNG one, retouched")
        _, third = self.backup("third.jsonl.gz")
        assert blob_digests() == blobs | {sha(b"\x89PNG one, retouched")}
        assert (third.media.blobs_added, third.media.bytes_added) == (1, 19)
        assert third.media.files == first.media.files

    def test_each_new_blob_is_looked_up_once(self):
        # On an object store, each look is a request.
        with mock.patch.object(files, "stat", wraps=files.stat) as stat:
            _, summary = self.backup()
        looked_up = [
            call.args[1]
            for call in stat.call_args_list
            if call.args[1].startswith(PREFIX + "/")
        ]
        assert summary.media.blobs_added == 7
        assert len(looked_up) == len(set(looked_up)) == 7

    def test_a_blob_of_the_wrong_size_is_written_again(self):
        self.backup("first.jsonl.gz")
        store = BlobStore()
        name = blob_name(sha(b"alpha\n"))
        store.storage.delete(name)
        store.storage.save(name, ContentFile(b"alp"))
        _, summary = self.backup("second.jsonl.gz")
        assert (summary.media.blobs_added, summary.media.bytes_added) == (1, 6)
        with store.storage.open(name, "rb") as blob:
            assert blob.read() == b"alpha\n"

    def test_two_names_with_one_content_share_a_blob(self):
        put("default", "documents/copy.txt", b"alpha\n")
        Document.objects.create(title="copy", file="documents/copy.txt")
        _, summary = self.backup()
        assert summary.media.files == 8
        assert summary.media.blobs_added == 7

    def test_missing_files_are_named_by_model_pk_and_name(self):
        Photo.objects.filter(pk=self.rows["p2"].pk).update(image="photos/gone.png")
        path, summary = self.backup()
        assert summary.media.missing == 1
        [missing] = summary.media.missing_examples
        assert str(missing) == (
            f'mediaapp.Photo.image, pk "{self.rows["p2"].pk}": '
            "'photos/gone.png' is missing from its storage"
        )
        # In the manifest, without a size and a digest: nothing to put back.
        assert [str(self.rows["p2"].pk), "photos/gone.png", None, None] in by_source(
            path
        )["mediaapp.Photo.image"]

    def test_strict_media_fails_and_writes_no_backup(self):
        Document.objects.filter(pk=self.rows["b"].pk).update(file="documents/gone")
        path = self.tmp_path / "strict.jsonl.gz"
        with pytest.raises(BackupError) as excinfo:
            create_backup(path, media=True, strict_media=True)
        assert str(excinfo.value) == (
            "1 files the rows reference could not be backed up (--strict-media), "
            f"e.g. mediaapp.Document.file, pk {self.rows['b'].pk}: 'documents/gone' "
            "is missing from its storage. No backup was written."
        )
        assert not path.exists()
        assert list(self.tmp_path.iterdir()) == []

    def test_a_name_that_cannot_be_restored_is_reported_not_written(self):
        Document.objects.filter(pk=self.rows["b"].pk).update(file="../outside.txt")
        path, summary = self.backup()
        assert summary.media.missing == 1
        assert str(summary.media.missing_examples[0]) == (
            f"mediaapp.Document.file, pk {self.rows['b'].pk}: '../outside.txt' is "
            "not a file name that can be restored"
        )
        _, entries = manifest(path)
        assert "../outside.txt" not in [e[2] for e in entries]
        assert len(by_source(path)["mediaapp.Document.file"]) == 3

    def test_a_whole_storage_is_backed_up_with_media_storage(self):
        put("memory", "unreferenced/keep.bin", b"keep me")
        path, summary = self.backup(media_storages=["memory"])
        media, _ = manifest(path)
        assert media["sources"][-1] == {"storage": "memory"}
        assert by_source(path)["storage 'memory'"] == [
            [None, "photos/p1.png", 8, sha(b"\x89PNG one")],
            [None, "photos/p2.png", 8, sha(b"\x89PNG two")],
            [None, "thumbnails/t1.png", 5, sha(b"thumb")],
            [None, "unreferenced/keep.bin", 7, sha(b"keep me")],
        ]
        assert summary.media.files == 8

    def test_the_backup_storage_itself_cannot_be_a_media_storage(self):
        with pytest.raises(CannotRunError) as excinfo:
            create_backup(self.tmp_path / "x.jsonl.gz", media_storages=["backups"])
        assert str(excinfo.value) == (
            "--media-storage 'backups' is the backup storage itself; its blobs and "
            "backups cannot be backed up into it."
        )

    @override_settings(BACKUPS={"MEDIA": True})
    def test_the_setting_makes_media_the_default_and_no_media_overrides_it(self):
        with_media = self.tmp_path / "setting.jsonl.gz"
        create_backup(with_media)
        assert manifest(with_media)[1]
        without = self.tmp_path / "without.jsonl"
        run_command("backup", "--output", str(without), "--no-media")
        assert b'"media"' not in without.read_bytes().split(b"\n", 1)[0]

    def test_the_command_reports_media_and_warns_of_missing_files(self):
        Document.objects.filter(pk=self.rows["b"].pk).update(file="documents/gone")
        output = self.tmp_path / "cmd.jsonl.gz"
        stdout, stderr = run_command("backup", "--output", str(output), "--media")
        sources = len(manifest(output)[0]["sources"])
        assert (
            f"Media: 6 files (33 B) from {sources} sources; 6 new blobs (33 B) written "
            "to the backup storage"
        ) in stdout
        assert stderr.splitlines() == [
            f"Warning: mediaapp.Document.file, pk {self.rows['b'].pk}: "
            "'documents/gone' is missing from its storage",
            "Warning: 1 file that rows reference is not in the backup "
            "(--strict-media makes this an error).",
        ]
        assert read("default", "documents/a.txt") == b"alpha\n"
