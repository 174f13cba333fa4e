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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..conf import app_settings
from ..exceptions import BackupFormatError, StorageError, one_line
from .pipeline import (
    BackgroundReader,
    BackgroundWriter,
    ChunkQueue,
    ChunkReader,
    ChunkWriter,
)

if TYPE_CHECKING:
    pass

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


class ScratchKey:
    """An age key made for the scratch files of one operation and never stored.

    What a restore spills to this machine's disk (rows it will write or remove, the
    backup an undo file stands for) is encrypted to it when the backup is encrypted
    or backups are to be: no plaintext row reaches the disk, and none can be read
    once the process ends.
    """

    def __init__(self) -> None:
        self._identity = _pyrage().x25519.Identity.generate()
        self._recipient = self._identity.to_public()
        self.identity = str(self._identity)
        self.recipient = str(self._recipient)

    def seal(self, data: bytes) -> bytes:
        return bytes(_pyrage().encrypt(data, [self._recipient]))

    def unseal(self, data: bytes) -> bytes:
        return bytes(_pyrage().decrypt(data, [self._identity]))


def scratch_key(encrypted: bool) -> ScratchKey | None:
    """Return a new ScratchKey when the file at hand is ``encrypted`` or
    BACKUPS['ENCRYPTION'] names recipients, else None (scratch files stay plain)."""
    return ScratchKey() if encrypted or app_settings.RECIPIENTS else None


def sealed(
    target: IO[bytes], key: ScratchKey | None
) -> contextlib.AbstractContextManager[IO[bytes]]:
    """``target`` itself, or with a ``key``, a stream whose bytes reach it
    encrypted to that key (see ``encrypting``)."""
    if key is None:
        return contextlib.nullcontext(target)
    return encrypting(target, [key.recipient])


class _Encrypting(BackgroundWriter):
    """Bytes written here come out age-encrypted in ``target``."""

    def __init__(self, target: IO[bytes], recipients: list[Any]):
        def encrypt(plain: ChunkReader) -> None:
            _pyrage().encrypt_io(plain, target, recipients)

        super().__init__(encrypt, name="backups_app-encrypt", size=QUEUED_CHUNKS)


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
        # Closed under it, the buffer is dropped rather than flushed into the
        # stopped encryption (an error nobody could catch) when it is collected.
        writer.close()
        raise
    writer.finish()


class Decrypted(BackgroundReader):
    """The plaintext of an age-encrypted ``source``, decrypted on a thread."""

    def __init__(self, source: IO[bytes], identities: list[Any], name: str):
        self._name = name

        def decrypt(chunks: ChunkQueue) -> None:
            _pyrage().decrypt_io(source, ChunkWriter(chunks), identities)

        super().__init__(decrypt, name="backups_app-decrypt", size=QUEUED_CHUNKS)

    def failure(self, exc: BaseException) -> BaseException:
        # pyrage reports damaged or cut data (and read errors of the source) as
        # OSErrors whose text says which.
        if isinstance(exc, (_pyrage().DecryptError, OSError)):
            return self._failure(exc)
        return exc

    def _failure(self, exc: Exception) -> BackupFormatError:
        # Raised to the reader of the stream, which puts the file's name before it.
        text = str(exc)
        if "no matching keys" in text.lower() or "no identity matched" in text.lower():
            return BackupFormatError(
                "is encrypted, but not to any of the identities in "
                "BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)"
            )
        return BackupFormatError(
            "cannot be decrypted: the encrypted data is damaged or cut short "
            f"({one_line(exc)})"
        )

    def close(self) -> None:
        self.stop()
        super().close()


def decrypting(source: IO[bytes], identities: Sequence[str], name: str) -> Decrypted:
    """Return the decrypted stream of ``source``; close it when done."""
    parsed = parse_identities(identities)
    if not parsed:
        raise BackupFormatError(
            f"{name}: is encrypted, and BACKUPS['ENCRYPTION']['IDENTITIES'] is "
            "empty: set it to the age identity (private key) it was encrypted for."
        )
    return Decrypted(source, parsed, name)
