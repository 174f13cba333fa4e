"""What the library reports to a progress callback, and what the admin makes of it.

A terminal or a status page shows step, rows done of the step's rows, rate and time
left; these tests hold the library to the reports that needs: stages in order, the
whole stage's rows known from the start, and a restore's safety backup reported as
its own "safety" step.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from unittest import mock

import orjson
import pytest
from django.test import TransactionTestCase, override_settings

from backups_app.admin.display import STEPS
from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.management.commands._output import STAGES
from backups_app.models import Operation
from backups_app.progress import (
    Progress,
    StageClock,
    ignore_progress,
    long_stages,
    passed_on,
    wants_counts,
)
from backups_app.records import record_backup
from backups_app.restore import restore_backup
from backups_app.tasks import OperationRunner
from backups_app.validate import validate_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.test_admin import clear_storage
from tests.testapp.models import Node

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def stages(reports: list[Progress]) -> list[str]:
    """The stages in the order they began."""
    seen: list[str] = []
    for report in reports:
        if not seen or seen[-1] != report.stage:
            seen.append(report.stage)
    return seen


def rows_now(tmp_path: Path, using: str = "default") -> int:
    """The rows a safety backup of ``using`` would hold now: a backup's rows."""
    return create_backup(tmp_path / f"count-{using}.jsonl", using=using).rows


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stage_clock_times_each_stage_from_its_first_report_to_the_next_stage():
    clock = FakeClock()
    reports: list[Progress] = []
    timed = StageClock(reports.append, clock=clock)
    for now, stage in [(1, "verify"), (2, "verify"), (4, "restore"), (4.5, "verify")]:
        clock.now = now
        timed(Progress(stage, "", 0, None))
    clock.now = 5.25
    # A stage that comes back adds to its time; the last lasts until asked.
    assert timed.seconds() == {"verify": 3.75, "restore": 0.5}
    assert [r.stage for r in reports] == ["verify", "verify", "restore", "verify"]
    clock.now = 6
    assert timed.seconds() == {"verify": 4.5, "restore": 0.5}


def test_a_stage_clock_passes_on_what_its_callback_wants():
    assert StageClock().wants_counts is False
    assert StageClock(lambda report: None).wants_counts is True
    quiet = passed_on(lambda report: None)
    quiet.wants_counts = False  # type: ignore[attr-defined]
    assert StageClock(quiet).wants_counts is False


def test_only_stages_that_took_time_are_shown():
    stages = {"lock": 0.001, "compare": 2.5, "commit": 0.05, "settle": 0.049}
    assert long_stages(stages) == [("compare", 2.5), ("commit", 0.05)]


class ReportTests(TransactionTestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        Node.objects.bulk_create(Node(name=f"bulk {i}") for i in range(5_000))
        self.file = self.tmp_path / "zoo.jsonl.gz"
        self.summary = create_backup(self.file)

    def test_a_backup_knows_its_rows_from_the_first_report(self):
        reports: list[Progress] = []
        summary = create_backup(
            self.tmp_path / "again.jsonl.gz", progress=reports.append
        )
        assert stages(reports) == ["backup"]
        assert {r.stage_total for r in reports} == {summary.rows}
        # Per table: rows done of the table's rows, ending at its count.
        last = {r.label: r for r in reports}
        assert {label: (r.done, r.total) for label, r in last.items()} == {
            t.label: (t.rows, t.rows) for t in summary.tables
        }

    def test_a_callback_that_wants_no_counts_gets_none(self):
        reports: list[Progress] = []

        def watch(report: Progress) -> None:
            reports.append(report)

        watch.wants_counts = False
        create_backup(self.tmp_path / "again.jsonl.gz", progress=watch)
        assert reports and {(r.total, r.stage_total) for r in reports} == {(None, None)}
        assert not wants_counts(ignore_progress)
        assert not wants_counts(passed_on(watch, stage="safety"))

    def test_a_restore_reports_its_safety_backup_as_its_safety_step(self):
        mutate_zoo()
        before = rows_now(self.tmp_path)
        reports: list[Progress] = []
        summary = restore_backup(self.file, safety_backup=True, progress=reports.append)
        assert summary.safety_backup
        # No "verify": the comparison's read checks the file (a plan from its
        # header alone), inside the transaction.
        expected = [
            "lock",
            "compare",
            "safety",
            "delete",
            "restore",
            "check",
            "verify-written",
            "sequences",
            "commit",
            "committed",
        ]
        assert stages(reports)[: len(expected)] == expected
        assert set(stages(reports)[len(expected) :]) <= {"settle"}
        safety = [r for r in reports if r.stage == "safety"]
        # The rows there were, table by table, against the total counted first.
        assert {r.stage_total for r in safety} == {before}
        assert sum(r.done for r in safety if r.done == r.total and r.label) == before
        # A differential restore writes (and reads back) only the rows that differ.
        load = [r for r in reports if r.stage in ("restore", "verify-written")]
        assert {r.stage_total for r in load} == {summary.rows_inserted}
        assert 0 < summary.rows_inserted < self.summary.rows
        # Every stage has a name on the admin's status page and in a terminal.
        assert set(stages(reports)) <= set(STEPS) & set(STAGES)
        # And its time in the summary, in the order the stages came.
        assert list(summary.stages) == stages(reports)
        # Each rounded to the millisecond, as the restore's seconds are.
        assert (
            sum(summary.stages.values()) <= summary.seconds + len(summary.stages) / 1000
        )

    def test_a_full_restore_loads_and_reads_back_every_row_of_the_file(self):
        mutate_zoo()
        reports: list[Progress] = []
        summary = restore_backup(
            self.file, safety_backup=False, full=True, progress=reports.append
        )
        assert "compare" not in stages(reports)
        assert "safety" not in stages(reports)
        load = [r for r in reports if r.stage in ("restore", "verify-written")]
        assert {r.stage_total for r in load} == {self.summary.rows}
        assert summary.rows_inserted == self.summary.rows

    def test_a_validation_knows_the_files_rows(self):
        reports: list[Progress] = []
        validate_backup(self.file, progress=reports.append)
        assert stages(reports) == ["verify", "validate"]
        checked = [r for r in reports if r.stage == "verify" and r.label]
        assert {r.label: r.done for r in checked} == {
            t.label: t.rows for t in self.summary.tables
        }
        compared = [r for r in reports if r.stage == "validate"]
        assert compared and {r.stage_total for r in compared} == {self.summary.rows}


class AdminSafetyStepTests(TransactionTestCase):
    """The admin's status page, fed by a real restore: the safety backup is its own
    step, with rows, while the restore runs (here into "other", whose transaction
    does not hide the Operation's row in "default")."""

    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)

    def restore_watched(self) -> tuple[Operation, list[tuple], int]:
        """Restore a backup of "other" after changes; return the operation, what the
        status page read during the safety step, and the rows "other" had."""
        populate_zoo("other")
        Node.objects.using("other").bulk_create(
            Node(name=f"bulk {i}") for i in range(3_000)
        )
        record = record_backup(create_backup(None, using="other"))
        mutate_zoo("other")
        rows = rows_now(self.tmp_path, "other")
        operation = Operation.objects.create(
            kind="restore", database="other", status="queued", backup=record
        )
        seen = []

        class Watched(OperationRunner):
            def progress(self, report):
                super().progress(report)
                if report.stage == "safety":
                    # What the status page reads now.
                    seen.append(
                        Operation.objects.values_list(
                            "stage", "rows_done", "rows_total"
                        ).get(pk=operation.pk)
                    )

        with mock.patch("backups_app.tasks.PROGRESS_INTERVAL", 0):
            Watched(operation).run()
        operation.refresh_from_db()
        assert operation.status == "succeeded", operation.message
        assert all(stage == "safety" for stage, _, _ in seen)
        assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
        return operation, seen, rows

    @override_settings(BACKUPS={"UNDO_FILES": False})
    def test_the_safety_step_shows_rows_of_the_rows_there_are(self):
        _, seen, rows = self.restore_watched()
        assert seen[-1] == ("safety", rows, rows)

    def test_an_undo_file_counts_the_rows_it_holds(self):
        operation, seen, rows = self.restore_watched()
        with backup_storage().open(operation.result["safety_backup"], "rb") as f:
            lines = gzip.decompress(f.read()).splitlines()
        assert b'"format":"backups_app-undo"' in lines[0]
        held = orjson.loads(lines[-1])["rows"]
        assert seen[-1] == ("safety", held, held)
        assert held < rows
