"""Keep BackupRecord rows in step with the files in the backup storage.

The one module that writes BackupRecord, ValidationRun and DrillRun rows: the
admin, the task runner, the commands and the signal receivers all go through it.

Every file reference here is a storage name taken from a BackupRecord or produced by
the server. Names are flat (no directories) and are checked before they reach the
storage, so a crafted record or upload name cannot point outside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.text import get_valid_filename

from .differential.undo import table_rows, undone
from .exceptions import BackupError, BackupFormatError, StorageError, one_line
from .fileformat.objectstore import MultipartUpload, RangedReader, object_store
from .fileformat.reader import BackupReader, verify_file
from .fileformat.streams import BackupSource, backup_storage, stored_path
from .fileformat.undo import database_tables
from .models import (
    BackupRecord,
    DrillRun,
    Integrity,
    Origin,
    Provenance,
    ValidationRun,
)
from .provenance import provenance_of

# Uploads are copied into the storage this much at a time.
UPLOAD_CHUNK = 1 << 20


def check_name(name: str) -> str:
    """Return ``name`` if it is a plain file name in the storage, else raise."""
    if (
        not name
        or name in {".", ".."}
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or os.path.isabs(name)
        or name.startswith(".")
    ):
        raise SuspiciousFileOperation(f"Refusing backup name {name!r}.")
    return name


@contextlib.contextmanager
def open_source(name: str) -> Iterator[BackupSource]:
    """Yield the BackupSource of storage name ``name``, never a path from elsewhere."""
    check_name(name)
    source = BackupSource.from_storage(name)
    try:
        yield source
    finally:
        source.close()


@contextlib.contextmanager
def open_restorable(name: str) -> Iterator[BackupSource]:
    """Like ``open_source``; an undo file comes as the backup it stands for (built
    in a temporary file, differential/undo.py), which is what restoring it restores."""
    with open_source(name) as source:
        restorable = undone(source)
        try:
            yield restorable
        finally:
            if restorable is not source:
                restorable.close()


def _aware(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is not None and timezone.is_naive(parsed):
        parsed = parsed.replace(tzinfo=UTC)
    if parsed is not None and not settings.USE_TZ:
        parsed = timezone.make_naive(parsed, UTC)
    return parsed


def _now() -> datetime:
    return timezone.now()


def record_backup(
    summary: Any, *, username: str = "", user_id: str = ""
) -> BackupRecord | None:
    """Create or update the record of a backup written to the backup storage."""
    if not getattr(summary, "storage_name", None):
        return None
    record, _created = BackupRecord.objects.update_or_create(
        name=summary.storage_name,
        defaults={
            "database": summary.database,
            "vendor": summary.vendor,
            "created": _aware(summary.created),
            "size": summary.size,
            "table_count": summary.table_count,
            "rows": summary.rows,
            "media_files": _media(summary, "files"),
            "media_size": _media(summary, "size"),
            "digest": summary.digest,
            "origin": summary.origin
            if summary.origin in Origin.values
            else Origin.COMMAND,
            # Written and sealed with per-table and whole-file digests just now.
            "integrity": Integrity.INTACT,
            "provenance": Provenance.OURS,
            "integrity_checked": _now(),
            "problem": "",
        },
    )
    if username and not record.username:
        record.username = username
        record.user_id = user_id
        record.save(update_fields=["username", "user_id"])
    return record


def _media(summary: Any, key: str) -> int | None:
    media = getattr(summary, "media", None)
    return getattr(media, key) if media is not None else None


def record_admin_backup(
    summary: Any, *, username: str, user_id: str
) -> BackupRecord | None:
    """Record a backup taken from the admin: its origin is the admin, its user the
    one who started it (whatever the ``post_backup`` receiver recorded first)."""
    record = record_backup(summary, username=username, user_id=user_id)
    if record is None:
        return None
    record.origin = Origin.ADMIN
    record.username = username
    record.user_id = user_id
    record.save(update_fields=["origin", "username", "user_id"])
    return record


def on_post_backup(sender: Any, summary: Any = None, **kwargs: Any) -> None:
    """Receiver of ``post_backup``: record every backup that lands in storage."""
    if summary is not None:
        record_backup(summary)


def read_header(name: str) -> dict[str, Any]:
    """Return the header of a stored backup, reading only its first line."""
    with open_source(name) as source, source.open() as stream:
        return BackupReader(stream, name, undo=True).header


def sync_from_storage() -> tuple[list[BackupRecord], list[str]]:
    """Record stored files that have no record; forget records whose file is gone.

    Only each new file's header line is read, so its integrity is "unchecked" until
    it is validated. Returns the new records and the names of removed records.
    """
    storage = backup_storage()
    from .operations.inventory import stored_names

    files = stored_names()
    known = set(BackupRecord.objects.values_list("name", flat=True))
    added = []
    for name in files:
        if name in known:
            continue
        try:
            check_name(name)
        except SuspiciousFileOperation:
            continue
        record = BackupRecord(
            name=name,
            origin=Origin.SAFETY if name.startswith("safety-") else Origin.STORAGE,
        )
        # Whatever is wrong with one file is recorded with it, so the file is not
        # read again by every later sync, and the sync goes on with the others.
        try:
            record.size = storage.size(name)
            if not is_regular_file(name):
                raise BackupFormatError(
                    f"{name}: is not a regular file in the backup storage"
                )
            header = read_header(name)
        except (BackupError, OSError, EOFError, ValueError, zlib.error) as exc:
            record.integrity = Integrity.DAMAGED
            record.integrity_checked = _now()
            record.problem = one_line(exc) or type(exc).__name__
        else:
            record.database = str(header.get("database", ""))[:100]
            record.vendor = str(header.get("vendor", ""))[:30]
            record.created = _aware(header.get("created"))
            record.table_count = len(database_tables(header))
        if record.created is None:
            with contextlib.suppress(NotImplementedError, OSError):
                record.created = storage.get_modified_time(name)
        record.save()
        added.append(record)
    present = set(files)
    gone = [name for name in known if name not in present]
    BackupRecord.objects.filter(name__in=gone).delete()
    return added, sorted(gone)


def is_regular_file(name: str) -> bool:
    """Tell whether a stored name is a regular file, not a link, folder or device.

    Storages without local paths hold only regular files.
    """
    path = stored_path(check_name(name))
    if path is None:
        return True
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True  # the caller reports the missing file in its own words


def open_stored_file(name: str) -> IO[bytes]:
    """Open a stored backup for download: a regular file in the storage, no link.

    Raises StorageError for a link or anything else that is not a regular file,
    and OSError when the file is gone.
    """
    storage = backup_storage()
    path = stored_path(check_name(name))
    if path is None:
        store = object_store(storage)
        if store is not None:
            # Ranged GETs as the response is sent, never the whole object at once.
            return cast(IO[bytes], RangedReader(store, name))
        return storage.open(name, "rb")
    try:
        # O_NOFOLLOW: a symbolic link put in the storage, even just now, is refused
        # rather than followed out of it.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if os.path.islink(path):
            raise StorageError(
                f"{name} is a link, not a regular file in the backup storage."
            ) from exc
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise StorageError(f"{name} is not a regular file in the backup storage.")
    return os.fdopen(descriptor, "rb")


def _save_upload(storage: Any, name: str, uploaded: Any) -> str:
    """Copy an upload into the storage with the same mode as the backups made here.

    Local storages get it through a temporary file (0600, like every backup this
    app writes; Django's FILE_UPLOAD_PERMISSIONS would make it 0644) that is linked
    into place only when complete, so no half-copied file carries a backup's name.
    """
    name = storage.get_available_name(name)
    path = stored_path(name)
    if path is None:
        store = object_store(storage)
        if store is None:
            return storage.save(name, uploaded)
        # Part by part, completed only if nothing went wrong, never over an object.
        upload = MultipartUpload(store, name)
        try:
            for chunk in uploaded.chunks(UPLOAD_CHUNK):
                upload.write(chunk)
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        return name
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=".upload-", suffix=".partial"
    )
    try:
        with os.fdopen(descriptor, "wb") as out:
            for chunk in uploaded.chunks(UPLOAD_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        for _attempt in range(10):
            try:
                # link, not replace: never overwrite a file that took the name since.
                assert path is not None  # a local storage: a path for every name
                os.link(temporary, path)
                return name
            except FileExistsError:
                name = storage.get_available_name(name)
                path = stored_path(name)
        raise StorageError(f"Cannot find a free name for {name!r} in the storage.")
    finally:
        os.unlink(temporary)


def upload_name(client_name: str) -> str:
    """Return a storage name for an uploaded file, built from its base name only."""
    base = os.path.basename(client_name.replace("\\", "/")) or "backup"
    base = get_valid_filename(base).lstrip(".") or "backup"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return check_name(f"upload-{stamp}-{base}"[:200])


def _uploaded_source(uploaded: Any) -> BackupSource:
    """Return the upload as a BackupSource: its temporary file where Django wrote
    one to disk, else the file object (kept in memory by Django: small files)."""
    try:
        return BackupSource(uploaded.temporary_file_path())
    except (AttributeError, StorageError):
        uploaded.seek(0)
        return BackupSource(uploaded.file)


def store_upload(
    uploaded: Any, *, username: str = "", user_id: str = ""
) -> BackupRecord:
    """Check an uploaded backup, save it into storage, and record it.

    The upload is read whole through the file pipeline (decrypted when it is
    encrypted, decompressed), before anything is stored: a file that is not an
    intact backup never reaches the storage, and BackupFormatError is raised with
    a message that names it as the user did. Then its bytes, as they are, are
    copied chunk by chunk into the storage. The record notes whether the file's mac
    verifies (provenance): an intact file is still foreign unless it was made here.
    """
    source = _uploaded_source(uploaded)
    try:
        with source.open() as stream:
            verified = verify_file(stream, uploaded.name)
    except BackupError as exc:
        raise BackupFormatError(str(exc).replace(source.name, uploaded.name)) from exc
    finally:
        source.close()
    header, ends, trailer = verified.header, verified.ends, verified.trailer
    storage = backup_storage()
    name = _save_upload(storage, upload_name(uploaded.name), uploaded)
    check_name(name)
    return BackupRecord.objects.create(
        name=name,
        database=str(header.get("database", ""))[:100],
        vendor=str(header.get("vendor", ""))[:30],
        created=_aware(header.get("created")),
        size=storage.size(name),
        table_count=len(ends),
        rows=sum(end.rows for end in ends.values()),
        # The whole-file digest, as for backups made here: equal digests, same rows.
        digest=str(trailer.get("digest") or "")[:64],
        origin=Origin.UPLOAD,
        username=username,
        user_id=user_id,
        integrity=Integrity.INTACT,
        integrity_checked=_now(),
        # Foreign unless its mac verifies with our key: a file can be made anywhere.
        provenance=provenance_of(header, trailer),
    )


def delete_backup_file(record: BackupRecord) -> None:
    """Remove a record's file from the storage (a missing file is fine)."""
    check_name(record.name)
    storage = backup_storage()
    if storage.exists(record.name):
        storage.delete(record.name)


def delete_backup(record: BackupRecord) -> None:
    """Remove a backup: its file from the storage, then its record."""
    delete_backup_file(record)
    record.delete()


def delete_backups(records: Any) -> None:
    """Remove the backups of a queryset of records: their files, then the records."""
    for record in records:
        delete_backup_file(record)
    records.delete()


def record_provenance(record: BackupRecord, provenance: str) -> None:
    """Note whether the record's file was made here, once it has been read whole."""
    if record.provenance != provenance:
        record.provenance = provenance
        record.save(update_fields=["provenance"])


def check_provenance(record: BackupRecord) -> str:
    """Return whether the record's file was made here, reading it whole if not known.

    The answer is noted on the record; a file that cannot be read leaves it
    unchecked.
    """
    if record.provenance == Provenance.UNCHECKED:
        try:
            with open_source(record.name) as source, source.open() as stream:
                verified = verify_file(stream, record.name, undo=True)
        except (BackupError, SuspiciousFileOperation):
            return Provenance.UNCHECKED
        record_provenance(record, provenance_of(verified.header, verified.trailer))
    return record.provenance


def stored_location(name: str) -> Path | None:
    """Return the local path of a name in the backup storage, when it has one."""
    return stored_path(name)


def record_integrity(record: BackupRecord, problem: str | None) -> None:
    """Note the outcome of reading the whole file: intact, or damaged with why."""
    record.integrity = Integrity.DAMAGED if problem else Integrity.INTACT
    record.integrity_checked = _now()
    record.problem = problem or ""
    record.save(update_fields=["integrity", "integrity_checked", "problem"])


def record_validation(
    record: BackupRecord, report: Any, *, database: str, username: str
) -> ValidationRun:
    """Keep a validation's report, and note its outcome on the backup's record."""
    run = ValidationRun.objects.create(
        backup=record,
        backup_name=record.name,
        database=database,
        seconds=report.seconds,
        username=username,
        ok=report.ok,
        matching=report.matching,
        differing=report.differing,
        summary=report.summary_line()[:255],
        schema_differences=list(report.schema_differences),
        tables=[table.to_dict() for table in report.tables],
        media=[media.to_dict() for media in getattr(report, "media", ())],
    )
    BackupRecord.objects.filter(pk=record.pk).update(
        last_validated=run.started,
        last_validation_ok=run.ok,
        last_validation_summary=run.summary,
    )
    return run


def who_survives(
    source: BackupSource, user: Any, session_key: str | None
) -> dict[str, bool | None]:
    """Tell whether ``user`` and the session ``session_key`` are in the backup.

    Streams the file up to the user and session tables and reads only those. An
    undo file is read as the backup it stands for, without building that backup
    (``table_rows``). A value is None when the backup does not carry that table.
    """
    from django.contrib.auth import get_user_model

    user_model: Any = get_user_model()
    pk_column = user_model._meta.pk.column
    name_column = user_model._meta.get_field(user_model.USERNAME_FIELD).column
    # Per table: the answer it gives, and the values its row must have.
    wanted = {
        user_model._meta.label: (
            "user",
            {pk_column: str(user.pk), name_column: str(user.get_username())},
        )
    }
    if session_key:
        from django.apps import apps

        if apps.is_installed("django.contrib.sessions"):
            wanted["sessions.Session"] = ("session", {"session_key": session_key})
    found: dict[str, bool | None] = {"user": None, "session": None}
    try:
        for label, columns, rows in table_rows(source, wanted):
            slot, values = wanted[label]
            if not set(values) <= set(columns):
                continue
            positions = [columns.index(column) for column in values]
            expected = list(values.values())
            found[slot] = any(
                [str(row[i]) for i in positions] == expected for row in rows
            )
    except (ValueError, IndexError, TypeError) as exc:
        # Digests recomputed over rows that are not lists of the columns' values.
        raise BackupFormatError(
            f"{source.name}: its user and session rows cannot be read "
            f"({type(exc).__name__}: {one_line(exc)})"
        ) from exc
    return found


def forget_backup(name: str) -> None:
    """Remove the record of a file that was deleted from the storage."""
    BackupRecord.objects.filter(name=name).delete()


def record_drill(result: Any) -> None:
    """Keep the outcome of a restore drill, for checkbackups and the admin."""
    DrillRun.objects.create(
        backup_name=result.backup_name[:255],
        source_database=result.source_database[:100],
        scratch_database=result.scratch_database[:100],
        seconds=result.seconds,
        ok=result.ok,
        failed_step=result.failed_step,
        summary=result.summary[:255],
        message=result.message,
    )
