"""Compare a backup with a live database, table by table, counts and contents."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from django.db import DatabaseError

from . import signals
from .backup import unreadable_value_in_table
from .changes import FieldChange
from .collector import collector_paused
from .db.backends import Backend, backend_for
from .db.schema import aligned, compare_schema
from .db.tables import (
    TableSpec,
    file_table_specs,
    require_database,
    require_tables,
)
from .differential.merge import Tally, merge_table
from .differential.undo import undone
from .exceptions import BackupError, IncompatibleBackupError, one_line
from .fileformat.codec import lines_normaliser
from .fileformat.manifest import has_media
from .fileformat.reader import BackupReader, TableSection, row_lines, verify_file
from .fileformat.streams import BackupSource
from .media.compare import BlobCheck, MediaComparison, MediaReport, check_blobs
from .media.restore import Manifest
from .progress import Progress, ProgressCallback, ignore_progress, passed_on


@dataclass
class TableReport:
    """How one table of the backup compares with the database."""

    label: str
    table: str
    file_rows: int | None = None
    db_rows: int | None = None
    missing: int = 0  # in the backup, not in the database
    extra: int = 0  # in the database, not in the backup
    changed: int = 0  # in both, with other values
    missing_examples: list[Any] = field(default_factory=list)
    extra_examples: list[Any] = field(default_factory=list)
    changed_examples: list[Any] = field(default_factory=list)
    # The changed examples with their changed fields: (pk, backup → database).
    changed_rows: list[tuple[Any, list[FieldChange]]] = field(default_factory=list)
    problem: str = ""  # a difference that is not about rows (no such table, columns)

    @property
    def matches(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.problem)

    @property
    def status(self) -> str:
        return "match" if self.matches else "differ"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["changed_rows"] = [
            {
                "pk": pk,
                "changes": [
                    {"field": c.field, "backup": c.before, "database": c.after}
                    for c in changes
                ],
            }
            for pk, changes in self.changed_rows
        ]
        return {**data, "status": self.status}


@dataclass
class ValidationReport:
    """The result of ``validate_backup``: one TableReport per table, and a verdict."""

    source: str
    database: str | None
    file_only: bool
    created: str
    vendor: str
    tables: list[TableReport] = field(default_factory=list)
    schema_differences: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # A backup with media: its files against the storages (one report per source),
    # or with ``file_only`` its blobs.
    media: list[MediaReport] = field(default_factory=list)
    blobs: BlobCheck | None = None

    @property
    def matching(self) -> int:
        return sum(1 for table in self.tables if table.matches)

    @property
    def differing(self) -> int:
        return len(self.tables) - self.matching

    @property
    def media_differing(self) -> int:
        return sum(1 for media in self.media if not media.matches)

    @property
    def ok(self) -> bool:
        return (
            self.differing == 0
            and not self.schema_differences
            and not self.media_differing
            and (self.blobs is None or self.blobs.ok)
        )

    @property
    def file_rows(self) -> int:
        return sum(table.file_rows or 0 for table in self.tables)

    def summary_line(self) -> str:
        if self.file_only:
            line = f"Backup intact: {len(self.tables)} tables, {self.file_rows:,} rows"
            if self.blobs is not None:
                if self.blobs.ok:
                    line += f", {self.blobs.checked:,} media blobs"
                else:
                    line = (
                        f"Backup damaged: {self.blobs.missing:,} media blobs missing, "
                        f"{self.blobs.damaged:,} damaged, of {self.blobs.checked:,}"
                    )
            return line
        line = f"{self.matching} tables match exactly, {self.differing} differ"
        if self.media:
            line += (
                f"; media: {len(self.media) - self.media_differing} sources match, "
                f"{self.media_differing} differ"
            )
        if self.schema_differences:
            line += f"; {len(self.schema_differences)} schema differences"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "database": self.database,
            "file_only": self.file_only,
            "created": self.created,
            "vendor": self.vendor,
            "ok": self.ok,
            "summary": self.summary_line(),
            "matching": self.matching,
            "differing": self.differing,
            "schema_differences": self.schema_differences,
            "seconds": self.seconds,
            "tables": [table.to_dict() for table in self.tables],
            "media": [media.to_dict() for media in self.media],
            "blobs": self.blobs.to_dict() if self.blobs is not None else None,
        }


def file_normaliser(
    spec: TableSpec, header: dict[str, Any], connection: Any
) -> Callable[[bytes], bytes] | None:
    """Return how to bring the rows of ``spec`` in a file with ``header`` and in the
    database to one form, or None when their bytes compare as they are."""
    return lines_normaliser(
        spec.fields,
        version=header["version"],
        same_vendor=header.get("vendor") == connection.vendor,
    )


def normalised_digests(
    source: BackupSource, normalisers: dict[str, Any]
) -> dict[str, str]:
    """Return the SHA-256 of the normalised row lines of each table in
    ``normalisers`` (label to ``file_normaliser``), reading ``source`` once."""
    digests = {}
    with source.open() as stream:
        for section in BackupReader(stream, source.name).tables():
            normalise = normalisers.get(section.label)
            if normalise is None:
                section.skip()
                continue
            digest = hashlib.sha256()
            for block in section.blocks():
                digest.update(normalised_block(normalise, block))
            digests[section.label] = digest.hexdigest()
    return digests


def normalised_block(normalise: Callable[[bytes], bytes], block: bytes) -> bytes:
    """Return a block of row lines with each line normalised."""
    return b"".join(normalise(line) + b"\n" for line in row_lines(block))


def _compare_rows(
    report: TableReport,
    spec: TableSpec,
    section: TableSection,
    backend: Backend,
    progress: ProgressCallback,
    normalise: Callable[[bytes], bytes] | None = None,
) -> None:
    """Compare the file's rows with the database's rows, both in primary key order
    (``differential.merge``: runs of equal rows compared as bytes, only the rows
    that differ parsed), and count what differs, with examples.

    With ``normalise`` (a file from another vendor or format version, with values
    stored in other text), every row of both sides is normalised and merged.
    """
    # Changed fields as backup → database: how the database changed since.
    tally = Tally.of(spec, before="file")
    merged = merge_table(
        spec, section, backend, tally, normalise=normalise, progress=progress
    )
    report.file_rows = section.ended().rows
    report.db_rows = merged.db_rows
    report.missing, report.extra, report.changed = (
        tally.missing,
        tally.extra,
        tally.changed,
    )
    report.missing_examples = tally.missing_examples
    report.extra_examples = tally.extra_examples
    report.changed_examples = [pk for pk, _changes in tally.changed_rows]
    report.changed_rows = tally.changed_rows


def _extra_table(spec: TableSpec, backend: Backend) -> TableReport:
    report = TableReport(
        spec.label, spec.table, file_rows=0, problem="not in the backup"
    )
    report.db_rows = backend.count(spec)
    report.extra = report.db_rows
    return report


@signals.announces_failure(signals.validation_failed, "source")
@collector_paused()
def validate_backup(
    source: str | os.PathLike | IO[bytes] | BackupSource,
    *,
    using: str = "default",
    file_only: bool = False,
    progress: ProgressCallback = ignore_progress,
    media: bool = True,
) -> ValidationReport:
    """Compare the backup with database ``using`` (or, with ``file_only``, check the file).

    Raises BackupFormatError when the file is damaged, truncated or not a backup.

    The files of a backup with media (unless ``media`` is False) are compared with
    their storages too, or, with ``file_only``, its blobs are read through.
    """
    started = time.perf_counter()
    source = source if isinstance(source, BackupSource) else BackupSource(source)
    # An undo file is checked as the backup it stands for.
    source = undone(source)
    if not file_only:
        require_database(using)
    manifest = Manifest()
    try:
        return _validate(source, using, file_only, progress, media, manifest, started)
    finally:
        manifest.close()


def _validate(
    source: BackupSource,
    using: str,
    file_only: bool,
    progress: ProgressCallback,
    media: bool,
    manifest: Manifest,
    started: float,
) -> ValidationReport:
    # The whole file is checked before anything in it is compared or reported;
    # ``--file-only`` parses every row too, which a comparison does only for rows
    # that differ from the database's.
    progress(Progress("verify", "", 0, None))
    with source.open() as stream:
        verified = verify_file(
            stream,
            source.name,
            rows=file_only,
            progress=progress,
            media=manifest.add if media else None,
        )
    header = verified.header
    media = media and has_media(header)
    report = ValidationReport(
        source=source.name,
        database=None if file_only else using,
        file_only=file_only,
        created=header["created"],
        vendor=header["vendor"],
    )
    if file_only:
        tables = {table["label"]: table["table"] for table in header["tables"]}
        report.tables = [
            TableReport(label, tables[label], file_rows=end.rows)
            for label, end in verified.ends.items()
        ]
        if media:
            report.blobs = check_blobs(manifest, progress)
    else:
        with source.open() as stream:
            reader = BackupReader(stream, source.name)
            reader.expect(header, verified.digest)
            # The file's rows: about what the comparison goes through.
            rows = sum(end.rows for end in verified.ends.values())
            _compare_database(
                report,
                reader,
                header,
                using,
                passed_on(progress, stage_total=rows),
                manifest if media else None,
            )
    report.seconds = round(time.perf_counter() - started, 3)
    signals.announce(signals.post_validate, validate_backup, using=using, report=report)
    return report


def _compare_database(
    report: ValidationReport,
    reader: BackupReader,
    header: dict[str, Any],
    using: str,
    progress: ProgressCallback,
    manifest: Manifest | None = None,
) -> None:
    try:
        specs = file_table_specs(using, header)
    except IncompatibleBackupError as exc:
        # A file of another project: it differs from this database, as a schema.
        report.schema_differences = list(exc.differences)
        for section in reader.tables():
            section.skip()
            report.tables.append(
                TableReport(
                    section.label, section.table, file_rows=section.ended().rows
                )
            )
        return
    current = {spec.label: spec for spec in specs}
    backend = backend_for(using)
    comparison = media_differences = None
    if manifest is not None:
        try:
            comparison = MediaComparison(manifest, header, specs)
        except IncompatibleBackupError as exc:
            media_differences = list(exc.differences)
    try:
        _compare_tables(
            report, reader, header, specs, current, backend, comparison, progress
        )
        if comparison is not None:
            report.media = comparison.reports(progress)
    finally:
        if comparison is not None:
            comparison.close()
    report.schema_differences += media_differences or []


def _compare_tables(
    report: ValidationReport,
    reader: BackupReader,
    header: dict[str, Any],
    specs: list[TableSpec],
    current: dict[str, TableSpec],
    backend: Backend,
    comparison: MediaComparison | None,
    progress: ProgressCallback,
) -> None:
    using = backend.using
    try:
        with backend.snapshot():
            require_tables(specs, using)
            report.schema_differences = compare_schema(header, specs, using)
            seen = set()
            for section in reader.tables():
                seen.add(section.label)
                table = TableReport(section.label, section.table)
                report.tables.append(table)
                spec = current.get(section.label)
                if spec is None:
                    section.skip()
                    table.file_rows = section.ended().rows
                    table.problem = "not a table of this database"
                    continue
                if set(section.columns) != set(spec.columns):
                    section.skip()
                    table.file_rows = section.ended().rows
                    table.db_rows = backend.count(spec)
                    table.problem = "columns differ"
                    continue
                columns = aligned(spec, section.columns)
                try:
                    _compare_rows(
                        table,
                        columns,
                        section,
                        backend,
                        progress,
                        file_normaliser(columns, header, backend.connection),
                    )
                except (ValueError, ArithmeticError, TypeError, AttributeError) as exc:
                    # A stored value Django cannot read (SQLite keeps anything).
                    raise BackupError(
                        unreadable_value_in_table(spec, backend, exc)
                    ) from exc
            for spec in specs:
                if spec.label not in seen:
                    report.tables.append(_extra_table(spec, backend))
            if comparison is not None:
                # What the rows reference, in the snapshot the tables were read in.
                comparison.read_rows(backend)
    except DatabaseError as exc:
        raise BackupError(f"Cannot read database {using!r}: {one_line(exc)}") from exc
