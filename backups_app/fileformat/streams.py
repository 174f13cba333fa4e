"""Where backups are read from and written to: paths, the backup storage, stdin/stdout.

Writes go to a temporary name next to the destination and are moved into place only
when complete, so a half-written file never carries a backup's name.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import stat
import sys
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.files.storage.handler import InvalidStorageError

from ..conf import app_settings
from ..exceptions import StorageError, one_line
from .compression import split_name
from .objectstore import (
    MultipartUpload,
    ObjectStore,
    RangedReader,
    abort_stale_uploads,
    object_store,
)
from .stack import (
    Layers,
    configured_layers,
    decoded,
    encoded,
    layers_for_name,
    layers_for_stream,
    starts_encrypted,
)

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

READ_BUFFER = 1 << 20
STDIO = "-"
# Temporary files of backups being written: ".backup-<host>-<pid>-<random>.partial",
# locked (flock) by their writer until they are complete.
PARTIAL_NAME = re.compile(r"\.backup-(?P<host>.+)-(?P<pid>\d+)-[a-z0-9_]{8}\.partial")
# A partial file left by a writer on another host (or whose pid was reused) is
# removed only when it has not been written to for this long.
STALE_AFTER = 3600

try:
    import fcntl
except ImportError:  # Windows: no locks; partial files are left alone
    fcntl = None  # type: ignore[assignment]


def backup_storage() -> Storage:
    """Return the storage that holds backups (``STORAGES[BACKUPS['STORAGE']]``)."""
    try:
        return storages[app_settings.STORAGE]
    except InvalidStorageError:
        return FileSystemStorage(location=app_settings.DIRECTORY)


def new_backup_name(database: str, template: str | None = None) -> str:
    """Return a name for a new backup in the storage: the template's, ending in the
    suffix COMPRESSION and ENCRYPTION ask for unless the template has its own."""
    timestamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    template = template or app_settings.FILENAME_TEMPLATE
    name = template.format(database=database, timestamp=timestamp)
    try:
        split_name(name)
    except StorageError:
        return name + configured_layers().suffix
    return name


def _local_path(storage: Storage, name: str) -> Path | None:
    try:
        return Path(storage.path(name))
    except NotImplementedError:
        return None


def stored_path(name: str) -> Path | None:
    """Return the local path of a name in the backup storage, when it has one."""
    return _local_path(backup_storage(), name)


class BackupSource:
    """A backup to read: a path, a name in the backup storage, ``-`` or a file object.

    ``open()`` may be called more than once (restores and validations check the
    whole file, then read it again). The file opened the first time is kept open
    and read again from its start, so a path or storage name replaced in between
    does not change what is read; standard input and file objects are spooled to a
    temporary file on first use. Readers still compare the second read's digest
    with the first's, for storages that can only be opened anew. ``close()`` (or
    garbage collection) closes it.
    """

    # Who can decrypt the file; None: BACKUPS['ENCRYPTION']['IDENTITIES'].
    _identities: Sequence[str] | None = None
    _encrypted: bool | None = None  # is_encrypted(), once opened or asked

    def __init__(self, source: str | os.PathLike[str] | IO[bytes]):
        self._source = source
        self._handle: IO[bytes] | None = None
        self._finalizer: weakref.finalize[[], BackupSource] | None = None
        self._storage_name: str | None = None
        self._path: Path | None = None
        if isinstance(source, (str, os.PathLike)):
            text = os.fspath(source)
            self.name = text
            if text == STDIO:
                return
            path = Path(text)
            if path.is_file():
                self._path = path
                return
            if path.exists():
                raise StorageError(f"{text!r} is not a file.")
            if not self._in_storage(text):
                raise StorageError(
                    f"No backup at {text!r}: no such file, and no such name in the "
                    "backup storage."
                )
            self._storage_name = text
        else:
            self.name = getattr(source, "name", None) or "stream"

    @classmethod
    def from_storage(cls, name: str) -> BackupSource:
        """Return the backup stored under ``name``, never a path on this machine."""
        source = cls.__new__(cls)
        source._source = name
        source._handle = None
        source._finalizer = None
        source._path = None
        source.name = name
        if not cls._in_storage(name):
            raise StorageError(f"No backup named {name!r} in the backup storage.")
        source._storage_name = name
        return source

    @classmethod
    def adopt(
        cls, handle: IO[bytes], name: str, identities: Sequence[str] | None = None
    ) -> BackupSource:
        """Return a source reading ``handle`` (a file of this process, such as a
        temporary file; closed with the source), called ``name``, decrypted (if it
        is encrypted) with ``identities`` rather than the configured ones."""
        source = cls.__new__(cls)
        source._identities = identities
        source._source = handle
        source._handle = handle
        source._finalizer = weakref.finalize(source, handle.close)
        source._path = None
        source._storage_name = None
        source.name = name
        return source

    @staticmethod
    def _in_storage(name: str) -> bool:
        try:
            return bool(name) and backup_storage().exists(name)
        except SuspiciousFileOperation:
            # A path outside the storage's folder is simply not one of its names.
            return False
        except Exception as exc:  # storages raise anything from OSError to SDK errors
            raise StorageError(
                f"Cannot look up {name!r} in the backup storage: {one_line(exc)}"
            ) from exc

    @property
    def storage_name(self) -> str | None:
        return self._storage_name

    @property
    def path(self) -> Path | None:
        return self._path

    def _first_open(self) -> IO[bytes]:
        if self._path is not None:
            try:
                return open(self._path, "rb")  # noqa: SIM115 (kept; closed by close())
            except OSError as exc:
                raise StorageError(
                    f"Cannot read {self.name!r}: {exc.strerror}."
                ) from exc
        if self._storage_name is not None:
            return self._open_stored()
        stream = (
            sys.stdin.buffer if self._source == STDIO else cast(IO[bytes], self._source)
        )
        spooled = tempfile.TemporaryFile(prefix="backups_app-")  # noqa: SIM115
        try:
            shutil.copyfileobj(stream, spooled, READ_BUFFER)
        except BaseException:
            spooled.close()
            raise
        return spooled

    def _open_stored(self) -> IO[bytes]:
        assert self._storage_name is not None
        storage = backup_storage()
        store = object_store(storage)
        if store is not None:
            # Ranged GETs of one version of the object, never the whole of it.
            return cast(IO[bytes], RangedReader(store, self._storage_name))
        try:
            return storage.open(self._storage_name, "rb")
        except OSError as exc:
            raise StorageError(f"Cannot read {self.name!r}: {one_line(exc)}.") from exc

    def _open_raw(self) -> tuple[io.RawIOBase, IO[bytes] | None]:
        """Return a raw stream from the start of the file, and a file to close
        after it (None: the kept one)."""
        if self._handle is None:
            self._handle = self._first_open()
            self._finalizer = weakref.finalize(self, self._handle.close)
        try:
            descriptor = self._handle.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            descriptor = None
        if descriptor is not None:
            return _Positional(descriptor), None
        if isinstance(self._handle, RangedReader):
            # The same version of the object as the first read, from its start.
            return self._handle.reopen(), None
        if getattr(self._handle, "seekable", lambda: False)():
            self._handle.seek(0)
            return _Readable(self._handle), None
        # A storage that can only be read once per opening: open it anew.
        fresh = self._open_stored() if self._storage_name else self._handle
        return _Readable(fresh), fresh if fresh is not self._handle else None

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """Yield the plain content (decrypted, decompressed) as a binary stream to
        ``read()`` from."""
        raw, to_close = self._open_raw()
        try:
            with decoded(raw, self.name, self._identities, self._note) as stream:
                yield stream
        finally:
            if to_close is not None:
                to_close.close()

    def _note(self, encrypted: bool) -> None:
        self._encrypted = encrypted

    def is_encrypted(self) -> bool:
        """Whether the file is age-encrypted, as its first bytes say (known without
        a read once it was opened)."""
        if self._encrypted is None:
            raw, to_close = self._open_raw()
            try:
                self._encrypted = starts_encrypted(raw)
            finally:
                if to_close is not None:
                    to_close.close()
        return self._encrypted

    def size(self) -> int | None:
        if self._path is not None:
            return self._path.stat().st_size
        if self._storage_name is not None:
            return backup_storage().size(self._storage_name)
        return None

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
        if self._handle is not None:
            self._handle.close()
        self._handle = self._finalizer = None


class _Positional(io.RawIOBase):
    """Read a file descriptor from its start with positioned reads: readers of the
    same kept file do not move each other's offset."""

    def __init__(self, descriptor: int):
        self._descriptor = descriptor
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        count = os.preadv(self._descriptor, [buffer], self._offset)
        self._offset += count
        return count


class _Readable(io.RawIOBase):
    """Adapt any object with ``read()`` (a storage file) to what BufferedReader wants."""

    def __init__(self, file: IO[bytes]):
        self._file = file

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        data = self._file.read(len(view))
        view[: len(data)] = data
        return len(data)


def _require_directory(directory: Path, name: str) -> None:
    """Refuse a path into a directory that does not exist, as pg_dump does: a typo
    in a path must not quietly make a new tree of folders."""
    if directory.is_dir():
        return
    if directory.exists() or directory.is_symlink():
        problem = "is not a directory"
    else:
        problem = "does not exist"
    raise StorageError(
        f"Cannot write {name!r}: the directory {str(directory)!r} {problem}."
    )


class BackupTarget:
    """Where a new backup goes: a path, the backup storage (by name), or ``-``.

    The name chooses what the bytes go through (``pipeline.layers_for_name``): a
    path or storage name must end in a backup suffix; a stream without one is
    written as plain JSON Lines.
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[bytes] | None,
        database: str,
        template: str | None = None,
    ):
        self.storage_name: str | None = None
        self.path: Path | None = None
        self.stream: IO[bytes] | None = None
        # A character device or a FIFO: written into as a stream, never replaced.
        self.write_through = False
        if target is None:
            self.storage_name = new_backup_name(database, template)
            self.name = self.storage_name
        elif isinstance(target, (str, os.PathLike)):
            text = os.fspath(target)
            if text == STDIO:
                self.stream = _standard_output()
                self.name = "<stdout>"
            else:
                self.path = Path(text)
                self.name = text
                self.write_through = _writes_through(self.path, text)
                if not self.write_through:
                    _require_directory(self.path.parent, text)
        else:
            self.stream = target
            self.name = getattr(target, "name", None) or "stream"
            if not isinstance(self.name, str):
                self.name = "stream"  # a file object opened on a descriptor
        if self.stream is not None or self.write_through:
            self.layers: Layers = layers_for_stream(self.name)
        else:
            self.layers = layers_for_name(self.name)
        self.final_name = self.name
        self.size = 0

    @property
    def compressed(self) -> bool:
        return bool(self.layers.codec.magic)

    @property
    def encrypted(self) -> bool:
        return self.layers.encrypted

    @contextlib.contextmanager
    def open(self) -> Iterator[IO[bytes]]:
        """Yield a binary stream; on success move the file into place, else remove it."""
        if self.stream is not None:
            try:
                with encoded(self.stream, self.layers) as stream:
                    yield stream
            except OSError:
                if self.stream is _standard_output_or_none():
                    _silence_standard_output()
                raise
            return
        if self.write_through:
            assert self.path is not None  # only a path writes through
            with (
                _open_device(self.path, self.name) as device,
                encoded(device, self.layers) as stream,
            ):
                yield stream
            return
        if self.storage_name is not None:
            store = object_store(backup_storage())
            if store is not None:
                yield from self._upload(store)
                return
        directory = self._temporary_directory()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            remove_stale_partials(directory)
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below)
                dir=directory, prefix=_partial_prefix(), suffix=".partial", delete=False
            )
        except OSError as exc:
            raise StorageError(
                f"Cannot write to {str(directory)!r}: {exc.strerror}."
            ) from exc
        temporary = Path(handle.name)
        try:
            if fcntl is not None:
                # Held until the file is closed (or its writer dies): tells a later
                # backup that this partial file is still being written.
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            with handle:
                with encoded(handle, self.layers) as stream:
                    yield stream
                handle.flush()
                os.fsync(handle.fileno())
            self.size = temporary.stat().st_size
            self._move_into_place(temporary)
        finally:
            temporary.unlink(missing_ok=True)

    def _upload(self, store: ObjectStore) -> Iterator[IO[bytes]]:
        """Stream the backup to the object storage as a multipart upload: no local
        copy, the object appears under its name only when complete, never over
        another, and an interrupted upload is aborted."""
        assert self.storage_name is not None
        with contextlib.suppress(Exception):
            # Uploads of killed backups (best effort: the listing may be denied).
            abort_stale_uploads(store, app_settings.STALE_UPLOAD_AGE)
        # A name already taken is not even tried (If-None-Match would refuse it).
        name = store.free_name(self.storage_name, self.layers.suffix)
        upload = MultipartUpload(store, name)
        try:
            with encoded(cast(IO[bytes], upload), self.layers) as stream:
                yield stream
            upload.complete()
        except BaseException:
            upload.abort()
            raise
        self.size = upload.size
        self.storage_name = self.final_name = self.name = name

    def _temporary_directory(self) -> Path:
        if self.path is not None:
            return self.path.parent if str(self.path.parent) else Path.cwd()
        assert self.storage_name is not None
        local = _local_path(backup_storage(), self.storage_name)
        return local.parent if local is not None else Path(tempfile.gettempdir())

    def _move_into_place(self, temporary: Path) -> None:
        if self.path is not None:
            try:
                os.replace(temporary, self.path)
            except OSError as exc:
                raise StorageError(
                    f"Cannot write {self.name!r}: {exc.strerror}."
                ) from exc
            return
        assert self.storage_name is not None
        storage = backup_storage()
        name = storage.get_available_name(self.storage_name)
        local = _local_path(storage, name)
        try:
            if local is not None:
                os.replace(temporary, local)
            else:
                with open(temporary, "rb") as file:
                    name = storage.save(name, File(file, name=name))
        except OSError as exc:
            raise StorageError(
                f"Cannot save {name!r} to the backup storage: {one_line(exc)}."
            ) from exc
        self.storage_name = self.final_name = self.name = name


def _standard_output_or_none() -> IO[bytes] | None:
    return getattr(sys.stdout, "buffer", None)


def _standard_output() -> IO[bytes]:
    """Return standard output's binary stream; refuse a closed one."""
    stream = _standard_output_or_none()
    try:
        if stream is None:
            raise ValueError
        os.fstat(stream.fileno())
    except io.UnsupportedOperation:
        pass  # a stream without a descriptor, as tests capture output
    except (OSError, ValueError):
        raise StorageError("Cannot write to standard output: it is closed.") from None
    assert stream is not None  # refused above
    return stream


def _silence_standard_output() -> None:
    """After a write to standard output failed (its reader went away), point it at
    the null device, so that the interpreter's last flush does not fail again with a
    second message."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    except (OSError, ValueError, AttributeError):
        pass


def _writes_through(path: Path, text: str) -> bool:
    """Tell whether ``path`` is a character device or a FIFO, written into as a
    stream (True), or a regular file or a new name, replaced or created when the
    backup is complete (False). Refuse anything else, and a symbolic link other
    than one to a device or a FIFO (such as /dev/stdout)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        # Nothing there (or no folder to hold it): writing says why, if it fails.
        return False
    if stat.S_ISLNK(mode):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = 0
        if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
            return True
        raise StorageError(
            f"Refusing to write {text!r}: it is a symbolic link; give the path it "
            "points to, or another."
        )
    if stat.S_ISREG(mode):
        return False
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode):
        return True
    if stat.S_ISDIR(mode):
        raise StorageError(f"Cannot write {text!r}: it is a directory.")
    raise StorageError(
        f"Refusing to write {text!r}: it is neither a regular file nor a character "
        "device nor a FIFO."
    )


@contextlib.contextmanager
def _open_device(path: Path, text: str) -> Iterator[IO[bytes]]:
    # No O_CREAT: if the device went away since, nothing is created in its place.
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_NOCTTY)
    except OSError as exc:
        raise StorageError(f"Cannot write {text!r}: {exc.strerror}.") from exc
    mode = os.fstat(descriptor).st_mode
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        os.close(descriptor)
        raise StorageError(f"Cannot write {text!r}: it changed while it was opened.")
    with open(descriptor, "wb") as device:
        yield device


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname()) or "host"


def _partial_prefix() -> str:
    return f".backup-{_host()}-{os.getpid()}-"


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def partial_state(name: str) -> str | None:
    """Say what a partial file named ``name`` is: ``writing`` (its writer runs on
    this host), ``left behind`` (its writer is gone; the next backup removes it),
    ``other host``; None when the name is not one of a partial file."""
    match = PARTIAL_NAME.fullmatch(name)
    if match is None:
        return None
    if match["host"] != _host():
        return "other host"
    return "writing" if _process_exists(int(match["pid"])) else "left behind"


def remove_stale_partials(directory: Path) -> list[str]:
    """Remove the partial files that killed backups left in ``directory``.

    Only files named as this app names them, regular files of this user, that no
    writer holds locked, and whose writer's process is gone (same host) or that have
    not been written to for STALE_AFTER seconds. Returns the names removed.
    """
    if fcntl is None:
        return []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    host = _host()
    removed = []
    for entry in entries:
        match = PARTIAL_NAME.fullmatch(entry.name)
        if match is None:
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            continue
        writer_gone = match["host"] == host and not _process_exists(int(match["pid"]))
        if not writer_gone and time.time() - info.st_mtime < STALE_AFTER:
            continue
        try:
            descriptor = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(descriptor).st_ino == info.st_ino:
                os.unlink(entry.path)
                removed.append(entry.name)
        except OSError:
            continue  # locked: its writer is still at work
        finally:
            os.close(descriptor)
    return removed
