"""The three commands through call_command: output, --json, prompts and messages."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase

from backups_app.fileformat.streams import backup_storage
from backups_app.management.commands.restore import restored_text
from backups_app.restore import RestoreSummary
from backups_app.tasks import restored_message
from tests.factories import populate_zoo
from tests.testapp.models import Node
from tests.utils import run_command, snapshot


def run_failing(name: str, *args: str) -> tuple[str, int]:
    """Run a command that is expected to fail; return its stdout and exit code."""
    stdout = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(name, *args, stdout=stdout, stderr=StringIO())
    return stdout.getvalue(), excinfo.value.returncode


pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class BackupCommandTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()

    def test_without_output_the_file_goes_to_the_backup_storage(self):
        stdout, _ = run_command("backup")
        first = stdout.splitlines()[0].removeprefix("Backup written to ")
        name, place = first.split(" in the backup storage ")
        assert name.startswith("backup-default-") and name.endswith(".jsonl.gz")
        assert place == f"({backup_storage().path(name)})"
        assert backup_storage().exists(name)
        assert "Backed up database 'default':" in stdout

    def test_json_prints_one_document(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        stdout, _ = run_command("backup", "--output", str(file), "--json")
        summary = json.loads(stdout)
        assert summary["path"] == str(file)
        assert summary["rows"] == sum(t["rows"] for t in summary["tables"])
        assert summary["size"] == file.stat().st_size

    def test_exclude_leaves_the_model_out(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        stdout, _ = run_command(
            "backup", "-o", str(file), "--exclude", "testapp.Node", "--json"
        )
        assert "testapp.Node" not in {t["label"] for t in json.loads(stdout)["tables"]}

    def test_unknown_exclude_is_one_clear_line(self):
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "-o", str(self.tmp_path / "x.jsonl.gz"), "-e", "nope")
        assert str(excinfo.value) == "Unknown app in exclude: 'nope'."
        assert excinfo.value.returncode == 4
        assert not (self.tmp_path / "x.jsonl.gz").exists()

    def test_unwritable_destination_is_one_clear_line(self):
        not_a_folder = self.tmp_path / "plain-file"
        not_a_folder.write_text("")
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "-o", str(not_a_folder / "zoo.jsonl.gz"))
        assert str(excinfo.value) == (
            f"Cannot write {str(not_a_folder / 'zoo.jsonl.gz')!r}: the directory "
            f"{str(not_a_folder)!r} is not a directory."
        )
        assert excinfo.value.returncode == 2

    def test_a_folder_that_does_not_exist_is_refused_not_made(self):
        target = self.tmp_path / "no-such-folder" / "zoo.jsonl.gz"
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "-o", str(target))
        assert str(excinfo.value) == (
            f"Cannot write {str(target)!r}: the directory {str(target.parent)!r} "
            "does not exist."
        )
        assert excinfo.value.returncode == 2
        assert list(self.tmp_path.iterdir()) == []

    def test_a_write_failing_on_the_writer_thread_stops_the_backup(self):
        from backups_app.fileformat.writer import BackupWriter

        file = self.tmp_path / "zoo.jsonl.gz"
        calls = 0
        write = BackupWriter._write_now

        def disk_fills_up(self, data):
            nonlocal calls
            calls += 1
            if calls > 3:
                raise OSError(28, "No space left on device")
            write(self, data)

        with (
            mock.patch.object(BackupWriter, "_write_now", disk_fills_up),
            pytest.raises(CommandError) as excinfo,
        ):
            run_command("backup", "-o", str(file))
        assert str(excinfo.value) == f"Cannot write {file}: No space left on device."
        assert list(self.tmp_path.iterdir()) == []

    def test_a_failure_midway_leaves_no_file_under_the_name(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        with (
            mock.patch(
                "backups_app.fileformat.writer.BackupWriter.end_table",
                side_effect=OSError(28, "No space left on device"),
            ),
            pytest.raises(CommandError) as excinfo,
        ):
            run_command("backup", "-o", str(file))
        assert str(excinfo.value) == f"Cannot write {file}: No space left on device."
        assert list(self.tmp_path.iterdir()) == []


class RestoreCommandTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        run_command("backup", "-o", str(self.file))
        Node.objects.create(name="added after the backup")
        self.before = snapshot()

    def test_dry_run_shows_the_plan_and_changes_nothing(self):
        stdout, _ = run_command("restore", str(self.file), "--dry-run")
        assert "rows now" in stdout and "rows in file" in stdout
        node_line = next(
            line for line in stdout.splitlines() if "testapp.Node " in line
        )
        now, in_file = node_line.split()[1:3]
        assert int(now) == int(in_file) + 1
        assert stdout.rstrip().endswith("Dry run: nothing was changed.")
        assert snapshot() == self.before

    def test_dry_run_json(self):
        stdout, _ = run_command("restore", str(self.file), "--dry-run", "--json")
        plan = json.loads(stdout)
        assert plan["can_restore"] is True
        node = next(t for t in plan["tables"] if t["label"] == "testapp.Node")
        assert node["rows_now"] == node["rows_in_file"] + 1

    def test_answering_anything_but_yes_cancels(self):
        with (
            mock.patch("sys.stdin.isatty", return_value=True),
            mock.patch("builtins.input", return_value="y"),
            pytest.raises(CommandError) as excinfo,
        ):
            run_command("restore", str(self.file))
        assert str(excinfo.value) == "Restore cancelled."
        assert excinfo.value.returncode == 1
        assert snapshot() == self.before

    def test_yes_restores_and_names_the_safety_backup(self):
        with (
            mock.patch("sys.stdin.isatty", return_value=True),
            mock.patch("builtins.input", return_value="yes"),
        ):
            stdout, _ = run_command("restore", str(self.file))
        safety = next(
            line for line in stdout.splitlines() if line.startswith("Safety backup")
        )
        name = safety.rsplit(": ", 1)[1]
        assert name.startswith("safety-default-") and backup_storage().exists(name)
        assert "Restored" in stdout.splitlines()[-5]
        # How to undo it: this very command, given the safety backup.
        assert stdout.splitlines()[-2:] == [
            "To undo this restore, run:",
            f"  python -m django restore {name}",
        ]
        assert not Node.objects.filter(name="added after the backup").exists()

    def test_json_restore_without_noinput_is_refused_before_any_work(self):
        with pytest.raises(CommandError) as excinfo:
            run_command("restore", str(self.file), "--json")
        assert str(excinfo.value) == "--json needs --noinput or --dry-run."
        assert snapshot() == self.before

    def test_noinput_json_summary(self):
        stdout, _ = run_command(
            "restore", str(self.file), "--noinput", "--no-safety-backup", "--json"
        )
        summary = json.loads(stdout)
        assert summary["safety_backup"] is None
        assert summary["rows_deleted"] == summary["rows_inserted"] + 1
        # Where the time went: the restore's stages in order, within its seconds.
        assert list(summary["stages"])[:3] == ["lock", "compare", "delete"]
        stages = summary["stages"]
        assert 0 < sum(stages.values()) <= summary["seconds"] + len(stages) / 1000

    @mock.patch("backups_app.progress.SHORT_STAGE", 0)  # these stages are short
    def test_verbose_restore_says_where_the_time_went(self):
        stdout, _ = run_command(
            "restore",
            str(self.file),
            "--noinput",
            "--no-safety-backup",
            "--full",
            "-v",
            "2",
        )
        lines = stdout.splitlines()
        times = lines[lines.index("Time by stage:") + 1 :]
        names = [
            line.rsplit(None, 2)[0].strip() for line in times if line.endswith(" s")
        ]
        # At least the stages of a full restore that take time on any database.
        assert {"Deleting rows", "Loading rows"} <= set(names)
        assert "Comparing with the file" not in names  # --full compares nothing

    def test_file_by_name_in_the_backup_storage(self):
        stdout, _ = run_command("backup", "--json")
        name = json.loads(stdout)["storage_name"]
        Node.objects.create(name="one more")
        run_command("restore", name, "--noinput", "--no-safety-backup")
        assert snapshot() == self.before


class ValidateCommandTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        run_command("backup", "-o", str(self.file))

    def test_exact_match(self):
        stdout, _ = run_command("validatebackup", str(self.file))
        assert stdout.strip().endswith("tables match exactly, 0 differ")

    def test_differences_are_listed_with_example_keys_and_exit_1(self):
        node = Node.objects.create(name="extra")
        stdout, returncode = run_failing("validatebackup", str(self.file))
        assert returncode == 1
        assert f"  testapp.Node: extra pk {node.pk}\n" in stdout
        assert stdout.strip().endswith("tables match exactly, 1 differ; rows: 1 extra")

    def test_json_report(self):
        node = Node.objects.create(name="extra")
        stdout, returncode = run_failing("validatebackup", str(self.file), "--json")
        assert returncode == 1
        report = json.loads(stdout)
        table = next(t for t in report["tables"] if t["label"] == "testapp.Node")
        assert (table["extra"], table["extra_examples"], table["status"]) == (
            1,
            [node.pk],
            "differ",
        )
        assert report["ok"] is False
        assert report["summary"].endswith("1 differ")

    def test_file_only_does_not_need_the_database_to_match(self):
        Node.objects.create(name="extra")
        stdout, _ = run_command("validatebackup", str(self.file), "--file-only")
        assert stdout.strip().startswith("Backup intact:")


@pytest.mark.parametrize(
    ("deleted", "inserted", "updated", "cli", "admin"),
    [
        (
            2,
            2,
            1,
            "20 tables: 1 row deleted, 1 inserted, 1 updated",
            "1 row deleted, 1 row inserted, 1 row updated",
        ),
        (
            1001,
            3,
            0,
            "20 tables: 1,001 rows deleted, 3 inserted, 0 updated",
            "1,001 rows deleted, 3 rows inserted, 0 rows updated",
        ),
    ],
)
def test_a_restore_counts_one_row_as_a_row(deleted, inserted, updated, cli, admin):
    # An updated row is counted as deleted and inserted too in the summary, and
    # once, as updated, in what the command and the admin say.
    summary = RestoreSummary(
        source="b.jsonl.gz",
        database="default",
        tables=20,
        rows_deleted=deleted,
        rows_inserted=inserted,
        rows_updated=updated,
        seconds=0.1,
        safety_backup=None,
    )
    assert restored_text(summary) == cli
    assert restored_message("default", "b.jsonl.gz", summary) == (
        f"Restored database default from b.jsonl.gz: {admin}."
    )
