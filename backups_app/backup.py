"""Take a backup: one consistent snapshot of every table in scope, streamed to a file."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any, cast

import django
import orjson
from django.conf import settings
from django.db import DatabaseError, connections, models

from . import __version__, signals
from .collector import collector_paused
from .conf import app_settings
from .db.backends import Backend, backend_for
from .db.migrations import applied_migrations
from .db.tables import (
    TableSpec,
    column_of,
    require_tables,
    table_specs,
    unmanaged_labels,
    unmanaged_left_out,
)

# Public: the check every operation starts with, which commands also make before
# Django's system checks (an unreachable database would end in a traceback there).
from .db.tables import require_database as require_database
from .db.values import (
    block_encoder,
    checked_types,
    column_encoder,
    unfit_value,
)
from .exceptions import BackupError, StorageError, one_line
from .fileformat.codec import base_field, kind
from .fileformat.streams import BackupTarget
from .fileformat.writer import BackupWriter
from .media.collect import MediaSummary, media_collector
from .progress import Progress, ProgressCallback, ignore_progress, wants_counts


@dataclass(frozen=True)
class TableSummary:
    label: str
    table: str
    rows: int
    digest: str


@dataclass(frozen=True)
class BackupSummary:
    """What a backup wrote: where, how much, and how long it took."""

    name: str
    storage_name: str | None
    path: str | None
    database: str
    vendor: str
    created: str
    origin: str
    rows: int
    size: int
    seconds: float
    digest: str
    tables: tuple[TableSummary, ...] = field(default=())
    # The files backed up with the rows (backup --media), else None.
    media: MediaSummary | None = None
    # Unmanaged models whose tables are in the database and that the backup left
    # out, as BACKUPS["UNMANAGED"] does not name them.
    unmanaged_left_out: tuple[str, ...] = ()

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["table_count"] = self.table_count
        data["media"] = self.media.to_dict() if self.media is not None else None
        return data


def describe_table(spec: TableSpec) -> dict[str, Any]:
    return {
        "label": spec.label,
        "table": spec.table,
        "columns": [
            {
                "name": f.column,
                "type": kind(f),
                **({"generated": True} if f.generated else {}),
            }
            for f in spec.fields
        ],
        "pk": list(spec.pk_columns),
    }


def backup_header(
    using: str, specs: list[TableSpec], exclude: tuple[str, ...], origin: str
) -> dict[str, Any]:
    """The header of a backup of ``specs`` taken now (docs/format.md)."""
    connection = connections[using]
    return {
        "created": datetime.now(UTC).isoformat(),
        "app_version": __version__,
        "django_version": django.get_version(),
        "python_version": platform.python_version(),
        "vendor": connection.vendor,
        "database": using,
        "origin": origin,
        "use_tz": settings.USE_TZ,
        "exclude": list(exclude),
        "unmanaged": unmanaged_labels(specs),
        "migrations": applied_migrations(using),
        "tables": [describe_table(spec) for spec in specs],
    }


@signals.announces_failure(signals.backup_failed, "target")
@collector_paused()
def create_backup(
    target: str | os.PathLike | IO[bytes] | None = None,
    *,
    using: str = "default",
    exclude: Iterable[str] = (),
    origin: str = "command",
    name_template: str | None = None,
    progress: ProgressCallback = ignore_progress,
    media: bool | None = None,
    media_storages: Iterable[str] | None = None,
    strict_media: bool = False,
    unmanaged: Iterable[str] | None = None,
) -> BackupSummary:
    """Write a backup of database ``using`` to ``target``.

    ``target`` is a path, ``"-"`` for standard output, a binary file object, or None
    for a new name in the backup storage. The file appears under its name only once
    it is complete.

    With ``media`` (default: ``BACKUPS["MEDIA"]``) the files that the rows' file
    fields reference are backed up too, as blobs in the backup storage, and so is
    every file of each storage alias of ``media_storages`` (default:
    ``BACKUPS["MEDIA_STORAGES"]``). A referenced file that is missing is reported
    in the summary, or, with ``strict_media``, fails the backup.

    ``unmanaged`` (default: ``BACKUPS["UNMANAGED"]``) names the unmanaged models
    (or apps) whose tables are backed up too.
    """
    exclude = tuple(exclude)
    require_database(using)
    specs = table_specs(using, exclude, unmanaged)
    collector = media_collector(
        specs,
        app_settings.MEDIA if media is None else media,
        app_settings.MEDIA_STORAGES if media_storages is None else media_storages,
        strict=strict_media,
        progress=progress,
    )
    connection = connections[using]
    backend = backend_for(using)
    destination = BackupTarget(target, using, name_template)
    signals.pre_backup.send(create_backup, using=using)
    started = time.perf_counter()
    tables: list[TableSummary] = []
    reading: str | None = None
    try:
        with (
            destination.open() as stream,
            BackupWriter(stream, background=True) as writer,
        ):
            with backend.snapshot():
                backend.ensure_no_restore()
                require_tables(specs, using)
                header = backup_header(using, specs, exclude, origin)
                if collector is not None:
                    header["media"] = collector.header()
                writer.write_header(header)
                # Counted only for a progress display, in the snapshot, all before
                # the first row: the rows of the whole backup are known from the
                # start.
                counts: dict[str, int | None] = dict.fromkeys(
                    (spec.label for spec in specs), None
                )
                stage_total = None
                if wants_counts(progress):
                    for spec in specs:
                        reading = spec.label
                        counts[spec.label] = backend.count(spec)
                    stage_total = sum(filter(None, counts.values()))
                for spec in specs:
                    reading = spec.label
                    total = counts[spec.label]
                    writer.begin_table(spec.label, spec.table, spec.columns)
                    write_rows(writer, spec, backend, total, stage_total, progress)
                    count, digest = writer.end_table()
                    tables.append(TableSummary(spec.label, spec.table, count, digest))
                if collector is not None:
                    # The references of the very rows written, in the snapshot.
                    reading = "the file fields' references"
                    collector.read_references(backend)
                reading = None
            if collector is not None:
                collector.store()
                writer.write_media(collector.blocks())
            digest = writer.write_trailer()
    except DatabaseError as exc:
        where = f"{reading}: " if reading else ""
        raise BackupError(
            f"Cannot read database {using!r}: {where}{one_line(exc)}"
        ) from exc
    except OSError as exc:
        # A full disk or a vanished folder midway; the partial file is already gone.
        raise StorageError(
            f"Cannot write {destination.name}: {exc.strerror or one_line(exc)}."
        ) from exc
    finally:
        if collector is not None:
            collector.close()
    summary = BackupSummary(
        name=destination.final_name,
        storage_name=destination.storage_name,
        path=str(destination.path) if destination.path else None,
        database=using,
        vendor=connection.vendor,
        created=header["created"],
        origin=origin,
        rows=writer.rows,
        size=destination.size,
        seconds=round(time.perf_counter() - started, 3),
        digest=digest,
        tables=tuple(tables),
        media=collector.summary if collector is not None else None,
        unmanaged_left_out=tuple(unmanaged_left_out(using, unmanaged)),
    )
    signals.announce(signals.post_backup, create_backup, using=using, summary=summary)
    return summary


def write_rows(
    writer: BackupWriter,
    spec: TableSpec,
    backend: Backend,
    total: int | None = None,
    stage_total: int | None = None,
    progress: ProgressCallback = ignore_progress,
    stage: str = "backup",
) -> None:
    """Write every row of ``spec`` into the section ``writer`` has open, as the
    database holds them now (in the caller's snapshot or transaction)."""
    connection = backend.connection
    encode = block_encoder(spec.fields, spec.table, connection, checked=True)
    done = 0
    progress(Progress(stage, spec.label, 0, total, stage_total))
    try:
        with closing(backend.stream_rows(spec, app_settings.BATCH_SIZE)) as batches:
            for rows in batches:
                try:
                    block = encode(rows)
                except Exception as exc:
                    # Any error at all: the value came from the database, so say
                    # which one, whatever the converter raised.
                    raise BackupError(
                        unreadable_value(spec, rows, connection, exc)
                    ) from exc
                writer.write_block(block, len(rows))
                done += len(rows)
                progress(Progress(stage, spec.label, done, total, stage_total))
    except DatabaseError as exc:
        # The driver could not read a value (PostgreSQL's infinite dates, for
        # one); find which, while the snapshot is open.
        found = unfetchable_value(spec, backend)
        if found is None:
            raise
        raise BackupError(
            f"Cannot read database {backend.using!r}: {found}: {one_line(exc)}"
        ) from exc


# How much of a value an error message shows.
SHOWN_VALUE = 60


def unreadable_value(
    spec: TableSpec, rows: list[tuple[Any, ...]], connection: Any, error: Exception
) -> str:
    """Describe the value of ``rows`` that could not be encoded: model, field, pk.

    Called only once a batch has failed: the batch is encoded again value by value,
    with fresh encoders, until one fails.
    """
    return _locate(spec, rows, connection, checked=True) or (
        f"{spec.label}: cannot back up a row ({type(error).__name__}: "
        f"{one_line(error)})"
    )


def unreadable_value_in_table(
    spec: TableSpec, backend: Backend, error: Exception
) -> str:
    """Like ``unreadable_value``, for an error met while the table was being read
    in some other way (validation): read the table again to find the value."""
    with closing(backend.stream_rows(spec, app_settings.BATCH_SIZE)) as batches:
        for rows in batches:
            if found := _locate(spec, rows, backend.connection, checked=False):
                return found
    return (
        f"{spec.label}: cannot read a row ({type(error).__name__}: {one_line(error)})"
    )


def _locate(
    spec: TableSpec, rows: list[tuple[Any, ...]], connection: Any, *, checked: bool
) -> str | None:
    """Describe the first value of ``rows`` that fails to encode, or (``checked``,
    as a backup's rows are) is of another type than its field's."""
    pk_indexes = [spec.fields.index(f) for f in spec.pk_fields]
    encoders = [column_encoder(f, spec.table, connection) for f in spec.fields]
    types = [checked_types(f) if checked else None for f in spec.fields]
    for row in rows:
        for column, encoder, allowed, value in zip(
            spec.fields, encoders, types, row, strict=True
        ):
            if value is None:
                continue
            try:
                encoded = value if encoder is None else encoder(value)
                fits = allowed is None or type(encoded) in allowed
                if fits:
                    orjson.dumps(encoded)
            except Exception as exc:  # noqa: BLE001 (described, then raised by the caller)
                problem = _what(column, value, exc)
            else:
                if fits:
                    continue
                problem = (
                    f"the stored value {_shown(value)} {unfit_value(column, encoded)}"
                )
            pk = _shown_pk(tuple(row[i] for i in pk_indexes))
            return f"{spec.label}.{column.name}, pk {pk}: {problem}"
    return None


# Rows per query while looking for a value the driver cannot read.
LOCATE_PAGE = 500


def unfetchable_value(spec: TableSpec, backend: Backend) -> str | None:
    """Return ``app.Model.field, pk N`` of the first value the driver fails to read.

    Only after a read has failed: primary keys are read in pages (they always read),
    then each page's rows, then, in the page that fails, one value at a time. None
    when the table has a composite key, or when the failure cannot be found again
    (the connection is gone, or the transaction was aborted).
    """
    if len(spec.pk_fields) != 1:
        return None
    quote = backend.quote
    table = quote(spec.table)
    pk = quote(column_of(spec.pk_fields[0]))
    last = None
    try:
        with backend.connection.cursor() as cursor:
            while True:
                after = f" WHERE {pk} > %s" if last is not None else ""
                cursor.execute(
                    f"SELECT {pk} FROM {table}{after} ORDER BY {pk} "
                    f"LIMIT {LOCATE_PAGE}",
                    [] if last is None else [last],
                )
                keys = [row[0] for row in cursor.fetchall()]
                if not keys:
                    return None
                # Read as the backup reads (the backend's own loaders, which keep
                # some values a driver refuses as text).
                page = f"{pk} IN ({', '.join(['%s'] * len(keys))})"
                try:
                    backend.fetch_rows(spec, page, keys)
                except DatabaseError:
                    for key in keys:
                        for column in spec.fields:
                            alone = replace(spec, fields=(column,))
                            try:
                                backend.fetch_rows(alone, f"{pk} = %s", [key])
                            except DatabaseError:
                                shown = _shown_pk((key,))
                                return f"{spec.label}.{column.name}, pk {shown}"
                    return None
                last = keys[-1]
    except DatabaseError:
        return None


def _shown_pk(values: tuple[Any, ...]) -> str:
    if len(values) == 1:
        value = values[0]
        return str(value) if isinstance(value, int) else _shown(value)
    return "(" + ", ".join(_shown_pk((v,)) for v in values) + ")"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."


def _what(column: models.Field[Any, Any], value: Any, exc: Exception) -> str:
    stored = _shown(value)
    column_kind = kind(column)
    if column_kind == "DecimalField" and isinstance(exc, ArithmeticError):
        # decimal's own message is only its signal's class name.
        base = cast("models.DecimalField[Any, Any]", base_field(column))
        return (
            f"the stored value {stored} does not fit the field (max_digits "
            f"{base.max_digits}, decimal_places {base.decimal_places})"
        )
    if column_kind in TEMPORAL_NAMES:
        # Django's parsers fail in many ways on bad text (None, then an
        # AttributeError further on); the value is what the user can act on.
        return f"the stored value {stored} is not a valid {TEMPORAL_NAMES[column_kind]}"
    if column_kind == "JSONField":
        return f"the stored value {stored} is not valid JSON ({one_line(exc)})"
    return (
        f"the stored value {stored} cannot be read as a {column_kind} "
        f"({type(exc).__name__}: {one_line(exc)})"
    )


TEMPORAL_NAMES = {"DateField": "date", "TimeField": "time", "DateTimeField": "datetime"}
