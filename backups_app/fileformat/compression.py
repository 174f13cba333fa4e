"""Compression codecs of backup files: gzip (the default), zstd and none.

A writer picks the codec from the file name's suffix (``.jsonl``, ``.jsonl.gz``,
``.jsonl.zst``, each optionally followed by ``.age`` for encryption) and refuses any
other suffix, so that a file is never silently written in a form its name denies. A
reader ignores the name and recognises the codec by the file's first bytes.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ..exceptions import BackupFormatError, StorageError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
AGE_SUFFIX = ".age"
# Decompression reads 512 KB of compressed input at a time and hands out at most 2 MB
# at a time: few, long stretches without the GIL, so it gets in the way of the
# reader seldom.
COMPRESSED_READ = 1 << 19
DECOMPRESSED_CHUNK = 2 << 20
GZIP_WBITS = 16 + zlib.MAX_WBITS
WRITE_BUFFER = 1 << 20
# MAX_EXPANSION_RATIO applies once a file has expanded to more than this: small
# files of very repetitive rows may expand a lot, and cost little.
EXPANSION_ALLOWANCE = 64 << 20


def _zstd() -> Any:
    """Return the zstd module: the standard library's from Python 3.14, else the
    backport; a one-line error when neither is installed."""
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        try:
            from backports import zstd
        except ImportError:
            raise StorageError(
                "zstd needs the backports.zstd package before Python 3.14: "
                "pip install 'django-backups-app[zstd]'."
            ) from None
    return zstd


def too_expanded(ratio: float) -> BackupFormatError:
    return BackupFormatError(
        f"is refused as damaged: it expands to more than {ratio} times its "
        "compressed size (BACKUPS['MAX_EXPANSION_RATIO'])"
    )


def _bounded(
    pieces: Iterator[tuple[int, bytes]], max_ratio: float | None
) -> Iterator[bytes]:
    """Pass on decompressed pieces (with the compressed bytes taken so far); raise
    BackupFormatError once more than EXPANSION_ALLOWANCE bytes came out of more than
    ``max_ratio`` times fewer, before handing that piece on."""
    given = 0
    limit = max_ratio or float("inf")
    for taken, out in pieces:
        given += len(out)
        if given > EXPANSION_ALLOWANCE and given > limit * taken:
            raise too_expanded(limit)
        yield out


def gunzip(compressed: IO[bytes], max_ratio: float | None = None) -> Iterator[bytes]:
    """Yield the decompressed bytes of a gzip stream, in pieces of DECOMPRESSED_CHUNK
    bytes at most.

    Reads every member of the stream, skips the zero bytes gzip allows between
    them, and checks each member's CRC and length (zlib does, with ``wbits=31``).
    Raises EOFError when the stream ends inside a member, zlib.error when it is not
    gzip or is damaged, as the gzip module does, and BackupFormatError once more
    than EXPANSION_ALLOWANCE bytes came out of more than ``max_ratio`` times fewer.
    """
    return _bounded(_gunzip_pieces(compressed), max_ratio)


def _gunzip_pieces(compressed: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    inflater = None
    taken = 0
    while data := compressed.read(COMPRESSED_READ):
        taken += len(data)
        while data:
            if inflater is None:
                data = data.lstrip(b"\0")
                if not data:
                    break
                inflater = zlib.decompressobj(GZIP_WBITS)
            out = inflater.decompress(data, DECOMPRESSED_CHUNK)
            # All the input is taken and all its output given only when the output
            # is shorter than asked; else the rest comes with the next call.
            while len(out) == DECOMPRESSED_CHUNK:
                yield taken, out
                out = inflater.decompress(inflater.unconsumed_tail, DECOMPRESSED_CHUNK)
            if out:
                yield taken, out
            data = b""
            if inflater.eof:
                data, inflater = inflater.unused_data, None
    if inflater is not None:
        raise EOFError(
            "Compressed file ended before the end-of-stream marker was reached"
        )


def unzstd(compressed: IO[bytes], max_ratio: float | None = None) -> Iterator[bytes]:
    """Yield the decompressed bytes of a zstd stream (every frame of it), in pieces
    of DECOMPRESSED_CHUNK bytes at most, bounded as ``gunzip`` is. Raises EOFError
    when the stream ends inside a frame and ValueError when it is damaged."""
    return _bounded(_unzstd_pieces(compressed), max_ratio)


def _unzstd_pieces(compressed: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    zstd = _zstd()
    try:
        yield from _unzstd_frames(zstd, compressed)
    except zstd.ZstdError as exc:
        # A ValueError, as zlib's errors are read: "cannot be read past line N".
        raise ValueError(f"damaged zstd data ({exc})") from exc


def _unzstd_frames(zstd: Any, compressed: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    decompressor = None
    taken = 0
    while data := compressed.read(COMPRESSED_READ):
        taken += len(data)
        while data:
            if decompressor is None:
                decompressor = zstd.ZstdDecompressor()
            out = decompressor.decompress(data, DECOMPRESSED_CHUNK)
            while True:
                if out:
                    yield taken, out
                if decompressor.eof or decompressor.needs_input:
                    break
                out = decompressor.decompress(b"", DECOMPRESSED_CHUNK)
            data = b""
            if decompressor.eof:
                data, decompressor = decompressor.unused_data, None
    if decompressor is not None:
        raise EOFError(
            "Compressed file ended before the end-of-stream marker was reached"
        )


def identity(stream: IO[bytes], max_ratio: float | None = None) -> Iterator[bytes]:
    while data := stream.read(DECOMPRESSED_CHUNK):
        yield data


@contextlib.contextmanager
def _gzip_writer(stream: IO[bytes], level: int) -> Iterator[IO[bytes]]:
    with gzip.GzipFile(fileobj=stream, mode="wb", compresslevel=level, mtime=0) as out:
        buffered = io.BufferedWriter(out, WRITE_BUFFER)
        yield buffered
        buffered.flush()


class _ZstdWriter(io.RawIOBase):
    def __init__(self, stream: IO[bytes], level: int):
        self._stream = stream
        zstd = _zstd()
        parameter = zstd.CompressionParameter
        # With a checksum of each frame's content, as gzip has its CRC: a damaged
        # file is an error of decompression, before its digests are even compared.
        self._compressor = zstd.ZstdCompressor(
            options={parameter.compression_level: level, parameter.checksum_flag: 1}
        )

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self._stream.write(self._compressor.compress(view))
        return view.nbytes

    def finish(self) -> None:
        self._stream.write(self._compressor.flush())


@contextlib.contextmanager
def _zstd_writer(stream: IO[bytes], level: int) -> Iterator[IO[bytes]]:
    writer = _ZstdWriter(stream, level)
    buffered = io.BufferedWriter(writer, WRITE_BUFFER)
    try:
        yield buffered
        buffered.flush()
    except BaseException:
        # Closed under it, the buffer is dropped rather than flushed when collected.
        writer.close()
        raise
    writer.finish()


@contextlib.contextmanager
def _plain_writer(stream: IO[bytes], level: int) -> Iterator[IO[bytes]]:
    yield stream


@dataclass(frozen=True)
class Codec:
    name: str
    suffix: str  # after ".jsonl"
    magic: bytes
    default_level: int
    levels: range
    writer: Callable[[IO[bytes], int], contextlib.AbstractContextManager[IO[bytes]]]
    chunks: Callable[[IO[bytes], float | None], Iterator[bytes]]


GZIP = Codec("gzip", ".gz", GZIP_MAGIC, 1, range(0, 10), _gzip_writer, gunzip)
ZSTD = Codec("zstd", ".zst", ZSTD_MAGIC, 1, range(-7, 23), _zstd_writer, unzstd)
NONE = Codec("none", "", b"", 0, range(0, 1), _plain_writer, identity)
CODECS = (GZIP, ZSTD, NONE)
SUFFIXES = tuple(f".jsonl{codec.suffix}" for codec in CODECS)


def split_name(name: str) -> tuple[Codec, bool]:
    """Return the codec a file name asks for, and whether it asks for encryption.

    Raises StorageError for a name that does not end in a known suffix.
    """
    encrypted = name.endswith(AGE_SUFFIX)
    base = name.removesuffix(AGE_SUFFIX) if encrypted else name
    for codec in (GZIP, ZSTD, NONE):
        if base.endswith(f".jsonl{codec.suffix}"):
            return codec, encrypted
    known = ", ".join(SUFFIXES)
    raise StorageError(
        f"{name!r} does not end in a backup suffix: one of {known}, optionally "
        f"followed by {AGE_SUFFIX} for an encrypted file."
    )


def codec_named(name: str) -> Codec:
    for codec in CODECS:
        if codec.name == name:
            return codec
    raise StorageError(
        f"Unknown compression {name!r}: one of {', '.join(c.name for c in CODECS)}."
    )


def detect(first_bytes: bytes) -> Codec:
    """Return the codec of a stream that starts with ``first_bytes``."""
    for codec in (GZIP, ZSTD):
        if first_bytes.startswith(codec.magic):
            return codec
    return NONE
