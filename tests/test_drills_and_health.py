"""drillbackup and checkbackups: restore drills into a scratch database, health checks."""

from __future__ import annotations

import datetime
import gzip
import json
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.test import TestCase, TransactionTestCase, override_settings

from backups_app import signals
from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.models import BackupRecord, DrillRun
from backups_app.operations.drill import DrillRefused, run_drill
from backups_app.operations.health import HealthPolicy, check_database
from backups_app.operations.units import format_size
from tests.backup_files import rewrite
from tests.factories import populate_zoo
from tests.test_operations import own_storage
from tests.test_processes import manage
from tests.utils import snapshot

UTC = datetime.UTC

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def clear_storage() -> None:
    storage = backup_storage()
    try:
        names = storage.listdir("")[1]
    except FileNotFoundError:
        return
    for name in names:
        storage.delete(name)


class DrillTests(TestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)
        populate_zoo()

    def test_the_newest_backup_restores_exactly_into_the_scratch_database(self):
        create_backup(None)
        newest = create_backup(None)
        heard = []
        signals.drill_finished.connect(
            lambda sender, result, **kwargs: heard.append(result), weak=False
        )
        self.addCleanup(signals.drill_finished.receivers.clear)
        result = run_drill(scratch="other", migrate=False)
        assert result.ok, result
        assert result.backup_name == newest.name
        assert result.summary.startswith("restored exactly: ")
        assert snapshot("other") == snapshot("default")
        run = DrillRun.objects.get()
        assert (run.backup_name, run.scratch_database, run.ok) == (
            newest.name,
            "other",
            True,
        )
        assert heard == [result]

    def test_refuses_the_database_the_backup_came_from(self):
        summary = create_backup(None)
        with pytest.raises(DrillRefused) as excinfo:
            run_drill(scratch="default", migrate=False)
        assert str(excinfo.value) == (
            f"Database 'default' is the one {summary.name} was taken from; a drill "
            "replaces its data. Pass --allow-source-database to drill there anyway."
        )
        assert not DrillRun.objects.exists()

    def test_nothing_to_drill(self):
        with pytest.raises(DrillRefused, match="No backup of database 'default'"):
            run_drill(scratch="other", migrate=False)

    def test_a_damaged_backup_fails_the_drill_and_the_health_check(self):
        summary = create_backup(None)
        storage = backup_storage()
        with storage.open(summary.name, "rb") as file:
            data = gzip.decompress(file.read())
        storage.delete(summary.name)
        storage.save(summary.name, ContentFile(data[: len(data) // 2]))
        before = snapshot("other")
        result = run_drill(scratch="other", migrate=False)
        assert not result.ok
        assert result.failed_step == "restore"
        assert snapshot("other") == before
        codes = [
            p.code for p in check_database("default", HealthPolicy(None, None, None))
        ]
        assert codes == ["damaged", "drill-failed"]


class HealthTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)
        populate_zoo()
        self.template = self.tmp_path / "template.jsonl.gz"
        create_backup(self.template)

    def stored(self, name: str, created: datetime.datetime) -> str:
        copy = rewrite(
            self.template,
            self.tmp_path / name,
            header=lambda header: {**header, "created": created.isoformat()},
        )
        return backup_storage().save(name, ContentFile(copy.read_bytes()))

    def test_no_backup(self):
        [problem] = check_database("default", HealthPolicy(None, None, None))
        assert problem.message == "default: no backup in the storage"

    def test_too_old_too_small_and_shrunk(self):
        now = datetime.datetime(2026, 11, 20, 12, tzinfo=UTC)
        self.stored("backup-1.jsonl", now - datetime.timedelta(days=3))
        backup_storage().save(
            "backup-0.jsonl",
            ContentFile(
                rewrite(
                    self.template,
                    self.tmp_path / "small",
                    # A backup of an empty scope: no tables at all.
                    header=lambda h: {
                        **h,
                        "tables": [],
                        "created": (now - datetime.timedelta(hours=30)).isoformat(),
                    },
                    keep_table=lambda label: False,
                ).read_bytes()
            ),
        )
        policy = HealthPolicy(datetime.timedelta(hours=26), 10_000_000, 0.5)
        small = format_size(backup_storage().size("backup-0.jsonl"))
        big = format_size(backup_storage().size("backup-1.jsonl"))
        messages = [p.message for p in check_database("default", policy, now=now)]
        assert messages == [
            "default: the newest backup is 30 hours old, more than 26 hours: "
            "backup-0.jsonl",
            f"default: the newest backup has {small}, less than 9.5 MB: backup-0.jsonl",
            f"default: the newest backup has {small}, much less than the {big} of "
            "the one before: backup-0.jsonl",
        ]

    def test_a_failed_validation_is_a_problem(self):
        self.stored("backup-0.jsonl", datetime.datetime.now(UTC))
        BackupRecord.objects.create(name="backup-0.jsonl", last_validation_ok=False)
        [problem] = check_database("default", HealthPolicy(None, None, None))
        assert problem.code == "differs"

    @override_settings(BACKUPS={"HEALTH": {"MAX_AGE": "1h", "SHRINK_RATIO": None}})
    def test_settings_give_the_policy(self):
        policy = HealthPolicy.from_settings()
        assert policy.max_age == datetime.timedelta(hours=1)
        assert policy.shrink_ratio is None
        assert HealthPolicy.from_settings(max_age="2d").max_age == datetime.timedelta(
            days=2
        )


class ProcessTests(TransactionTestCase):
    """Exit codes as monitors and cron see them."""

    databases = {"default", "other"}

    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)
        populate_zoo()

    def test_checkbackups_exit_codes(self):
        nothing = manage("checkbackups")
        assert nothing.returncode == 1
        assert nothing.stdout.decode() == "default: no backup in the storage\n"
        assert nothing.stderr.decode() == "CommandError: 1 problem with the backups.\n"
        create_backup(None)
        healthy = manage("checkbackups", "--json")
        assert healthy.returncode == 0, healthy.stderr
        assert json.loads(healthy.stdout) == {
            "healthy": True,
            "databases": ["default"],
            "problems": [],
        }
        unknown = manage("checkbackups", "--database", "nope")
        assert unknown.returncode == 2
        assert unknown.stderr.decode().startswith(
            "CommandError: Unknown database 'nope'; the aliases are: "
        )
        bad = manage("checkbackups", "--max-age", "soon")
        assert bad.returncode == 2
        assert "'soon' is not a duration" in bad.stderr.decode()
        usage = manage("checkbackups", "--no-such-option")
        assert usage.returncode == 2
        usage = manage("drillbackup")  # --database is required
        assert usage.returncode == 4

    def test_checkbackups_on_an_old_a_damaged_and_a_failed_drill(self):
        old = datetime.datetime.now(UTC) - datetime.timedelta(days=3)
        template = Path(backup_storage().path(create_backup(None).storage_name))
        data = rewrite(
            template,
            template.with_name("copy.jsonl"),
            header=lambda header: {**header, "created": old.isoformat()},
        ).read_bytes()
        clear_storage()
        backup_storage().save("backup-old.jsonl", ContentFile(data))
        aged = manage("checkbackups", "--max-age", "26h")
        assert aged.returncode == 1
        assert aged.stdout.decode() == (
            "default: the newest backup is 3 days old, more than 26 hours: "
            "backup-old.jsonl\n"
        )
        path = Path(backup_storage().path("backup-old.jsonl"))
        path.write_bytes(path.read_bytes()[:-200])
        DrillRun.objects.create(
            backup_name="backup-old.jsonl",
            source_database="default",
            scratch_database="other",
            ok=False,
            summary="restore failed: damaged",
        )
        broken = manage("checkbackups", "--max-age", "7d", "--json")
        assert broken.returncode == 1
        problems = json.loads(broken.stdout)["problems"]
        assert [p["code"] for p in problems] == ["damaged", "drill-failed"]

    def test_drillbackup_exit_codes(self):
        create_backup(None)
        passed = manage("drillbackup", "--database", "other", "--json")
        assert passed.returncode == 0, passed.stderr
        assert json.loads(passed.stdout)["ok"] is True
        refused = manage("drillbackup", "--database", "default")
        assert refused.returncode == 4
        assert "Pass --allow-source-database" in refused.stderr.decode()
        assert DrillRun.objects.count() == 1
