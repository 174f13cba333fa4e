"""Restore a backup: make the database hold exactly the backup's rows, or change nothing."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field, fields, replace
from typing import IO, Any

from django.db import DatabaseError, transaction

from . import signals
from .backup import create_backup
from .collector import collector_paused
from .conf import app_settings
from .db.backends import LOCK_WAIT, Backend, SequenceSettlement, backend_for
from .db.caches import clear_stale_caches
from .db.schema import aligned, compare_schema
from .db.tables import (
    TableSpec,
    file_table_specs,
    file_unmanaged,
    require_database,
    require_tables,
    table_specs,
)
from .db.values import block_encoder, row_decoder
from .differential.apply import (
    CONVERSION_ERRORS,
    Changes,
    ChangesFailed,
    find_changes,
    refused_row,
    unconvertible,
    unreadable,
)
from .differential.preview import TablePreview, preview_changes
from .differential.undo import undo_possible, undone, write_undo
from .exceptions import (
    BackupError,
    IncompatibleBackupError,
    RestoreError,
    one_line,
)
from .exceptions import database_message as _database_message
from .exceptions import shown_value as _shown
from .fileformat.codec import loads_block, loads_row, pk_value
from .fileformat.manifest import has_media
from .fileformat.reader import (
    BackupReader,
    TableEnd,
    TableSection,
    Verified,
    row_lines,
    verified_read,
)
from .fileformat.streams import BackupSource
from .media import files as media_files
from .media.blobs import BlobStore
from .media.restore import (
    Journal,
    Manifest,
    MediaPlan,
    plan_media,
    prune,
    put_back,
    read_before,
)
from .progress import (
    Progress,
    ProgressCallback,
    StageClock,
    ignore_progress,
    passed_on,
)
from .provenance import UNVERIFIED, provenance_of
from .validate import file_normaliser, normalised_block, normalised_digests


@dataclass(frozen=True)
class TablePlan:
    label: str
    table: str
    rows_now: int | None  # None: the table is not in this database
    rows_in_file: int | None  # None: the table is not in the backup
    # What the restore would change, when the plan compared (plan_restore(compare=
    # True)); None otherwise. Updated rows are neither deleted nor inserted here.
    delete: int | None = None
    insert: int | None = None
    update: int | None = None
    # Whether the restore would reload the table whole rather than write its rows
    # that differ.
    reload: bool | None = None
    # "delete", "insert": a few primary keys; "update": (primary key, the fields
    # that change: backups_app.changes.FieldChange, database → backup).
    examples: dict[str, list[Any]] | None = field(default=None, compare=False)

    @property
    def unchanged(self) -> bool:
        return self.delete == 0 and self.insert == 0 and self.update == 0

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.examples is not None:
            data["examples"] = {
                **self.examples,
                "update": [
                    {
                        "pk": pk,
                        "changes": [
                            {"field": c.field, "database": c.before, "backup": c.after}
                            for c in changes
                        ],
                    }
                    for pk, changes in self.examples["update"]
                ],
            }
        return data


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
    # What happens to the backup's media files (None: it has none, or they are left
    # out of this restore).
    media: MediaPlan | None = field(default=None, repr=False)
    # False for a plan made from the header alone (``plan_restore(verify=False)``):
    # its ends, digest, provenance and media are not known until a restore has read
    # the whole file, which it does while it compares the tables.
    verified: bool = True
    # Such a plan's ``prune_media``, for the media plan its restore makes.
    prune_media: bool = field(default=False, repr=False)

    @property
    def can_restore(self) -> bool:
        return not self.schema_differences

    @property
    def rows_now(self) -> int:
        return sum(t.rows_now or 0 for t in self.tables)

    @property
    def rows_in_file(self) -> int:
        return sum(t.rows_in_file or 0 for t in self.tables)

    @property
    def compared(self) -> bool:
        """Whether the plan knows the rows that differ (``plan_restore(compare=True)``)."""
        return any(t.delete is not None for t in self.tables)

    def changes(self) -> dict[str, int]:
        """Rows the restore would delete, insert and update, over every table."""
        return {
            kind: sum(getattr(t, kind) or 0 for t in self.tables)
            for kind in ("delete", "insert", "update")
        }

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
            "compared": self.compared,
            **({"changes": self.changes()} if self.compared else {}),
            "schema_differences": list(self.schema_differences),
            "tables": [t.to_dict() for t in self.tables],
            "media": self.media.to_dict() if self.media is not None else None,
        }

    def close(self) -> None:
        """Remove the scratch index of the media plan (a plan that is only looked
        at; a restore closes its plan itself)."""
        if self.media is not None:
            self.media.close()


def rows_counted_once(deleted: int, inserted: int, updated: int) -> dict[str, int]:
    """A restore's rows deleted, inserted and updated, each row counted once, as
    the command and the admin say them: its summary counts an updated row as
    deleted and inserted too."""
    return {
        "deleted": deleted - updated,
        "inserted": inserted - updated,
        "updated": updated,
    }


@dataclass(frozen=True)
class RestoreSummary:
    source: str
    database: str
    tables: int
    rows_deleted: int  # rows updated are counted here too, and as inserted
    rows_inserted: int
    seconds: float
    safety_backup: str | None
    rows_updated: int = 0
    # Tables that differed in few rows, whose rows that differ were written (or
    # that did not differ at all); the labels of those reloaded whole.
    tables_changed: int = 0
    tables_unchanged: int = 0
    reloaded: list[str] = field(default_factory=list)
    # Files written, left as they were, and deleted by --prune-media; None without
    # media.
    media: dict[str, Any] | None = None
    # The seconds of each stage (progress.Progress), in the order they came.
    stages: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows_changed(self) -> dict[str, int]:
        return rows_counted_once(
            self.rows_deleted, self.rows_inserted, self.rows_updated
        )


@collector_paused()
def plan_restore(
    source: str | os.PathLike | IO[bytes] | BackupSource,
    *,
    using: str = "default",
    progress: ProgressCallback = ignore_progress,
    compare: bool = False,
    media: bool = True,
    prune_media: bool = False,
    verify: bool = True,
) -> RestorePlan:
    """Check the whole file and its fit to the database; return what a restore would do.

    Raises BackupFormatError for a damaged file. Schema differences are returned in the
    plan (``restore_backup`` refuses them). With ``compare``, the plan also says, per
    table, which rows the restore would delete, insert and update (reading the file
    again and every table of the database, as a validation does).

    For a backup with media (and unless ``media`` is False) every file of it is
    compared with its storage, and every blob the restore would write from is read
    through: a missing or damaged blob raises BackupFormatError. With
    ``prune_media`` the plan lists the files the restore would delete.

    With ``verify`` False (and no ``compare``), only the file's header is read: a
    plan that is not ``verified``, for ``restore_backup``, which then checks the
    whole file in the same read that compares the tables, before it writes
    anything. A file whose schema does not fit is checked whole all the same, so
    that a damaged file is told as damaged.
    """
    require_database(using)
    source = source if isinstance(source, BackupSource) else BackupSource(source)
    # An undo file is restored as the backup it stands for.
    source = undone(source)
    if not verify and not compare:
        plan = _header_plan(source, using, prune_media)
        if plan.can_restore:
            return plan
    return _checked_plan(source, using, progress, compare, media, prune_media)


def _checked_plan(
    source: BackupSource,
    using: str,
    progress: ProgressCallback,
    compare: bool,
    media: bool,
    prune_media: bool,
    header: dict[str, Any] | None = None,
) -> RestorePlan:
    """The plan of a file read and checked whole; with ``header``, the file must
    still have it (the header a plan was made from, read again)."""
    progress(Progress("verify", "", 0, None))
    manifest = Manifest()
    try:
        with source.open() as stream:
            reader = BackupReader(stream, source.name)
            if header is not None:
                reader.expect(header, "")
            verified = verified_read(
                reader,
                progress=progress,
                media=manifest.add if media else None,
            )
        return _plan(
            source, using, verified, manifest, progress, compare, media, prune_media
        )
    finally:
        manifest.close()


def _header_plan(source: BackupSource, using: str, prune_media: bool) -> RestorePlan:
    """The plan of a file whose header alone was read (``plan_restore(verify=False)``)."""
    with source.open() as stream:
        header = BackupReader(stream, source.name).header
    unread = Verified(header, {}, "", {})
    plan = _plan(
        source, using, unread, Manifest(), ignore_progress, False, False, False
    )
    return replace(plan, provenance=UNVERIFIED, verified=False, prune_media=prune_media)


def _plan(
    source: BackupSource,
    using: str,
    verified: Verified,
    manifest: Manifest,
    progress: ProgressCallback,
    compare: bool,
    media: bool,
    prune_media: bool,
    counts: dict[str, int] | None = None,
) -> RestorePlan:
    """The plan of what ``verified`` found; ``counts``: the database's rows of each
    table, when an earlier plan counted them."""
    header, ends = verified.header, verified.ends
    try:
        specs = file_table_specs(using, header)
    except IncompatibleBackupError as exc:
        return RestorePlan(
            source,
            using,
            header,
            (),
            exc.differences,
            verified.ends,
            provenance_of(header, verified.trailer),
            verified.digest,
        )
    backend = backend_for(using)
    media_plan = None
    try:
        require_tables(specs, using, IncompatibleBackupError)
        differences = compare_schema(header, specs, using)
        current = (
            {spec.label: backend.count(spec) for spec in specs}
            if counts is None
            else counts
        )
        if media and has_media(header) and not differences:
            try:
                media_plan = plan_media(
                    manifest,
                    header,
                    specs,
                    backend,
                    backup=source.name,
                    prune=prune_media,
                    progress=progress,
                )
            except IncompatibleBackupError as exc:
                differences = [*differences, *exc.differences]
    except DatabaseError as exc:
        raise BackupError(f"Cannot read database {using!r}: {one_line(exc)}") from exc
    labels = [spec.label for spec in specs] + [
        table["label"] for table in header["tables"] if table["label"] not in current
    ]
    tables = {t["label"]: t["table"] for t in header["tables"]}
    tables.update({spec.label: spec.table for spec in specs})
    previews = {}
    if compare and not differences:
        try:
            previews = preview_changes(
                source,
                header,
                verified.digest,
                specs,
                backend,
                current,
                {label: end.rows for label, end in ends.items()},
                progress,
            )
        except DatabaseError as exc:
            raise BackupError(
                f"Cannot read database {using!r}: {one_line(exc)}"
            ) from exc
    plan = tuple(
        TablePlan(
            label,
            tables[label],
            current.get(label),
            ends[label].rows if label in ends else None,
            # Field by field: asdict() would turn the FieldChanges into dicts.
            **(
                {f.name: getattr(previews[label], f.name) for f in fields(TablePreview)}
                if label in previews
                else {}
            ),
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
        media_plan,
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
    full: bool = False,
    media: bool = True,
    prune_media: bool = False,
    on_verified: Callable[[RestorePlan], None] | None = None,
) -> RestoreSummary:
    """Replace the contents of every table in the backup's scope with the backup's rows.

    One transaction: the file is checked completely before anything changes, and the
    written tables are re-counted and re-digested before commit. Any failure rolls back
    and raises, leaving the database as it was.

    Given a path or a source, the restore reads the file's header first and checks
    the whole file while it compares the tables, in one read (a ``full`` restore
    checks it before it begins). ``on_verified(plan)`` is called with the checked
    plan before anything is written; it may raise to stop the restore, which then
    changes nothing (the command refuses a foreign file this way).

    Each table is first compared with the file (``differential``): one that differs
    in few rows gets only those rows deleted and inserted, and only those are read
    back; the others are emptied and loaded whole. ``full`` reloads every table
    without comparing.

    The tables in scope are locked against writers before the safety backup is read,
    inside the same transaction. A session still writing to one of them after
    ``lock_wait`` seconds makes the restore fail without changing anything.

    A backup's media files (unless ``media`` is False) are put back before the
    commit; files it writes are put back as they were if the restore fails. With
    ``prune_media`` (or a plan made with it), the files the rows referenced before
    and no longer do are deleted after the commit.
    """
    started = time.perf_counter()
    clock = StageClock(progress)
    plan = (
        source
        if isinstance(source, RestorePlan)
        else plan_restore(
            source,
            using=using,
            progress=clock,
            media=media,
            prune_media=prune_media,
            verify=full,
        )
    )
    with contextlib.ExitStack() as plans:
        plans.callback(plan.close)
        return _restore(
            plan,
            safety_backup,
            lock_wait,
            clock,
            full,
            media,
            started,
            prune_media,
            on_verified,
            plans,
        )


def _restore(
    plan: RestorePlan,
    safety_backup: bool | None,
    lock_wait: float,
    progress: StageClock,
    full: bool,
    media: bool,
    started: float,
    prune_media: bool,
    on_verified: Callable[[RestorePlan], None] | None,
    plans: contextlib.ExitStack,
) -> RestoreSummary:
    """The restore of a plan; ``plans`` closes the plans it makes (a plan checked
    by the comparison's read) when the restore is over."""
    using = plan.database
    _require_fit(plan)
    exclude = tuple(plan.header.get("exclude", ()))
    unmanaged = file_unmanaged(plan.header)
    specs = table_specs(using, exclude, unmanaged)
    if safety_backup is None:
        safety_backup = app_settings.SAFETY_BACKUP
    safety_name = None
    media_plan = plan.media if media else None
    journal = Journal(BlobStore())
    signals.pre_restore.send(restore_backup, using=using, plan=plan)
    backend = backend_for(using)
    progress(Progress("lock", "", 0, None))
    changes = None
    with _undo_told(journal):
        try:
            with (
                _files_undone_on_failure(journal),
                backend.restore_session(),
                backend.restore_transaction(),
            ):
                # The restore lock first (another restore fails at once), then every
                # table in scope against writers, waiting at most lock_wait seconds.
                # Only then the safety backup: it is read inside this transaction, so a
                # write that commits before the locks is in it, and any later write
                # waits until the restore has committed. No write falls between the two.
                backend.lock_tables(specs, lock_wait)
                # What each table needs, compared with the file under the locks; the
                # file is read and checked whole before anything is written.
                undo = (
                    safety_backup and not full and undo_possible(plan, specs, backend)
                )
                checked, changes = _compared(
                    plan,
                    specs,
                    backend,
                    progress,
                    full,
                    undo,
                    media,
                    prune_media or plan.prune_media,
                )
                if checked is not plan:
                    plan = checked
                    plans.callback(plan.close)
                    media_plan = plan.media if media else None
                if on_verified is not None:
                    on_verified(plan)
                safety_name = (
                    _take_safety_backup(
                        plan, changes, exclude, media_plan, progress, undo=undo
                    )
                    if (undo or safety_backup)
                    else None
                )
                if media_plan is not None and media_plan.prune:
                    read_before(media_plan, backend, specs)
                with backend.writing():
                    progress(Progress("delete", "", 0, None))
                    changes.delete(progress)
                    loader = _Loader(plan, specs, backend, progress, changes)
                    written = loader.load()
                    if not loader.rewrites:
                        loader.check_foreign_keys()
                    loader.settle(written)
                    if loader.rewrites:
                        # Checked once the tables hold the file's rows: what the
                        # database wrote by itself (a trigger, a cascading delete) may
                        # break a key until the read-back has put it right.
                        loader.check_foreign_keys()
                    changes.check_written(progress)
                    if media_plan is not None:
                        # The files, once the rows are known to be right.
                        progress(Progress("media-write", "", 0, media_plan.files))
                        try:
                            put_back(media_plan, journal, progress)
                        except (BackupError, media_files.ContentChanged) as exc:
                            raise _Failed(f"media files: {one_line(exc)}") from exc
                    # Last, when nothing else can fail: on PostgreSQL sequences are
                    # not transactional, so they are only raised here (a rollback or
                    # a kill leaves a gap of unused ids, never a collision) and set
                    # exactly after commit, in a step that is safe to lose.
                    progress(Progress("sequences", "", 0, None))
                    settle = backend.reset_sequences(specs)
                # First after the commit: from here on the restore is done.
                transaction.on_commit(
                    lambda: progress(Progress("committed", "", 0, None)),
                    using=using,
                    robust=True,
                )
                transaction.on_commit(
                    lambda: _settle_sequences(backend, settle, progress),
                    using=using,
                    robust=True,
                )
                progress(Progress("commit", "", 0, None))
        except (_Failed, ChangesFailed) as exc:
            raise RestoreError(
                f"Restore of {plan.source.name} failed and was rolled back: {exc}"
            ) from exc.__cause__
        except DatabaseError as exc:
            raise RestoreError(
                f"Restore of {plan.source.name} failed and was rolled back: {one_line(exc)}"
            ) from exc
        except (ValueError, ArithmeticError, TypeError) as exc:
            # A value the target changed or cannot represent, met where no table is
            # known (the sequences, say); the loader names the table where it can.
            raise RestoreError(
                f"Restore of {plan.source.name} failed and was rolled back: a value does "
                f"not fit database {using!r} ({type(exc).__name__}: {one_line(exc)})"
            ) from exc
        finally:
            if changes is not None:
                changes.close()
    media_summary: dict[str, Any] | None = None
    if media_plan is not None:
        media_summary = {
            "files": media_plan.files,
            "written": journal.written,
            "bytes_written": journal.bytes_written,
            "unchanged": media_plan.files - journal.written,
        }
        if media_plan.prune:
            progress(Progress("media-prune", "", 0, None))
            pruned = prune(media_plan, backend, specs)
            media_summary["pruned"] = pruned.deleted
            media_summary["prune_failed"] = pruned.failed
    clear_stale_caches(using)
    # The stages first: they end before the restore's own time is taken.
    stages = progress.seconds()
    summary = RestoreSummary(
        source=plan.source.name,
        database=using,
        tables=len(specs),
        rows_deleted=changes.rows_deleted(plan),
        rows_inserted=changes.rows_inserted(plan),
        seconds=round(time.perf_counter() - started, 3),
        safety_backup=safety_name,
        rows_updated=changes.rows_updated,
        tables_changed=sum(1 for t in changes.tables.values() if t.writes),
        tables_unchanged=sum(1 for t in changes.tables.values() if not t.writes),
        reloaded=[spec.label for spec in specs if spec.label not in changes],
        media=media_summary,
        stages=stages,
    )
    signals.announce(signals.post_restore, restore_backup, using=using, summary=summary)
    return summary


def _require_fit(plan: RestorePlan) -> None:
    if not plan.can_restore:
        raise IncompatibleBackupError(
            f"{plan.source.name} does not fit database {plan.database!r}: "
            f"{len(plan.schema_differences)} schema differences.",
            plan.schema_differences,
        )


def _compared(
    plan: RestorePlan,
    specs: list[TableSpec],
    backend: Backend,
    progress: ProgressCallback,
    full: bool,
    undo: bool,
    media: bool,
    prune_media: bool,
) -> tuple[RestorePlan, Changes]:
    """What each table needs (``find_changes``; nothing to compare when ``full``),
    with the plan checked: ``plan`` itself, or, for a plan made from the header
    alone, the plan of the whole file as this read found it."""
    if full:
        if not plan.verified:
            plan = _checked_plan(
                plan.source,
                plan.database,
                progress,
                False,
                media,
                prune_media,
                header=plan.header,
            )
            _require_fit(plan)
        return plan, Changes.none(plan, specs, backend)
    manifest = Manifest()
    try:
        changes = find_changes(
            plan,
            specs,
            backend,
            progress,
            undo=undo,
            media=manifest.add if media and not plan.verified else None,
        )
        if changes.read is None:
            return plan, changes
        try:
            checked = _plan(
                plan.source,
                plan.database,
                changes.read,
                manifest,
                progress,
                False,
                media,
                prune_media,
                # As the comparison took them (counted before the locks).
                counts={
                    t.label: t.rows_now for t in plan.tables if t.rows_now is not None
                },
            )
            _require_fit(checked)
        except BaseException:
            changes.close()
            raise
    finally:
        manifest.close()
    changes.plan = checked
    return checked, changes


def _take_safety_backup(
    plan: RestorePlan,
    changes: Changes,
    exclude: tuple[str, ...],
    media_plan: MediaPlan | None,
    progress: StageClock,
    *,
    undo: bool,
) -> str:
    """Write the restore's undo file (``undo``) or its whole safety backup, inside
    its transaction; return the file's name. One that cannot be taken (a stored value
    its field cannot read, a full disk) stops the restore before anything is written.
    """
    using = changes.backend.using
    try:
        if undo:
            undo_file = write_undo(
                plan,
                changes.specs,
                changes.backend,
                changes,
                exclude,
                media_plan,
                progress,
            )
            signals.announce(
                signals.post_backup, create_backup, using=using, summary=undo_file
            )
            return undo_file.name
        progress(Progress("safety", "", 0, None, plan.rows_now))
        return create_backup(
            None,
            using=using,
            exclude=exclude,
            unmanaged=file_unmanaged(plan.header),
            origin="safety",
            name_template=app_settings.SAFETY_FILENAME_TEMPLATE,
            # Its reports come as the "safety" stage: a backup's own stage would
            # break the order of the restore's stages.
            progress=passed_on(progress, stage="safety"),
            # The files the restore may replace, to undo it: as the backup.
            media=media_plan is not None and media_plan.has_fields,
            media_storages=media_plan.whole_storages if media_plan else (),
        ).name
    except BackupError as exc:
        raise _Failed(
            f"no safety backup could be taken: {one_line(exc).rstrip('.')}; restore "
            "without one to go on"
        ) from exc


@contextlib.contextmanager
def _files_undone_on_failure(journal: Journal) -> Iterator[None]:
    """If the restore fails (its transaction rolls back), put the media files it
    wrote back as they were (what could not be is in ``journal.problems``)."""
    try:
        yield
    except BaseException:
        if journal:
            journal.problems = journal.undo()
        raise


@contextlib.contextmanager
def _undo_told(journal: Journal) -> Iterator[None]:
    """Add to a failed restore's error the files it could not put back."""
    try:
        yield
    except RestoreError as exc:
        if not journal.problems:
            raise
        raise RestoreError(
            f"{exc} {len(journal.problems)} media files it had written could not be "
            f"put back as they were: {'; '.join(journal.problems[:3])}"
        ) from exc


def _settle_sequences(
    backend: Backend, settle: SequenceSettlement, progress: ProgressCallback
) -> None:
    """After commit: set the sequences the restore raised to what the rows imply."""
    if not settle:
        return
    progress(Progress("settle", "", 0, None))
    backend.settle_sequences(settle)


# How many times the tables that triggers changed after their own load are emptied
# and loaded again before the restore gives up.
MAX_RELOADS = 3


class _Failed(Exception):
    """A step of the restore failed; the message names the table, column and row."""


class _Loader:
    """Write the file's rows into the tables in scope, and read them back until exact.

    Tables the database writes to by itself. A trigger (a full-text index kept in
    step with the table it indexes, an audit log, a denormalised counter) may write
    into a table while another one loads. Switching triggers off would keep the
    model tables exact, but not the tables no model owns (an FTS index's shadow
    tables, a counter table made by raw SQL), which must end as the restored rows
    imply; nor can it be done inside the restore's transaction on MariaDB or by a
    PostgreSQL user who does not own the tables. So triggers keep firing, and:

    - tables are emptied with DELETE, which fires row triggers (TRUNCATE does not);
    - when a table in scope has triggers, the tables that carry them load first,
      and every table is emptied again right before its own rows go in, so that what
      a trigger wrote into it while earlier tables loaded is replaced by the file's
      rows;
    - the read-back check then compares every table with the file; a table a trigger
      changed after its load is emptied and loaded again, at most MAX_RELOADS times,
      after which the restore fails naming the table that still differs.

    Without triggers in scope, this is one pass over the file and one read-back.
    """

    def __init__(
        self,
        plan: RestorePlan,
        specs: list[TableSpec],
        backend: Backend,
        progress: ProgressCallback,
        changes: Changes,
    ):
        self.plan = plan
        self.specs = specs
        self.backend = backend
        self.progress = progress
        # The tables changed row by row; the others are loaded whole.
        self.changes = changes
        self.by_label = {spec.label: spec for spec in specs}
        self.batch_size = app_settings.BATCH_SIZE
        with_triggers = backend.trigger_tables()
        self.triggered = {spec.label for spec in specs if spec.table in with_triggers}
        # Whether the database may change tables in scope by itself as they are
        # written (triggers; with tables changed row by row, cascading deletes too).
        self.rewrites = bool(self.triggered) or changes.side_effects
        self.version = plan.header["version"]
        # Tables whose values this vendor (or the file's format version) spells
        # otherwise, such as JSON text across vendors: read back and compared in a
        # normalised form on both sides (validate.file_normaliser).
        self.normalisers: dict[str, Any] = {}
        self._normalised_digests: dict[str, str] | None = None

    # -- loading -------------------------------------------------------------------

    def load(self) -> list[tuple[TableSpec, TableEnd]]:
        """Insert every table's rows from the file; return the tables in file order."""
        loaded = self._load_tables(set(self.by_label))
        return [loaded[label] for label in self.plan.ends if label in loaded]

    def _load_tables(
        self, labels: set[str], *, read_back: bool = False
    ) -> dict[str, tuple[TableSpec, TableEnd]]:
        """Load the tables named, those that carry triggers first (a pass each).

        With ``read_back``, each table is compared with the file right after its
        load: one that differs then was changed by its own load (its triggers, or
        values its columns cannot hold), which loading it again cannot mend.
        """
        loaded: dict[str, tuple[TableSpec, TableEnd]] = {}
        for wanted in (labels & self.triggered, labels - self.triggered):
            # A table changed row by row has its rows at hand (loaded again, whole).
            changed = set() if read_back else wanted & self.changes.tables.keys()
            if wanted == changed:
                for label in self.plan.ends:
                    if label in changed:
                        loaded.update(self._insert_changes(label))
                continue
            with self.plan.source.open() as stream:
                reader = BackupReader(stream, self.plan.source.name)
                reader.expect(self.plan.header, self.plan.digest)
                for section in reader.tables():
                    if section.label in changed:
                        loaded.update(self._insert_changes(section.label))
                    elif section.label in wanted:
                        spec = aligned(self.by_label[section.label], section.columns)
                        self._load_table(spec, section)
                        loaded[section.label] = (spec, section.ended())
                        if read_back:
                            self._check_alone(spec, section.ended())
        return loaded

    def _insert_changes(self, label: str) -> dict[str, tuple[TableSpec, TableEnd]]:
        """Insert a changed table's new rows; return it when it is to be read back
        whole (``settle``), which only the database's own writes call for."""
        spec = self.changes.tables[label].spec
        self.changes.insert(spec, self.progress)
        if not self.changes.side_effects:
            return {}
        return {label: (spec, self.plan.ends[label])}

    def _load_table(self, spec: TableSpec, section: TableSection) -> None:
        connection = self.backend.connection
        decode = row_decoder(
            list(spec.fields), list(spec.insert_fields), connection, self.version
        )
        try:
            # A savepoint per table: after a failed insert the table can be loaded
            # again, a row at a time, to find the row at fault.
            with transaction.atomic(using=self.backend.using):
                if self.rewrites:
                    self.backend.empty(spec)
                self.backend.insert_rows(spec, self._batches(spec, section, decode))
        except DatabaseError as exc:
            raise _Failed(self._insert_failure(spec, exc)) from exc

    def _batches(
        self,
        spec: TableSpec,
        section: TableSection,
        decode: Callable[[list[Any]], tuple[Any, ...]],
    ) -> Iterator[list[tuple[Any, ...]]]:
        total = self.plan.ends[spec.label].rows
        batch_size = self.batch_size
        done = 0
        for block in section.blocks():
            rows = section.parse(block)
            for start in range(0, len(rows), batch_size):
                batch = rows[start : start + batch_size]
                try:
                    decoded = list(map(decode, batch))
                except CONVERSION_ERRORS as exc:
                    # decode() changes rows in place: look at them as the file has them.
                    pristine = loads_block(block)[start : start + batch_size]
                    raise _Failed(
                        unconvertible(
                            spec, pristine, exc, self.backend.connection, self.version
                        )
                    ) from exc
                yield decoded
                done += len(batch)
                self.progress(
                    Progress("restore", spec.label, done, total, self.changes.written)
                )

    # -- what went wrong, said precisely --------------------------------------------

    def _insert_failure(self, spec: TableSpec, exc: DatabaseError) -> str:
        located = self.backend.failed_row(exc)
        if located is not None:
            index, column = located
            row = self._file_row(spec, index)
            if row is not None:
                return refused_row(spec, row, exc, self.backend, column)
        found = self._replay(spec)
        if found is not None:
            row, error = found
            return refused_row(spec, row, error, self.backend)
        return f"{spec.label}: {_database_message(exc)}"

    def _section_lines(self, label: str) -> Generator[bytes, None, None]:
        """Yield the row lines of one table of the file, without their newlines."""
        with self.plan.source.open() as stream:
            reader = BackupReader(stream, self.plan.source.name)
            reader.expect(self.plan.header, self.plan.digest)
            for section in reader.tables():
                if section.label == label:
                    for block in section.blocks():
                        yield from row_lines(block)
                    return

    def _file_row(self, spec: TableSpec, index: int) -> list[Any] | None:
        with closing(self._section_lines(spec.label)) as lines:
            for number, line in enumerate(lines):
                if number == index:
                    return loads_row(line)
        return None

    def _replay(self, spec: TableSpec) -> tuple[list[Any], DatabaseError] | None:
        """Insert the table's rows again, a batch at a time and then a row at a time
        in savepoints, until the insert that fails; return its row and error.

        Only run after a failure, whose transaction is rolled back anyway.
        """
        using = self.backend.using
        connection = self.backend.connection
        fields = list(spec.fields)
        decode = row_decoder(fields, list(spec.insert_fields), connection, self.version)
        with closing(self._section_lines(spec.label)) as lines:
            if self.rewrites:
                self.backend.empty(spec)
            pending: list[list[Any]] = []
            for line in itertools.chain(lines, [None]):
                if line is not None:
                    pending.append(loads_row(line))
                    if len(pending) < self.batch_size:
                        continue
                batch = [decode(list(row)) for row in pending]
                try:
                    with transaction.atomic(using=using):
                        # executemany, whatever the vendor's fast path is.
                        Backend.insert_rows(self.backend, spec, [batch])
                except DatabaseError:
                    for row, values in zip(pending, batch, strict=True):
                        try:
                            with transaction.atomic(using=using):
                                self.backend.insert_row(spec, values)
                        except DatabaseError as error:
                            return row, error
                    return None
                pending = []
        return None

    # -- checking --------------------------------------------------------------------

    def check_foreign_keys(self) -> None:
        self.progress(Progress("check", "", 0, None))
        problem = self.backend.check_constraints(
            self.specs, self.changes.foreign_key_values
        )
        if problem is not None:
            raise _Failed(problem)

    def settle(self, written: list[tuple[TableSpec, TableEnd]]) -> bool:
        """Read every table back until all match the file; return whether any was
        loaded again."""
        ends = {spec.label: end for spec, end in written}
        specs = {spec.label: spec for spec, _ in written}
        for spec in specs.values():
            # Known for every table before the first is compared, so that the
            # file's normalised digests are all computed in one pass.
            self._normaliser(spec)
        reloads = 0
        while True:
            differing = {}
            for label, end in ends.items():
                seen = self._read_back(specs[label], end)
                if seen != self._expected(specs[label], end):
                    differing[label] = seen
            if not differing:
                return reloads > 0
            label, seen = next(iter(differing.items()))
            if not self.rewrites:
                raise _Failed(self._difference(specs[label], ends[label], seen))
            if reloads == MAX_RELOADS:
                raise _Failed(
                    self._difference(specs[label], ends[label], seen, reloads + 1)
                )
            reloads += 1
            self.progress(Progress("reload", "", reloads, MAX_RELOADS))
            loaded = self._load_tables(set(differing), read_back=True)
            for name, (spec, end) in loaded.items():
                specs[name], ends[name] = spec, end

    def _check_alone(self, spec: TableSpec, end: TableEnd) -> None:
        seen = self._read_back(spec, end)
        if seen != self._expected(spec, end):
            raise _Failed(self._difference(spec, end, seen, alone=True))

    def _normaliser(self, spec: TableSpec) -> Any:
        if spec.label not in self.normalisers:
            self.normalisers[spec.label] = file_normaliser(
                spec, self.plan.header, self.backend.connection
            )
        return self.normalisers[spec.label]

    def _expected(self, spec: TableSpec, end: TableEnd) -> tuple[int, str]:
        """The count and digest a table must read back with."""
        if self._normaliser(spec) is None:
            return end.rows, end.digest
        if self._normalised_digests is None:
            wanted = {
                label: normalise
                for label, normalise in self.normalisers.items()
                if normalise is not None
            }
            self._normalised_digests = normalised_digests(self.plan.source, wanted)
        return end.rows, self._normalised_digests[spec.label]

    def _read_back(self, spec: TableSpec, end: TableEnd) -> tuple[int, str]:
        encode = block_encoder(spec.fields, spec.table, self.backend.connection)
        normalise = self._normaliser(spec)
        digest = hashlib.sha256()
        rows = 0
        with closing(self.backend.stream_rows(spec, self.batch_size)) as batches:
            for batch in batches:
                try:
                    block = encode(batch)
                    if normalise is not None:
                        block = normalised_block(normalise, block)
                    digest.update(block)
                except CONVERSION_ERRORS as exc:
                    raise _Failed(self._unreadable(spec, batch, exc)) from exc
                rows += len(batch)
                self.progress(
                    Progress(
                        "verify-written",
                        spec.label,
                        rows,
                        end.rows,
                        self.changes.read_back,
                    )
                )
        return rows, digest.hexdigest()

    def _unreadable(
        self, spec: TableSpec, batch: list[tuple], exc: BaseException
    ) -> str:
        return unreadable(spec, batch, exc, self.backend.connection)

    def _difference(
        self,
        spec: TableSpec,
        end: TableEnd,
        seen: tuple[int, str],
        loads: int = 0,
        *,
        alone: bool = False,
    ) -> str:
        """Say how a table differs from the file: it cannot hold the values, or,
        after ``loads`` loads, triggers keep changing it."""
        counts = f"{seen[0]} rows read back, {end.rows} in the backup"
        pk = self._first_difference(spec)
        if pk is not None:
            counts += f"; first difference at pk {pk}"
        if alone:
            return (
                f"{spec.label}: differs from the backup right after loading it "
                f"({counts}); the database changes what is written (a trigger, or "
                "values the columns cannot hold exactly)"
            )
        if loads:
            return (
                f"{spec.label}: still differs from the backup after loading it "
                f"{loads} times ({counts}); a trigger keeps changing it"
            )
        return (
            f"{spec.label}: the database does not hold the backup's values after "
            f"writing ({counts}). The target cannot store some values exactly."
        )

    def _first_difference(self, spec: TableSpec) -> str | None:
        """Return the primary key of the first row that differs from the file."""
        encode = block_encoder(spec.fields, spec.table, self.backend.connection)

        def database_lines() -> Generator[bytes, None, None]:
            with closing(self.backend.stream_rows(spec, self.batch_size)) as batches:
                for batch in batches:
                    yield from row_lines(encode(batch))

        with (
            closing(self._section_lines(spec.label)) as theirs,
            closing(database_lines()) as ours,
        ):
            for in_file, in_database in itertools.zip_longest(theirs, ours):
                if in_file == in_database:
                    continue
                pks = [
                    pk_value(list(spec.fields), spec.pk_fields, loads_row(line))
                    for line in (in_file, in_database)
                    if line is not None
                ]
                try:
                    # A row only one side has comes before the other side's next
                    # row (both are in primary key order).
                    pk = min(pks)
                except TypeError:
                    pk = pks[0]
                return _shown(pk)
        return None
