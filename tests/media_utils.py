"""Helpers of the media tests: the storages of tests.mediaapp, their files, the blobs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import (
    FileSystemStorage,
    Storage,
    default_storage,
    storages,
)

from backups_app.media import files
from backups_app.media.blobs import PREFIX, BlobStore
from tests.mediaapp.models import Attachment, Photo


def media_storages() -> dict[str, Storage]:
    """The storages tests.mediaapp's fields use, by a name for the tests."""
    return {
        "default": default_storage,
        "memory": storages["memory"],
        "private": Attachment._meta.get_field("file").storage,
    }


def clear_media() -> None:
    """Empty the media storages and the blob store."""
    for storage in media_storages().values():
        for name in list(files.walk(storage)):
            storage.delete(name)
    blobs = BlobStore()
    if isinstance(blobs.storage, FileSystemStorage):
        shutil.rmtree(Path(blobs.storage.path(PREFIX)), ignore_errors=True)
    else:
        for digest, _size in list(blobs.blobs()):
            blobs.delete(digest)


def put(storage: Storage | str, name: str, content: bytes) -> str:
    """Write a file under exactly ``name`` (replacing one that is there)."""
    if isinstance(storage, str):
        storage = media_storages()[storage]
    if storage.exists(name):
        storage.delete(name)
    saved = storage.save(name, ContentFile(content))
    assert saved == name
    return name


def read(storage: Storage | str, name: str) -> bytes:
    if isinstance(storage, str):
        storage = media_storages()[storage]
    with storage.open(name, "rb") as file:
        return file.read()


def media_state() -> dict[tuple[str, str], str]:
    """Every file of the media storages: (storage, name) -> SHA-256 of its content."""
    return {
        (label, name): hashlib.sha256(read(storage, name)).hexdigest()
        for label, storage in media_storages().items()
        for name in files.walk(storage)
    }


def referenced_files() -> set[tuple[str, str]]:
    """(storage, name) of every file a row of tests.mediaapp references."""
    from tests.mediaapp.models import Document

    names = {("default", n) for n in Document.objects.values_list("file", flat=True)}
    for image, thumbnail in Photo.objects.values_list("image", "thumbnail"):
        names |= {("memory", image), ("memory", thumbnail)}
    names |= {("private", n) for n in Attachment.objects.values_list("file", flat=True)}
    return {(storage, name) for storage, name in names if name}


def blob_digests() -> set[str]:
    return {digest for digest, _size in BlobStore().blobs()}


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def populate_media() -> dict[str, object]:
    """Rows with files in the three storages; some rows share a file, one has none."""
    from tests.mediaapp.models import Document

    put("default", "documents/a.txt", b"alpha\n")
    put("default", "documents/b.pdf", b"%PDF-1.4 beta\n")
    put("default", "documents/empty.txt", b"")
    put("memory", "photos/p1.png", b"\x89PNG one")
    put("memory", "photos/p2.png", b"\x89PNG two")
    put("memory", "thumbnails/t1.png", b"thumb")
    put("private", "secret/contract.txt", b"signed")
    a = Document.objects.create(title="a", file="documents/a.txt")
    b = Document.objects.create(title="b", file="documents/b.pdf")
    Document.objects.create(title="empty", file="documents/empty.txt")
    Document.objects.create(title="none", file="")
    # A second row referencing the same file as the first.
    Document.objects.create(title="a again", file="documents/a.txt")
    p1 = Photo.objects.create(image="photos/p1.png", thumbnail="thumbnails/t1.png")
    p2 = Photo.objects.create(image="photos/p2.png", thumbnail=None)
    Attachment.objects.create(document=a, file="secret/contract.txt")
    return {"a": a, "b": b, "p1": p1, "p2": p2}


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)
