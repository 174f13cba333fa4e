"""The validation side: a backup's files against the storages and the rows of now.

Per source (a file field, or a whole storage):

- missing: references of the backup whose file is not in the storage now;
- changed: references of the backup whose file is there with another content (its
  SHA-256 differs);
- extra: files the rows reference now (a whole storage: files it holds now) that the
  backup does not have under that source.

Each with a few example primary keys (file names for a whole storage). A file is read
once however many references it has. With ``--file-only`` nothing is compared; the
blobs are read through instead (``check_blobs``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..db.backends import Backend
from ..db.tables import TableSpec
from ..fileformat.manifest import MEDIA_KEY
from ..progress import Progress, ProgressCallback, ignore_progress
from . import files
from .blobs import BlobStore
from .collect import references
from .index import Index
from .restore import MISSING, Manifest, file_state
from .sources import Source, sources_here, storage_key

MAX_EXAMPLES = 5


@dataclass
class MediaReport:
    """How the files of one source of the backup compare with its storage now."""

    source: str
    storage: str
    files: int = 0  # references with content in the backup
    missing: int = 0
    changed: int = 0
    extra: int = 0
    missing_examples: list[Any] = field(default_factory=list)
    changed_examples: list[Any] = field(default_factory=list)
    extra_examples: list[Any] = field(default_factory=list)
    absent_at_backup: int = 0  # references whose file was missing when backed up

    @property
    def matches(self) -> bool:
        return not (self.missing or self.changed or self.extra)

    @property
    def status(self) -> str:
        return "match" if self.matches else "differ"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "status": self.status}


@dataclass
class BlobCheck:
    """``validatebackup --file-only``: the blobs a backup's files need."""

    checked: int = 0
    missing: int = 0
    damaged: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.damaged)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ok": self.ok}


class MediaComparison:
    """Compare a backup's manifest with the storages and rows of now; ``close()``."""

    def __init__(
        self, manifest: Manifest, header: dict[str, Any], specs: list[TableSpec]
    ):
        self.sources: list[Source] = sources_here(header[MEDIA_KEY]["sources"], specs)
        self.index: Index = manifest.take()
        self.keys = [storage_key(s.storage) for s in self.sources]
        self.storages = {storage_key(s.storage): s.storage for s in self.sources}
        self.index.set_storages(self.keys)

    def close(self) -> None:
        self.index.close()

    def read_rows(self, backend: Backend) -> None:
        """Record what the rows reference now (in the validation's snapshot), and
        what the whole storages hold."""
        self.index.executemany(
            "INSERT INTO current (source, pk, name) VALUES (?, ?, ?)",
            references(self.sources, backend),
        )
        for number, source in enumerate(self.sources):
            if source.whole:
                self.index.executemany(
                    "INSERT INTO current (source, pk, name) VALUES (?, NULL, ?)",
                    ((number, name) for name in files.walk(source.storage)),
                )

    def reports(
        self, progress: ProgressCallback = ignore_progress
    ) -> list[MediaReport]:
        index = self.index
        total = index.one(
            "SELECT COUNT(*) FROM (SELECT DISTINCT k.storage, r.name FROM refs r "
            "JOIN keys k USING (source) WHERE r.digest IS NOT NULL)"
        )[0]
        targets = index.rows(
            "SELECT k.storage, r.name, MIN(r.size), MIN(r.digest) FROM refs r "
            "JOIN keys k USING (source) WHERE r.digest IS NOT NULL "
            "GROUP BY k.storage, r.name ORDER BY k.storage, r.name"
        )
        for done, (key, name, size, digest) in enumerate(targets, 1):
            state, _now = file_state(self.storages[key], name, size, digest)
            index.execute(
                "INSERT INTO files (storage, name, size, digest, state) "
                "VALUES (?, ?, ?, ?, ?)",
                (key, name, size, digest, state),
            )
            progress(Progress("media-validate", name, done, total))
        index.execute("CREATE INDEX refs_name ON refs (source, name)")
        return [
            self._report(number, source) for number, source in enumerate(self.sources)
        ]

    def _report(self, number: int, source: Source) -> MediaReport:
        index = self.index
        report = MediaReport(source.name, source.storage_label)
        report.files, report.absent_at_backup = index.one(
            "SELECT COUNT(digest), COUNT(*) - COUNT(digest) FROM refs WHERE source = ?",
            (number,),
        )
        shown = _name if source.whole else _pk
        for state, count, examples in (
            (MISSING, "missing", "missing_examples"),
            ("changed", "changed", "changed_examples"),
        ):
            rows = list(
                index.rows(
                    "SELECT r.pk, r.name FROM refs r JOIN keys k USING (source) "
                    "JOIN files f ON f.storage = k.storage AND f.name = r.name "
                    "WHERE r.source = ? AND f.state = ? ORDER BY r.rowid",
                    (number, state),
                )
            )
            setattr(report, count, len(rows))
            setattr(report, examples, [shown(row) for row in rows[:MAX_EXAMPLES]])
        extra = list(
            index.rows(
                "SELECT c.pk, c.name FROM current c WHERE c.source = ? AND NOT EXISTS "
                "(SELECT 1 FROM refs r WHERE r.source = c.source AND r.name = c.name) "
                "ORDER BY c.rowid",
                (number,),
            )
        )
        report.extra = len(extra)
        report.extra_examples = [shown(row) for row in extra[:MAX_EXAMPLES]]
        return report


def _pk(row: tuple[str, str]) -> Any:
    return orjson.loads(row[0])


def _name(row: tuple[str | None, str]) -> Any:
    return row[1]


def check_blobs(
    manifest: Manifest, progress: ProgressCallback = ignore_progress
) -> BlobCheck:
    """Read through every blob a backup's files need, checking size and digest."""
    index = manifest.take()
    try:
        blobs = BlobStore()
        needed = list(
            index.rows(
                "SELECT DISTINCT digest, size FROM refs WHERE digest IS NOT NULL "
                "ORDER BY digest"
            )
        )
        check = BlobCheck(checked=len(needed))
        for done, (digest, size) in enumerate(needed, 1):
            problem = blobs.check(digest, size)
            if problem == "missing":
                check.missing += 1
            elif problem:
                check.damaged += 1
            if problem and len(check.examples) < MAX_EXAMPLES:
                (name,) = index.one(
                    "SELECT name FROM refs WHERE digest = ? ORDER BY rowid LIMIT 1",
                    (digest,),
                )
                check.examples.append(f"{name}: {problem}")
            progress(Progress("media-blobs", "", done, len(needed)))
        return check
    finally:
        index.close()
