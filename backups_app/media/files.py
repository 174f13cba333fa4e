"""Read, hash and write the files of any Django storage, a chunk at a time.

Three kinds of storage get the paths that suit them:

- a storage with local paths (FileSystemStorage and its subclasses): files are read
  from their path, and written to a temporary file beside the destination that is
  moved over it only once complete (``os.replace``), so a name never holds half a file;
- django-storages' S3 storage: ranged reads and multipart uploads through its boto3
  client (``fileformat.objectstore``), so that neither direction holds a whole
  object in memory; an object appears only once complete;
- any other storage: its own ``open()`` and ``save()``, the old file deleted first
  (``save()`` never overwrites: it would pick another name).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, cast

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage

from ..exceptions import StorageError, one_line
from ..fileformat.objectstore import (
    MultipartUpload,
    ObjectStore,
    RangedReader,
    object_store,
)

CHUNK = 1 << 20


def local_path(storage: Storage, name: str) -> Path | None:
    """The local path of ``name`` in a FileSystemStorage; None for other storages
    (InMemoryStorage, for one, answers ``path()`` with a path that holds nothing)."""
    if not isinstance(storage, FileSystemStorage):
        return None
    return Path(storage.path(name))


@dataclass(frozen=True)
class Stat:
    """What a storage says of a file without reading it."""

    size: int
    modified: datetime | None


def stat(storage: Storage, name: str) -> Stat | None:
    """Return the size and modification time of a file; None when there is none.

    Raises SuspiciousFileOperation for a name outside the storage, StorageError when
    the storage cannot be asked.
    """
    try:
        path = local_path(storage, name)
        if path is not None:
            try:
                info = path.stat()
            except FileNotFoundError:
                return None
            if not path.is_file():
                return None
            return Stat(info.st_size, datetime.fromtimestamp(info.st_mtime))
        store = object_store(storage)
        if store is not None:
            found = store.head(name)
            return None if found is None else Stat(*found)
        if not storage.exists(name):
            return None
        modified = None
        with contextlib.suppress(NotImplementedError, AttributeError):
            modified = storage.get_modified_time(name)
        return Stat(storage.size(name), modified)
    except SuspiciousFileOperation:
        raise
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except Exception as exc:  # storages raise anything from OSError to SDK errors
        raise StorageError(f"Cannot look up {name!r}: {one_line(exc)}") from exc


@contextlib.contextmanager
def opened(storage: Storage, name: str) -> Iterator[IO[bytes]]:
    """Yield a binary stream of a file, to ``read()`` in chunks."""
    stream: Any  # a file, a RangedReader or the storage's File: each reads bytes
    try:
        path = local_path(storage, name)
        store = object_store(storage)
        if path is not None:
            stream = open(path, "rb")  # noqa: SIM115 (closed below)
        elif store is not None:
            stream = RangedReader(store, name, read_size=8 * CHUNK)
        else:
            stream = storage.open(name, "rb")
    except FileNotFoundError as exc:
        raise StorageError(f"{name!r} is gone: {one_line(exc)}") from exc
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(f"Cannot read {name!r}: {one_line(exc)}") from exc
    try:
        yield stream
    finally:
        stream.close()


def chunks(stream: IO[bytes]) -> Iterator[bytes]:
    while True:
        try:
            data = stream.read(CHUNK)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"Cannot read a file: {one_line(exc)}") from exc
        if not data:
            return
        yield bytes(data) if not isinstance(data, bytes) else data


def digest_of(storage: Storage, name: str) -> tuple[int, str]:
    """Return the size and SHA-256 (hex) of a file, read once, a chunk at a time."""
    digest = hashlib.sha256()
    size = 0
    with opened(storage, name) as stream:
        for data in chunks(stream):
            digest.update(data)
            size += len(data)
    return size, digest.hexdigest()


class Hashing:
    """Chunks passed through, counted and hashed on the way."""

    def __init__(self, source: Iterator[bytes]):
        self._source = source
        self.digest = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for data in self._source:
            self.digest.update(data)
            self.size += len(data)
            yield data

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


class ContentChanged(Exception):
    """What was written is not the content asked for (a source that changed while
    it was read, or a damaged blob); nothing was left under the name."""

    def __init__(self, size: int, digest: str):
        super().__init__(f"{size} bytes of SHA-256 {digest}")
        self.size = size
        self.digest = digest


class _Reader:
    """A file-like object over chunks, for ``Storage.save()``."""

    def __init__(self, source: Iterator[bytes]):
        self._source = iter(source)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._pending) < size:
            data = next(self._source, b"")
            if not data:
                break
            self._pending += data
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


def write(
    storage: Storage,
    name: str,
    source: Iterator[bytes],
    *,
    digest: str | None = None,
    replace: bool = True,
) -> tuple[int, str]:
    """Write ``source``'s chunks to ``name``, exactly that name; return the size and
    SHA-256 written.

    With ``digest``, content of another digest raises ContentChanged and leaves
    nothing under the name (a file already there stays as it was). Without
    ``replace``, a file that appears under the name meanwhile is left as it is and
    not an error (blobs: the same name is the same content).
    """
    hashing = Hashing(source)
    try:
        path = local_path(storage, name)
        store = object_store(storage)
        if path is not None:
            _write_local(storage, path, hashing, digest, replace)
        elif store is not None:
            _write_object(storage, store, name, hashing, digest, replace)
        else:
            _write_other(storage, name, hashing, digest, replace)
    except (ContentChanged, StorageError, SuspiciousFileOperation):
        raise
    except Exception as exc:
        raise StorageError(f"Cannot write {name!r}: {one_line(exc)}") from exc
    return hashing.size, hashing.hexdigest()


def _check(hashing: Hashing, digest: str | None) -> None:
    if digest is not None and hashing.hexdigest() != digest:
        raise ContentChanged(hashing.size, hashing.hexdigest())


def _write_local(
    storage: Storage, path: Path, hashing: Hashing, digest: str | None, replace: bool
) -> None:
    directory = path.parent
    mode = getattr(storage, "directory_permissions_mode", None)
    # Each folder made with the storage's mode, as FileSystemStorage makes them.
    for folder in reversed([directory, *directory.parents]):
        if not folder.exists():
            folder.mkdir(exist_ok=True)
            if mode is not None:
                os.chmod(folder, mode)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below)
        dir=directory, prefix=".media-", suffix=".partial", delete=False
    )
    temporary = Path(handle.name)
    try:
        with handle:
            for data in hashing:
                handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _check(hashing, digest)
        file_mode = getattr(storage, "file_permissions_mode", None)
        if file_mode is not None:
            os.chmod(temporary, file_mode)
        else:
            # NamedTemporaryFile makes 0600; Django's storage makes 0666 less umask.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)
        if replace:
            os.replace(temporary, path)
        else:
            # Another writer's blob of the same content may be there already.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_object(
    storage: Storage,
    store: ObjectStore,
    name: str,
    hashing: Hashing,
    digest: str | None,
    replace: bool,
) -> None:
    upload = MultipartUpload(store, name)
    try:
        for data in hashing:
            upload.write(data)
        _check(hashing, digest)
        if replace and storage.exists(name):
            storage.delete(name)
        upload.complete()
    except StorageError as exc:
        upload.abort()
        if not replace and "already exists" in str(exc):
            return
        raise
    except BaseException:
        upload.abort()
        raise


def _write_other(
    storage: Storage, name: str, hashing: Hashing, digest: str | None, replace: bool
) -> None:
    if storage.exists(name):
        if not replace:
            for _ in hashing:  # read to the end, for the size and digest
                pass
            _check(hashing, digest)
            return
        storage.delete(name)
    reader = cast(IO[bytes], _Reader(iter(hashing)))
    saved = storage.save(name, File(reader, name=name))
    try:
        _check(hashing, digest)
    except ContentChanged:
        storage.delete(saved)
        raise
    if saved != name:
        # Someone wrote the name between the delete and the save.
        storage.delete(saved)
        if replace:
            raise StorageError(
                f"Cannot write {name!r}: another file appeared under its name."
            )


def delete(storage: Storage, name: str) -> None:
    try:
        storage.delete(name)
    except FileNotFoundError:
        pass
    except Exception as exc:
        raise StorageError(f"Cannot delete {name!r}: {one_line(exc)}") from exc


def walk(storage: Storage, directory: str = "") -> Iterator[str]:
    """Yield every file name under ``directory`` of a storage, sorted, depth first."""
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return
    except Exception as exc:
        raise StorageError(
            f"Cannot list {directory or 'the storage'!r}: {one_line(exc)}"
        ) from exc
    prefix = f"{directory.rstrip('/')}/" if directory else ""
    entries = [(name, False) for name in files] + [(name, True) for name in directories]
    for name, is_directory in sorted(entries):
        if is_directory:
            yield from walk(storage, prefix + name)
        else:
            yield prefix + name
