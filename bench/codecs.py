"""Time the codecs and age on one backup's plain bytes, in this process (CPU time).

    python bench/codecs.py FILE.jsonl [--levels gzip:1,gzip:6,gzip:9,zstd:1,zstd:3,...]

FILE is a plain (uncompressed) backup, for instance ``backup --output f.jsonl`` of
the bench database. Each codec and level compresses it through the app's own writer
and decompresses it through the app's own reader (``fileformat/compression.py``),
then age encrypts and decrypts the compressed bytes (``fileformat/encryption.py``).
CPU seconds of this process (``time.process_time``, threads included) are less
disturbed by other work on the machine than wall time; both are printed.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_LEVELS = "gzip:1,gzip:3,gzip:6,gzip:9,zstd:1,zstd:3,zstd:6,zstd:9,zstd:19"


def timed(work, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    result = work(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--levels", default=DEFAULT_LEVELS)
    args = parser.parse_args()

    from pyrage import x25519

    from backups_app.fileformat.compression import codec_named

    plain = Path(args.file).read_bytes()
    identity = x25519.Identity.generate()
    print(f"{len(plain) / 2**20:.1f} MB of JSON Lines\n")
    print(
        "| codec:level | MB | ratio | compress s (CPU) | decompress s (CPU) "
        "| age encrypt s (CPU) | age decrypt s (CPU) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for item in args.levels.split(","):
        name, level = item.split(":")
        codec = codec_named(name)
        packed, c_wall, c_cpu = timed(compress, codec, int(level), plain)
        unpacked, d_wall, d_cpu = timed(decompress, codec, packed)
        assert unpacked == plain
        sealed, e_wall, e_cpu = timed(encrypt, packed, identity)
        opened, o_wall, o_cpu = timed(decrypt, sealed, identity)
        assert opened == packed
        print(
            f"| {name}:{level} | {len(packed) / 2**20:.1f} "
            f"| {len(plain) / len(packed):.1f} | {c_wall:.2f} ({c_cpu:.2f}) "
            f"| {d_wall:.2f} ({d_cpu:.2f}) | {e_wall:.2f} ({e_cpu:.2f}) "
            f"| {o_wall:.2f} ({o_cpu:.2f}) |",
            flush=True,
        )


def compress(codec, level: int, plain: bytes) -> bytes:
    out = io.BytesIO()
    with codec.writer(out, level) as stream:
        for start in range(0, len(plain), 1 << 20):
            stream.write(plain[start : start + (1 << 20)])
    return out.getvalue()


def decompress(codec, packed: bytes) -> bytes:
    return b"".join(codec.chunks(io.BytesIO(packed), None))


def encrypt(packed: bytes, identity) -> bytes:
    from backups_app.fileformat import encryption

    out = io.BytesIO()
    with encryption.encrypting(out, [str(identity.to_public())]) as stream:
        stream.write(packed)
    return out.getvalue()


def decrypt(sealed: bytes, identity) -> bytes:
    from backups_app.fileformat import encryption

    stream = encryption.decrypting(io.BytesIO(sealed), [str(identity)], "f")
    try:
        return stream.read()
    finally:
        stream.close()


if __name__ == "__main__":
    main()
