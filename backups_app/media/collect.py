"""The backup side: which files the rows reference, their blobs, the manifest's entries.

1. Inside the backup's snapshot, the rows' references are read (primary key and
   file name of every file field, one query per table) into a scratch index: the
   manifest describes the very rows of the backup.
2. After the snapshot, every distinct file is read once to hash it; a file whose
   blob is not in the backup storage yet is read again into a new blob (and checked
   against that digest: a file that changed in between is read again). Files that
   did not change since the last backup cost one read and no write.
3. Blobs this backup reuses are looked up once more, in case ``prunebackups``
   deleted one meanwhile; then the entries are written to the backup file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

import orjson
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.storage import Storage

from ..conf import app_settings
from ..db.backends import Backend
from ..db.tables import TableSpec
from ..db.values import batch_encoder
from ..exceptions import BackupError, CannotRunError
from ..fileformat.manifest import DIGEST_ALGORITHM, name_problem
from ..fileformat.reader import ROW_BLOCK
from ..progress import Progress, ProgressCallback, ignore_progress
from . import files
from .blobs import BlobStore
from .index import Index
from .sources import Source, sources_for, storage_key

# Missing files named in a summary and in the error of --strict-media.
MAX_SHOWN = 20
# Times a file that keeps changing while it is copied is read again.
RETRIES = 3
MISSING = "missing"
UNSAFE = "unsafe"
STORED = "stored"  # its blob was there already
ADDED = "added"  # its blob was written by this backup


@dataclass(frozen=True)
class MissingFile:
    """A file a row references that could not be backed up."""

    source: str
    pk: Any
    name: str
    problem: str = "missing from its storage"

    def __str__(self) -> str:
        pk = "" if self.pk is None else f", pk {orjson.dumps(self.pk).decode()}"
        return f"{self.source}{pk}: {self.name!r} is {self.problem}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class MediaSummary:
    """What the media part of a backup holds and what it added to the blobs."""

    sources: int
    references: int  # manifest entries: one per row and file field (or stored file)
    files: int  # distinct files backed up
    size: int  # their bytes
    blobs_added: int  # blobs this backup wrote: contents no earlier backup had
    bytes_added: int
    missing: int  # references whose file was missing (or whose name is not one)
    missing_examples: tuple[MissingFile, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["missing_examples"] = [str(m) for m in self.missing_examples]
        return data


def media_sources(
    specs: list[TableSpec], media: bool, whole_storages: Iterable[str]
) -> list[Source]:
    sources = sources_for(specs, fields=media, whole_storages=whole_storages)
    backups = storage_key(BlobStore().storage)
    for source in sources:
        if source.whole and storage_key(source.storage) == backups:
            raise CannotRunError(
                f"--media-storage {source.storage_label!r} is the backup storage "
                "itself; its blobs and backups cannot be backed up into it."
            )
    return sources


def media_collector(
    specs: list[TableSpec],
    media: bool,
    whole_storages: Iterable[str],
    *,
    strict: bool = False,
    progress: ProgressCallback = ignore_progress,
) -> MediaCollector | None:
    """The collector of a backup's files, or None when it has no media source."""
    sources = media_sources(specs, media, whole_storages)
    if not sources:
        return None
    return MediaCollector(sources, strict=strict, progress=progress)


def back_up_file(
    blobs: BlobStore, storage: Storage, name: str
) -> tuple[str, int | None, str | None]:
    """Hash a file and store its blob if new; return (state, size, digest)."""
    for _attempt in range(RETRIES):
        try:
            if files.stat(storage, name) is None:
                return MISSING, None, None
            size, digest = files.digest_of(storage, name)
        except SuspiciousFileOperation:
            return UNSAFE, None, None
        stored = blobs.size_of(digest)
        if stored == size:
            return STORED, size, digest
        try:
            with files.opened(storage, name) as stream:
                blobs.put(files.chunks(stream), digest, replace=stored is not None)
        except files.ContentChanged:
            continue  # it changed since it was hashed: hash it again
        return ADDED, size, digest
    raise BackupError(
        f"Cannot back up {name!r}: it changed each of the {RETRIES} times it was read."
    )


def references(
    sources: list[Source],
    backend: Backend,
    unsafe: Callable[[int, Any, Any], None] | None = None,
    progress: ProgressCallback = ignore_progress,
) -> Iterator[tuple[int, str, str]]:
    """Yield (source number, primary key as JSON text, name) of every file that the
    rows of the field sources' tables reference, a query per table, in primary key
    order. Names that are not file names go to ``unsafe(number, pk, name)``."""
    by_table: dict[str, list[int]] = {}
    for number, source in enumerate(sources):
        if not source.whole:
            by_table.setdefault(source.table.label, []).append(number)
    for numbers in by_table.values():
        spec = sources[numbers[0]].table
        fields = tuple(spec.pk_fields) + tuple(sources[n].file_field for n in numbers)
        narrow = dataclasses.replace(spec, fields=fields)
        encode = batch_encoder(fields, spec.table, backend.connection)
        keys = len(spec.pk_fields)
        progress(Progress("media-rows", spec.label, 0, None))
        with closing(backend.stream_rows(narrow, app_settings.BATCH_SIZE)) as batches:
            for rows in batches:
                for row in orjson.loads(encode(rows)):
                    pk = row[0] if keys == 1 else row[:keys]
                    for number, name in zip(numbers, row[keys:], strict=True):
                        if name is None or name == "":
                            continue
                        if not isinstance(name, str) or name_problem(name):
                            if unsafe is not None:
                                unsafe(number, pk, name)
                            continue
                        yield number, orjson.dumps(pk).decode(), name


class MediaCollector:
    """Collect the files of one backup; ``close()`` it when done."""

    def __init__(
        self,
        sources: list[Source],
        *,
        strict: bool = False,
        progress: ProgressCallback = ignore_progress,
    ):
        self.sources = sources
        self.strict = strict
        self.progress = progress
        self.blobs = BlobStore()
        self.index = Index()
        self.storages = {storage_key(s.storage): s.storage for s in sources}
        self.index.set_storages(storage_key(s.storage) for s in sources)
        self.unsafe: list[MissingFile] = []
        self.unsafe_count = 0
        self.summary: MediaSummary | None = None

    def close(self) -> None:
        self.index.close()

    def header(self) -> dict[str, Any]:
        return {
            "digest": DIGEST_ALGORITHM,
            "sources": [source.describe() for source in self.sources],
        }

    # -- 1. references, inside the snapshot ------------------------------------------

    def read_references(self, backend: Backend) -> None:
        """Read every file field's references from the tables (in the snapshot)."""
        self.index.executemany(
            "INSERT INTO refs (source, pk, name) VALUES (?, ?, ?)",
            references(self.sources, backend, self._unsafe, self.progress),
        )

    def _unsafe(self, number: int, pk: Any, name: Any) -> None:
        self.unsafe_count += 1
        if len(self.unsafe) < MAX_SHOWN:
            self.unsafe.append(
                MissingFile(
                    self.sources[number].name,
                    pk,
                    str(name),
                    "not a file name that can be restored",
                )
            )

    # -- 2. files and blobs, after the snapshot ----------------------------------------

    def store(self) -> MediaSummary:
        """Back up every file referenced (and every file of the whole storages)."""
        for number, source in enumerate(self.sources):
            if source.whole:
                self.index.executemany(
                    "INSERT INTO refs (source, pk, name) VALUES (?, NULL, ?)",
                    self._stored_names(number, source),
                )
        total = self.index.one(
            "SELECT COUNT(*) FROM (SELECT DISTINCT k.storage, r.name "
            "FROM refs r JOIN keys k USING (source))"
        )[0]
        distinct = self.index.rows(
            "SELECT DISTINCT k.storage, r.name FROM refs r JOIN keys k USING (source) "
            "ORDER BY k.storage, r.name"
        )
        for done, (key, name) in enumerate(distinct, 1):
            state, size, digest = back_up_file(self.blobs, self.storages[key], name)
            self.index.execute(
                "INSERT INTO files (storage, name, size, digest, state) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, name, size, digest, state),
            )
            self.progress(Progress("media", name, done, total))
        self._recheck()
        self.summary = self._summary()
        if self.strict and self.summary.missing:
            shown = "; ".join(map(str, self.summary.missing_examples[:5]))
            raise BackupError(
                f"{self.summary.missing} files the rows reference could not be backed "
                f"up (--strict-media), e.g. {shown}. No backup was written."
            )
        return self.summary

    def _stored_names(self, number: int, source: Source) -> Iterator[tuple[int, str]]:
        for name in files.walk(source.storage):
            if name_problem(name):
                self._unsafe(number, None, name)
            else:
                yield number, name

    def _recheck(self) -> None:
        """Store again any blob this backup relies on that was deleted meanwhile
        (a ``prunebackups`` that ran while the files were read)."""
        for key, name, size, digest in self.index.rows(
            "SELECT storage, name, size, digest FROM files WHERE state = ?", (STORED,)
        ):
            if self.blobs.has(digest, size):
                continue
            state, size, digest = back_up_file(self.blobs, self.storages[key], name)
            self.index.execute(
                "UPDATE files SET state = ?, size = ?, digest = ? "
                "WHERE storage = ? AND name = ?",
                (state, size, digest, key, name),
            )

    def _summary(self) -> MediaSummary:
        references = self.index.one("SELECT COUNT(*) FROM refs")[0]
        distinct, size = self.index.one(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM files "
            "WHERE digest IS NOT NULL"
        )
        added, added_bytes = self.index.one(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM "
            "(SELECT DISTINCT digest, size FROM files WHERE state = ?)",
            (ADDED,),
        )
        missing = self.index.one(
            "SELECT COUNT(*) FROM refs r JOIN keys k USING (source) "
            "JOIN files f ON f.storage = k.storage AND f.name = r.name "
            "WHERE f.digest IS NULL"
        )[0]
        examples = list(self.unsafe)
        for number, pk, name, state in self.index.rows(
            "SELECT r.source, r.pk, r.name, f.state FROM refs r "
            "JOIN keys k USING (source) "
            "JOIN files f ON f.storage = k.storage AND f.name = r.name "
            "WHERE f.digest IS NULL ORDER BY r.source, r.rowid LIMIT ?",
            (MAX_SHOWN,),
        ):
            if len(examples) >= MAX_SHOWN:
                break
            examples.append(
                MissingFile(
                    self.sources[number].name,
                    None if pk is None else orjson.loads(pk),
                    name,
                    "missing from its storage"
                    if state == MISSING
                    else "not a file name that can be restored",
                )
            )
        return MediaSummary(
            sources=len(self.sources),
            references=references,
            files=distinct,
            size=size,
            blobs_added=added,
            bytes_added=added_bytes,
            missing=missing + self.unsafe_count,
            missing_examples=tuple(examples),
        )

    # -- 3. the manifest's entries -----------------------------------------------------

    def blocks(self) -> Iterator[tuple[bytes, int]]:
        """Yield the manifest's entries as blocks of lines (and their count)."""
        lines: list[bytes] = []
        size = 0
        for number, pk, name, file_size, digest in self.index.rows(
            "SELECT r.source, r.pk, r.name, f.size, f.digest FROM refs r "
            "JOIN keys k USING (source) "
            "JOIN files f ON f.storage = k.storage AND f.name = r.name "
            "WHERE f.state != ? ORDER BY r.source, r.rowid",
            (UNSAFE,),
        ):
            line = orjson.dumps(
                [
                    number,
                    None if pk is None else orjson.Fragment(pk),
                    name,
                    file_size,
                    digest,
                ]
            )
            lines.append(line)
            size += len(line) + 1
            if size >= ROW_BLOCK:
                yield b"\n".join(lines) + b"\n", len(lines)
                lines, size = [], 0
        if lines:
            yield b"\n".join(lines) + b"\n", len(lines)
