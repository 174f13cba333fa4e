"""Backups made here carry a mac in their trailer; every other file is foreign.

A restore plan says which (``provenance``), the restore command asks for
``--allow-foreign`` before restoring a foreign file without a prompt, and
``auth_changes`` names the accounts a foreign file would create or change.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
from pathlib import Path

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import CommandError
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.fileformat.streams import BackupSource
from backups_app.provenance import auth_changes
from backups_app.restore import plan_restore
from tests.backup_files import rewrite
from tests.test_admin import clear_storage
from tests.utils import run_command, snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

User = get_user_model()

ELSEWHERE = {"SIGNING_KEY": "another installation's key"}


def trailer_of(data: bytes) -> dict:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return orjson.loads(data.rstrip(b"\n").rsplit(b"\n", 1)[1])


def backup_file(path: Path) -> Path:
    create_backup(path)
    return path


def user_columns() -> list[str]:
    return [field.column for field in User._meta.concrete_fields]


def crafted(source: Path, target: Path, **changes_by_username) -> Path:
    """Rewrite a backup elsewhere (another key), changing users' columns.

    ``changes_by_username`` maps a username to ``{column: value}``: what an
    attacker edits before recomputing the digests.
    """
    columns = user_columns()

    def row(label, values):
        if label == User._meta.label:
            username = values[columns.index("username")]
            for column, value in changes_by_username.get(username, {}).items():
                values[columns.index(column)] = value
        return values

    with override_settings(BACKUPS=ELSEWHERE):
        return rewrite(source, target, row=row)


class ProvenanceTests(TestCase):
    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)
        self.path = backup_file(self.tmp_path / "ours.jsonl.gz")

    def test_the_mac_is_an_hmac_sha256_of_digest_created_and_database(self):
        data = self.path.read_bytes()
        header = orjson.loads(gzip.decompress(data).split(b"\n", 1)[0])
        trailer = trailer_of(data)
        key = hashlib.sha256(
            b"backups_app.provenance" + b"backups-app-tests-only-not-secret"
        ).digest()
        message = "\n".join(
            ["backups_app", trailer["digest"], header["created"], header["database"]]
        )
        expected = hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
        assert trailer["mac"] == expected
        assert plan_restore(self.path).provenance == "ours"

    def test_a_file_made_with_another_key_or_without_mac_is_foreign(self):
        with override_settings(BACKUPS=ELSEWHERE):
            elsewhere = backup_file(self.tmp_path / "elsewhere.jsonl.gz")
            assert plan_restore(elsewhere).provenance == "ours"
        assert plan_restore(elsewhere).provenance == "foreign"
        lines = gzip.decompress(self.path.read_bytes()).rstrip(b"\n").split(b"\n")
        trailer = orjson.loads(lines[-1])
        del trailer["mac"]
        bare = self.tmp_path / "bare.jsonl"
        bare.write_bytes(b"\n".join([*lines[:-1], orjson.dumps(trailer)]) + b"\n")
        plan = plan_restore(bare)
        assert plan.provenance == "foreign"
        assert plan.to_dict()["provenance"] == "foreign"

    def test_recomputed_digests_do_not_make_a_crafted_file_ours(self):
        forged = crafted(self.path, self.tmp_path / "forged.jsonl")
        assert plan_restore(forged).provenance == "foreign"

    def test_signing_keys_rotate(self):
        with override_settings(BACKUPS={"SIGNING_KEY": "old"}):
            old = backup_file(self.tmp_path / "old.jsonl.gz")
        with override_settings(BACKUPS={"SIGNING_KEY": ["new", "old"]}):
            assert plan_restore(old).provenance == "ours"
            new = backup_file(self.tmp_path / "new.jsonl.gz")
        with override_settings(BACKUPS={"SIGNING_KEY": ["new"]}):
            assert plan_restore(old).provenance == "foreign"
            assert plan_restore(new).provenance == "ours"
        with override_settings(
            SECRET_KEY="rotated-secret-key-for-this-test-only",
            SECRET_KEY_FALLBACKS=["backups-app-tests-only-not-secret"],
        ):
            assert plan_restore(self.path).provenance == "ours"
        with override_settings(SECRET_KEY="rotated-secret-key-for-this-test-only"):
            assert plan_restore(self.path).provenance == "foreign"


class AuthChangesTests(TestCase):
    def test_the_accounts_a_foreign_file_would_create_or_change(self):
        alice = User.objects.create_user("alice", password="pw")
        User.objects.create_user("bob", password="pw")
        User.objects.create_user("carol", password="pw")
        crew = Group.objects.create(name="crew")
        delete_user = Permission.objects.get(
            content_type__app_label="auth", codename="delete_user"
        )
        alice.user_permissions.add(delete_user)
        alice.groups.add(crew)
        crew.permissions.add(delete_user)
        source = backup_file(self.tmp_path / "source.jsonl.gz")
        # The database moves on: carol leaves, dave arrives, alice loses her rights.
        User.objects.filter(username="carol").delete()
        User.objects.create_user("dave", password="pw")
        alice.user_permissions.clear()
        alice.groups.clear()
        crew.permissions.clear()
        forged = crafted(
            source,
            self.tmp_path / "forged.jsonl",
            bob={"is_superuser": True, "password": "md5$planted$0"},
            carol={"username": "mallory", "is_staff": True, "is_superuser": True},
        )
        changes = auth_changes(BackupSource(forged), "default")
        assert [(c.text, c.alarming) for c in changes.changes] == [
            ("New user 'mallory': superuser, staff", True),
            ("User 'bob' becomes superuser, gets another password", True),
            ("User 'alice' gains permission auth.delete_user", True),
            ("User 'alice' joins group 'crew'", True),
            ("Group 'crew' gains permission auth.delete_user", True),
            ("User 'dave' is removed", False),
        ]
        assert (changes.total, changes.alarming, changes.more) == (6, 5, 0)

    def test_an_unchanged_file_changes_no_account(self):
        User.objects.create_superuser("root", password="pw")
        changes = auth_changes(
            BackupSource(backup_file(self.tmp_path / "same.jsonl.gz")), "default"
        )
        assert (changes.changes, changes.total) == ((), 0)


class RestoreCommandForeignTests(TestCase):
    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)
        self.victim = User.objects.create_user("victim", password="pw")
        source = backup_file(self.tmp_path / "source.jsonl.gz")
        self.forged = crafted(
            source,
            self.tmp_path / "forged.jsonl",
            victim={"username": "mallory", "is_superuser": True},
        )

    def test_noinput_refuses_a_foreign_file_without_allow_foreign(self):
        before = snapshot()
        with pytest.raises(CommandError) as caught:
            run_command("restore", str(self.forged), interactive=False)
        assert str(caught.value) == (
            f"Restore refused: {self.forged} was not made by this installation; "
            "pass --allow-foreign to restore it anyway."
        )
        assert caught.value.returncode == 1
        assert snapshot() == before

    def test_allow_foreign_restores_it_with_a_warning(self):
        _stdout, stderr = run_command(
            "restore", str(self.forged), "--allow-foreign", interactive=False
        )
        assert stderr.splitlines() == [
            f"Warning: {self.forged} was not made by this installation (its mac "
            "does not verify); it may hold any users and permissions."
        ]
        assert User.objects.get(pk=self.victim.pk).username == "mallory"

    def test_our_own_file_needs_no_flag_and_gets_no_warning(self):
        ours = backup_file(self.tmp_path / "ours.jsonl.gz")
        _stdout, stderr = run_command("restore", str(ours), interactive=False)
        assert stderr == ""
