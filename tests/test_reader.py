"""Reading backups in blocks: buffer edges, comparing in place, damaged structure.

Real backups are read 4 MB at a time, so a test database's tables would all fit in
one buffer. These tests shrink the buffer (and the batches) until every row, line
and comparison straddles a buffer's edge somewhere.
"""

from __future__ import annotations

import gzip
import io
import random
import zlib
from pathlib import Path

import orjson
import pytest
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.db.values import lines_encoder
from backups_app.exceptions import BackupFormatError
from backups_app.fileformat import compression, reader
from backups_app.fileformat.compression import gunzip
from backups_app.fileformat.reader import BackupReader, verify
from backups_app.fileformat.streams import BackupSource
from backups_app.fileformat.writer import BackupWriter
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import plain_copy
from tests.factories import mutate_zoo, populate_zoo
from tests.testapp.models import Node
from tests.utils import snapshot

SMALL_BUFFERS = (7, 64, 1000)


pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def rows_by_table(file: Path) -> dict[str, list[list]]:
    """Every row of a backup, read line by line with the standard library."""
    tables: dict[str, list[list]] = {}
    current = None
    for line in plain_copy(file, file.with_suffix(".plain")).read_bytes().splitlines():
        value = orjson.loads(line)
        if isinstance(value, dict):
            current = value.get("label") if value["kind"] == "table" else None
            if current:
                tables[current] = []
        else:
            tables[current].append(value)
    return tables


def read_rows(file: Path) -> dict[str, list[list]]:
    """Every row of a backup, as the reader hands them out in blocks."""
    tables = {}
    with BackupSource(file).open() as stream:
        for section in BackupReader(stream, file.name).tables():
            tables[section.label] = [
                orjson.loads(line) for batch in section.batches(3) for line in batch
            ]
    return tables


class BlockReadingTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        # A row longer than any of the small buffers, and one holding "],[".
        Node.objects.create(name="x" * 90)
        Node.objects.create(name='a],[b"],["c')
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        self.expected = rows_by_table(self.file)

    def test_blocks_hold_every_row_whatever_the_buffer_size(self):
        for size in SMALL_BUFFERS:
            with self.subTest(read_size=size), _read_size(size):
                assert read_rows(self.file) == self.expected

    def test_blocks_are_whole_lines(self):
        with _read_size(64), BackupSource(self.file).open() as stream:
            for section in BackupReader(stream).tables():
                for block in section.blocks():
                    assert block.endswith(b"\n")
                    assert all(line.startswith(b"[") for line in block.splitlines())

    def test_blocks_are_bounded_unless_one_row_is_longer(self):
        limit = 50
        reader.ROW_BLOCK, saved = limit, reader.ROW_BLOCK
        try:
            with BackupSource(self.file).open() as stream:
                for section in BackupReader(stream).tables():
                    blocks = list(section.blocks())
                    for block in blocks:
                        assert len(block) <= limit or block.count(b"\n") == 1
                    rows = [
                        orjson.loads(line) for b in blocks for line in b.splitlines()
                    ]
                    assert rows == self.expected[section.label]
        finally:
            reader.ROW_BLOCK = saved

    def test_take_compares_in_place_and_leaves_a_mismatch_unread(self):
        node_rows = self.expected["testapp.Node"]
        lines = [orjson.dumps(row) + b"\n" for row in node_rows]
        for size in SMALL_BUFFERS:
            with (
                self.subTest(read_size=size),
                _read_size(size),
                BackupSource(self.file).open() as stream,
            ):
                for section in BackupReader(stream).tables():
                    if section.label != "testapp.Node":
                        continue
                    assert section.take(*lines[:2], rows=2)
                    wrong = lines[2].replace(b"[", b"[0,", 1)
                    assert not section.take(wrong, rows=1)
                    # Rows beyond the table's end are not there either.
                    assert not section.take(*lines[2:], lines[0], rows=len(lines) - 1)
                    # The rest of the table is still there, from the third row.
                    rest = [
                        orjson.loads(line) for b in section.batches(2) for line in b
                    ]
                    assert rest == node_rows[2:]
                    assert section.end.rows == len(node_rows)

    def test_take_never_takes_the_end_of_the_table(self):
        node_rows = self.expected["testapp.Node"]
        lines = [orjson.dumps(row) + b"\n" for row in node_rows]
        with BackupSource(self.file).open() as stream:
            for section in BackupReader(stream).tables():
                if section.label == "testapp.Node":
                    assert section.take(*lines, rows=len(lines))
                    assert not section.take(lines[0], rows=1)
                    assert list(section.blocks()) == []
                    assert section.end.rows == len(lines)

    def test_validation_reads_the_same_at_every_buffer_and_batch_size(self):
        mutate_zoo()
        Node.objects.filter(name__startswith="x").update(name="y" * 95)
        expected = validate_backup(self.file).to_dict()
        for size in SMALL_BUFFERS:
            for batch in (1, 2, 5):
                with (
                    self.subTest(read_size=size, batch=batch),
                    _read_size(size),
                    override_settings(BACKUPS={"BATCH_SIZE": batch}),
                ):
                    report = validate_backup(self.file).to_dict()
                    assert _without_timing(report) == _without_timing(expected)
        assert expected["differing"] > 0

    def test_validation_and_restore_with_small_buffers_are_exact(self):
        before = snapshot()
        mutate_zoo()
        with _read_size(7), override_settings(BACKUPS={"BATCH_SIZE": 2}):
            assert not validate_backup(self.file).ok
            restore_backup(self.file, safety_backup=False)
            assert validate_backup(self.file).ok
        assert snapshot() == before


class DamagedStructureTests(TestCase):
    """Intact digests around lines that are not rows: refused, never half read."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        Node.objects.create(name="first")
        Node.objects.create(name="second")
        self.file = self.tmp_path / "nodes.jsonl.gz"
        create_backup(self.file)

    def rewritten(self, transform) -> Path:
        """The backup with Node's row lines transformed, every digest made anew."""
        target = self.tmp_path / "rewritten.jsonl"
        with gzip.open(self.file, "rb") as stream, open(target, "wb") as out:
            source = BackupReader(stream)
            writer = BackupWriter(out)
            header = {
                k: v
                for k, v in source.header.items()
                if k not in ("kind", "format", "version")
            }
            writer.write_header(header)
            for section in source.tables():
                writer.begin_table(section.label, section.table, section.columns)
                lines = [line for batch in section.batches(100) for line in batch]
                if section.label == "testapp.Node":
                    lines = transform(lines)
                writer.write_rows(lines)
                writer.end_table()
            writer.write_trailer()
        return target

    def assert_refused(self, file: Path, message: str) -> None:
        before = snapshot()
        for read_size in (5, reader.READ_SIZE):
            with _read_size(read_size):
                for action in (
                    lambda: validate_backup(file, file_only=True),
                    lambda: validate_backup(file),
                    lambda: restore_backup(file, safety_backup=False),
                ):
                    with pytest.raises(BackupFormatError) as excinfo:
                        action()
                    assert message in str(excinfo.value)
        assert snapshot() == before

    def test_a_line_that_is_neither_row_nor_record(self):
        broken = self.rewritten(lambda lines: [lines[0], b"garbage", *lines[1:]])
        self.assert_refused(broken, "is not valid JSON")

    def test_a_record_that_is_not_the_end_inside_the_rows(self):
        broken = self.rewritten(
            lambda lines: [lines[0], b'{"kind":"note"}', *lines[1:]]
        )
        self.assert_refused(broken, "table testapp.Node is not closed")

    def test_a_row_cut_by_the_end_of_the_file(self):
        data = plain_copy(self.file, self.tmp_path / "plain.jsonl").read_bytes()
        cut = self.tmp_path / "cut.jsonl"
        start = data.index(b'"first"')
        cut.write_bytes(data[:start])
        self.assert_refused(
            cut,
            "is incomplete: it ends inside table testapp.Node (an unfinished copy "
            "or download?)",
        )

    def test_a_file_without_its_last_newline_is_still_read(self):
        data = plain_copy(self.file, self.tmp_path / "plain.jsonl").read_bytes()
        unterminated = self.tmp_path / "unterminated.jsonl"
        unterminated.write_bytes(data.rstrip(b"\n"))
        with unterminated.open("rb") as stream:
            header, ends = verify(stream)
        assert ends["testapp.Node"].rows == 2


class LinesEncoderTests(TestCase):
    databases = {"default"}

    def test_rows_holding_the_row_separator_are_left_to_row_by_row_encoding(self):
        from django.db import connection

        fields = [Node._meta.pk, Node._meta.get_field("name")]
        encode = lines_encoder(fields, Node._meta.db_table, connection)
        assert bytes(encode([(1, "a"), (2, "b")])) == b'[1,"a"]\n[2,"b"]'
        assert encode([(1, "a],[b"), (2, "b")]) is None
        assert bytes(encode([(1, "line\nbreak")])) == b'[1,"line\\nbreak"]'


class TestGunzip:
    """Decompression of gzip as the gzip module reads it."""

    @pytest.mark.parametrize("chunk", [1000, 1 << 16])
    def test_same_bytes_as_gzip_for_plain_and_repetitive_data(self, monkeypatch, chunk):
        monkeypatch.setattr(compression, "DECOMPRESSED_CHUNK", chunk)
        monkeypatch.setattr(compression, "COMPRESSED_READ", 100)
        rng = random.Random(4)
        noisy = bytes(rng.getrandbits(8) for _ in range(50_000))
        for data in (noisy, b"same line\n" * 100_000, b""):
            pieces = list(gunzip(io.BytesIO(gzip.compress(data))))
            assert b"".join(pieces) == data
            assert all(0 < len(piece) <= chunk for piece in pieces)

    def test_members_one_after_another_and_zero_padding(self):
        data = gzip.compress(b"one\n") + gzip.compress(b"two\n") + bytes(10)
        assert b"".join(gunzip(io.BytesIO(data))) == b"one\ntwo\n"

    def test_a_cut_stream_is_an_eof_error(self):
        data = gzip.compress(b"row\n" * 10_000)
        with pytest.raises(EOFError):
            list(gunzip(io.BytesIO(data[: len(data) // 2])))

    def test_a_damaged_stream_is_a_zlib_error(self):
        data = bytearray(gzip.compress(bytes(range(256)) * 100))
        data[-6] ^= 0xFF  # inside the CRC
        with pytest.raises(zlib.error):
            list(gunzip(io.BytesIO(bytes(data))))

    def test_bytes_after_the_last_member_that_are_not_gzip(self):
        with pytest.raises(zlib.error):
            list(gunzip(io.BytesIO(gzip.compress(b"row\n") + b"trailing")))


class _read_size:
    """Make the reader read ``size`` bytes at a time, within the block."""

    def __init__(self, size: int):
        self.size = size

    def __enter__(self):
        self.saved = reader.READ_SIZE
        reader.READ_SIZE = self.size

    def __exit__(self, *exc_info):
        reader.READ_SIZE = self.saved


def _without_timing(report: dict) -> dict:
    return {key: value for key, value in report.items() if key != "seconds"}
