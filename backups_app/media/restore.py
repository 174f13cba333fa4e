"""The restore side: what to put back, checked before anything changes; then doing it.

While the backup file is checked, its manifest goes into a scratch index
(``Manifest``). ``plan_media`` then looks at every distinct file the backup has:
already right (same size and SHA-256: never rewritten), missing, or changed; and
reads through every blob that will be needed, so that a missing or damaged blob
refuses the restore before anything changes.

Inside the restore's transaction, once the rows are loaded and checked and before
the commit, ``put_back`` writes what is not right (each file checked again first:
it may have changed since the plan), every write under its exact name and only once
complete. The content a write replaces is kept as a blob first, and a ``Journal``
remembers each write, so a restore that fails after some writes puts those files
back as they were while the database rolls back. ``prune`` (``--prune-media``) runs
after the commit: it deletes the files the rows referenced before the restore and no
row references after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.core.files.storage import Storage

from ..db.backends import Backend
from ..db.tables import TableSpec, all_table_specs
from ..exceptions import BackupError, BackupFormatError, StorageError, one_line
from ..fileformat.manifest import MEDIA_KEY
from ..progress import Progress, ProgressCallback, ignore_progress
from . import files
from .blobs import BlobStore, blob_name
from .collect import back_up_file, references
from .index import Index
from .sources import Source, sources_for, sources_here, storage_key

logger = logging.getLogger("backups_app")

UNCHANGED = "unchanged"
MISSING = "missing"
CHANGED = "changed"
# Names of files listed in messages.
SHOWN = 5


class Manifest:
    """The media manifest of a backup, gathered into an index while it is checked
    (``verify_file(..., media=manifest.add)``)."""

    def __init__(self) -> None:
        self.index: Index | None = None

    def add(self, header: dict[str, Any], entries: list[list[Any]]) -> None:
        if self.index is None:
            self.index = Index()
        self.index.executemany(
            "INSERT INTO refs (source, pk, name, size, digest) VALUES (?, ?, ?, ?, ?)",
            (
                (
                    source,
                    None if pk is None else orjson.dumps(pk).decode(),
                    name,
                    size,
                    digest,
                )
                for source, pk, name, size, digest in entries
            ),
        )

    def take(self) -> Index:
        """The index of the entries (an empty one for a manifest without any)."""
        index, self.index = self.index or Index(), None
        return index

    def close(self) -> None:
        if self.index is not None:
            self.index.close()


@dataclass
class MediaPlan:
    """What a restore would do with a backup's files; nothing has changed yet."""

    backup: str
    sources: list[Source] = field(repr=False)
    index: Index = field(repr=False)
    storages: dict[str, Storage] = field(repr=False)
    files: int = 0  # distinct files with content in the backup
    unchanged: int = 0  # already right: left as they are
    missing: int = 0  # to write: not in their storage now
    changed: int = 0  # to write: other content now
    bytes_to_write: int = 0
    absent_at_backup: int = 0  # references whose file was missing at backup time
    prune: bool = False  # restore --prune-media
    prune_count: int = 0  # files it would delete, seen from now

    @property
    def whole_storages(self) -> list[str]:
        return [s.storage_label for s in self.sources if s.whole]

    @property
    def has_fields(self) -> bool:
        return any(not s.whole for s in self.sources)

    def prune_names(self) -> Iterator[tuple[str, str]]:
        """(storage, name) of each file ``--prune-media`` would delete, seen now."""
        labels = _labels(self.sources)
        for key, name in self.index.rows(
            "SELECT storage, name FROM candidates ORDER BY storage, name"
        ):
            yield labels.get(key, key), name

    def to_dict(self) -> dict[str, Any]:
        data = {
            "files": self.files,
            "unchanged": self.unchanged,
            "missing": self.missing,
            "changed": self.changed,
            "bytes_to_write": self.bytes_to_write,
            "absent_at_backup": self.absent_at_backup,
            "sources": [s.name for s in self.sources],
        }
        if self.prune:
            data["prune"] = [
                {"storage": storage, "name": name}
                for storage, name in self.prune_names()
            ]
        return data

    def close(self) -> None:
        self.index.close()


def _labels(sources: list[Source]) -> dict[str, str]:
    return {storage_key(s.storage): s.storage_label for s in sources}


def plan_media(
    manifest: Manifest,
    header: dict[str, Any],
    specs: list[TableSpec],
    backend: Backend,
    *,
    backup: str,
    prune: bool = False,
    progress: ProgressCallback = ignore_progress,
) -> MediaPlan:
    """Compare the backup's files with their storages and check every blob that a
    restore would need. Raises BackupFormatError for a missing or damaged blob,
    IncompatibleBackupError for a source that is not here."""
    sources = sources_here(header[MEDIA_KEY]["sources"], specs)
    index = manifest.take()
    storages = {storage_key(s.storage): s.storage for s in sources}
    index.set_storages(storage_key(s.storage) for s in sources)
    plan = MediaPlan(backup, sources, index, storages, prune=prune)
    try:
        _compare(plan, progress)
        _check_blobs(plan, progress)
        if prune:
            _predict_prune(plan, specs, backend)
    except BaseException:
        index.close()
        raise
    return plan


def _compare(plan: MediaPlan, progress: ProgressCallback) -> None:
    index = plan.index
    total = index.one(
        "SELECT COUNT(*) FROM (SELECT DISTINCT k.storage, r.name FROM refs r "
        "JOIN keys k USING (source) WHERE r.digest IS NOT NULL)"
    )[0]
    targets = index.rows(
        "SELECT k.storage, r.name, MIN(r.size), MIN(r.digest), MAX(r.digest) "
        "FROM refs r JOIN keys k USING (source) WHERE r.digest IS NOT NULL "
        "GROUP BY k.storage, r.name ORDER BY k.storage, r.name"
    )
    for done, (key, name, size, digest, other) in enumerate(targets, 1):
        if digest != other:
            raise BackupFormatError(
                f"{plan.backup}: its media manifest gives two contents for {name!r}"
            )
        state, now = file_state(plan.storages[key], name, size, digest)
        index.execute(
            "INSERT INTO files (storage, name, size, digest, state, now_size, "
            "now_modified) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key, name, size, digest, state, *_stamp(now)),
        )
        progress(Progress("media-compare", name, done, total))
    plan.files = total
    for state, count, size in index.rows(
        "SELECT state, COUNT(*), SUM(size) FROM files GROUP BY state"
    ):
        setattr(plan, state, count)
        if state != UNCHANGED:
            plan.bytes_to_write += size
    plan.absent_at_backup = index.one("SELECT COUNT(*) FROM refs WHERE digest IS NULL")[
        0
    ]


def _stamp(now: files.Stat | None) -> tuple[int | None, str | None]:
    if now is None:
        return None, None
    return now.size, now.modified.isoformat() if now.modified else None


def file_state(
    storage: Storage, name: str, size: int, digest: str
) -> tuple[str, files.Stat | None]:
    """Whether a file is right (UNCHANGED), MISSING or CHANGED, and its stat."""
    try:
        now = files.stat(storage, name)
        if now is None:
            return MISSING, None
        if now.size == size and files.digest_of(storage, name) == (size, digest):
            return UNCHANGED, now
    except StorageError:
        raise
    except Exception as exc:  # a name the storage refuses, say
        raise StorageError(f"Cannot read {name!r}: {one_line(exc)}") from exc
    return CHANGED, now


def _check_blobs(plan: MediaPlan, progress: ProgressCallback) -> None:
    """Read through every blob the restore will write from; refuse the restore if
    one is missing or damaged."""
    blobs = BlobStore()
    needed = list(
        plan.index.rows(
            "SELECT DISTINCT digest, size FROM files WHERE state != ? ORDER BY digest",
            (UNCHANGED,),
        )
    )
    bad = []
    for done, (digest, size) in enumerate(needed, 1):
        problem = blobs.check(digest, size)
        if problem:
            bad.append((digest, problem))
        progress(Progress("media-blobs", "", done, len(needed)))
    if not bad:
        return
    digest, problem = bad[0]
    number, pk, name = plan.index.one(
        "SELECT source, pk, name FROM refs WHERE digest = ? ORDER BY rowid LIMIT 1",
        (digest,),
    )
    where = plan.sources[number].name + ("" if pk is None else f", pk {pk}")
    more = f"; {len(bad)} blobs in all are missing or damaged" if len(bad) > 1 else ""
    raise BackupFormatError(
        f"{plan.backup} cannot be restored: the content of {where}: {name!r} is "
        f"{problem} in the backup storage ({blob_name(digest)}){more}. Nothing was "
        "changed."
    )


def _predict_prune(plan: MediaPlan, specs: list[TableSpec], backend: Backend) -> None:
    """What ``--prune-media`` would delete if the restore ran now."""
    read_before(plan, backend, specs)
    _candidates(plan, after=False)
    plan.prune_count = plan.index.one("SELECT COUNT(*) FROM candidates")[0]


def _read_live(
    plan: MediaPlan, backend: Backend, specs: list[TableSpec], *, before: bool
) -> None:
    """Record the names the rows reference now: the restore's scope (``specs``)
    marked as such when ``before``; after the restore, every table of the
    database counts alike."""
    index = plan.index
    index.execute("DELETE FROM live")
    in_scope = {spec.label for spec in specs}
    everything = sources_for(all_table_specs(backend.using), fields=True)
    for source in everything:
        plan.storages.setdefault(storage_key(source.storage), source.storage)
    keys = [storage_key(s.storage) for s in everything]
    scopes = [int(before and s.table.label in in_scope) for s in everything]
    index.executemany(
        "INSERT INTO live (storage, name, scope) VALUES (?, ?, ?)",
        (
            (keys[number], name, scopes[number])
            for number, _pk, name in references(everything, backend)
        ),
    )
    index.execute("DELETE FROM stored")
    for source in plan.sources:
        if source.whole:
            key = storage_key(source.storage)
            index.executemany(
                "INSERT INTO stored (storage, name) VALUES (?, ?)",
                ((key, name) for name in files.walk(source.storage)),
            )


def _candidates(plan: MediaPlan, *, after: bool) -> None:
    """The files no row references once the backup's rows are in: those the
    restore's scope referenced before (``live`` scope 1), and those of a whole
    storage that the backup does not have. With ``after``, ``live`` holds every
    reference after the restore; else the restore is foreseen: the rows out of its
    scope keep theirs, and the backup's rows bring the manifest's."""
    index = plan.index
    index.execute("DROP TABLE IF EXISTS candidates")
    index.execute(
        "CREATE TABLE candidates AS "
        "SELECT storage, name FROM before "
        "UNION SELECT storage, name FROM stored "
        "EXCEPT SELECT k.storage, r.name FROM refs r JOIN keys k USING (source) "
        "EXCEPT SELECT storage, name FROM live WHERE scope = 0"
        if not after
        else "CREATE TABLE candidates AS "
        "SELECT storage, name FROM before "
        "UNION SELECT storage, name FROM stored "
        "EXCEPT SELECT k.storage, r.name FROM refs r JOIN keys k USING (source) "
        "EXCEPT SELECT storage, name FROM live"
    )


class Journal:
    """The files a restore wrote, with what each held before, to undo them."""

    def __init__(self, blobs: BlobStore):
        self.blobs = blobs
        self.entries: list[tuple[Storage, str, tuple[int, str] | None]] = []
        self.written = 0
        self.bytes_written = 0
        # What undo() could not put back as it was.
        self.problems: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.entries)

    def record(
        self, storage: Storage, name: str, previous: tuple[int, str] | None
    ) -> None:
        self.entries.append((storage, name, previous))

    def undo(self) -> list[str]:
        """Put every file written back as it was (delete the new ones); return what
        could not be."""
        problems = []
        for storage, name, previous in reversed(self.entries):
            try:
                if previous is None:
                    files.delete(storage, name)
                else:
                    size, digest = previous
                    with self.blobs.opened(digest) as stream:
                        files.write(storage, name, files.chunks(stream), digest=digest)
            except (BackupError, files.ContentChanged, OSError) as exc:
                problems.append(f"{name!r}: {one_line(exc)}")
                logger.error("Could not put %r back as it was: %s", name, exc)
        self.entries.clear()
        return problems


def put_back(
    plan: MediaPlan, journal: Journal, progress: ProgressCallback = ignore_progress
) -> None:
    """Make every file of the backup right in its storage; record each write.

    A file the plan found right is checked again only if its size or modification
    time changed since; the others are compared again, then written from their
    blob (checked against its digest as it is copied). Raises StorageError (or
    files.ContentChanged for a blob that changed since it was checked).
    """
    total = plan.files
    rows = plan.index.rows(
        "SELECT storage, name, size, digest, state, now_size, now_modified "
        "FROM files ORDER BY storage, name"
    )
    for done, (key, name, size, digest, state, now_size, now_modified) in enumerate(
        rows, 1
    ):
        storage = plan.storages[key]
        now = files.stat(storage, name)
        if _stamp(now) != (now_size, now_modified):
            # Changed since the plan looked at it: look again.
            state, now = file_state(storage, name, size, digest)
        if state == UNCHANGED:
            continue
        previous = None
        if now is not None:
            # Kept as a blob first, so that it can be put back.
            _kept, kept_size, kept_digest = back_up_file(journal.blobs, storage, name)
            if kept_size is not None and kept_digest is not None:
                previous = (kept_size, kept_digest)
        journal.record(storage, name, previous)
        with journal.blobs.opened(digest) as stream:
            files.write(storage, name, files.chunks(stream), digest=digest)
        journal.written += 1
        journal.bytes_written += size
        progress(Progress("media-write", name, done, total))


@dataclass
class Pruned:
    deleted: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def read_before(plan: MediaPlan, backend: Backend, specs: list[TableSpec]) -> None:
    """Inside the restore, before its rows are deleted: what they reference."""
    _read_live(plan, backend, specs, before=True)
    plan.index.execute("DROP TABLE IF EXISTS before")
    plan.index.execute(
        "CREATE TABLE before AS SELECT DISTINCT storage, name FROM live WHERE scope = 1"
    )


def prune(plan: MediaPlan, backend: Backend, specs: list[TableSpec]) -> Pruned:
    """After the commit: delete the files the rows referenced before the restore
    (``read_before``) and no row references now, and the files of a whole storage
    the backup does not have and no row references."""
    _read_live(plan, backend, specs, before=False)
    _candidates(plan, after=True)
    pruned = Pruned()
    labels = _labels(plan.sources)
    for key, name in plan.index.rows(
        "SELECT storage, name FROM candidates ORDER BY storage, name"
    ):
        shown = f"{labels.get(key, key)}: {name}"
        try:
            files.delete(plan.storages[key], name)
        except StorageError as exc:
            pruned.failed.append(f"{shown} ({one_line(exc)})")
            continue
        pruned.deleted.append(shown)
    return pruned
