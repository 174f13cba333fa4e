"""The blobs: the content of media files, once per content, in the backup storage.

A blob is named by the SHA-256 of its content, ``media/sha256/9f/9f86d0…``, so the
same content is stored once however many files, rows and backups have it: a backup
of files that did not change writes no blob at all. A blob is never changed once
written; the manifests of backup files say which blobs they need, and
``prunebackups`` deletes those no kept backup needs (``collection``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import IO

from django.core.files.storage import Storage

from ..exceptions import StorageError, one_line
from ..fileformat.manifest import DIGEST, DIGEST_ALGORITHM
from ..fileformat.objectstore import ObjectStore, object_store
from ..fileformat.streams import backup_storage
from . import files

PREFIX = f"media/{DIGEST_ALGORITHM}"


def blob_name(digest: str) -> str:
    return f"{PREFIX}/{digest[:2]}/{digest}"


class BlobStore:
    """The blobs in the backup storage (``BACKUPS["STORAGE"]``)."""

    def __init__(self, storage: Storage | None = None):
        self.storage = storage if storage is not None else backup_storage()

    def size_of(self, digest: str) -> int | None:
        """The size of the blob as stored; None when there is none."""
        found = files.stat(self.storage, blob_name(digest))
        return None if found is None else found.size

    def has(self, digest: str, size: int) -> bool:
        """Whether the blob is there with the size it must have (a blob of another
        size is damaged, and ``put`` replaces it)."""
        return self.size_of(digest) == size

    def put(
        self, source: Iterator[bytes], digest: str, *, replace: bool | None = None
    ) -> int:
        """Store chunks whose SHA-256 must be ``digest``; return their size.

        ``replace`` says whether a (damaged) blob is there to be replaced; the
        storage is asked when it is not given.

        Raises files.ContentChanged (and stores nothing) when the content has
        another digest.
        """
        if replace is None:
            replace = self.size_of(digest) is not None
        size, _ = files.write(
            self.storage, blob_name(digest), source, digest=digest, replace=replace
        )
        return size

    @contextlib.contextmanager
    def opened(self, digest: str) -> Iterator[IO[bytes]]:
        with files.opened(self.storage, blob_name(digest)) as stream:
            yield stream

    def check(self, digest: str, size: int) -> str | None:
        """Read a blob through; say what is wrong with it, or None when its size
        and digest are right."""
        name = blob_name(digest)
        found = files.stat(self.storage, name)
        if found is None:
            return "missing"
        if found.size != size:
            return f"damaged ({found.size:,} bytes, not {size:,})"
        if files.digest_of(self.storage, name) != (size, digest):
            return "damaged (its content does not match its digest)"
        return None

    def delete(self, digest: str) -> None:
        files.delete(self.storage, blob_name(digest))

    def blobs(self) -> Iterator[tuple[str, int]]:
        """Yield (digest, size) of every blob, in digest order."""
        store = object_store(self.storage)
        if store is not None:
            yield from self._objects(store)
            return
        for name in files.walk(self.storage, PREFIX):
            digest = name.rsplit("/", 1)[-1]
            if not DIGEST.fullmatch(digest) or name != blob_name(digest):
                continue  # not a blob (a partial file being written, say)
            try:
                size = self.storage.size(name)
            except FileNotFoundError:
                continue  # deleted meanwhile
            except Exception as exc:
                raise StorageError(f"Cannot read {name!r}: {one_line(exc)}") from exc
            yield digest, size

    def _objects(self, store: ObjectStore) -> Iterator[tuple[str, int]]:
        prefix = store.key(PREFIX + "/")
        try:
            pages = store.client.get_paginator("list_objects_v2").paginate(
                Bucket=store.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(store.key("")) :]
                    digest = name.rsplit("/", 1)[-1]
                    if DIGEST.fullmatch(digest) and name == blob_name(digest):
                        yield digest, item["Size"]
        except Exception as exc:
            raise StorageError(f"Cannot list the media blobs: {one_line(exc)}") from exc
