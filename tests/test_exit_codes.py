"""Exit codes and Ctrl-C, as a shell sees them: real ``manage.py`` processes.

| code | backup | validatebackup | restore |
| 0 | written | equal | restored, or dry run shown |
| 1 | failed (database unreadable) | differs, and nothing else | cancelled, or failed |
| 2 | destination not writable | file unusable | file unusable |
| 3 | | | file does not fit the schema |
| 4 | could not run | could not run | could not run |
| 130 | interrupted | interrupted | interrupted |
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from tests.factories import mutate_zoo, populate_zoo
from tests.test_processes import ROOT, child_environment
from tests.testapp.models import AllFields
from tests.utils import snapshot, stored_files

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

COMMANDS = {
    "backup": ["backup", "--output", "{file}.new"],
    "validatebackup": ["validatebackup", "{file}"],
    "restore": ["restore", "{file}", "--noinput"],
}


def environment(variant: str = "", **extra: str) -> dict[str, str]:
    return {
        **child_environment(),
        "DJANGO_SETTINGS_MODULE": "tests.process_settings",
        "BACKUPS_TEST_VARIANT": variant,
        **extra,
    }


def manage(*args: str, variant: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        timeout=120,
        env=environment(variant),
        cwd=ROOT,
        text=True,
    )


class CouldNotRunTests(TransactionTestCase):
    """Exit 4: nothing was done, and the reason is not the data."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)

    def command(self, name: str, *more: str) -> list[str]:
        return [arg.format(file=self.file) for arg in COMMANDS[name]] + list(more)

    def test_unknown_alias_lists_the_valid_ones(self):
        for name in COMMANDS:
            result = manage(*self.command(name, "--database", "nope"))
            assert (result.returncode, result.stderr) == (
                4,
                "CommandError: Unknown database 'nope'; the aliases in DATABASES "
                "are: 'default', 'other'.\n",
            ), name

    def test_unreachable_database(self):
        before = snapshot()
        for name in COMMANDS:
            result = manage(
                *self.command(name, "--database", "unreachable"), variant="unreachable"
            )
            assert (result.returncode, result.stderr) == (
                4,
                "CommandError: Cannot connect to database 'unreachable': unable to "
                "open database file\n",
            ), name
        assert not Path(f"{self.file}.new").exists()
        assert snapshot() == before

    def test_bad_usage_is_not_an_unusable_file(self):
        result = manage(*self.command("validatebackup", "--no-such-option"))
        assert result.returncode == 4
        assert result.stderr.splitlines()[-1] == (
            "__main__.py validatebackup: error: unrecognized arguments: "
            "--no-such-option"
        )
        missing_file = manage("restore", "--noinput")
        assert missing_file.returncode == 4
        assert missing_file.stderr.splitlines()[-1] == (
            "__main__.py restore: error: the following arguments are required: file"
        )

    def test_unknown_exclude_label(self):
        result = manage(*self.command("backup", "--exclude", "nope"))
        assert (result.returncode, result.stderr) == (
            4,
            "CommandError: Unknown app in exclude: 'nope'.\n",
        )
        assert not Path(f"{self.file}.new").exists()

    def test_a_refused_setting(self):
        result = manage(*self.command("validatebackup"), variant="misconfigured")
        assert result.returncode == 4
        assert (
            "?: (backups_app.E011) BACKUPS['COMPRESSION_LEVEL'] must be None or an "
            "integer from 0 to 9 for gzip, not 12." in result.stderr
        )

    def test_validate_exits_1_only_for_differences(self):
        deleted = AllFields.objects.count()
        AllFields.objects.all().delete()
        result = manage(*self.command("validatebackup"))
        # The differences and the verdict are on stdout; no error line follows.
        assert (result.returncode, result.stderr) == (1, "")
        assert result.stdout.splitlines()[-1].endswith(
            f" 1 differ; rows: {deleted} missing"
        )


class FailedTests(TransactionTestCase):
    """Exit 1 from backup and restore: the command ran and failed; nothing changed."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)

    def test_restore_that_fails_is_rolled_back(self):
        from tests.backup_files import rewrite

        def duplicate(label, row):
            if label == "testapp.Label":
                row[1] = "duplicate"
            return row

        broken = rewrite(self.file, self.tmp_path / "dupes.jsonl", row=duplicate)
        mutate_zoo()
        before = snapshot()
        result = manage("restore", str(broken), "--noinput", "--no-safety-backup")
        assert result.returncode == 1
        assert result.stderr.startswith(
            "CommandError: Restore of " + str(broken) + " failed and was rolled back: "
        )
        assert len(result.stderr.splitlines()) == 1
        assert snapshot() == before

    def test_backup_of_a_database_without_one_of_its_tables(self):
        from tests.testapp.models import Secretive

        with connection.schema_editor() as editor:
            editor.delete_model(Secretive)
        try:
            target = self.tmp_path / "new.jsonl.gz"
            result = manage("backup", "--output", str(target))
        finally:
            with connection.schema_editor() as editor:
                editor.create_model(Secretive)
        assert (result.returncode, result.stderr) == (
            1,
            "CommandError: testapp.Secretive: table 'testapp_secretive' does not "
            "exist in database 'default'; run migrate, or exclude the model.\n",
        )
        assert not target.exists()


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="PostgreSQL and MariaDB refuse to store a decimal beyond max_digits",
)
class UnreadableValueTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def test_backup_names_model_field_and_pk_and_leaves_no_file(self):
        row = AllFields.objects.create(decimal_money="12.50")
        with connection.cursor() as cursor:
            # SQLite keeps whatever number it is given, whatever the column says.
            cursor.execute(
                "UPDATE testapp_allfields SET decimal_money = 123456789012.5 "
                "WHERE id = %s",
                [row.pk],
            )
        target = self.tmp_path / "zoo.jsonl.gz"
        result = manage("backup", "--output", str(target))
        assert (result.returncode, result.stderr) == (
            1,
            f"CommandError: testapp.AllFields.decimal_money, pk {row.pk}: the stored "
            "value 123456789012.5 does not fit the field (max_digits 10, "
            "decimal_places 2)\n",
        )
        assert list(self.tmp_path.iterdir()) == []

    def unfit_after_backup(self) -> tuple[Path, int, dict[str, list[tuple]]]:
        """A backup, then a value its field cannot read; return the file, the
        row's pk and the database as stored before that value came."""
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        before = stored_tables()
        pk = AllFields.objects.order_by("pk").values_list("pk", flat=True)[0]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE testapp_allfields SET decimal_money = 123456789012.5 "
                "WHERE id = %s",
                [pk],
            )
        return file, pk, before

    def assert_replaced(self, *options: str) -> None:
        # The table cannot be compared with the file: it is reloaded whole.
        file, _, before = self.unfit_after_backup()
        result = manage("restore", str(file), "--noinput", *options)
        assert (result.returncode, result.stderr) == (0, "")
        assert stored_tables() == before

    def test_restore_without_a_safety_backup_replaces_it(self):
        self.assert_replaced("--no-safety-backup")

    def test_full_restore_without_a_safety_backup_replaces_it(self):
        self.assert_replaced("--no-safety-backup", "--full")

    def assert_refused(self, *options: str) -> None:
        file, pk, _ = self.unfit_after_backup()
        with connection.cursor() as cursor:
            cursor.execute("UPDATE testapp_label SET name = name || ' renamed'")
        changed = stored_tables()
        kept = stored_files()
        result = manage("restore", str(file), "--noinput", *options)
        assert (result.returncode, result.stderr) == (
            1,
            f"CommandError: Restore of {file} failed and was rolled back: no "
            f"safety backup could be taken: testapp.AllFields.decimal_money, pk "
            f"{pk}: the stored value 123456789012.5 does not fit the field "
            "(max_digits 10, decimal_places 2); restore without one to go on\n",
        )
        assert stored_tables() == changed
        # No safety backup or undo file, whole or partial, is left behind.
        assert stored_files() == kept

    def test_restore_with_an_undo_file_names_it_and_changes_nothing(self):
        self.assert_refused()

    def test_restore_with_a_safety_backup_names_it_and_changes_nothing(self):
        self.assert_refused("--full")


def stored_tables() -> dict[str, list[tuple]]:
    """Every table of the SQLite database, as stored: values and their types."""
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        contents = {}
        for table in tables:
            cursor.execute(f'SELECT * FROM "{table}"')
            contents[table] = sorted(
                (
                    tuple((type(value).__name__, value) for value in row)
                    for row in cursor.fetchall()
                ),
                key=repr,
            )
        return contents


class InterruptTests(TransactionTestCase):
    """Ctrl-C: one line, exit 130, and what was left behind is said and true."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        self.expected = snapshot()

    def interrupt(self, point: str, *args: str) -> tuple[int, str]:
        """Run a command until it pauses at ``point``, then send it SIGINT."""
        marker = self.tmp_path / "paused"
        child = subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env=environment(
                "pause",
                BACKUPS_TEST_PAUSE=point,
                BACKUPS_TEST_PAUSE_MARKER=str(marker),
            ),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline, f"never reached {point}"
                time.sleep(0.02)
            child.send_signal(signal.SIGINT)
            _, stderr = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        marker.unlink()
        return child.returncode, stderr

    def test_backup_leaves_no_file(self):
        target = self.tmp_path / "out" / "new.jsonl.gz"
        target.parent.mkdir()
        code, stderr = self.interrupt("backup-table", "backup", "--output", str(target))
        assert (code, stderr) == (
            130,
            "Backup interrupted: no backup file was written.\n",
        )
        # Not even the temporary file the backup was being written to.
        assert list(target.parent.iterdir()) == []

    def test_validate(self):
        code, stderr = self.interrupt(
            "validate-table", "validatebackup", str(self.file)
        )
        assert (code, stderr) == (
            130,
            "Validation interrupted before it finished; nothing was changed.\n",
        )

    def test_restore_while_writing_leaves_the_database_unchanged(self):
        mutate_zoo()
        before = snapshot()
        code, stderr = self.interrupt(
            "restore-load", "restore", str(self.file), "--noinput", "--no-safety-backup"
        )
        assert (code, stderr) == (
            130,
            "Restore interrupted: database 'default' was left unchanged.\n",
        )
        assert snapshot() == before

    def test_restore_names_the_safety_backup_it_wrote(self):
        mutate_zoo()
        before = snapshot()
        code, stderr = self.interrupt(
            "restore-after-safety", "restore", str(self.file), "--noinput"
        )
        prefix = (
            "Restore interrupted: database 'default' was left unchanged; the safety "
            "backup "
        )
        assert code == 130
        assert stderr.startswith(prefix) and stderr.endswith(" was written.\n")
        name = stderr.removeprefix(prefix).removesuffix(" was written.\n")
        assert name.startswith("safety-default-") and backup_storage().exists(name)
        assert snapshot() == before

    def test_restore_interrupted_after_commit_says_it_is_complete(self):
        mutate_zoo()
        code, stderr = self.interrupt(
            "restore-committed",
            "restore",
            str(self.file),
            "--noinput",
            "--no-safety-backup",
        )
        assert (code, stderr) == (
            130,
            "Interrupted after the restore was committed: database 'default' holds "
            "the backup's data; the restore is complete.\n",
        )
        assert snapshot() == self.expected
