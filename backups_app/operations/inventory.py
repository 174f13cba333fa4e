"""What the backup storage holds: each file's kind, database, time and health.

Read straight from the storage (each file's header line only), whatever the admin's
records say; the records only add what a header cannot know (rows counted when the
file was checked, the last validation).
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import SuspiciousFileOperation
from django.db import DatabaseError
from django.utils.dateparse import parse_datetime

from ..conf import app_settings
from ..exceptions import BackupError, StorageError, one_line
from ..fileformat.manifest import has_media
from ..fileformat.objectstore import object_store, pending_uploads
from ..fileformat.streams import backup_storage, partial_state
from ..fileformat.undo import UNDO_KEY, database_tables
from ..fileformat.writer import UNDO_FORMAT_NAME
from ..media.collection import shared_size

BACKUP = "backup"
SAFETY = "safety"
UPLOAD = "upload"
UNKNOWN = "unknown"
PARTIAL = "partial"  # a backup being written, or left by one that was killed


@dataclass(frozen=True)
class StoredBackup:
    """One file in the backup storage, as far as its header and records tell."""

    name: str
    kind: str  # backup, safety, upload, or unknown (not readable as a backup)
    database: str
    vendor: str
    created: datetime.datetime | None
    size: int | None
    tables: int | None
    rows: int | None
    integrity: str  # intact, damaged or unchecked
    last_validation: str | None  # match, differ, or None when never validated
    problem: str = ""
    last_drill: str | None = None  # passed, failed, or None when never drilled
    # A backup with media: whether it has any (its header says), and the files and
    # bytes it references (its record says, when it was written here).
    media: bool = False
    media_files: int | None = None
    media_size: int | None = None
    # An undo file (a restore's safety backup): the backup it is laid over, which
    # must stay as long as it does.
    undoes: str | None = None

    @property
    def ours(self) -> bool:
        """Whether retention may ever delete it: a readable backup this site made."""
        return self.kind in (BACKUP, SAFETY)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created"] = self.created.isoformat() if self.created else None
        return data


def _listed() -> list[str]:
    try:
        _directories, files = backup_storage().listdir("")
    except FileNotFoundError:  # nothing has been written yet
        return []
    except Exception as exc:  # storages raise anything from OSError to SDK errors
        raise StorageError(f"Cannot list the backup storage: {one_line(exc)}") from exc
    return sorted(files)


def stored_names() -> list[str]:
    """Return the names of the files in the backup storage, sorted.

    Names starting with a dot are the temporary files of backups being written.
    """
    return [name for name in _listed() if not name.startswith(".")]


def partial_files() -> list[StoredBackup]:
    """Return the partial files in the backup storage: backups being written, and
    the leftovers of killed ones (which the next backup into the storage removes).
    On S3, these are the multipart uploads not completed yet."""
    storage = backup_storage()
    store = object_store(storage)
    if store is not None:
        return _pending_uploads(store)
    found = []
    for name in _listed():
        state = partial_state(name)
        if state is None:
            continue
        size = created = None
        with contextlib.suppress(NotImplementedError, OSError):
            size = storage.size(name)
            created = storage.get_modified_time(name)
        found.append(
            StoredBackup(name, PARTIAL, "", "", created, size, None, None, state, None)
        )
    return found


def _pending_uploads(store: Any) -> list[StoredBackup]:
    try:
        uploads = pending_uploads(store)
    except Exception as exc:  # botocore raises ClientError and connection errors
        raise StorageError(
            f"Cannot list the uploads in the backup storage: {one_line(exc)}"
        ) from exc
    stale = datetime.datetime.now(datetime.UTC) - app_settings.STALE_UPLOAD_AGE
    return [
        StoredBackup(
            name,
            PARTIAL,
            "",
            "",
            started,
            None,
            None,
            None,
            # Started too long ago: the next backup aborts it.
            "left behind" if started <= stale else "writing",
            None,
        )
        for name, started in uploads
    ]


def _created(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        parsed = parse_datetime(value)
        if parsed is not None and parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.UTC)
        return parsed
    return None


def _records() -> dict[str, Any]:
    from ..models import BackupRecord

    try:
        return {record.name: record for record in BackupRecord.objects.all()}
    except DatabaseError:  # the app's tables are not migrated on this database
        return {}


def _kind(name: str, header: dict[str, Any], record: Any) -> str:
    from ..models import Origin

    if (record is not None and record.origin == Origin.UPLOAD) or name.startswith(
        "upload-"
    ):
        return UPLOAD
    return SAFETY if header.get("origin") == "safety" else BACKUP


def _drills() -> dict[str, str]:
    """Return the outcome of the last restore drill of each backup, by file name."""
    from ..models import DrillRun

    outcomes: dict[str, str] = {}
    try:
        # Oldest first, so that the newest drill of a file is the one kept.
        for name, ok in DrillRun.objects.order_by("started", "pk").values_list(
            "backup_name", "ok"
        ):
            outcomes[name] = "passed" if ok else "failed"
    except DatabaseError:  # the app's tables are not migrated on this database
        return {}
    return outcomes


def undone_backup(header: dict[str, Any]) -> str | None:
    """The name of the backup an undo file is laid over; None for a backup."""
    if header.get("format") != UNDO_FORMAT_NAME:
        return None
    return str(header[UNDO_KEY]["backup"])


def describe(
    name: str, record: Any = None, last_drill: str | None = None
) -> StoredBackup:
    """Return what the storage's file ``name`` is, reading only its header."""
    from ..records import check_name, read_header

    storage = backup_storage()
    size = None
    with contextlib.suppress(NotImplementedError, OSError):
        size = storage.size(name)
    try:
        check_name(name)
        header = read_header(name)
    except (BackupError, SuspiciousFileOperation) as exc:
        return StoredBackup(
            name, UNKNOWN, "", "", None, size, None, None, "damaged", None, str(exc)
        )
    integrity, validation, rows = "unchecked", None, None
    if record is not None:
        integrity = record.integrity
        rows = record.rows
        if record.last_validation_ok is not None:
            validation = "match" if record.last_validation_ok else "differ"
    return StoredBackup(
        name=name,
        kind=_kind(name, header, record),
        database=str(header.get("database", "")),
        vendor=str(header.get("vendor", "")),
        created=_created(header.get("created")),
        size=size,
        tables=len(database_tables(header)),
        rows=rows,
        integrity=integrity,
        last_validation=validation,
        problem=record.problem if record is not None else "",
        last_drill=last_drill,
        media=has_media(header),
        media_files=record.media_files if record is not None else None,
        media_size=record.media_size if record is not None else None,
        undoes=undone_backup(header),
    )


def list_backups(
    database: str | None = None, *, partials: bool = False
) -> list[StoredBackup]:
    """Return the files of the backup storage, newest first (unreadable ones last);
    with ``partials``, the partial files of backups being written (or killed) too."""
    records, drills = _records(), _drills()
    backups = [
        describe(name, records.get(name), drills.get(name)) for name in stored_names()
    ]
    if database is not None:
        backups = [b for b in backups if b.database == database]
    if partials:
        backups += partial_files()
    oldest = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    return sorted(backups, key=lambda b: (b.created or oldest, b.name), reverse=True)


def media_blob_totals() -> tuple[int, int]:
    """The number and bytes of the media blobs in the backup storage, which the
    backups with media share (each content stored once)."""
    return shared_size()
