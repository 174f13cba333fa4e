"""Backups on a real S3 server (SeaweedFS), through django-storages' S3 settings:
streamed up while they are made, read back in ranges, never a partial object under a
backup's name, on every database vendor the suite runs on."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandError
from django.test import TestCase, TransactionTestCase, override_settings
from pyrage import x25519

from backups_app.backup import create_backup
from backups_app.fileformat.encryption import AGE_MAGIC
from backups_app.fileformat.objectstore import RangedReader, object_store
from backups_app.fileformat.streams import backup_storage
from backups_app.models import BackupRecord
from backups_app.records import open_stored_file, read_header, store_upload
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.settings import STORAGES
from tests.testapp.models import Node
from tests.utils import run_command, snapshot

ROOT = Path(__file__).resolve().parent.parent
KEY = x25519.Identity.generate()
ENCRYPTED = {
    "COMPRESSION": "zstd",
    "ENCRYPTION": {"RECIPIENTS": [str(KEY.to_public())], "IDENTITIES": [str(KEY)]},
}


@pytest.fixture
def s3_storage(request, s3_server):
    """Point the backup storage at a location of its own on the S3 server."""
    location = s3_server.new_location()
    storage = s3_server.storage_settings(s3_server.bucket, location)
    with override_settings(STORAGES={**STORAGES, "backups": storage}):
        request.instance.s3 = s3_server
        request.instance.storage_settings = storage
        request.instance.store = object_store(backup_storage())
        yield


def objects(store) -> list[str]:
    response = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.key(""))
    return sorted(
        item["Key"].removeprefix(store.key("")) for item in response.get("Contents", [])
    )


def uploads(store) -> list[dict]:
    response = store.client.list_multipart_uploads(
        Bucket=store.bucket, Prefix=store.key("")
    )
    return response.get("Uploads", [])


def local_partials() -> list[str]:
    import tempfile

    return sorted(p.name for p in Path(tempfile.gettempdir()).glob("*.partial"))


@pytest.mark.usefixtures("s3_storage")
class S3RoundTripTests(TestCase):
    databases = {"default", "other"}

    def setUp(self):
        populate_zoo()
        self.before = snapshot()

    def test_backup_restore_validate_list_through_s3(self):
        partials = local_partials()
        summary = create_backup()
        assert local_partials() == partials  # no local copy of the file
        assert objects(self.store) == [summary.storage_name]
        assert summary.storage_name.endswith(".jsonl.gz")
        assert uploads(self.store) == []
        assert summary.size == backup_storage().size(summary.storage_name)
        mutate_zoo()
        assert not validate_backup(summary.storage_name).ok
        restore_backup(summary.storage_name, safety_backup=False)
        assert snapshot() == self.before
        assert validate_backup(summary.storage_name).ok
        assert validate_backup(summary.storage_name, file_only=True).ok
        assert read_header(summary.storage_name)["vendor"] == summary.vendor
        out, _err = run_command("listbackups", "--json")
        listed = json.loads(out)
        assert [(b["name"], b["integrity"]) for b in listed] == [
            (summary.storage_name, "intact")
        ]

    def test_encrypted_zstd_through_s3_with_the_safety_backup_there_too(self):
        with override_settings(BACKUPS=ENCRYPTED):
            summary = create_backup()
            assert summary.storage_name.endswith(".jsonl.zst.age")
            with open_stored_file(summary.storage_name) as stored:
                assert stored.read(len(AGE_MAGIC)) == AGE_MAGIC
            mutate_zoo()
            changed = snapshot()
            restored = restore_backup(summary.storage_name)
            assert snapshot() == self.before
            safety = restored.safety_backup
            assert safety.endswith(".jsonl.zst.age")
            assert sorted(objects(self.store)) == sorted([summary.storage_name, safety])
            # An undo file, encrypted like the backup it is laid over, and read with
            # it from the object store when it is restored.
            assert read_header(safety)["format"] == "backups_app-undo"
            restore_backup(safety, safety_backup=False)
            assert snapshot() == changed

    def test_a_wrong_key_on_s3_is_one_line_and_changes_nothing(self):
        with override_settings(BACKUPS=ENCRYPTED):
            summary = create_backup()
        mutate_zoo()
        changed = snapshot()
        other = x25519.Identity.generate()
        wrong = {"ENCRYPTION": {"IDENTITIES": [str(other)]}}
        with override_settings(BACKUPS=wrong), pytest.raises(CommandError) as excinfo:
            run_command("restore", summary.storage_name, "--noinput")
        assert excinfo.value.returncode == 2
        assert str(excinfo.value) == (
            f"{summary.storage_name}: is encrypted, but not to any of the identities "
            "in BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)"
        )
        assert snapshot() == changed

    def test_an_existing_name_is_never_overwritten(self):
        first = create_backup(name_template="fixed-{database}")
        with backup_storage().open(first.storage_name) as stored:
            original = stored.read()
        second = create_backup(name_template="fixed-{database}")
        assert second.storage_name != first.storage_name
        assert first.storage_name == "fixed-default.jsonl.gz"
        with backup_storage().open(first.storage_name) as stored:
            assert stored.read() == original

    def test_a_failing_backup_leaves_no_object_and_no_upload(self):
        def fail(progress):
            # A failure in the middle of the backup: the upload is aborted. (Ctrl-C
            # is the same path, a BaseException; KilledBackupTests kills a process.)
            if progress.label == "testapp.Node":
                raise RuntimeError("failed midway")

        with pytest.raises(RuntimeError, match="failed midway"):
            create_backup(progress=fail)
        assert objects(self.store) == []
        assert uploads(self.store) == []

    def test_admin_upload_and_download_stream_the_stored_bytes(self):
        with override_settings(BACKUPS=ENCRYPTED):
            summary = create_backup()
            with open_stored_file(summary.storage_name) as stored:
                data = stored.read()
            record = store_upload(SimpleUploadedFile("nightly.bin", data))
        assert record.name in objects(self.store)
        reader = open_stored_file(record.name)
        assert isinstance(reader, RangedReader)
        assert reader.read() == data
        # Refused uploads never reach the bucket.
        with pytest.raises(Exception):  # noqa: B017
            store_upload(SimpleUploadedFile("cut.bin", data[:-50]))
        assert sorted(objects(self.store)) == sorted(
            [summary.storage_name, record.name]
        )
        assert BackupRecord.objects.filter(name=record.name).exists()

    def test_a_header_is_read_with_a_small_first_range(self):
        summary = create_backup()
        reader = RangedReader(self.store, summary.storage_name)
        reader.read(10)
        assert reader.tell() == 10
        assert reader._position <= 256 << 10


@pytest.mark.usefixtures("s3_storage")
class KilledBackupTests(TransactionTestCase):
    """SIGKILL in the middle of an upload: nothing under the name, and the upload
    left behind is aborted by the next backup."""

    databases = {"default"}

    def test_a_killed_backup_leaves_no_object_and_the_next_one_cleans_up(self):
        # About 20 MB of JSON Lines: several 8 MiB parts.
        Node.objects.bulk_create(
            # In batches: one INSERT of them all is over MariaDB's max_allowed_packet.
            (Node(name=os.urandom(40).hex()) for _ in range(200_000)),
            batch_size=5000,
        )
        child = subprocess.Popen(
            [sys.executable, "-m", "django", "backup"],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "tests.process_settings",
                "BACKUPS_TEST_VARIANT": "s3",
                "BACKUPS_TEST_CHILD": "1",
                "BACKUPS_TEST_STORAGE": json.dumps(self.storage_settings),
                "BACKUPS_TEST_BACKUPS": json.dumps({"COMPRESSION": "none"}),
                "PYTHONPATH": str(ROOT),
            },
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                pending = uploads(self.store)
                if pending and self.store.client.list_parts(
                    Bucket=self.store.bucket,
                    Key=pending[0]["Key"],
                    UploadId=pending[0]["UploadId"],
                ).get("Parts"):
                    break
                assert child.poll() is None, child.communicate()
                time.sleep(0.05)
            else:
                raise AssertionError("no part was uploaded within 120 s")
            child.send_signal(signal.SIGKILL)
        finally:
            child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        assert objects(self.store) == []
        assert len(uploads(self.store)) == 1
        # listbackups shows it as a partial file: written, until it is old enough.
        from backups_app.operations.inventory import list_backups

        partial = [b for b in list_backups(partials=True) if b.kind == "partial"]
        assert [
            (b.name.startswith("backup-default-"), b.integrity) for b in partial
        ] == [(True, "writing")]
        with override_settings(BACKUPS={"STALE_UPLOAD_AGE": 1}):
            time.sleep(1.1)
            partial = [b for b in list_backups(partials=True) if b.kind == "partial"]
            assert [b.integrity for b in partial] == ["left behind"]
        with override_settings(BACKUPS={"STALE_UPLOAD_AGE": 1}):
            summary = create_backup()
        assert objects(self.store) == [summary.storage_name]
        assert uploads(self.store) == []


class ObjectStoreSettingsTests(TestCase):
    def test_other_storages_keep_the_generic_path(self):
        assert object_store(backup_storage()) is None


@pytest.mark.usefixtures("s3_storage")
class S3AdminTests(TestCase):
    """The admin's download and upload with the backups on S3."""

    databases = {"default", "other"}

    def setUp(self):
        from django.contrib.auth import get_user_model

        populate_zoo()
        user = get_user_model().objects.create_superuser("root", password="pw")
        self.client.force_login(user)

    def test_download_serves_the_stored_bytes_in_ranges(self):
        from django.urls import reverse

        with override_settings(BACKUPS=ENCRYPTED):
            summary = create_backup()
        record = BackupRecord.objects.get(name=summary.storage_name)
        response = self.client.get(
            reverse("admin:backups_app_backuprecord_download", args=[record.pk])
        )
        assert response.status_code == 200
        assert response.streaming
        assert int(response["Content-Length"]) == summary.size
        body = b"".join(response.streaming_content)
        with open_stored_file(summary.storage_name) as stored:
            assert body == stored.read()
        assert body.startswith(AGE_MAGIC)  # served as stored: still encrypted

    def test_an_encrypted_upload_is_decrypted_to_be_checked_then_kept_as_sent(self):
        from django.urls import reverse

        with override_settings(BACKUPS=ENCRYPTED):
            summary = create_backup()
            # Made elsewhere: not a duplicate of a backup this storage holds.
            made = io.BytesIO()
            made.name = "made.jsonl.zst.age"
            create_backup(made, using="other")
            data = made.getvalue()
            assert data.startswith(AGE_MAGIC)
            upload = reverse("admin:backups_app_backuprecord_upload")
            response = self.client.post(
                upload, {"file": SimpleUploadedFile("nightly.jsonl.zst.age", data)}
            )
            assert response.status_code == 302
            record = BackupRecord.objects.get(origin="upload")
            with open_stored_file(record.name) as stored:
                assert stored.read() == data
        with override_settings(BACKUPS={}):
            response = self.client.post(
                upload, {"file": SimpleUploadedFile("again.jsonl.zst.age", data)}
            )
        assert response.status_code == 200
        assert response.context["form"].errors["file"] == [
            "This file was refused and not kept: again.jsonl.zst.age: is encrypted, "
            "and BACKUPS['ENCRYPTION']['IDENTITIES'] is empty: set it to the age "
            "identity (private key) it was encrypted for."
        ]
        assert sorted(objects(self.store)) == sorted(
            [summary.storage_name, record.name]
        )


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl.gz.age", ".jsonl.zst.age", ".jsonl.zst"])
def test_memory_stays_flat_through_the_whole_stack(s3_server, suffix):
    """120 MiB (fifteen 8 MiB parts) through compress, encrypt and a multipart upload,
    then back through ranged reads, decryption and decompression, in a child: its
    peak RSS grows by a bounded amount, not by the file's size."""
    location = s3_server.new_location()
    script = f"""
import os, resource, django
from django.conf import settings
settings.configure(BACKUPS={{"ENCRYPTION": {{"RECIPIENTS": [{str(KEY.to_public())!r}],
    "IDENTITIES": [{str(KEY)!r}]}}}})
django.setup()
import boto3
from backups_app.fileformat.objectstore import *
from backups_app.fileformat.stack import decoded, encoded, layers_for_name
client = boto3.client("s3", endpoint_url={s3_server.endpoint!r},
    aws_access_key_id="backups-test", aws_secret_access_key="backups-test-secret",
    region_name="us-east-1")
store = ObjectStore(client, {s3_server.bucket!r}, {location!r})
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
upload = MultipartUpload(store, "big{suffix}")
with encoded(upload, layers_for_name("big{suffix}")) as stream:
    for _ in range(120):
        # Incompressible (zstd finds a repeated block): the file is as large as this.
        stream.write(os.urandom(1 << 20))
upload.complete()
assert upload.size > 15 * PART_SIZE, upload.size
total = 0
with decoded(RangedReader(store, "big{suffix}"), "big") as plain:
    while data := plain.read(1 << 20):
        total += len(data)
assert total == 120 << 20, total
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024)
"""
    child = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
    )
    assert child.returncode == 0, child.stderr.decode()
    grown_mib = int(child.stdout.decode().split()[-1])
    assert grown_mib < 60, grown_mib
