"""Encryption at rest in the age format (https://age-encryption.org), through pyrage.

A backup is encrypted to public keys (recipients): the web server that writes backups
needs only those, and only the holder of a private key (an identity) can read them.
Several recipients can be listed (each can decrypt) and several identities (old keys
stay listed after a rotation, so old files still open). Encrypted files are recognised
by their first bytes, whatever their name.

pyrage encrypts and decrypts between two file objects in one call; here that call runs
on a thread of its own, fed or drained through a bounded queue, so the rest of the
pipeline streams through it in constant memory.
"""

from __future__ import annotations

import contextlib
import io
import queue
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..exceptions import BackupFormatError, StorageError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer, WriteableBuffer

AGE_MAGIC = b"age-encryption.org/v1\n"
AGE_ARMORED_MAGIC = b"-----BEGIN AGE ENCRYPTED FILE-----"
QUEUED_CHUNKS = 4


def is_encrypted(first_bytes: bytes) -> bool:
    return first_bytes.startswith((AGE_MAGIC, AGE_ARMORED_MAGIC))


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise StorageError(
            "Encrypted backups need the pyrage package: "
            "pip install 'django-backups-app[encryption]'."
        ) from None
    return pyrage


def parse_recipient(text: str) -> Any:
    """Return a pyrage recipient from an ``age1…`` key or an ``ssh-…`` public key."""
    pyrage = _pyrage()
    text = text.strip()
    try:
        if text.startswith("ssh-"):
            return pyrage.ssh.Recipient.from_str(text)
        return pyrage.x25519.Recipient.from_str(text)
    except Exception as exc:  # pyrage raises its own RecipientError, or ValueError
        shown = text[:12] + "…" if len(text) > 12 else text
        raise StorageError(f"Not an age recipient: {shown!r} ({exc}).") from None


def parse_identities(entries: Sequence[str]) -> list[Any]:
    """Return pyrage identities from ``AGE-SECRET-KEY-1…`` strings or paths of files
    holding them (one per line, ``#`` comments allowed, as age-keygen writes)."""
    pyrage = _pyrage()
    identities = []
    for entry in entries:
        lines = [entry]
        if not entry.strip().upper().startswith("AGE-SECRET-KEY-"):
            try:
                lines = Path(entry).read_text().splitlines()
            except OSError as exc:
                raise StorageError(
                    f"Cannot read the age identity file {entry!r}: {exc.strerror}."
                ) from None
        for line in lines:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                identities.append(pyrage.x25519.Identity.from_str(line))
            except Exception:  # never show any part of a secret key
                raise StorageError(
                    "An entry of BACKUPS['ENCRYPTION']['IDENTITIES'] is not an age "
                    "identity (AGE-SECRET-KEY-1…)."
                ) from None
    return identities


class _QueueReader(io.RawIOBase):
    """The reading end of a bounded queue of byte chunks (b"" marks the end)."""

    def __init__(self, chunks: queue.Queue[bytes | BaseException]):
        self._chunks = chunks
        self._chunk = b""
        self._offset = 0
        self._at_end = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        while self._offset == len(self._chunk):
            if self._at_end:
                return 0
            item = self._chunks.get()
            if isinstance(item, BaseException):
                raise item
            self._chunk, self._offset = item, 0
            self._at_end = not item
        size = min(len(view), len(self._chunk) - self._offset)
        view[:size] = self._chunk[self._offset : self._offset + size]
        self._offset += size
        return size


class _Stopped(Exception):
    """The consumer went away: the thread's pyrage call is to end."""


def _put(chunks: queue.Queue[Any], item: Any, stopping: threading.Event) -> None:
    while True:
        if stopping.is_set():
            raise _Stopped
        try:
            chunks.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


class _QueueWriter(io.RawIOBase):
    def __init__(
        self, chunks: queue.Queue[bytes | BaseException], stopping: threading.Event
    ):
        self._chunks = chunks
        self._stopping = stopping

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        chunk = bytes(data)
        _put(self._chunks, chunk, self._stopping)
        return len(chunk)


class _Encrypting(io.RawIOBase):
    """Bytes written here come out age-encrypted in ``target``."""

    def __init__(self, target: IO[bytes], recipients: list[Any]):
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(QUEUED_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run,
            args=(target, recipients),
            name="backups_app-encrypt",
            daemon=True,
        )
        self._thread.start()

    def _run(self, target: IO[bytes], recipients: list[Any]) -> None:
        try:
            _pyrage().encrypt_io(_QueueReader(self._chunks), target, recipients)
        except BaseException as exc:  # raised to the writer by write() or finish()
            self._error = exc
            # Let a writer blocked on a full queue go on, to see the error.
            with contextlib.suppress(queue.Empty):
                while True:
                    self._chunks.get_nowait()

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        if self._error is not None:
            raise self._error
        chunk = bytes(data)
        while True:
            try:
                self._chunks.put(chunk, timeout=0.1)
                return len(chunk)
            except queue.Full:
                if self._error is not None:
                    raise self._error from None

    def abort(self) -> None:
        """End the thread with an error, so that no complete age file is written."""
        while self._thread.is_alive():
            try:
                self._chunks.put(_Stopped(), timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()

    def finish(self) -> None:
        with contextlib.suppress(queue.Full):
            while self._thread.is_alive():
                try:
                    self._chunks.put(b"", timeout=0.1)
                    break
                except queue.Full:
                    continue
        self._thread.join()
        if self._error is not None:
            raise self._error


@contextlib.contextmanager
def encrypting(target: IO[bytes], recipients: Sequence[str]) -> Iterator[IO[bytes]]:
    """Yield a stream whose bytes are written to ``target`` encrypted to
    ``recipients``; the age file is complete when the block ends without error."""
    parsed = [parse_recipient(r) for r in recipients]
    if not parsed:
        raise StorageError("No age recipient to encrypt the backup to.")
    writer = _Encrypting(target, parsed)
    buffered = io.BufferedWriter(writer, 1 << 20)
    try:
        yield buffered
        buffered.flush()
    except BaseException:
        writer.abort()
        raise
    writer.finish()


class Decrypted(io.RawIOBase):
    """The plaintext of an age-encrypted ``source``, decrypted on a thread."""

    def __init__(self, source: IO[bytes], identities: list[Any], name: str):
        self._name = name
        self._chunks: queue.Queue[bytes | BaseException] = queue.Queue(QUEUED_CHUNKS)
        self._stopping = threading.Event()
        self._reader = _QueueReader(self._chunks)
        self._thread = threading.Thread(
            target=self._run,
            args=(source, identities),
            name="backups_app-decrypt",
            daemon=True,
        )
        self._thread.start()

    def _run(self, source: IO[bytes], identities: list[Any]) -> None:
        pyrage = _pyrage()
        try:
            pyrage.decrypt_io(
                source, _QueueWriter(self._chunks, self._stopping), identities
            )
            _put(self._chunks, b"", self._stopping)
        except _Stopped:
            return
        except (pyrage.DecryptError, OSError) as exc:
            # pyrage reports damaged or cut data (and read errors of the source) as
            # OSErrors whose text says which.
            with contextlib.suppress(_Stopped):
                _put(self._chunks, self._failure(exc), self._stopping)
        except BaseException as exc:
            with contextlib.suppress(_Stopped):
                _put(self._chunks, exc, self._stopping)

    def _failure(self, exc: Exception) -> BackupFormatError:
        text = str(exc)
        if "no matching keys" in text.lower() or "no identity matched" in text.lower():
            return BackupFormatError(
                f"{self._name}: is encrypted, but not to any of the identities in "
                "BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)."
            )
        return BackupFormatError(
            f"{self._name}: cannot be decrypted: the encrypted data is damaged or "
            f"cut short ({text})."
        )

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        return self._reader.readinto(buffer)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        super().close()


def decrypting(source: IO[bytes], identities: Sequence[str], name: str) -> Decrypted:
    """Return the decrypted stream of ``source``; close it when done."""
    parsed = parse_identities(identities)
    if not parsed:
        raise BackupFormatError(
            f"{name}: is encrypted; set BACKUPS['ENCRYPTION']['IDENTITIES'] to the "
            "age identity (private key) it was encrypted for."
        )
    return Decrypted(source, parsed, name)
