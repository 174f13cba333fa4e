"""Media on a real S3 server (SeaweedFS): blobs in an S3 backup storage, a whole S3
storage backed up and restored, a damaged S3 blob refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.exceptions import BackupFormatError
from backups_app.media.blobs import BlobStore, blob_name
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.media_utils import clear_media, media_state, put, read, sha
from tests.mediaapp.models import Attachment, Document
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class S3MediaTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    @pytest.fixture(autouse=True)
    def s3(self, s3_server):
        location = s3_server.new_location()
        self.enterContext(
            override_settings(
                STORAGES={
                    **settings.STORAGES,
                    "s3backups": s3_server.storage_settings(
                        s3_server.bucket, f"{location}/backups"
                    ),
                    "s3media": s3_server.storage_settings(
                        s3_server.bucket, f"{location}/media"
                    ),
                },
                BACKUPS={"STORAGE": "s3backups"},
            )
        )
        self.server = s3_server
        self.location = location

    def setUp(self):
        clear_media()
        put("default", "documents/a.txt", b"first documents/a.txt")
        put("private", "secret/contract.txt", b"first secret/contract.txt")
        self.document = Document.objects.create(title="a", file="documents/a.txt")
        Attachment.objects.create(document=self.document, file="secret/contract.txt")

    def test_blobs_are_looked_up_without_the_storages_boto3_resource(self):
        # django-storages' exists(), size() and get_modified_time() go through a
        # boto3 resource: a model of about 13 MB, and classes built again on every
        # call (a nightly backup of thousands of unchanged files took 200 MB). A
        # blob is looked up with one HEAD request of the app's client instead.
        path = self.tmp_path / "s3.jsonl.gz"
        assert create_backup(path, media=True).media.blobs_added == 2
        again = create_backup(self.tmp_path / "again.jsonl.gz", media=True)
        assert again.media.blobs_added == 0
        assert validate_backup(path).ok
        s3backups = storages["s3backups"]
        assert getattr(s3backups._connections, "connection", None) is None

    def test_blobs_on_s3_and_a_whole_s3_storage_round_trip(self):
        s3media = storages["s3media"]
        put(s3media, "catalogue/cover.jpg", b"\xff\xd8 cover")
        put(s3media, "catalogue/back.jpg", b"\xff\xd8 back")
        path = self.tmp_path / "s3.jsonl.gz"
        first = create_backup(path, media=True, media_storages=["s3media"])
        assert first.media.blobs_added == 4
        digests = {digest for digest, _ in BlobStore().blobs()}
        assert sha(b"\xff\xd8 cover") in digests
        # Blobs are objects under the backup storage's location.
        key = f"{self.location}/backups/{blob_name(sha(b'first documents/a.txt'))}"
        assert self.server.client().head_object(Bucket=self.server.bucket, Key=key)
        second = create_backup(
            self.tmp_path / "again.jsonl.gz", media=True, media_storages=["s3media"]
        )
        assert (second.media.blobs_added, second.media.bytes_added) == (0, 0)

        rows, files = snapshot(), media_state()
        put(s3media, "catalogue/cover.jpg", b"\xff\xd8 cover, cropped")
        s3media.delete("catalogue/back.jpg")
        put(s3media, "catalogue/new.jpg", b"new")
        put("default", "documents/a.txt", b"second edition")
        self.document.delete()
        summary = restore_backup(path, safety_backup=False, prune_media=True)
        assert summary.media["written"] == 3
        assert snapshot() == rows
        assert media_state() == files
        assert read(s3media, "catalogue/cover.jpg") == b"\xff\xd8 cover"
        assert read(s3media, "catalogue/back.jpg") == b"\xff\xd8 back"
        assert not s3media.exists("catalogue/new.jpg")
        assert validate_backup(path).ok

    def test_a_damaged_blob_on_s3_refuses_the_restore(self):
        path = self.tmp_path / "s3.jsonl.gz"
        create_backup(path, media=True)
        key = f"{self.location}/backups/{blob_name(sha(b'first documents/a.txt'))}"
        self.server.client().put_object(
            Bucket=self.server.bucket, Key=key, Body=b"FIRST documents/a.txt"
        )
        put("default", "documents/a.txt", b"changed")
        rows, files = snapshot(), media_state()
        with pytest.raises(BackupFormatError) as excinfo:
            restore_backup(path)
        assert "is damaged (its content does not match its digest)" in str(
            excinfo.value
        )
        assert (snapshot(), media_state()) == (rows, files)
