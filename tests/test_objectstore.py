"""Streaming to and from a real S3 server (SeaweedFS): multipart writes, ranged reads."""

from __future__ import annotations

import datetime
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from backups_app.exceptions import StorageError
from backups_app.fileformat.objectstore import (
    MultipartUpload,
    ObjectStore,
    RangedReader,
    abort_stale_uploads,
)

MIB = 1 << 20
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(s3_server):
    return ObjectStore(s3_server.client(), s3_server.bucket, s3_server.new_location())


def pending_uploads(store: ObjectStore) -> list[str]:
    response = store.client.list_multipart_uploads(
        Bucket=store.bucket, Prefix=store.key("")
    )
    return [upload["Key"] for upload in response.get("Uploads", [])]


def keys(store: ObjectStore) -> list[str]:
    response = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.key(""))
    return [
        item["Key"].removeprefix(store.key("")) for item in response.get("Contents", [])
    ]


def pattern(size: int) -> bytes:
    return (hashlib.sha256(b"x").digest() * (size // 32 + 1))[:size]


def test_parts_go_up_while_writing_and_the_object_appears_on_complete(store):
    upload = MultipartUpload(store, "a.jsonl.gz", part_size=5 * MIB)
    data = pattern(12 * MIB + 123)
    for start in range(0, len(data), MIB):
        upload.write(data[start : start + MIB])
    assert len(upload._parts) == 2  # two full parts sent, the rest waits
    assert keys(store) == []
    upload.complete()
    assert keys(store) == ["a.jsonl.gz"]
    assert pending_uploads(store) == []
    reader = RangedReader(store, "a.jsonl.gz", read_size=3 * MIB)
    assert reader.read() == data


def test_parts_grow_so_that_any_size_fits_in_ten_thousand(store):
    upload = MultipartUpload(store, "a.jsonl.gz", part_size=5 * MIB, parts_per_size=2)
    data = pattern(23 * MIB)
    for start in range(0, len(data), 3 * MIB):
        upload.write(memoryview(data)[start : start + 3 * MIB])
    sizes = [
        part["Size"]
        for part in store.client.list_parts(
            Bucket=store.bucket, Key=upload.key, UploadId=upload._upload_id
        )["Parts"]
    ]
    assert sizes == [5 * MIB, 5 * MIB, 10 * MIB]  # the last 3 MiB wait
    upload.complete()
    assert RangedReader(store, "a.jsonl.gz").read() == data


def test_an_aborted_upload_leaves_no_object_and_no_upload(store):
    upload = MultipartUpload(store, "a.jsonl.gz", part_size=5 * MIB)
    upload.write(pattern(6 * MIB))
    upload.abort()
    assert keys(store) == []
    assert pending_uploads(store) == []


def test_an_existing_object_is_never_replaced(store):
    first = MultipartUpload(store, "a.jsonl.gz")
    first.write(b"first")
    first.complete()
    second = MultipartUpload(store, "a.jsonl.gz")
    second.write(b"second")
    with pytest.raises(StorageError) as excinfo:
        second.complete()
    assert str(excinfo.value) == (
        "'a.jsonl.gz' already exists in the object storage; it was left as it was."
    )
    assert RangedReader(store, "a.jsonl.gz").read() == b"first"
    assert pending_uploads(store) == []


def test_an_empty_object(store):
    upload = MultipartUpload(store, "empty.jsonl")
    upload.complete()
    assert RangedReader(store, "empty.jsonl").read() == b""


def test_an_object_replaced_while_it_is_read_is_an_error(store):
    key = store.key("a.jsonl")
    store.client.put_object(Bucket=store.bucket, Key=key, Body=pattern(MIB))
    reader = RangedReader(store, "a.jsonl", read_size=256 * 1024)
    assert len(reader.read(1000)) == 1000
    store.client.put_object(Bucket=store.bucket, Key=key, Body=b"other")
    with pytest.raises(StorageError) as excinfo:
        reader.read()
    assert str(excinfo.value) == (
        "'a.jsonl' was replaced in the object storage while it was being read."
    )


def test_a_missing_object(store):
    with pytest.raises(StorageError) as excinfo:
        RangedReader(store, "nope.jsonl.gz")
    assert (
        str(excinfo.value) == "No backup named 'nope.jsonl.gz' in the backup storage."
    )


def test_stale_uploads_of_killed_writers_are_aborted(store):
    MultipartUpload(store, "killed.jsonl.gz").write(b"x")  # never completed
    assert abort_stale_uploads(store, datetime.timedelta(hours=1)) == []
    assert abort_stale_uploads(store, datetime.timedelta(0)) == [
        store.key("killed.jsonl.gz")
    ]
    assert pending_uploads(store) == []


def test_an_unreachable_server_is_one_line():
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        region_name="us-east-1",
    )
    with pytest.raises(StorageError) as excinfo:
        MultipartUpload(ObjectStore(client, "bucket", ""), "a.jsonl")
    message = str(excinfo.value)
    assert message.startswith("Cannot start writing 'a.jsonl' to the object storage: ")
    assert "\n" not in message


@pytest.mark.slow
def test_memory_stays_flat_for_a_file_ten_parts_long(s3_server, store):
    """Write and read back 100 MiB in 5 MiB parts in a child; its peak RSS is bounded."""
    script = textwrap.dedent(
        f"""
        import resource, boto3
        from backups_app.fileformat.objectstore import *
        client = boto3.client("s3", endpoint_url={s3_server.endpoint!r},
            aws_access_key_id="backups-test", aws_secret_access_key="backups-test-secret",
            region_name="us-east-1")
        store = ObjectStore(client, {store.bucket!r}, {store.location!r})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        upload = MultipartUpload(store, "big.jsonl", part_size=5 << 20)
        block = bytes(range(256)) * 4096
        for _ in range(100):
            upload.write(block)
        upload.complete()
        reader = RangedReader(store, "big.jsonl", read_size=5 << 20)
        total = 0
        while data := reader.read(1 << 20):
            total += len(data)
        assert total == 100 << 20, total
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) // 1024)
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert child.returncode == 0, child.stderr.decode()
    grown_mib = int(child.stdout.decode().split()[-1])
    assert grown_mib < 40, grown_mib  # 5 MiB parts: 11 MiB seen here


def test_other_storages_never_load_boto3(tmp_path):
    # Looking for the object store behind a storage that is not S3 (every media
    # file of a restore asks) costs no import of boto3.
    script = textwrap.dedent(
        f"""
        import sys
        import django
        django.setup()
        from django.core.files.storage import FileSystemStorage, InMemoryStorage
        from backups_app.fileformat.objectstore import object_store
        from backups_app.media import files
        local = FileSystemStorage(location={str(tmp_path)!r})
        assert object_store(local) is None and object_store(InMemoryStorage()) is None
        assert files.stat(local, "missing.png") is None
        print(sorted(name for name in sys.modules if name.split(".")[0] == "boto3"))
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "[]"
