"""The file stack: rows -> encode -> compress -> encrypt -> storage, and back.

Writing, the codec comes from the file's name (``.jsonl``, ``.jsonl.gz``,
``.jsonl.zst``, each optionally followed by ``.age``) and the settings say only what
the name does not: the level, and the recipients to encrypt to. Reading, the name is
ignored: age, gzip and zstd are recognised by their first bytes, so a file renamed
or uploaded under any name is read as what it is.

Each layer that costs CPU runs on a thread of its own (encryption and decryption in
``encryption``, decompression here; the threads are ``pipeline``'s), a few chunks
ahead of the next one, so the layers overlap and memory stays bounded by their
queues.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, cast

from ..conf import app_settings
from ..exceptions import BackupFormatError, StorageError
from .compression import AGE_SUFFIX, NONE, Codec, codec_named, detect, split_name
from .encryption import decrypting, encrypting, is_encrypted
from .pipeline import BackgroundReader, ChunkQueue

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

READ_BUFFER = 1 << 20
READ_AHEAD_CHUNKS = 2
# Enough of a file's start to tell age from gzip from zstd from JSON.
MAGIC_BYTES = 64


@dataclass(frozen=True)
class Layers:
    """What a new file goes through on its way to storage."""

    codec: Codec
    level: int
    recipients: tuple[str, ...] = ()

    @property
    def encrypted(self) -> bool:
        return bool(self.recipients)

    @property
    def suffix(self) -> str:
        return f".jsonl{self.codec.suffix}" + (AGE_SUFFIX if self.encrypted else "")


def configured_codec() -> Codec:
    return codec_named(app_settings.COMPRESSION)


def level_for(codec: Codec) -> int:
    """Return BACKUPS['COMPRESSION_LEVEL'] for the configured codec, else the
    codec's own default (a level of gzip means nothing to zstd)."""
    level = app_settings.COMPRESSION_LEVEL
    if level is None or codec is not configured_codec():
        return codec.default_level
    return level


def configured_layers() -> Layers:
    """Return the layers BACKUPS asks for, for names the app makes itself."""
    codec = configured_codec()
    return Layers(codec, level_for(codec), tuple(app_settings.RECIPIENTS))


def layers_for_name(name: str) -> Layers:
    """Return the layers a file name asks for; StorageError for an unknown suffix,
    or an ``.age`` name when no recipient is configured."""
    codec, encrypted = split_name(name)
    recipients: tuple[str, ...] = ()
    if encrypted:
        recipients = tuple(app_settings.RECIPIENTS)
        if not recipients:
            raise StorageError(
                f"{name!r} asks for encryption (.age), but "
                "BACKUPS['ENCRYPTION']['RECIPIENTS'] is empty."
            )
    return Layers(codec, level_for(codec), recipients)


def layers_for_stream(name: str) -> Layers:
    """Return the layers of a stream (standard output, a device, a FIFO, a file
    object): what its name asks for, or plain JSON Lines when its name has no
    suffix at all (``<stdout>``, ``/dev/stdout``), to be piped into whatever the
    shell does with it. A suffix other than a backup's is refused, as for a file."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if "." not in base or base.startswith("<"):
        return Layers(NONE, 0)
    return layers_for_name(name)


@contextlib.contextmanager
def encoded(target: IO[bytes], layers: Layers) -> Iterator[IO[bytes]]:
    """Yield a stream whose bytes reach ``target`` compressed, then encrypted.

    The encrypted file is complete only when the block ends without an error; after
    an error what reached ``target`` cannot be decrypted.
    """
    with contextlib.ExitStack() as stack:
        out = target
        if layers.encrypted:
            out = stack.enter_context(encrypting(out, layers.recipients))
        yield stack.enter_context(layers.codec.writer(out, layers.level))


def starts_encrypted(raw: io.RawIOBase) -> bool:
    """Whether the stored file ``raw`` reads from the start of is age-encrypted."""
    return is_encrypted(io.BufferedReader(_Filling(raw), MAGIC_BYTES).peek(MAGIC_BYTES))


@contextlib.contextmanager
def decoded(
    raw: io.RawIOBase,
    name: str,
    identities: Sequence[str] | None = None,
    noted: Callable[[bool], None] | None = None,
) -> Iterator[IO[bytes]]:
    """Yield the plain content of a stored file: decrypted if it is age (with
    ``identities``, by default BACKUPS['ENCRYPTION']['IDENTITIES']), then
    decompressed if it is gzip or zstd, as its first bytes say. ``noted`` is told
    whether it was encrypted."""
    with contextlib.ExitStack() as stack:
        buffered = io.BufferedReader(_Filling(raw), READ_BUFFER)
        encrypted = is_encrypted(buffered.peek(MAGIC_BYTES))
        if noted is not None:
            noted(encrypted)
        if encrypted:
            if identities is None:
                identities = app_settings.IDENTITIES
            decrypted = decrypting(buffered, identities, name)
            stack.callback(decrypted.close)
            buffered = io.BufferedReader(_Filling(decrypted), READ_BUFFER)
            try:
                first = buffered.peek(MAGIC_BYTES)
            except BackupFormatError as exc:
                # A wrong key shows at the first bytes; the reader's errors name
                # the file, and so does this one.
                raise BackupFormatError(f"{name}: {exc}") from exc
        else:
            first = buffered.peek(MAGIC_BYTES)
        codec = detect(first)
        if codec is NONE:
            yield buffered
            return
        decompressed = _Decompressed(
            codec.chunks(buffered, app_settings.MAX_EXPANSION_RATIO)
        )
        stack.callback(decompressed.stop)
        yield cast(IO[bytes], decompressed)


class _Filling(io.RawIOBase):
    """Fill each buffer as far as the stream allows: a stream that hands out small
    pieces still shows a reader its first MAGIC_BYTES bytes at once."""

    def __init__(self, raw: io.RawIOBase | io.BufferedIOBase):
        self._raw = raw

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        filled = 0
        while filled < len(view):
            count = self._raw.readinto(view[filled:])
            if not count:
                break
            filled += count
        return filled


class _Decompressed(BackgroundReader):
    """Decompress on a thread of its own, a few chunks ahead of the reader.

    zlib and zstd release the GIL, so decompressing overlaps with parsing and
    comparing rows. At most READ_AHEAD_CHUNKS chunks wait, which bounds memory; an
    error in the thread is raised to the reader in stream order.
    """

    def __init__(self, chunks: Iterator[bytes]):
        def decompress(queue: ChunkQueue) -> None:
            for chunk in chunks:
                queue.send(chunk)

        super().__init__(decompress, name="backups_app-reader", size=READ_AHEAD_CHUNKS)
