"""Undo files: a differential restore's safety backup holds only what it replaces,
and restoring it puts the database back exactly as it was before the restore.

"Exactly" is the contents as the database stores them, read with plain SQL
(``raw_contents``), compared before the restore and after the undo.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import os
import tempfile
import uuid
from types import SimpleNamespace
from typing import Any
from unittest import mock

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.db import connection
from django.test import TestCase, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.differential import undo as differential_undo
from backups_app.differential.undo import undone
from backups_app.exceptions import BackupFormatError, NotABackupError, StorageError
from backups_app.fileformat import reader
from backups_app.fileformat.encryption import AGE_MAGIC
from backups_app.fileformat.reader import BackupReader, verify_file
from backups_app.fileformat.streams import BackupSource, backup_storage
from backups_app.models import BackupRecord, Operation
from backups_app.operations.prune import plan_prune
from backups_app.operations.retention import RetentionPolicy
from backups_app.provenance import sign
from backups_app.records import who_survives
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import reseal
from tests.factories import mutate_zoo, populate_zoo
from tests.test_admin import AdminTestCase, url
from tests.test_differential import (
    DifferentialTestCase,
    add_label,
    apply_changes,
    change_sets,
    delete_book,
    move_node,
    recode_char_pk,
    rename_label,
    swap_label_names,
)
from tests.test_pipeline import keys
from tests.test_restore_safety import raw_contents
from tests.testapp.models import Label
from tests.utils import run_command, snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

User = get_user_model()

SOME_CHANGES = [
    (rename_label, 3, 0),
    (swap_label_names, 5, 9),
    (add_label, 0, 0),
    (delete_book, 2, 0),
    (move_node, 7, 11),
    (recode_char_pk, 4, 17),
]


def stored_lines(name: str) -> list[bytes]:
    with backup_storage().open(name, "rb") as stored:
        return gzip.decompress(stored.read()).splitlines(keepends=True)


def header_of(name: str) -> dict[str, Any]:
    return orjson.loads(stored_lines(name)[0])


def store_lines(name: str, lines: list[bytes]) -> None:
    storage = backup_storage()
    storage.delete(name)
    storage.save(name, io.BytesIO(gzip.compress(b"".join(lines))))


def resigned(lines: list[bytes]) -> list[bytes]:
    """``reseal``, with a trailer mac that verifies: a file this installation
    could have written, for tests that an edited content is still caught."""
    sealed = reseal(lines).splitlines(keepends=True)
    trailer = orjson.loads(sealed[-1])
    trailer["mac"] = sign(trailer["digest"], orjson.loads(sealed[0]))
    return [*sealed[:-1], orjson.dumps(trailer) + b"\n"]


def edited(lines: list[bytes], change) -> list[bytes]:
    """The lines, each record or row passed through ``change(value)`` (which
    returns it, changed or not); then resigned."""
    out = []
    for line in lines:
        value = orjson.loads(line)
        out.append(orjson.dumps(change(value)) + b"\n")
    return resigned(out)


class UndoTestCase(DifferentialTestCase):
    """The many-row zoo, backed up into the backup storage (where undo files find
    the backup they patch)."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.stored = create_backup(None).name

    def changed_and_restored(self, changes=SOME_CHANGES) -> tuple[dict, str]:
        """Apply ``changes``, restore the backup; return the contents before the
        restore and the name of its safety backup."""
        apply_changes(changes)
        before = raw_contents()
        summary = restore_backup(self.stored)
        assert raw_contents() == self.backed_up
        assert summary.safety_backup is not None
        return before, summary.safety_backup


class UndoRoundTripTests(UndoTestCase):
    def test_the_undo_file_holds_only_the_rows_replaced(self):
        before, undo = self.changed_and_restored()
        header = header_of(undo)
        assert header["format"] == "backups_app-undo"
        assert header["undo"]["backup"] == self.stored
        patched = header["undo"]["tables"]
        assert "testapp.Label" in patched
        labels = [t["label"] for t in header["tables"]]
        assert labels.index("testapp.Label#drop") == labels.index("testapp.Label") + 1
        trailer = orjson.loads(stored_lines(undo)[-1])
        # A few rows, where a whole backup of the zoo has hundreds.
        whole = sum(len(rows) for rows in before.values())
        assert trailer["rows"] < whole / 10
        # The rows before the restore, as the database held them: the renamed
        # label, and the label added after the backup.
        label_rows = [
            orjson.loads(line) for line in self.section(undo, "testapp.Label")
        ]
        names = {row[1] for row in label_rows}
        assert any(name.endswith("renamed 0") for name in names)
        assert any(name.startswith("new label") for name in names)

    def section(self, name: str, label: str) -> list[bytes]:
        lines = stored_lines(name)
        start = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(b"{")
            and orjson.loads(line).get("label") == label
            and orjson.loads(line)["kind"] == "table"
        )
        end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(b"{"))
        return lines[start + 1 : end]

    def test_restoring_the_undo_file_brings_back_the_database_before_the_restore(self):
        before, undo = self.changed_and_restored()
        summary = restore_backup(undo)
        assert raw_contents() == before
        # Undone row by row too, and undoable in its turn: its own safety backup
        # is a whole one (what it restored is not a file in the storage).
        assert summary.tables_changed > 0
        assert header_of(summary.safety_backup)["format"] == "backups_app"
        restore_backup(summary.safety_backup, safety_backup=False)
        assert raw_contents() == self.backed_up

    def test_an_undo_file_is_undone_whatever_happened_since(self):
        before, undo = self.changed_and_restored()
        Label.objects.create(name="written after the restore")
        Label.objects.filter(pk=Label.objects.order_by("pk")[0].pk).delete()
        restore_backup(undo, safety_backup=False)
        assert raw_contents() == before

    def test_a_table_reloaded_whole_is_whole_in_the_undo_file(self):
        for label in Label.objects.all():
            label.name = f"{label.name} everywhere"
            label.save()
        before = raw_contents()
        summary = restore_backup(self.stored)
        assert "testapp.Label" in summary.reloaded
        header = header_of(summary.safety_backup)
        assert "testapp.Label" not in header["undo"]["tables"]
        assert "testapp.Label#drop" not in [t["label"] for t in header["tables"]]
        assert len(self.section(summary.safety_backup, "testapp.Label")) == len(
            before[Label._meta.db_table]
        )
        restore_backup(summary.safety_backup, safety_backup=False)
        assert raw_contents() == before

    def test_validation_of_an_undo_file_compares_the_state_before_the_restore(self):
        before, undo = self.changed_and_restored()
        report = validate_backup(undo)
        assert not report.ok
        restore_backup(undo, safety_backup=False)
        assert validate_backup(undo).ok

    def test_the_command_names_the_undo_file_and_restores_it(self):
        apply_changes(SOME_CHANGES)
        before = raw_contents()
        stdout, _ = run_command("restore", self.stored, "--noinput")
        undo = next(
            line.split(": ", 1)[1]
            for line in stdout.splitlines()
            if line.startswith("Safety backup: ")
        )
        assert header_of(undo)["format"] == "backups_app-undo"
        assert f"restore {undo}" in stdout
        stdout, _ = run_command("restore", undo, "--noinput", "--no-safety-backup")
        assert f"from {undo} in" in stdout
        assert raw_contents() == before


class UndoChoiceTests(UndoTestCase):
    """When the safety backup is a whole backup instead."""

    def safety_format(self, *args, **options) -> str:
        apply_changes(SOME_CHANGES)
        summary = restore_backup(*args, **options)
        return header_of(summary.safety_backup)["format"]

    def test_a_full_restore_takes_a_whole_safety_backup(self):
        assert self.safety_format(self.stored, full=True) == "backups_app"

    def test_a_backup_outside_the_storage_gets_a_whole_safety_backup(self):
        assert self.safety_format(self.file) == "backups_app"

    def test_a_backup_from_another_vendor_gets_a_whole_safety_backup(self):
        other = "postgresql" if connection.vendor != "postgresql" else "sqlite"

        def from_elsewhere(value):
            if isinstance(value, dict) and value.get("kind") == "header":
                value["vendor"] = other
            return value

        name = f"elsewhere-{uuid.uuid4().hex}.jsonl.gz"
        store_lines(name, edited(stored_lines(self.stored), from_elsewhere))
        assert self.safety_format(name) == "backups_app"
        assert raw_contents() == self.backed_up

    def test_the_setting_turns_undo_files_off(self):
        with override_settings(BACKUPS={"UNDO_FILES": False}):
            assert self.safety_format(self.stored) == "backups_app"


@override_settings(BACKUPS=keys())
class EncryptedUndoTests(UndoTestCase):
    """With encrypted backups, the backup an undo file stands for is built in a
    temporary file encrypted to a key of the process: no row in the clear on disk."""

    def test_the_backup_is_built_encrypted_and_restores_exactly(self):
        with backup_storage().open(self.stored, "rb") as stored:
            assert stored.read(40).startswith(AGE_MAGIC)
        before, undo = self.changed_and_restored()
        made: list[Any] = []
        real = tempfile.TemporaryFile

        def recorded(*args, **kwargs):
            made.append(real(*args, **kwargs))
            return made[-1]

        with mock.patch.object(differential_undo.tempfile, "TemporaryFile", recorded):
            source = undone(BackupSource.from_storage(undo))
        (scratch,) = made
        scratch.seek(0)
        built = scratch.read()
        assert built.startswith(AGE_MAGIC)
        # The renamed labels, which only the state before the restore holds: there,
        # but only for the key of this process.
        with source.open() as plain:
            assert b"renamed 0" in plain.read()
        assert b"renamed 0" not in built
        restore_backup(source, safety_backup=False)
        assert raw_contents() == before


class RandomUndoTests(UndoTestCase, HypothesisTestCase):
    """Whatever a set of changes did, restoring the undo file undoes the restore."""

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(change_sets())
    def test_any_restore_is_undone_exactly(self, changes):
        before, undo = self.changed_and_restored(changes)
        restore_backup(undo, safety_backup=False)
        assert raw_contents() == before
        backup_storage().delete(undo)


class UndoBoundaryTests(UndoTestCase, HypothesisTestCase):
    """Changes at the edges of the backup's blocks: with a small reader buffer,
    each table's rows arrive a few at a time, and the undo file's rows fall
    before, inside and after every block."""

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        changes=change_sets(6),
        read_size=st.integers(40, 600),
    )
    def test_undone_exactly_at_any_read_size(self, changes, read_size):
        before, undo = self.changed_and_restored(changes)
        with mock.patch.object(reader, "READ_SIZE", read_size):
            restore_backup(undo, safety_backup=False)
        assert raw_contents() == before
        backup_storage().delete(undo)


class BadUndoFileTests(UndoTestCase):
    """An undo file that cannot give back the database before its restore is
    refused, with one line naming why, before anything changes."""

    def refused(self, undo: str, error=BackupFormatError) -> str:
        restored = raw_contents()
        with pytest.raises(error) as caught:
            restore_backup(undo, safety_backup=False)
        assert raw_contents() == restored
        message = str(caught.value)
        assert "\n" not in message
        return message

    def test_the_backup_it_undoes_is_gone(self):
        _, undo = self.changed_and_restored()
        lines = stored_lines(self.stored)
        backup_storage().delete(self.stored)
        try:
            message = self.refused(undo, StorageError)
        finally:
            store_lines(self.stored, lines)
        assert message.startswith(f"{undo} undoes a restore of {self.stored}")

    def test_a_patched_table_not_followed_by_its_drop_section_is_refused(self):
        # The reader refuses such a file first; the rebuild and the look at a few
        # tables (table_rows) say it in one line all the same.
        for sections in ([], [SimpleNamespace(label="testapp.Author")]):
            with pytest.raises(BackupFormatError) as caught:
                differential_undo._drop_section(
                    "undo.jsonl", "testapp.Book", iter(sections)
                )
            assert str(caught.value) == (
                "undo.jsonl: table testapp.Book is not followed by its "
                "testapp.Book#drop section"
            )

    def refused_over(self, edit) -> tuple[str, str]:
        """Restore, then store the backup restored passed through ``edit`` (intact
        and signed, but not the file the restore wrote); return the undo file's
        name and why it is refused."""
        _, undo = self.changed_and_restored()
        lines = stored_lines(self.stored)
        store_lines(self.stored, edited(lines, edit))
        try:
            return undo, self.refused(undo)
        finally:
            store_lines(self.stored, lines)

    def test_the_backup_it_undoes_has_changed(self):
        def renamed(value):
            if isinstance(value, list) and value[1:2] == ["author 0"]:
                value[1] = "author 0 edited"
            return value

        undo, message = self.refused_over(renamed)
        # Found in the table changed (whose rows are not those it had before the
        # restore), else by the file's digest.
        assert message == (
            f"{undo}: laid over {self.stored}, table testapp.Author does not come "
            "out as it was before the restore (40 rows where 40 were, or another "
            "digest): one of the two files is not the one the restore wrote"
        )

    def test_the_backup_it_undoes_is_another_file_with_the_same_rows(self):
        def other_header(value):
            if isinstance(value, dict) and value.get("kind") == "header":
                value["app_version"] = "0.0.0"
            return value

        undo, message = self.refused_over(other_header)
        assert message == (
            f"{undo} undoes a restore of {self.stored}, but that file has changed "
            "since (its digest is not the one the undo file recorded)"
        )

    def test_an_undo_file_written_elsewhere_is_refused(self):
        _, undo = self.changed_and_restored()
        lines = stored_lines(undo)
        trailer = orjson.loads(lines[-1])
        trailer["mac"] = "0" * 64
        store_lines(undo, [*lines[:-1], orjson.dumps(trailer) + b"\n"])
        assert self.refused(undo) == (
            f"{undo}: this installation did not write this undo file (its trailer's "
            "mac does not verify with the signing key), and applies only undo files "
            "it wrote"
        )

    def test_a_row_recorded_wrongly_is_found_by_the_digest(self):
        _, undo = self.changed_and_restored()

        def other_name(value):
            if isinstance(value, list) and "renamed" in str(value[1:2]):
                value[1] = "not what it was"
            return value

        store_lines(undo, edited(stored_lines(undo), other_name))
        message = self.refused(undo)
        assert "table testapp.Label does not come out as it was before the restore" in (
            message
        )

    def test_a_key_to_drop_that_the_backup_lacks(self):
        _, undo = self.changed_and_restored()
        lines = stored_lines(undo)
        end = next(
            i
            for i, line in enumerate(lines)
            if line.startswith(b'{"kind":"end","label":"testapp.Label#drop"')
        )
        lines.insert(end, b"[999999]\n")
        store_lines(undo, resigned(lines))
        message = self.refused(undo)
        assert "removes the row with primary key [999999]" in message

    def test_no_room_for_the_backup_it_stands_for(self):
        _, undo = self.changed_and_restored()

        class Full(io.BytesIO):
            def write(self, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        with mock.patch.object(tempfile, "TemporaryFile", lambda **kwargs: Full()):
            message = self.refused(undo, StorageError)
        assert message == (
            f"Cannot build the backup that {undo} stands for in a temporary file "
            f"({tempfile.gettempdir()}): No space left on device."
        )

    def test_a_truncated_undo_file(self):
        _, undo = self.changed_and_restored()
        store_lines(undo, stored_lines(undo)[:-3])
        assert "is incomplete" in self.refused(undo)

    def test_readers_of_backups_refuse_an_undo_file(self):
        _, undo = self.changed_and_restored()
        stream = io.BytesIO(b"".join(stored_lines(undo)))
        with pytest.raises(NotABackupError) as caught:
            verify_file(stream, undo)
        assert "is an undo file" in str(caught.value)

    def test_an_undo_header_without_its_drop_table_is_damaged(self):
        _, undo = self.changed_and_restored()

        def without_drop(value):
            if isinstance(value, dict) and value.get("kind") == "header":
                value["tables"] = [
                    t for t in value["tables"] if t["label"] != "testapp.Label#drop"
                ]
            return value

        lines = stored_lines(undo)
        stream = io.BytesIO(b"".join(edited(lines, without_drop)))
        with pytest.raises(BackupFormatError) as caught:
            BackupReader(stream, undo, undo=True)
        assert "lists no testapp.Label#drop of testapp.Label's primary key" in str(
            caught.value
        )


class UndoFileInStorageTests(UndoTestCase):
    """Listing and pruning know an undo file, and the backup it needs."""

    def test_prune_keeps_the_backup_a_kept_undo_file_needs(self):
        _, undo = self.changed_and_restored()
        newer = create_backup(None).name
        one = RetentionPolicy(last=1)
        decisions = {
            d.backup.name: d for d in plan_prune(policy=one, safety_policy=one)
        }
        assert decisions[newer].keep
        assert decisions[undo].keep
        assert decisions[undo].backup.undoes == self.stored
        assert decisions[self.stored].keep
        assert decisions[self.stored].reasons == (f"the undo file {undo} needs it",)
        # Once the undo files go (other tests' too: the storage is shared), so may
        # the backup.
        storage = backup_storage()
        for name in storage.listdir("")[1]:
            if name.startswith("safety-"):
                storage.delete(name)
        decisions = {
            d.backup.name: d for d in plan_prune(policy=one, safety_policy=one)
        }
        assert not decisions[self.stored].keep

    def test_listbackups_shows_it_as_a_safety_backup_and_what_it_undoes(self):
        _, undo = self.changed_and_restored()
        stdout, _ = run_command("listbackups", "--json")
        listed = {b["name"]: b for b in json.loads(stdout)}
        assert listed[undo]["kind"] == "safety"
        assert listed[undo]["undoes"] == self.stored
        assert listed[self.stored]["undoes"] is None
        # Its #drop sections are no tables of the database.
        assert listed[undo]["tables"] == listed[self.stored]["tables"]


class UndoAdminTests(AdminTestCase):
    def restore_page(self) -> str:
        record = self.stored_backup()
        response = self.client.get(
            f"{url('backuprecord_restore', record.pk)}?database=default"
        )
        assert response.status_code == 200
        return response.content.decode()

    def test_the_restore_page_says_what_the_safety_backup_will_hold(self):
        assert "an undo file, which needs this backup" in self.restore_page()
        with override_settings(BACKUPS={"UNDO_FILES": False}):
            assert "an undo file" not in self.restore_page()

    def test_confirming_the_restore_of_an_undo_file_builds_its_backup_once(self):
        populate_zoo()
        stored = create_backup(None).name
        mutate_zoo()
        before = snapshot()
        undo = restore_backup(stored).safety_backup
        record = BackupRecord.objects.get(name=undo)
        with mock.patch.object(
            differential_undo, "_rebuild", wraps=differential_undo._rebuild
        ) as rebuild:
            response = self.client.post(
                url("backuprecord_restore", record.pk),
                {"database": "default", "confirm": "default"},
            )
        operation = Operation.objects.get(kind="restore")
        assert response.status_code == 302
        assert operation.status == "succeeded", operation.message
        # Who survives the restore is read from the undo file and its backup;
        # only the restore builds the backup the undo file stands for.
        assert rebuild.call_count == 1
        assert snapshot() == before


class UndoSurvivorsTests(TestCase):
    """Who survives restoring an undo file is read from it and the backup it
    names, and is what the backup it stands for says."""

    databases = {"default"}

    def setUp(self):
        # Enough users for a few changes to be written as a patch.
        self.users = [User.objects.create_user(f"user{n}") for n in range(40)]

    def test_users_and_sessions_as_before_the_restore(self):
        users = self.users
        renamed, deleted, kept = users[:3]
        lost_session, new_session = SessionStore(), SessionStore()
        lost_session.create()
        stored = create_backup(None).name
        # After the backup: one user renamed, one deleted, one added; a session
        # ended and another begun. Restoring the backup undoes all of it, and
        # restoring its undo file brings it back.
        name_in_backup = renamed.username
        renamed.username = "renamed"
        renamed.save()
        deleted_pk = deleted.pk
        deleted.delete()
        added = User.objects.create_user("added")
        lost_session.delete()
        new_session.create()
        undo = restore_backup(stored).safety_backup
        assert "auth.User" in header_of(undo)["undo"]["tables"]
        cases = {
            "renamed, as before the restore": (renamed, None, True),
            "renamed, as in the backup": (
                User(pk=renamed.pk, username=name_in_backup),
                None,
                False,
            ),
            "deleted": (User(pk=deleted_pk, username="user1"), None, False),
            "kept": (kept, None, True),
            "added": (added, None, True),
            "session begun": (kept, new_session.session_key, True),
            "session ended": (kept, lost_session.session_key, False),
        }
        source = BackupSource.from_storage(undo)
        self.addCleanup(source.close)
        rebuilt = undone(BackupSource.from_storage(undo))
        self.addCleanup(rebuilt.close)
        for case, (user, session_key, survives) in cases.items():
            with mock.patch.object(
                differential_undo, "_rebuild", side_effect=AssertionError("built")
            ):
                found = who_survives(source, user, session_key)
            assert found == who_survives(rebuilt, user, session_key), case
            slot = "session" if session_key else "user"
            assert found[slot] is survives, case

    def test_the_backup_it_names_is_gone(self):
        stored = create_backup(None).name
        another = User.objects.create_user("another")
        undo = restore_backup(stored).safety_backup
        assert "auth.User" in header_of(undo)["undo"]["tables"]
        backup_storage().delete(stored)
        source = BackupSource.from_storage(undo)
        self.addCleanup(source.close)
        # Found among the undo file's own rows; any other user is looked up in
        # the backup, which it cannot read.
        assert who_survives(source, another, None)["user"] is True
        with pytest.raises(StorageError, match=stored):
            who_survives(source, self.users[5], None)
