"""Which blobs no kept backup needs, and deleting them (``prunebackups``).

Every backup file in the backup storage whose header declares media is read through
(and checked) for the digests its manifest lists; a blob that none of them lists is
no longer needed. Nothing is deleted when a backup's needs cannot be known:

- a file that cannot be read to its end (damaged, or a storage error), unless it is
  plainly no backup (empty, or its first line is no backups_app header): it might be
  a backup that needs any blob;
- a backup being written into the storage right now (a partial file whose writer
  runs): its manifest is not there yet.

A blob written in the last GRACE seconds is kept too: a backup being written
elsewhere (to standard output, a path, another host) may have just stored it. Files
that are not backups (no header) need nothing.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from ..exceptions import BackupError, NotABackupError, one_line
from ..fileformat.manifest import has_media
from ..fileformat.reader import BackupReader, verify_file
from ..fileformat.streams import BackupSource, backup_storage
from ..progress import Progress, ProgressCallback, ignore_progress
from . import files
from .blobs import BlobStore, blob_name
from .index import Index

GRACE = datetime.timedelta(hours=1)


@dataclass
class BlobCollection:
    """The blobs of the backup storage, and which of them no kept backup needs."""

    blobs: int = 0  # in the store
    size: int = 0
    backups_with_media: int = 0  # backups whose manifests were read
    unneeded: list[tuple[str, int]] = field(default_factory=list)  # (digest, size)
    young: int = 0  # unneeded, but kept: written in the last GRACE
    refused: str = ""  # why nothing is deleted
    deleted: int = 0
    deleted_size: int = 0

    @property
    def unneeded_size(self) -> int:
        return sum(size for _, size in self.unneeded)

    def to_dict(self) -> dict[str, Any]:
        return {
            "blobs": self.blobs,
            "size": self.size,
            "backups_with_media": self.backups_with_media,
            "unneeded": len(self.unneeded),
            "unneeded_size": self.unneeded_size,
            "young": self.young,
            "refused": self.refused,
            "deleted": self.deleted,
            "deleted_size": self.deleted_size,
        }


def plan_collection(
    names: list[str],
    *,
    writing: list[str] | tuple[str, ...] = (),
    leaving: frozenset[str] | set[str] = frozenset(),
    progress: ProgressCallback = ignore_progress,
) -> BlobCollection:
    """Find the blobs that none of the backups ``names`` (the backup storage's
    files) needs, counting the backups named in ``leaving`` (about to be deleted) as
    gone already. While a backup is being written (``writing``), its media are not
    known: the collection is refused."""
    collection = BlobCollection()
    with Index() as index:
        if writing:
            collection.refused = (
                f"a backup is being written ({writing[0]}); its media are not known yet"
            )
        for number, name in enumerate(names):
            if name in leaving or collection.refused:
                continue
            progress(Progress("media-needs", name, number + 1, len(names)))
            problem = _read_needs(name, index, collection)
            if problem:
                collection.refused = (
                    f"{name} cannot be read to its end ({problem}); the blobs it needs "
                    "are not known"
                )
        index.execute("CREATE INDEX needed ON refs (digest)")
        now = timezone.now()
        store = BlobStore()
        for digest, size in store.blobs():
            collection.blobs += 1
            collection.size += size
            if index.one("SELECT 1 FROM refs WHERE digest = ? LIMIT 1", (digest,)):
                continue
            if _young(store, digest, now):
                collection.young += 1
                continue
            collection.unneeded.append((digest, size))
    return collection


def _read_needs(name: str, index: Index, collection: BlobCollection) -> str:
    """Add the digests a stored backup needs to the index; return what kept it from
    being read (nothing for a file that is no backup, or one without media)."""
    try:
        source = BackupSource.from_storage(name)
    except BackupError:
        return ""  # gone meanwhile
    try:
        try:
            with source.open() as stream:
                # An undo file's manifest needs its blobs as a backup's does.
                header = BackupReader(stream, name, undo=True).header
        except NotABackupError:
            return ""  # no backup: it cannot be restored, it needs nothing
        except BackupError as exc:
            # Damaged, or a storage that did not answer: it may be a backup.
            return one_line(exc)
        if not has_media(header):
            return ""
        collection.backups_with_media += 1

        def needs(_header: dict[str, Any], entries: list[list[Any]]) -> None:
            index.executemany(
                "INSERT INTO refs (source, name, digest) VALUES (0, '', ?)",
                ((entry[4],) for entry in entries if entry[4] is not None),
            )

        try:
            with source.open() as stream:
                verify_file(stream, name, media=needs, undo=True)
        except BackupError as exc:
            return one_line(exc)
        return ""
    finally:
        source.close()


def _young(store: BlobStore, digest: str, now: datetime.datetime) -> bool:
    try:
        # Aware or naive as timezone.now() is (USE_TZ).
        modified = store.storage.get_modified_time(blob_name(digest))
    except (NotImplementedError, OSError):
        return False
    return now - modified < GRACE


def collect(collection: BlobCollection) -> BlobCollection:
    """Delete the unneeded blobs of a collection (none if it was refused)."""
    if collection.refused:
        return collection
    store = BlobStore()
    for digest, size in collection.unneeded:
        files.delete(store.storage, blob_name(digest))
        collection.deleted += 1
        collection.deleted_size += size
    return collection


def shared_size() -> tuple[int, int]:
    """The number and bytes of the blobs in the backup storage."""
    count = size = 0
    for _digest, blob_size in BlobStore(backup_storage()).blobs():
        count += 1
        size += blob_size
    return count, size
