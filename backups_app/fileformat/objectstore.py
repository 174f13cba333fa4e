"""Backups on S3-compatible object storage, streamed both ways.

django-storages' S3 backend holds the configuration (``STORAGES`` options: bucket,
credentials, endpoint URL, location); its file objects, though, spool a whole file
before an upload and can read a whole object into memory. Here the same boto3 client
is used directly:

- writing is a multipart upload fed while the backup is produced, a part at a time
  (PART_SIZE of memory, no local copy of the file); the upload is completed only when
  the backup is complete, with ``If-None-Match: *`` so that an existing object is
  never replaced, and aborted on any error, so no partial object ever carries a name;
- reading is a series of ranged GETs of READ_SIZE bytes, each made with ``If-Match``
  on the object's ETag, so that an object replaced while it is read is an error
  rather than a mix of two files.

A writer killed outright cannot abort its upload; ``abort_stale_uploads`` removes
the multipart uploads left under the storage's location that are older than a bound.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import sys
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.crypto import get_random_string

from ..exceptions import StorageError, one_line

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

PART_SIZE = 5 << 20  # S3 takes parts of at least 5 MiB, except the last one
PARTS_PER_SIZE = 1000
READ_SIZE = 2 << 20
# The first range read is this small, then each is twice the last, up to READ_SIZE:
# a listing that wants only a file's header line fetches little more than it.
FIRST_READ_SIZE = 256 << 10


@dataclass(frozen=True)
class ObjectStore:
    """The boto3 client, bucket and key prefix behind an S3 storage."""

    client: Any
    bucket: str
    location: str

    def key(self, name: str) -> str:
        return (
            f"{self.location.strip('/')}/{name}" if self.location.strip("/") else name
        )

    def exists(self, name: str) -> bool:
        return self.head(name) is not None

    def head(self, name: str) -> tuple[int, datetime.datetime] | None:
        """Return the object's size and modification time, or None when there is
        no object ``name``: one HEAD request, with no boto3 resource (whose model
        django-storages' ``exists``, ``size`` and ``get_modified_time`` load, and
        whose classes they build again on every call)."""
        try:
            found = self.client.head_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(
                f"Cannot look up {name!r} in the object storage: {one_line(exc)}"
            ) from exc
        return int(found["ContentLength"]), found["LastModified"]

    def free_name(self, name: str, suffix: str) -> str:
        """Return ``name``, or if it is taken, ``name`` with a random part added
        before ``suffix`` (so that the name still ends in it)."""
        root = name.removesuffix(suffix)
        while self.exists(name):
            name = f"{root}_{get_random_string(7)}{suffix}"
        return name


def object_store(storage: Any) -> ObjectStore | None:
    """Return the object store behind a django-storages S3 storage, else None."""
    # A storage of that class exists only once its module is imported: asking
    # first spares every other storage the import of boto3.
    s3 = sys.modules.get("storages.backends.s3")
    if s3 is None or not isinstance(storage, s3.S3Storage):
        return None
    client = _CLIENTS.get(storage)
    if client is None:
        client = _CLIENTS[storage] = _client_for(storage)
    return ObjectStore(client, storage.bucket_name, storage.location or "")


# One client per storage instance (``storages[alias]`` keeps one per thread).
_CLIENTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _client_for(storage: Any) -> Any:
    """Return a boto3 client made as django-storages makes its own (same session,
    credentials, endpoint and client config), or the one its resource already
    holds: the resource's model costs about 13 MB that a backup need not pay."""
    resource = getattr(storage._connections, "connection", None)
    if resource is not None:
        return resource.meta.client
    return storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        use_ssl=storage.use_ssl,
        endpoint_url=storage.endpoint_url,
        config=storage.client_config,
        verify=storage.verify,
    )


def _error_code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


class MultipartUpload(io.RawIOBase):
    """A writable stream whose bytes become the object ``name``: on ``complete()``,
    or never (``abort()``)."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        part_size: int = PART_SIZE,
        parts_per_size: int = PARTS_PER_SIZE,
    ):
        self.store = store
        self.name = name
        self.key = store.key(name)
        self.part_size = part_size
        self.parts_per_size = parts_per_size
        self.size = 0
        # One part's room, allocated once and filled in place (growing a bytearray
        # copies it, which would hold a part twice), reused for every part.
        self._buffer = bytearray()
        self._filled = 0
        self._parts: list[dict[str, Any]] = []
        try:
            self._upload_id = store.client.create_multipart_upload(
                Bucket=store.bucket, Key=self.key
            )["UploadId"]
        except Exception as exc:  # botocore raises ClientError and connection errors
            raise StorageError(
                f"Cannot start writing {name!r} to the object storage: {one_line(exc)}"
            ) from exc

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        with memoryview(data) as view, view.cast("B") as rest:
            self.size += rest.nbytes
            while rest:
                # Fill the part up to its size exactly, then send the buffer itself:
                # one part in memory, never a copy of it.
                size = self._current_part_size()
                if len(self._buffer) != size:
                    self._buffer = bytearray(size)
                taken = min(size - self._filled, rest.nbytes)
                self._buffer[self._filled : self._filled + taken] = rest[:taken]
                self._filled += taken
                rest = rest[taken:]
                if self._filled == size:
                    self._send(self._buffer)
                    self._filled = 0
            return view.nbytes

    def _current_part_size(self) -> int:
        # S3 allows 10,000 parts: the size doubles every PARTS_PER_SIZE parts, so
        # that a backup of any size fits (5 MiB parts up to 5 GiB written, then 10 MiB, ...).
        return self.part_size << (len(self._parts) // self.parts_per_size)

    def _send(self, part: bytes | bytearray) -> None:
        number = len(self._parts) + 1
        try:
            response = self.store.client.upload_part(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=part,
            )
        except Exception as exc:
            raise StorageError(
                f"Cannot write {self.name!r} to the object storage: {one_line(exc)}"
            ) from exc
        self._parts.append({"ETag": response["ETag"], "PartNumber": number})

    def complete(self) -> None:
        """Make the object appear under its name, unless one is already there."""
        if self._filled or not self._parts:
            # The last part: the buffer cut to what it holds, in place.
            del self._buffer[self._filled :]
            self._send(self._buffer)
        self._buffer, self._filled = bytearray(), 0
        try:
            self.store.client.complete_multipart_upload(
                Bucket=self.store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
                IfNoneMatch="*",
            )
        except Exception as exc:
            self.abort()
            if _error_code(exc) in ("PreconditionFailed", "412"):
                raise StorageError(
                    f"{self.name!r} already exists in the object storage; it was "
                    "left as it was."
                ) from exc
            raise StorageError(
                f"Cannot finish writing {self.name!r} to the object storage: "
                f"{one_line(exc)}"
            ) from exc

    def abort(self) -> None:
        """Drop the uploaded parts; nothing appears under the name."""
        # If it fails (gone already, server unreachable), abort_stale_uploads is
        # what removes it later.
        with contextlib.suppress(Exception):
            self.store.client.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self._upload_id
            )


class RangedReader(io.RawIOBase):
    """A readable stream over one version of an object, read a range at a time."""

    def __init__(
        self,
        store: ObjectStore,
        name: str,
        read_size: int = READ_SIZE,
        *,
        version: tuple[str, int] | None = None,
    ):
        self.store = store
        self.name = name
        self.key = store.key(name)
        self.read_size = read_size
        self._next_size = min(FIRST_READ_SIZE, read_size)
        self._position = 0
        self._chunk = b""
        self._offset = 0
        if version is not None:
            self.etag, self.size = version
            return
        try:
            head = store.client.head_object(Bucket=store.bucket, Key=self.key)
        except Exception as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise StorageError(
                    f"No backup named {name!r} in the backup storage."
                ) from exc
            raise StorageError(
                f"Cannot read {name!r} from the object storage: {one_line(exc)}"
            ) from exc
        self.etag = head["ETag"]
        self.size = head["ContentLength"]

    def reopen(self) -> RangedReader:
        """Return a reader of the same version of the object, from its start."""
        return RangedReader(
            self.store, self.name, self.read_size, version=(self.etag, self.size)
        )

    def readable(self) -> bool:
        return True

    def _fetch(self) -> bytes:
        last = min(self._position + self._next_size, self.size) - 1
        self._next_size = min(self._next_size * 2, self.read_size)
        try:
            response = self.store.client.get_object(
                Bucket=self.store.bucket,
                Key=self.key,
                Range=f"bytes={self._position}-{last}",
                IfMatch=self.etag,
            )
            data: bytes = response["Body"].read()
        except Exception as exc:
            if _error_code(exc) in ("PreconditionFailed", "412"):
                raise StorageError(
                    f"{self.name!r} was replaced in the object storage while it was "
                    "being read."
                ) from exc
            raise StorageError(
                f"Cannot read {self.name!r} from the object storage: {one_line(exc)}"
            ) from exc
        self._position += len(data)
        return data

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        current = self._position - (len(self._chunk) - self._offset)
        base = {io.SEEK_SET: 0, io.SEEK_CUR: current, io.SEEK_END: self.size}[whence]
        target = max(0, base + offset)
        if target != current:
            self._position, self._chunk, self._offset = target, b"", 0
        return target

    def tell(self) -> int:
        return self._position - (len(self._chunk) - self._offset)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        if self._offset == len(self._chunk):
            if self._position >= self.size:
                return 0
            self._chunk, self._offset = self._fetch(), 0
            if not self._chunk:
                return 0
        size = min(len(view), len(self._chunk) - self._offset)
        view[:size] = self._chunk[self._offset : self._offset + size]
        self._offset += size
        return size


def pending_uploads(store: ObjectStore) -> list[tuple[str, datetime.datetime]]:
    """Return the names (under the store's location) and start times of the multipart
    uploads not completed yet: backups being written, or left by killed ones."""
    prefix = store.key("")
    found = []
    paginator = store.client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            found.append((upload["Key"].removeprefix(prefix), upload["Initiated"]))
    return found


def abort_stale_uploads(
    store: ObjectStore, older_than: datetime.timedelta
) -> list[str]:
    """Abort multipart uploads under the store's location started more than
    ``older_than`` ago (writers killed before they could abort); return their keys."""
    cutoff = datetime.datetime.now(datetime.UTC) - older_than
    prefix = store.key("")
    aborted = []
    paginator = store.client.get_paginator("list_multipart_uploads")
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix):
        for upload in page.get("Uploads", []):
            if upload["Initiated"] <= cutoff:
                store.client.abort_multipart_upload(
                    Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted.append(upload["Key"])
    return aborted
