"""Take a backup: one consistent snapshot of every table in scope, streamed to a file."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import django
from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.recorder import MigrationRecorder

from . import __version__, signals
from .backends import backend_for
from .codec import block_encoder, kind
from .collector import collector_paused
from .conf import ALWAYS_EXCLUDED_APPS, app_settings
from .exceptions import BackupError, StorageError, one_line
from .format import BackupWriter
from .graph import TableSpec, table_specs
from .progress import Progress, ProgressCallback, ignore_progress
from .streams import BackupTarget


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

    @property
    def table_count(self) -> int:
        return len(self.tables)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["table_count"] = self.table_count
        return data


def applied_migrations(using: str) -> list[str]:
    """Return the applied migrations as sorted ``app.name`` strings."""
    recorder = MigrationRecorder(connections[using])
    if not recorder.has_table():
        return []
    return sorted(f"{app}.{name}" for app, name in recorder.applied_migrations())


def comparable_migrations(
    migrations: Iterable[str], excluded_apps: Iterable[str]
) -> set[str]:
    """Leave out the migrations of apps a backup never covers."""
    skip = set(ALWAYS_EXCLUDED_APPS) | set(excluded_apps)
    return {m for m in migrations if m.split(".", 1)[0] not in skip}


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


def _header(
    using: str, specs: list[TableSpec], exclude: tuple[str, ...], origin: str
) -> dict[str, Any]:
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
) -> BackupSummary:
    """Write a backup of database ``using`` to ``target``.

    ``target`` is a path, ``"-"`` for standard output, a binary file object, or None
    for a new name in the backup storage. The file appears under its name only once
    it is complete.
    """
    exclude = tuple(exclude)
    if using not in connections:
        raise BackupError(f"Unknown database {using!r}.")
    specs = table_specs(using, exclude)
    connection = connections[using]
    backend = backend_for(using)
    destination = BackupTarget(target, using, name_template)
    batch_size = app_settings.BATCH_SIZE
    signals.pre_backup.send(create_backup, using=using)
    started = time.perf_counter()
    tables: list[TableSummary] = []
    try:
        with (
            destination.open(app_settings.COMPRESSION_LEVEL) as stream,
            BackupWriter(stream, background=True) as writer,
        ):
            with backend.snapshot():
                backend.ensure_no_restore()
                header = _header(using, specs, exclude, origin)
                writer.write_header(header)
                for spec in specs:
                    total = (
                        backend.count(spec) if progress is not ignore_progress else None
                    )
                    encode = block_encoder(spec.fields, spec.table, connection)
                    writer.begin_table(spec.label, spec.table, spec.columns)
                    done = 0
                    progress(Progress("backup", spec.label, 0, total))
                    with closing(backend.stream_rows(spec, batch_size)) as batches:
                        for rows in batches:
                            writer.write_block(encode(rows), len(rows))
                            done += len(rows)
                            progress(Progress("backup", spec.label, done, total))
                    rows, digest = writer.end_table()
                    tables.append(TableSummary(spec.label, spec.table, rows, digest))
            digest = writer.write_trailer()
    except DatabaseError as exc:
        raise BackupError(f"Cannot read database {using!r}: {one_line(exc)}") from exc
    except OSError as exc:
        # A full disk or a vanished folder midway; the partial file is already gone.
        raise StorageError(
            f"Cannot write {destination.name}: {exc.strerror or one_line(exc)}."
        ) from exc
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
    )
    signals.announce(signals.post_backup, create_backup, using=using, summary=summary)
    return summary
