"""Rows that reference files, in every kind of storage a field can use."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.db import models


def memory_storage():
    """A callable storage: the field evaluates it once, at class creation."""
    return storages["memory"]


class PrivateStorage(FileSystemStorage):
    """A custom storage class, configured in code rather than in STORAGES."""

    def __init__(self):
        super().__init__(location=settings.PRIVATE_MEDIA_ROOT)


class Document(models.Model):
    """The default storage (a FileSystemStorage on MEDIA_ROOT)."""

    title = models.CharField(max_length=100)
    file = models.FileField(upload_to="documents/", max_length=200, blank=True)

    def __str__(self) -> str:
        return self.title


class Photo(models.Model):
    """A UUID primary key; two file fields in a storage returned by a callable."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4)
    image = models.ImageField(
        upload_to="photos/", storage=memory_storage, max_length=200, blank=True
    )
    thumbnail = models.FileField(
        upload_to="thumbnails/",
        storage=memory_storage,
        max_length=200,
        blank=True,
        null=True,
    )

    def __str__(self) -> str:
        return str(self.id)


class Attachment(models.Model):
    """A custom storage instance; a foreign key to another row with a file."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, null=True)
    file = models.FileField(storage=PrivateStorage(), max_length=200)

    def __str__(self) -> str:
        return self.file.name
