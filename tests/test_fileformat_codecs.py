"""Compression codecs and age encryption of the file pipeline, on their own."""

from __future__ import annotations

import io
import os
import random
import zlib

import pytest
from pyrage import x25519

from backups_app.exceptions import BackupFormatError, StorageError
from backups_app.fileformat import compression, encryption
from backups_app.fileformat.compression import GZIP, NONE, ZSTD, detect, split_name

DATA = b"".join(
    b'[%d,"row %d",%s]\n' % (i, i, str(random.Random(i).random()).encode())
    for i in range(50_000)
)


def compressed(codec, data: bytes, level: int | None = None) -> bytes:
    out = io.BytesIO()
    with codec.writer(out, codec.default_level if level is None else level) as stream:
        for start in range(0, len(data), 70_000):
            stream.write(data[start : start + 70_000])
    return out.getvalue()


def decompressed(data: bytes) -> bytes:
    codec = detect(data[:4])
    return b"".join(codec.chunks(io.BytesIO(data)))


@pytest.mark.parametrize("codec", [GZIP, ZSTD, NONE], ids=lambda c: c.name)
def test_every_codec_round_trips_and_is_recognised_by_its_bytes(codec):
    data = compressed(codec, DATA)
    assert detect(data[:4]) is codec
    assert decompressed(data) == DATA
    if codec is not NONE:
        assert len(data) < len(DATA) / 2


def fail_inside(writer) -> io.BufferedIOBase:
    """Write less than a buffer's worth inside ``writer``'s block, then fail;
    return the stream the block wrote to."""
    with pytest.raises(RuntimeError), writer as stream:
        stream.write(DATA[:1000])
        raise RuntimeError("writer failed")
    return stream


@pytest.mark.parametrize("codec", [GZIP, ZSTD], ids=lambda c: c.name)
def test_a_block_that_fails_leaves_nothing_to_flush_later(codec):
    # Were the stream left open, its buffer would be flushed when it is collected,
    # by then into a closed file: an error nobody can catch (Python 3.13 prints it).
    assert fail_inside(codec.writer(io.BytesIO(), 1)).closed


@pytest.mark.parametrize("codec", [GZIP, ZSTD], ids=lambda c: c.name)
def test_a_cut_stream_is_an_error(codec):
    data = compressed(codec, DATA)
    with pytest.raises(EOFError):
        decompressed(data[: len(data) // 2])


@pytest.mark.parametrize("codec", [GZIP, ZSTD], ids=lambda c: c.name)
def test_a_changed_byte_is_an_error_of_decompression(codec):
    data = bytearray(compressed(codec, DATA))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(Exception) as excinfo:
        decompressed(bytes(data))
    # What the reader turns into "cannot be read past line N: ...".
    assert isinstance(excinfo.value, (ValueError, EOFError, zlib.error))


def test_zstd_reads_every_frame():
    data = compressed(ZSTD, DATA[:1000]) + compressed(ZSTD, DATA[1000:2000])
    assert decompressed(data) == DATA[:2000]


def test_zstd_output_comes_in_bounded_chunks():
    zeros = compressed(ZSTD, bytes(50 << 20))
    sizes = [len(chunk) for chunk in ZSTD.chunks(io.BytesIO(zeros))]
    assert sum(sizes) == 50 << 20
    assert max(sizes) <= compression.DECOMPRESSED_CHUNK


@pytest.mark.parametrize(
    ("name", "codec", "encrypted"),
    [
        ("backup.jsonl", NONE, False),
        ("backup.jsonl.gz", GZIP, False),
        ("backup.jsonl.zst", ZSTD, False),
        ("backup.jsonl.zst.age", ZSTD, True),
        ("backup.jsonl.age", NONE, True),
    ],
)
def test_the_suffix_chooses_the_codec(name, codec, encrypted):
    assert split_name(name) == (codec, encrypted)


@pytest.mark.parametrize(
    "name", ["backup.jsonl.xz", "backup.json", "backup.gz.age", "b"]
)
def test_unknown_suffixes_are_refused(name):
    with pytest.raises(StorageError) as excinfo:
        split_name(name)
    assert str(excinfo.value) == (
        f"{name!r} does not end in a backup suffix: one of .jsonl.gz, .jsonl.zst, "
        ".jsonl, optionally followed by .age for an encrypted file."
    )


# --- age ------------------------------------------------------------------------------

OLD = x25519.Identity.generate()
NEW = x25519.Identity.generate()
STRANGER = x25519.Identity.generate()


def encrypted(data: bytes, *recipients) -> bytes:
    out = io.BytesIO()
    with encryption.encrypting(out, [str(r.to_public()) for r in recipients]) as stream:
        for start in range(0, len(data), 100_000):
            stream.write(data[start : start + 100_000])
    return out.getvalue()


def decrypted(data: bytes, *identities) -> bytes:
    stream = encryption.decrypting(io.BytesIO(data), [str(i) for i in identities], "f")
    try:
        return stream.read()
    finally:
        stream.close()


def test_round_trip_and_magic():
    data = encrypted(DATA, NEW)
    assert encryption.is_encrypted(data[:40])
    assert not encryption.is_encrypted(DATA[:40])
    assert DATA[:100] not in data
    assert decrypted(data, NEW) == DATA


def test_rotation_old_files_open_with_the_old_identity_listed():
    old_file = encrypted(DATA[:5000], OLD)
    new_file = encrypted(DATA[:5000], NEW)
    assert decrypted(old_file, NEW, OLD) == DATA[:5000]
    assert decrypted(new_file, NEW, OLD) == DATA[:5000]


def test_several_recipients_each_can_read():
    data = encrypted(DATA[:5000], OLD, NEW)
    assert decrypted(data, OLD) == decrypted(data, NEW) == DATA[:5000]


def test_a_file_for_a_recipient_we_do_not_hold():
    data = encrypted(DATA[:5000], STRANGER)
    with pytest.raises(BackupFormatError) as excinfo:
        decrypted(data, NEW, OLD)
    assert str(excinfo.value) == (
        "is encrypted, but not to any of the identities in "
        "BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)"
    )


def test_missing_identities():
    with pytest.raises(BackupFormatError) as excinfo:
        encryption.decrypting(io.BytesIO(encrypted(b"x", NEW)), [], "f")
    assert str(excinfo.value) == (
        "f: is encrypted, and BACKUPS['ENCRYPTION']['IDENTITIES'] is empty: set it "
        "to the age identity (private key) it was encrypted for."
    )


@pytest.mark.parametrize("damage", ["truncate", "cut at a chunk", "flip"])
def test_damaged_ciphertext_is_refused(damage):
    data = bytearray(encrypted(DATA, NEW))
    if damage == "truncate":
        data = data[: len(data) - 1000]
    elif damage == "cut at a chunk":
        # After whole 64 KiB chunks (each 16 bytes longer, sealed): only the flag of
        # the last chunk tells that the file ended early.
        payload = data.index(b"\n---") + data[data.index(b"\n---") + 1 :].index(b"\n")
        start = payload + 2 + 16  # the header's last line, then the nonce
        data = data[: start + 3 * (65536 + 16)]
    else:
        data[len(data) // 2] ^= 0x01
    with pytest.raises(BackupFormatError) as excinfo:
        decrypted(bytes(data), NEW)
    assert str(excinfo.value).startswith(
        "cannot be decrypted: the encrypted data is damaged or cut short ("
    )


def test_bad_keys_are_one_line_and_never_echo_a_secret():
    with pytest.raises(StorageError, match="Not an age recipient: 'age1nonsense…'"):
        encryption.parse_recipient("age1nonsensenonsense")
    secret = "AGE-SECRET-KEY-1" + "Q" * 58
    with pytest.raises(StorageError) as excinfo:
        encryption.parse_identities([secret])
    assert "QQQQ" not in str(excinfo.value)


def test_identities_from_a_key_file(tmp_path):
    key_file = tmp_path / "key.txt"
    key_file.write_text(f"# created: now\n# public key: {NEW.to_public()}\n{NEW}\n")
    os.chmod(key_file, 0o600)
    assert decrypted(encrypted(b"abc", NEW), str(key_file)) == b"abc"


def test_an_error_in_the_block_leaves_no_complete_age_file():
    out = io.BytesIO()
    stream = fail_inside(encryption.encrypting(out, [str(NEW.to_public())]))
    # What it still buffered is dropped with the block, not flushed into the stopped
    # encryption (raising an error nobody can catch) when the stream is collected.
    assert stream.closed
    with pytest.raises(BackupFormatError):
        decrypted(out.getvalue(), NEW)


def test_a_reader_that_stops_early_ends_the_thread():
    stream = encryption.decrypting(io.BytesIO(encrypted(DATA, NEW)), [str(NEW)], "f")
    assert stream.read(10) == DATA[:10]
    stream.close()
    assert not stream._thread.is_alive()
