"""Restore a backup: make the database hold exactly the backup's rows, or change nothing."""

from __future__ import annotations

import hashlib
import os
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from django.db import DatabaseError, transaction

from . import signals
from .backends import LOCK_WAIT, Backend, SequenceSettlement, backend_for
from .backup import create_backup
from .caches import clear_stale_caches
from .codec import block_encoder, row_decoder
from .collector import collector_paused
from .conf import app_settings
from .exceptions import BackupError, IncompatibleBackupError, RestoreError, one_line
from .graph import TableSpec, require_database, require_tables, table_specs
from .progress import Progress, ProgressCallback, ignore_progress
from .provenance import provenance_of
from .reader import BackupReader, TableEnd, verify_file
from .schema import aligned, compare_schema
from .streams import BackupSource
from .validate import file_normaliser, normalised_block, normalised_digests


@dataclass(frozen=True)
class TablePlan:
    label: str
    table: str
    rows_now: int | None  # None: the table is not in this database
    rows_in_file: int | None  # None: the table is not in the backup


@dataclass(frozen=True)
class RestorePlan:
    """What a restore of ``source`` into ``database`` would do; nothing has changed yet."""

    source: BackupSource
    database: str
    header: dict[str, Any]
    tables: tuple[TablePlan, ...]
    schema_differences: tuple[str, ...]
    ends: dict[str, TableEnd] = field(repr=False)
    # "ours" when the trailer's mac verifies with this installation's key (provenance).
    provenance: str = "foreign"
    # The whole-file digest the check read: the load must read the same file.
    digest: str = field(default="", repr=False)

    @property
    def can_restore(self) -> bool:
        return not self.schema_differences

    @property
    def rows_now(self) -> int:
        return sum(t.rows_now or 0 for t in self.tables)

    @property
    def rows_in_file(self) -> int:
        return sum(t.rows_in_file or 0 for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.name,
            "database": self.database,
            "created": self.header.get("created"),
            "vendor": self.header.get("vendor"),
            "can_restore": self.can_restore,
            "provenance": self.provenance,
            "rows_now": self.rows_now,
            "rows_in_file": self.rows_in_file,
            "schema_differences": list(self.schema_differences),
            "tables": [asdict(t) for t in self.tables],
        }


@dataclass(frozen=True)
class RestoreSummary:
    source: str
    database: str
    tables: int
    rows_deleted: int
    rows_inserted: int
    seconds: float
    safety_backup: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@collector_paused()
def plan_restore(
    source: str | os.PathLike | IO[bytes] | BackupSource,
    *,
    using: str = "default",
    progress: ProgressCallback = ignore_progress,
) -> RestorePlan:
    """Check the whole file and its fit to the database; return what a restore would do.

    Raises BackupFormatError for a damaged file. Schema differences are returned in the
    plan (``restore_backup`` refuses them).
    """
    require_database(using)
    source = source if isinstance(source, BackupSource) else BackupSource(source)
    progress(Progress("verify", "", 0, None))
    with source.open() as stream:
        verified = verify_file(stream, source.name)
    header, ends = verified.header, verified.ends
    specs = table_specs(using, header.get("exclude", ()))
    backend = backend_for(using)
    try:
        require_tables(specs, using, IncompatibleBackupError)
        differences = compare_schema(header, specs, using)
        current = {spec.label: backend.count(spec) for spec in specs}
    except DatabaseError as exc:
        raise BackupError(f"Cannot read database {using!r}: {one_line(exc)}") from exc
    labels = [spec.label for spec in specs] + [
        table["label"] for table in header["tables"] if table["label"] not in current
    ]
    tables = {t["label"]: t["table"] for t in header["tables"]}
    tables.update({spec.label: spec.table for spec in specs})
    plan = tuple(
        TablePlan(
            label,
            tables[label],
            current.get(label),
            ends[label].rows if label in ends else None,
        )
        for label in labels
    )
    return RestorePlan(
        source,
        using,
        header,
        plan,
        tuple(differences),
        ends,
        provenance_of(header, verified.trailer),
        verified.digest,
    )


@signals.announces_failure(signals.restore_failed, "source")
@collector_paused()
def restore_backup(
    source: str | os.PathLike | IO[bytes] | BackupSource | RestorePlan,
    *,
    using: str = "default",
    safety_backup: bool | None = None,
    lock_wait: float = LOCK_WAIT,
    progress: ProgressCallback = ignore_progress,
) -> RestoreSummary:
    """Replace the contents of every table in the backup's scope with the backup's rows.

    One transaction: the file is checked completely before anything changes, and the
    written tables are re-counted and re-digested before commit. Any failure rolls back
    and raises, leaving the database as it was.

    The tables in scope are locked against writers before the safety backup is read,
    inside the same transaction. A session still writing to one of them after
    ``lock_wait`` seconds makes the restore fail without changing anything.
    """
    started = time.perf_counter()
    plan = (
        source
        if isinstance(source, RestorePlan)
        else plan_restore(source, using=using, progress=progress)
    )
    using = plan.database
    if not plan.can_restore:
        raise IncompatibleBackupError(
            f"{plan.source.name} does not fit database {using!r}: "
            f"{len(plan.schema_differences)} schema differences.",
            plan.schema_differences,
        )
    exclude = tuple(plan.header.get("exclude", ()))
    specs = table_specs(using, exclude)
    if safety_backup is None:
        safety_backup = app_settings.SAFETY_BACKUP
    safety_name = None
    signals.pre_restore.send(restore_backup, using=using, plan=plan)
    backend = backend_for(using)
    progress(Progress("lock", "", 0, None))
    try:
        with backend.restore_session(), backend.restore_transaction():
            # The restore lock first (another restore fails at once), then every
            # table in scope against writers, waiting at most lock_wait seconds.
            # Only then the safety backup: it is read inside this transaction, so a
            # write that commits before the locks is in it, and any later write
            # waits until the restore has committed. No write falls between the two.
            backend.lock_tables(specs, lock_wait)
            if safety_backup:
                progress(Progress("safety", "", 0, None))
                safety_name = create_backup(
                    None,
                    using=using,
                    exclude=exclude,
                    origin="safety",
                    name_template=app_settings.SAFETY_FILENAME_TEMPLATE,
                ).name
            with backend.writing():
                progress(Progress("delete", "", 0, None))
                backend.delete_all(specs)
                written = _load(plan, specs, backend, progress)
                progress(Progress("check", "", 0, None))
                backend.check_constraints(specs)
                _verify_written(written, backend, progress, plan)
                # Last, when nothing else can fail: on PostgreSQL sequences are
                # not transactional, so they are only raised here (a rollback or
                # a kill leaves a gap of unused ids, never a collision) and set
                # exactly after commit, in a step that is safe to lose.
                progress(Progress("sequences", "", 0, None))
                settle = backend.reset_sequences(specs)
            transaction.on_commit(
                lambda: _settle_sequences(backend, settle, progress),
                using=using,
                robust=True,
            )
            progress(Progress("commit", "", 0, None))
    except DatabaseError as exc:
        raise RestoreError(
            f"Restore of {plan.source.name} failed and was rolled back: {one_line(exc)}"
        ) from exc
    except (ValueError, ArithmeticError, TypeError) as exc:
        # A value the target changed or cannot represent, met while writing or
        # reading back (SQLite's decimals, for one).
        raise RestoreError(
            f"Restore of {plan.source.name} failed and was rolled back: a value does "
            f"not fit database {using!r} ({type(exc).__name__}: {one_line(exc)})"
        ) from exc
    clear_stale_caches(using)
    summary = RestoreSummary(
        source=plan.source.name,
        database=using,
        tables=len(specs),
        rows_deleted=plan.rows_now,
        rows_inserted=sum(end.rows for _, end in written),
        seconds=round(time.perf_counter() - started, 3),
        safety_backup=safety_name,
    )
    signals.announce(signals.post_restore, restore_backup, using=using, summary=summary)
    return summary


def _settle_sequences(
    backend: Backend, settle: SequenceSettlement, progress: ProgressCallback
) -> None:
    """After commit: set the sequences the restore raised to what the rows imply."""
    if not settle:
        return
    progress(Progress("settle", "", 0, None))
    backend.settle_sequences(settle)


def _load(
    plan: RestorePlan,
    specs: list[TableSpec],
    backend: Backend,
    progress: ProgressCallback,
) -> list[tuple[TableSpec, TableEnd]]:
    """Insert every table's rows from the file, in the file's (dependency) order."""
    by_label = {spec.label: spec for spec in specs}
    batch_size = app_settings.BATCH_SIZE
    connection = backend.connection
    written: list[tuple[TableSpec, TableEnd]] = []
    with plan.source.open() as stream:
        reader = BackupReader(stream, plan.source.name)
        reader.expect(plan.header, plan.digest)
        for section in reader.tables():
            spec = aligned(by_label[section.label], section.columns)
            decode = row_decoder(
                list(spec.fields),
                list(spec.insert_fields),
                connection,
                plan.header["version"],
            )
            total = plan.ends[section.label].rows

            def decoded(section=section, decode=decode, spec=spec, total=total):
                done = 0
                for block in section.blocks():
                    rows = section.parse(block)
                    for start in range(0, len(rows), batch_size):
                        batch = rows[start : start + batch_size]
                        yield list(map(decode, batch))
                        done += len(batch)
                        progress(Progress("restore", spec.label, done, total))

            backend.insert_rows(spec, decoded())
            written.append((spec, section.end))
    return written


def _verify_written(
    written: list[tuple[TableSpec, TableEnd]],
    backend: Backend,
    progress: ProgressCallback,
    plan: RestorePlan,
) -> None:
    """Read back every restored table and compare its count and digest with the file.

    Tables with values another vendor (or format version) keeps as other text, such
    as JSON, compare normalised rows on both sides (validate.file_normaliser).
    """
    batch_size = app_settings.BATCH_SIZE
    normalisers = {
        spec.label: normalise
        for spec, _ in written
        if (normalise := file_normaliser(spec, plan.header, backend.connection))
    }
    expected = normalised_digests(plan.source, normalisers) if normalisers else {}
    for spec, end in written:
        encode = block_encoder(spec.fields, spec.table, backend.connection)
        normalise = normalisers.get(spec.label)
        digest = hashlib.sha256()
        rows = 0
        with closing(backend.stream_rows(spec, batch_size)) as batches:
            for batch in batches:
                block = encode(batch)
                if normalise is not None:
                    block = normalised_block(normalise, block)
                digest.update(block)
                rows += len(batch)
                progress(Progress("verify-written", spec.label, rows, end.rows))
        want = expected.get(spec.label, end.digest)
        if rows != end.rows or digest.hexdigest() != want:
            raise RestoreError(
                f"{spec.label}: the database does not hold the backup's values after "
                f"writing ({rows} rows read back, {end.rows} in the backup); "
                "rolled back. The target cannot store some values exactly."
            )
