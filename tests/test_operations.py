"""listbackups and prunebackups: what the storage holds, and what retention deletes."""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management.base import CommandError
from django.test import TestCase, TransactionTestCase, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.models import BackupRecord, Integrity, Origin
from backups_app.operations.inventory import list_backups
from backups_app.operations.prune import plan_prune, policy_from, prune
from backups_app.operations.retention import Candidate, RetentionPolicy, apply_policy
from backups_app.operations.units import (
    format_count,
    format_size,
    parse_duration,
    parse_size,
)
from tests.backup_files import rewrite
from tests.factories import populate_zoo
from tests.test_processes import manage
from tests.utils import run_command, stored_files

UTC = datetime.UTC
NOW = datetime.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
IN_MEMORY = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "backups": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
}

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def template_backup(tmp_path: Path) -> Path:
    populate_zoo()
    path = tmp_path / "template.jsonl.gz"
    create_backup(path)
    return path


def store(
    template: Path,
    tmp_path: Path,
    name: str,
    created: datetime.datetime,
    *,
    origin: str = "command",
    database: str = "default",
) -> str:
    """Put an intact backup taken at ``created`` into the backup storage."""
    copy = rewrite(
        template,
        tmp_path / f"copy-{name}",
        header=lambda header: {
            **header,
            "created": created.isoformat(),
            "origin": origin,
            "database": database,
        },
    )
    return backup_storage().save(name, ContentFile(copy.read_bytes()))


def own_storage(test) -> None:
    """Give the test a backup storage of its own, in its tmp_path."""
    location = test.tmp_path / "storage"
    test.enterContext(
        override_settings(
            STORAGES={
                "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
                "backups": {
                    "BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(location)},
                },
            }
        )
    )


class InventoryTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)
        self.template = template_backup(self.tmp_path)

    def check_kinds_and_order(self):
        store(self.template, self.tmp_path, "backup-a.jsonl", NOW)
        store(
            self.template,
            self.tmp_path,
            "safety-b.jsonl",
            NOW + datetime.timedelta(hours=1),
            origin="safety",
        )
        store(
            self.template,
            self.tmp_path,
            "upload-c.jsonl",
            NOW - datetime.timedelta(days=1),
        )
        store(
            self.template,
            self.tmp_path,
            "backup-other.jsonl",
            NOW - datetime.timedelta(days=2),
            database="other",
        )
        backup_storage().save("notes.txt", ContentFile(b"not a backup\n"))
        backups = list_backups()
        assert [(b.name, b.kind, b.database) for b in backups] == [
            ("safety-b.jsonl", "safety", "default"),
            ("backup-a.jsonl", "backup", "default"),
            ("upload-c.jsonl", "upload", "default"),
            ("backup-other.jsonl", "backup", "other"),
            ("notes.txt", "unknown", ""),
        ]
        assert backups[-1].integrity == "damaged"
        assert "is not a backups_app backup" in backups[-1].problem
        assert backups[1].created == NOW
        assert backups[1].size == backup_storage().size("backup-a.jsonl")
        assert [b.name for b in list_backups("other")] == ["backup-other.jsonl"]

    def test_kinds_and_order_on_the_file_system(self):
        self.check_kinds_and_order()

    @override_settings(STORAGES=IN_MEMORY)
    def test_kinds_and_order_in_memory(self):
        self.check_kinds_and_order()

    def test_records_add_rows_and_validation(self):
        store(self.template, self.tmp_path, "backup-a.jsonl", NOW)
        BackupRecord.objects.create(
            name="backup-a.jsonl",
            rows=42,
            integrity=Integrity.INTACT,
            last_validation_ok=False,
        )
        [backup] = list_backups()
        assert (backup.rows, backup.integrity, backup.last_validation) == (
            42,
            "intact",
            "differ",
        )

    def test_listbackups_json_and_text(self):
        store(self.template, self.tmp_path, "backup-a.jsonl", NOW)
        stdout, _ = run_command("listbackups", "--json")
        [entry] = json.loads(stdout)
        assert entry["name"] == "backup-a.jsonl"
        assert entry["created"] == NOW.isoformat()
        assert entry["kind"] == "backup"
        stdout, _ = run_command("listbackups")
        header, rule, row = stdout.splitlines()
        assert header.split() == [
            "name",
            "kind",
            "database",
            "created",
            "age",
            "size",
            "tables",
            "rows",
            "media",
            "health",
        ]
        assert row.split()[:6] == [
            "backup-a.jsonl",
            "backup",
            "default",
            "2026-11-20",
            "12:00",
            "1",
        ]
        # No rows counted yet, no media.
        assert row.endswith("-      -  unchecked")

    def test_drills_show_in_the_listing(self):
        from backups_app.models import DrillRun

        store(self.template, self.tmp_path, "backup-a.jsonl", NOW)
        store(self.template, self.tmp_path, "backup-b.jsonl", NOW)
        DrillRun.objects.create(backup_name="backup-a.jsonl", ok=True)
        DrillRun.objects.create(backup_name="backup-b.jsonl", ok=True)
        DrillRun.objects.create(backup_name="backup-b.jsonl", ok=False)
        drills = {b.name: b.last_drill for b in list_backups()}
        assert drills == {"backup-a.jsonl": "passed", "backup-b.jsonl": "failed"}
        stdout, _ = run_command("listbackups")
        rows = {line.split()[0]: line for line in stdout.splitlines()[2:]}
        assert rows["backup-a.jsonl"].endswith("drilled")
        assert rows["backup-b.jsonl"].endswith("drill failed")

    def test_partial_files_are_listed_with_their_state(self):
        import os

        from backups_app.fileformat.streams import _host

        store(self.template, self.tmp_path, "backup-a.jsonl", NOW)
        folder = Path(backup_storage().location)
        dead = 2**22 + 12345  # above any pid this machine hands out
        (folder / f".backup-{_host()}-{dead}-abcdefgh.partial").write_bytes(b"x" * 10)
        (folder / f".backup-{_host()}-{os.getpid()}-ijklmnop.partial").write_bytes(b"y")
        (folder / ".hidden-notes").write_bytes(b"z")
        states = {
            b.name: (b.kind, b.integrity)
            for b in list_backups(partials=True)
            if b.kind == "partial"
        }
        assert states == {
            f".backup-{_host()}-{dead}-abcdefgh.partial": ("partial", "left behind"),
            f".backup-{_host()}-{os.getpid()}-ijklmnop.partial": ("partial", "writing"),
        }
        assert [b.name for b in list_backups()] == ["backup-a.jsonl"]
        stdout, _ = run_command("listbackups")
        assert "  left behind" in stdout and "  writing" in stdout

    def test_an_empty_storage(self):
        stdout, _ = run_command("listbackups")
        assert stdout == "No backups in the backup storage.\n"


class PruneTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)
        self.template = template_backup(self.tmp_path)

    def fill(self) -> None:
        for day in range(6):
            store(
                self.template,
                self.tmp_path,
                f"backup-{day}.jsonl",
                NOW - datetime.timedelta(days=day),
            )
        for hour in range(3):
            store(
                self.template,
                self.tmp_path,
                f"safety-{hour}.jsonl",
                NOW - datetime.timedelta(hours=hour),
                origin="safety",
            )
        store(self.template, self.tmp_path, "upload-x.jsonl", NOW)
        backup_storage().save("notes.txt", ContentFile(b"mine\n"))

    def test_keep_last_deletes_the_rest_of_ours_only(self):
        self.fill()
        BackupRecord.objects.create(name="backup-5.jsonl", origin=Origin.COMMAND)
        stdout, _ = run_command("prunebackups", "--keep-last", "2", "--keep-daily", "0")
        assert set(stored_files()) == {
            "backup-0.jsonl",
            "backup-1.jsonl",
            # The safety policy of the settings (last 3) keeps all three.
            "safety-0.jsonl",
            "safety-1.jsonl",
            "safety-2.jsonl",
            "upload-x.jsonl",
            "notes.txt",
        }
        assert not BackupRecord.objects.filter(name="backup-5.jsonl").exists()
        assert re.fullmatch(
            r"Deleted 4 of 11 files \([\d.]+ KB\)\.", stdout.splitlines()[-1]
        )

    @override_settings(STORAGES=IN_MEMORY)
    def test_dry_run_deletes_nothing_and_says_why(self):
        self.fill()
        before = set(stored_files())
        stdout, _ = run_command("prunebackups", "--keep-last", "1", "--dry-run")
        assert set(stored_files()) == before
        lines = {line.split()[0]: line for line in stdout.splitlines()[2:-1]}
        assert lines["backup-0.jsonl"].endswith("keep: newest, last")
        assert lines["backup-3.jsonl"].endswith("delete")
        assert lines["notes.txt"].endswith(
            "keep: not identified as a backup of this site"
        )
        assert lines["upload-x.jsonl"].endswith(
            "keep: not identified as a backup of this site"
        )
        assert stdout.splitlines()[-1].startswith("Would delete 5 of 11 files ("), (
            stdout
        )

    def test_the_newest_intact_backup_is_kept(self):
        self.fill()
        BackupRecord.objects.create(name="backup-4.jsonl", integrity=Integrity.INTACT)
        BackupRecord.objects.create(name="backup-0.jsonl", integrity=Integrity.DAMAGED)
        decisions = plan_prune(policy=RetentionPolicy(last=1))
        kept = {d.backup.name: d.reasons for d in decisions if d.keep}
        assert kept["backup-0.jsonl"] == ("newest", "last")
        assert kept["backup-4.jsonl"] == ("newest intact",)
        assert "backup-1.jsonl" not in kept

    def test_json(self):
        self.fill()
        stdout, _ = run_command("prunebackups", "--keep-last", "5", "--json")
        document = json.loads(stdout)
        assert document["dry_run"] is False
        assert sorted(document["deleted"]) == ["backup-5.jsonl"]
        assert {d["name"] for d in document["decisions"]} >= {"backup-5.jsonl"}

    def test_max_total_size_drops_the_oldest(self):
        self.fill()
        size = backup_storage().size("backup-0.jsonl")
        run_command(
            "prunebackups",
            "--keep-last",
            "6",
            "--max-total-size",
            str(size * 3),
        )
        assert {n for n in set(stored_files()) if n.startswith("backup-")} == {
            "backup-0.jsonl",
            "backup-1.jsonl",
            "backup-2.jsonl",
        }


class PrunePropertyTests(HypothesisTestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        self.template = template_backup(self.tmp_path)

    @override_settings(STORAGES=IN_MEMORY)
    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        st.lists(st.integers(0, 40 * 24), min_size=1, max_size=12, unique=True),
        st.integers(0, 3),
        st.integers(0, 5),
        st.booleans(),
    )
    def test_random_times_keep_what_the_policy_keeps(self, hours, last, daily, dry_run):
        storage = backup_storage()
        for name in storage.listdir("")[1]:
            storage.delete(name)
        names = {}
        for hour in hours:
            created = NOW - datetime.timedelta(hours=hour)
            names[
                store(self.template, self.tmp_path, f"backup-{hour}.jsonl", created)
            ] = created
        storage.save("foreign.txt", ContentFile(b"x"))
        policy = RetentionPolicy(last=last, daily=daily)
        decisions = plan_prune(policy=policy)
        if not dry_run:
            prune(decisions)
        expected = {
            d.candidate.name
            for d in apply_policy([Candidate(n, c) for n, c in names.items()], policy)
            if d.keep
        }
        remaining = set(stored_files())
        assert "foreign.txt" in remaining
        if dry_run:
            assert remaining == set(names) | {"foreign.txt"}
        else:
            assert remaining == expected | {"foreign.txt"}
            newest = max(names, key=names.get)
            assert newest in remaining


class UnitTests(TestCase):
    def test_sizes(self):
        assert parse_size("1048576") == 1 << 20
        assert parse_size("512K") == 512 << 10
        assert parse_size("10GB") == 10 << 30
        assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
        with pytest.raises(ValueError, match="'ten' is not a size"):
            parse_size("ten")

    def test_sizes_and_counts_as_people_read_them(self):
        assert format_size(0) == "0 B"
        assert format_size(1023) == "1023 B"
        assert format_size(1024) == "1.0 KB"
        assert format_size(46_080) == "45.0 KB"
        assert format_size(10_000_000) == "9.5 MB"
        assert format_size(3 << 30) == "3.0 GB"
        assert format_size(2 << 40) == "2.0 TB"
        assert format_size(3 << 50) == "3072.0 TB"
        assert format_size(None) == "–"
        assert format_size(None, missing="-") == "-"
        assert format_count(1_234_567) == "1,234,567"
        assert format_count(0) == "0"
        assert format_count(None, missing="-") == "-"

    def test_durations(self):
        assert parse_duration("90s") == datetime.timedelta(seconds=90)
        assert parse_duration("26h") == datetime.timedelta(hours=26)
        assert parse_duration("7d") == datetime.timedelta(days=7)
        with pytest.raises(ValueError, match="'7' is not a duration"):
            parse_duration("7")

    def test_policy_from_settings(self):
        assert policy_from({"daily": 3, "max_total_size": "1K"}) == RetentionPolicy(
            daily=3, max_total_size=1024
        )
        with pytest.raises(ValueError, match="Unknown retention keys: dayly."):
            policy_from({"dayly": 3})


class ProcessTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        # The child processes use the test settings' backup storage.
        for name in set(stored_files()):
            backup_storage().delete(name)
        self.addCleanup(
            lambda: [backup_storage().delete(n) for n in set(stored_files())]
        )

    def test_exit_codes(self):
        template = template_backup(self.tmp_path)
        store(template, self.tmp_path, "backup-a.jsonl", NOW)
        listed = manage("listbackups", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [b["name"] for b in json.loads(listed.stdout)] == ["backup-a.jsonl"]
        bad = manage("prunebackups", "--max-total-size", "lots")
        assert bad.returncode == 4
        assert bad.stderr.decode().strip() == (
            "CommandError: 'lots' is not a size (examples: 500M, 10G, 1.5TB)."
        )
        dry = manage("prunebackups", "--keep-last", "1", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert set(stored_files()) == {"backup-a.jsonl"}


class BackupPruneAndAllDatabasesTests(TestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)
        self.template = template_backup(self.tmp_path)

    def test_all_databases_writes_one_backup_per_alias(self):
        stdout, _ = run_command("backup", "--all-databases", "--json")
        document = json.loads(stdout)
        assert sorted(b["database"] for b in document["backups"]) == [
            "default",
            "other",
        ]
        assert document["failed"] == {}
        assert sorted(b.database for b in list_backups()) == ["default", "other"]

    def test_all_databases_cannot_go_to_one_output(self):
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "--all-databases", "--output", "x.jsonl.gz")
        assert excinfo.value.returncode == 4
        assert str(excinfo.value) == (
            "--all-databases writes one file per database into the backup storage; "
            "it cannot go with --output."
        )

    @override_settings(BACKUPS={"RETENTION": {"last": 1}})
    def test_prune_after_a_good_backup(self):
        for day in (3, 2, 1):
            store(
                self.template,
                self.tmp_path,
                f"backup-old-{day}.jsonl",
                NOW - datetime.timedelta(days=day),
            )
        stdout, _ = run_command("backup", "--prune")
        assert stdout.splitlines()[-1] == (
            "Pruned 3 old backups of database 'default' by the retention policy."
        )
        [left] = set(stored_files())
        assert left.startswith("backup-default-")

    def test_no_prune_after_a_failed_backup(self):
        store(self.template, self.tmp_path, "backup-old.jsonl", NOW)
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "--prune", "--database", "nope")
        assert excinfo.value.returncode == 4
        assert set(stored_files()) == {"backup-old.jsonl"}
