"""Where a backup's files come from: file fields of the tables in scope, whole storages.

A field's storage is the one the field itself uses (``field.storage``: the default
storage, an alias, a callable's result or a custom class), the very storage its
files are read from and written to. The header names it by its alias in
``STORAGES`` when it is one of them, else by its class, for people to read; a
restore uses the field's storage here and now.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.storage import (
    FileSystemStorage,
    InMemoryStorage,
    Storage,
    storages,
)
from django.core.files.storage.handler import InvalidStorageError
from django.db import models
from django.utils.functional import LazyObject, empty

from ..db.tables import TableSpec
from ..exceptions import CannotRunError, IncompatibleBackupError
from ..fileformat.manifest import is_whole_storage, source_name


@dataclass(frozen=True)
class Source:
    """One source of files: a file field of a table, or a whole storage."""

    storage: Storage
    storage_label: str
    spec: TableSpec | None = None
    field: models.FileField | None = None

    @property
    def whole(self) -> bool:
        return self.field is None

    @property
    def table(self) -> TableSpec:
        """The table of a field's source (not of a whole storage)."""
        assert self.spec is not None, "a whole storage has no table"
        return self.spec

    @property
    def file_field(self) -> models.FileField:
        assert self.field is not None, "a whole storage has no field"
        return self.field

    @property
    def name(self) -> str:
        return source_name(self.describe())

    def describe(self) -> dict[str, Any]:
        """The source as the header lists it (fileformat.manifest)."""
        if self.field is None:
            return {"storage": self.storage_label}
        return {
            "label": self.table.label,
            "field": self.field.name,
            "storage": self.storage_label,
        }


def unwrapped(storage: Storage) -> Storage:
    """The storage behind a lazy one (``default_storage``)."""
    if isinstance(storage, LazyObject):
        if storage._wrapped is empty:
            storage._setup()
        return storage._wrapped
    return storage


def storage_label(storage: Storage) -> str:
    """The alias of ``storage`` in STORAGES (that very object, or one made the same
    way: Django makes new ones when the setting changes), else its class's path."""
    storage = unwrapped(storage)
    made_as = _made_as(storage)
    for alias in getattr(settings, "STORAGES", {}):
        try:
            aliased = storages[alias]
        except InvalidStorageError:
            continue
        if aliased is storage or (made_as is not None and _made_as(aliased) == made_as):
            return alias
    cls = type(storage)
    return f"{cls.__module__}.{cls.__qualname__}"


def _made_as(storage: Storage) -> Any:
    """How a storage was made (its class and arguments), when it can say."""
    try:
        return storage.deconstruct()  # type: ignore[attr-defined]
    except (AttributeError, ValueError, TypeError):
        return None


def storage_key(storage: Storage) -> str:
    """What tells two storage objects apart by the files they hold: the folder of a
    FileSystemStorage, the bucket and location of an S3 storage, else how the
    storage was made (two objects made alike hold the same files), except for an
    InMemoryStorage, whose files are the object's own."""
    storage = unwrapped(storage)
    if isinstance(storage, FileSystemStorage):
        return f"file:{storage.location}"
    bucket = getattr(storage, "bucket_name", None)
    if bucket is not None:
        endpoint = getattr(storage, "endpoint_url", "")
        return f"s3:{endpoint}:{bucket}:{getattr(storage, 'location', '')}"
    if type(storage) is not InMemoryStorage:
        made_as = _made_as(storage)
        if made_as is not None:
            return f"made:{made_as!r}"
    return f"object:{id(storage)}"


def file_fields(spec: TableSpec) -> list[models.FileField]:
    """The file fields (FileField, ImageField and subclasses) of a table's columns."""
    pk = set(spec.pk_fields)
    return [
        field
        for field in spec.fields
        if isinstance(field, models.FileField) and field not in pk
    ]


def named_storage(alias: str, error: type[Exception] = CannotRunError) -> Storage:
    try:
        return storages[alias]
    except InvalidStorageError:
        raise error(
            f"Unknown storage {alias!r}; the aliases in STORAGES are: "
            + ", ".join(repr(name) for name in getattr(settings, "STORAGES", {}))
            + "."
        ) from None


def sources_for(
    specs: Iterable[TableSpec], *, fields: bool, whole_storages: Iterable[str] = ()
) -> list[Source]:
    """The sources of a backup of ``specs``: every file field of them (with
    ``fields``), then each storage of ``whole_storages``."""
    sources = []
    if fields:
        for spec in specs:
            for field in file_fields(spec):
                storage = field.storage
                sources.append(Source(storage, storage_label(storage), spec, field))
    for alias in dict.fromkeys(whole_storages):
        sources.append(Source(named_storage(alias), alias))
    return sources


def sources_here(
    described: list[dict[str, Any]], specs: Iterable[TableSpec]
) -> list[Source]:
    """The sources a backup's header lists, as they are here: each field's storage
    now, each whole storage by its alias. Raises IncompatibleBackupError when one
    is not here (a field gone or no longer a file field, an unknown alias)."""
    by_label = {spec.label: spec for spec in specs}
    found = []
    for source in described:
        if is_whole_storage(source):
            alias = source["storage"]
            found.append(Source(named_storage(alias, IncompatibleBackupError), alias))
            continue
        spec = by_label.get(source["label"])
        field = None
        if spec is not None:
            field = next(
                (f for f in file_fields(spec) if f.name == source["field"]), None
            )
        if field is None:
            raise IncompatibleBackupError(
                f"The backup has files of {source_name(source)}, which is not a file "
                "field of a table in its scope here.",
                [f"{source_name(source)}: not a file field here"],
            )
        found.append(Source(field.storage, storage_label(field.storage), spec, field))
    return found
