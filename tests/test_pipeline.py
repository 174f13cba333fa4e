"""The file pipeline end to end: every codec, with and without age, through every
reader; names that ask for something unknown; keys missing, wrong, rotated; damaged
ciphertext. The database is compared in full before and after every refusal."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandError
from django.test import TestCase, override_settings
from pyrage import x25519

from backups_app.backup import create_backup
from backups_app.exceptions import BackupFormatError, StorageError
from backups_app.fileformat.compression import GZIP_MAGIC, ZSTD_MAGIC
from backups_app.fileformat.encryption import AGE_MAGIC
from backups_app.fileformat.streams import BackupSource, backup_storage
from backups_app.models import BackupRecord
from backups_app.records import read_header, store_upload
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.utils import run_command, snapshot, stored_files

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


OLD = x25519.Identity.generate()
NEW = x25519.Identity.generate()
STRANGER = x25519.Identity.generate()


def keys(recipients=(NEW,), identities=(NEW,)) -> dict:
    return {
        "ENCRYPTION": {
            "RECIPIENTS": [str(i.to_public()) for i in recipients],
            "IDENTITIES": [str(i) for i in identities],
        }
    }


# suffix -> the first bytes of the file as stored
SUFFIXES = {
    ".jsonl": b'{"kind":"header"',
    ".jsonl.gz": GZIP_MAGIC,
    ".jsonl.zst": ZSTD_MAGIC,
    ".jsonl.age": AGE_MAGIC,
    ".jsonl.gz.age": AGE_MAGIC,
    ".jsonl.zst.age": AGE_MAGIC,
}


@override_settings(BACKUPS=keys())
class EveryCodecThroughEveryReaderTests(TestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.before = snapshot()

    def test_every_suffix_is_written_as_it_says_and_read_by_its_bytes(self):
        storage = backup_storage()
        for suffix, magic in SUFFIXES.items():
            with self.subTest(suffix):
                path = self.tmp_path / f"zoo{suffix}"
                summary = create_backup(path)
                data = path.read_bytes()
                assert data.startswith(magic)
                if suffix.endswith(".age"):
                    # Encrypted, then: what is inside is compressed as named.
                    assert b"testapp" not in data
                # Restore, from the path.
                mutate_zoo()
                restore_backup(path, safety_backup=False)
                assert snapshot() == self.before
                # Validate, in full and the file alone.
                assert validate_backup(path).ok
                assert validate_backup(path, file_only=True).ok
                # A file object (as standard input is read), under a foreign name.
                mutate_zoo()
                restore_backup(io.BytesIO(data), safety_backup=False)
                assert snapshot() == self.before
                # A name in the storage: the listing reads its header only.
                stored = storage.save(f"stored{suffix}", io.BytesIO(data))
                assert read_header(stored)["database"] == "default"
                # The admin's upload check, under a name that says nothing.
                record = store_upload(SimpleUploadedFile("upload.bin", data))
                assert record.rows == summary.rows
                with storage.open(record.name) as stored_file:
                    assert stored_file.read() == data  # stored as sent

    def test_names_the_app_makes_follow_compression_and_encryption(self):
        for compression, suffix in [
            ("gzip", ".jsonl.gz.age"),
            ("zstd", ".jsonl.zst.age"),
            ("none", ".jsonl.age"),
        ]:
            with (
                self.subTest(compression),
                override_settings(BACKUPS={**keys(), "COMPRESSION": compression}),
            ):
                summary = create_backup()
                assert summary.storage_name.endswith(suffix), summary.storage_name
                assert validate_backup(summary.storage_name).ok

    def test_without_recipients_names_are_not_encrypted(self):
        with override_settings(BACKUPS={"COMPRESSION": "zstd"}):
            summary = create_backup()
        assert summary.storage_name.endswith(".jsonl.zst")
        with backup_storage().open(summary.storage_name) as stored_file:
            assert stored_file.read(4) == ZSTD_MAGIC

    def test_a_template_with_its_own_suffix_keeps_it(self):
        template = {"FILENAME_TEMPLATE": "nightly-{database}-{timestamp}.jsonl"}
        with override_settings(BACKUPS=template):
            summary = create_backup()
        assert summary.storage_name.startswith("nightly-default-")
        assert summary.storage_name.endswith("Z.jsonl")

    def test_the_compression_level_is_the_configured_codecs(self):
        sizes = {}
        for level in (1, 19):
            with override_settings(
                BACKUPS={"COMPRESSION": "zstd", "COMPRESSION_LEVEL": level}
            ):
                path = self.tmp_path / f"level{level}.jsonl.zst"
                create_backup(path)
                sizes[level] = path.stat().st_size
        assert sizes[19] < sizes[1]


class NamesTests(TestCase):
    tmp_path: Path

    def test_an_unknown_suffix_is_refused_before_anything_is_written(self):
        for name in ("zoo.jsonl.xz", "zoo.json", "zoo", "zoo.gz.age"):
            with self.subTest(name):
                path = self.tmp_path / name
                with pytest.raises(CommandError) as excinfo:
                    run_command("backup", "--output", str(path))
                assert excinfo.value.returncode == 2
                assert str(excinfo.value) == (
                    f"{str(path)!r} does not end in a backup suffix: one of "
                    ".jsonl.gz, .jsonl.zst, .jsonl, optionally followed by .age for "
                    "an encrypted file."
                )
                assert list(self.tmp_path.iterdir()) == []

    def test_an_age_name_without_recipients_is_refused(self):
        path = self.tmp_path / "zoo.jsonl.gz.age"
        with pytest.raises(StorageError) as excinfo:
            create_backup(path)
        assert str(excinfo.value) == (
            f"{str(path)!r} asks for encryption (.age), but "
            "BACKUPS['ENCRYPTION']['RECIPIENTS'] is empty."
        )
        assert list(self.tmp_path.iterdir()) == []

    def test_standard_output_without_a_suffix_is_plain_json_lines(self):
        out = io.BytesIO()
        create_backup(out)
        assert out.getvalue().startswith(b'{"kind":"header"')


class EncryptionTests(TestCase):
    """Keys missing, wrong or rotated and damaged files: one line, exit 2, the
    database as it was."""

    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.before = snapshot()
        self.file = self.tmp_path / "zoo.jsonl.gz.age"
        with override_settings(BACKUPS=keys(recipients=[NEW])):
            create_backup(self.file)
        mutate_zoo()
        self.changed = snapshot()

    def refused(self, path: Path, *, file_only: bool = False) -> list[str]:
        """Run restore and validatebackup on ``path``; return their messages, each
        after checking exit 2 and that the database did not change."""
        messages = []
        commands = [("validatebackup", str(path), "--file-only")]
        if not file_only:
            commands += [
                ("validatebackup", str(path)),
                ("restore", str(path), "--noinput"),
            ]
        for command in commands:
            with pytest.raises(CommandError) as excinfo:
                run_command(*command)
            assert excinfo.value.returncode == 2, command
            assert "\n" not in str(excinfo.value)
            messages.append(str(excinfo.value))
            assert snapshot() == self.changed
        return messages

    def test_missing_key(self):
        with override_settings(BACKUPS={}):
            messages = self.refused(self.file)
        assert set(messages) == {
            f"{self.file}: is encrypted, and BACKUPS['ENCRYPTION']['IDENTITIES'] is "
            "empty: set it to the age identity (private key) it was encrypted for."
        }

    def test_wrong_key(self):
        with override_settings(BACKUPS=keys(identities=[OLD])):
            messages = self.refused(self.file)
        assert set(messages) == {
            f"{self.file}: is encrypted, but not to any of the identities in "
            "BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)"
        }

    def test_a_file_for_a_recipient_we_do_not_hold(self):
        foreign = self.tmp_path / "foreign.jsonl.zst.age"
        with override_settings(BACKUPS=keys(recipients=[STRANGER])):
            create_backup(foreign)
        with override_settings(BACKUPS=keys(identities=[NEW, OLD])):
            messages = self.refused(foreign)
        assert set(messages) == {
            f"{foreign}: is encrypted, but not to any of the identities in "
            "BACKUPS['ENCRYPTION']['IDENTITIES'] (wrong or missing key)"
        }

    def test_truncated_and_bit_flipped_ciphertext(self):
        data = self.file.read_bytes()
        flipped = bytearray(data)
        flipped[len(data) // 2] ^= 0x04
        damaged = {
            "truncated": data[: len(data) - 100],
            "flipped": bytes(flipped),
        }
        with override_settings(BACKUPS=keys()):
            for what, content in damaged.items():
                with self.subTest(what):
                    path = self.tmp_path / f"{what}.jsonl.gz.age"
                    path.write_bytes(content)
                    messages = self.refused(path)
                    for message in messages:
                        assert message.startswith(
                            f"{path}: cannot be decrypted: the encrypted data is "
                            "damaged or cut short ("
                        ), message

    def test_key_rotation_old_files_restore_with_the_old_identity_kept(self):
        rotated = keys(recipients=[OLD], identities=[OLD, NEW])
        with override_settings(BACKUPS=rotated):
            newer = self.tmp_path / "newer.jsonl.zst.age"
            create_backup(newer)
            restore_backup(self.file, safety_backup=False)  # the old key's file
            assert snapshot() == self.before
            mutate_zoo()
            restore_backup(newer, safety_backup=False)
        with override_settings(BACKUPS=keys(identities=[NEW])):
            # The new key alone cannot read what the rotated settings wrote.
            self.refused(newer, file_only=True)

    def test_an_encrypted_upload_is_checked_by_decrypting_it(self):
        data = self.file.read_bytes()
        stored = stored_files()
        with override_settings(BACKUPS={}):
            with pytest.raises(BackupFormatError) as excinfo:
                store_upload(SimpleUploadedFile("mine.jsonl.gz.age", data))
            assert str(excinfo.value) == (
                "mine.jsonl.gz.age: is encrypted, and "
                "BACKUPS['ENCRYPTION']['IDENTITIES'] is empty: set it to the age "
                "identity (private key) it was encrypted for."
            )
        assert not BackupRecord.objects.exists()
        assert stored_files() == stored
        with override_settings(BACKUPS=keys()):
            record = store_upload(SimpleUploadedFile("mine.jsonl.gz.age", data))
        assert record.table_count > 0

    def test_a_stream_is_decrypted_by_its_bytes_whatever_its_name(self):
        with override_settings(BACKUPS=keys()):
            source = BackupSource(io.BytesIO(self.file.read_bytes()))
            try:
                assert validate_backup(source, file_only=True).ok
            finally:
                source.close()


class DamagedCompressionTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_changed_byte_in_a_zstd_file_is_one_line_and_exit_2(self):
        populate_zoo()
        path = self.tmp_path / "zoo.jsonl.zst"
        create_backup(path)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))
        before = snapshot()
        for command in (
            ("validatebackup", str(path), "--file-only"),
            ("restore", str(path), "--noinput"),
        ):
            with pytest.raises(CommandError) as excinfo:
                run_command(*command)
            assert excinfo.value.returncode == 2
            message = str(excinfo.value)
            assert message.startswith(f"{path}: "), message
            assert "\n" not in message
        assert snapshot() == before
