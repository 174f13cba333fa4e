"""A restore that cannot succeed changes nothing: damaged files, misfits, bad data."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.exceptions import (
    BackupFormatError,
    IncompatibleBackupError,
    RestoreError,
    StorageError,
)
from backups_app.fileformat.writer import FORMAT_VERSION
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import plain_copy, rewrite
from tests.factories import mutate_zoo, populate_zoo
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class FailedRestoreTests(TestCase):
    """Each test breaks the backup a different way; the database must not move."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.good = self.tmp_path / "good.jsonl.gz"
        create_backup(self.good)
        mutate_zoo()
        self.before = snapshot()

    def assert_refused(self, file: Path, error: type[Exception], message: str) -> None:
        with pytest.raises(error) as excinfo:
            restore_backup(file, safety_backup=False)
        assert message in str(excinfo.value)
        assert "\n" not in str(excinfo.value)
        assert snapshot() == self.before

    def test_truncated_compressed_file(self):
        data = self.good.read_bytes()
        broken = self.tmp_path / "truncated.jsonl.gz"
        broken.write_bytes(data[: len(data) // 2])
        self.assert_refused(broken, BackupFormatError, "truncated.jsonl.gz")

    def test_file_cut_at_a_line_boundary_before_its_trailer(self):
        plain = plain_copy(self.good, self.tmp_path / "plain.jsonl")
        lines = plain.read_bytes().splitlines(keepends=True)
        cut = self.tmp_path / "cut.jsonl"
        cut.write_bytes(b"".join(lines[:-1]))
        self.assert_refused(
            cut,
            BackupFormatError,
            "is incomplete: it ends before its trailer (an unfinished copy or "
            "download?)",
        )

    def test_flipped_byte_inside_a_row(self):
        plain = plain_copy(self.good, self.tmp_path / "plain.jsonl")
        data = bytearray(plain.read_bytes())
        position = data.index(b'"', data.index(b"\n[") + 2) + 1
        data[position] ^= 0x01
        flipped = self.tmp_path / "flipped.jsonl"
        flipped.write_bytes(bytes(data))
        self.assert_refused(flipped, BackupFormatError, "damaged")

    def test_flipped_byte_in_compressed_file(self):
        data = bytearray(self.good.read_bytes())
        data[len(data) // 2] ^= 0xFF
        flipped = self.tmp_path / "flipped.jsonl.gz"
        flipped.write_bytes(bytes(data))
        self.assert_refused(flipped, BackupFormatError, "flipped.jsonl.gz")

    def test_file_of_another_format(self):
        other = self.tmp_path / "dump.json"
        other.write_text('[{"model": "testapp.node", "pk": 1, "fields": {}}]\n')
        self.assert_refused(other, BackupFormatError, "is not a backups_app backup")

    def test_empty_file(self):
        empty = self.tmp_path / "empty.jsonl.gz"
        with gzip.open(empty, "wb"):
            pass
        self.assert_refused(empty, BackupFormatError, "is empty")

    def test_missing_file(self):
        self.assert_refused(
            self.tmp_path / "nowhere.jsonl.gz", StorageError, "No backup at"
        )

    def test_newer_format_version(self):
        plain = plain_copy(self.good, self.tmp_path / "plain.jsonl")
        data = plain.read_bytes().replace(
            f'"version":{FORMAT_VERSION}'.encode(), b'"version":99', 1
        )
        future = self.tmp_path / "future.jsonl"
        future.write_bytes(data)
        self.assert_refused(future, BackupFormatError, "format version 99")

    def test_backup_with_a_column_the_database_lacks(self):
        def add_column(header):
            for table in header["tables"]:
                if table["label"] == "testapp.Node":
                    table["columns"].append({"name": "colour", "type": "CharField"})
            return header

        misfit = rewrite(
            self.good,
            self.tmp_path / "misfit.jsonl",
            header=add_column,
            row=lambda label, row: [*row, "red"] if label == "testapp.Node" else row,
        )
        with pytest.raises(IncompatibleBackupError) as excinfo:
            restore_backup(misfit, safety_backup=False)
        assert excinfo.value.differences == (
            "testapp.Node: column 'colour' is in the backup but not in the database",
        )
        assert snapshot() == self.before

    def test_backup_without_a_table_of_the_database(self):
        def drop_node(header):
            header["tables"] = [
                t for t in header["tables"] if t["label"] != "testapp.Node"
            ]
            return header

        misfit = rewrite(
            self.good,
            self.tmp_path / "no-node.jsonl",
            header=drop_node,
            keep_table=lambda label: label != "testapp.Node",
        )
        with pytest.raises(IncompatibleBackupError) as excinfo:
            restore_backup(misfit, safety_backup=False)
        assert excinfo.value.differences == (
            "testapp.Node: a table of this database but not in the backup",
        )
        assert snapshot() == self.before

    def test_backup_from_other_migrations(self):
        def older(header):
            header["migrations"] = [
                m for m in header["migrations"] if m != "testapp.0001_initial"
            ]
            return header

        misfit = rewrite(self.good, self.tmp_path / "older.jsonl", header=older)
        with pytest.raises(IncompatibleBackupError) as excinfo:
            restore_backup(misfit, safety_backup=False)
        assert excinfo.value.differences == (
            "migration testapp.0001_initial is applied in the database but not in "
            "the backup",
        )
        assert snapshot() == self.before

    def test_foreign_key_to_a_row_that_is_not_there(self):
        def orphan(label, row):
            if label == "testapp.Book":
                row[-1] = 987654  # author_id, the last column
            return row

        broken = rewrite(self.good, self.tmp_path / "orphan.jsonl", row=orphan)
        self.assert_refused(broken, RestoreError, "rolled back")

    def test_duplicate_unique_value(self):
        def same_name(label, row):
            if label == "testapp.Label":
                row[1] = "duplicate"
            return row

        broken = rewrite(self.good, self.tmp_path / "dupes.jsonl", row=same_name)
        self.assert_refused(broken, RestoreError, "rolled back")

    def test_validate_refuses_damaged_files_too(self):
        data = self.good.read_bytes()
        broken = self.tmp_path / "truncated.jsonl.gz"
        broken.write_bytes(data[: len(data) - 40])
        with pytest.raises(BackupFormatError):
            validate_backup(broken)
        with pytest.raises(BackupFormatError):
            validate_backup(broken, file_only=True)


class SourceTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_name_in_the_storage_is_never_read_as_a_local_path(self):
        from backups_app.fileformat.streams import BackupSource

        local = self.tmp_path / "local.jsonl.gz"
        create_backup(local)
        with pytest.raises(StorageError) as excinfo:
            BackupSource.from_storage(str(local))
        assert str(excinfo.value) == (
            f"No backup named {str(local)!r} in the backup storage."
        )
        stored = create_backup(None).storage_name
        source = BackupSource.from_storage(stored)
        assert validate_backup(source, file_only=True).ok

    def test_corrupt_compressed_data_is_a_format_error(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        data = bytearray(file.read_bytes())
        data[20:60] = bytes(40)
        file.write_bytes(bytes(data))
        with pytest.raises(BackupFormatError):
            validate_backup(file, file_only=True)
