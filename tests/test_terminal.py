"""What a person sees in a terminal 80 columns wide: progress, Ctrl-C, verdicts.

Each command runs in a real pseudo-terminal (tests/terminal.py) and the screen it
leaves is replayed as a terminal would show it. Databases are checked with plain
SQL (``raw_contents``), before and after.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import shutil
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
from backups_app.management.commands._output import (
    RESTORE_STEPS,
    ProgressLine,
    duration,
    table,
)
from backups_app.progress import Progress
from tests.factories import mutate_zoo, populate_zoo
from tests.terminal import Screen, run_in_terminal
from tests.test_exit_codes import environment
from tests.test_processes import ROOT
from tests.test_restore_safety import raw_contents, safety_files
from tests.testapp.models import AllFields, Node

pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_path_on_test_case")]

# Enough rows that every step has rows to count.
NODES = 30_000
STEP = re.compile(r"\[(\d)/(\d)\] ")


def terminal_environment(variant: str = "", **extra: str) -> dict[str, str]:
    """The children's environment, as a terminal's: no COLUMNS or LINES to override
    the terminal's own size."""
    env = environment(variant, TERM="xterm", **extra)
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    return env


def progress_of(output: bytes) -> bytes:
    """The output up to the last progress line's erasure."""
    end = output.rfind(b"\r\x1b[K")
    return output[: end + len(b"\r\x1b[K")] if end >= 0 else b""


def filled_zoo() -> None:
    populate_zoo()
    Node.objects.bulk_create(
        (Node(name=f"bulk {i}") for i in range(NODES)), batch_size=5_000
    )


class ProgressTests(TransactionTestCase):
    """Progress fits 80 columns, is redrawn in place, and is not red."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        filled_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        self.rows = create_backup(self.file).rows

    def assert_drawn_in_place(self, output: bytes) -> list[str]:
        """The progress lines never wrap, stay on one line, and end erased."""
        progress = progress_of(output)
        assert progress, output
        screen = Screen(80).feed(progress)
        assert screen.wraps == 0
        assert screen.row == 0 and screen.text() == []
        # Colourless: stderr's default style is red, which would read as an error.
        assert screen.coloured_progress == []
        return [
            frame
            for frame in re.findall(r"\r([^\r\n\x1b]*)\x1b\[K", progress.decode())
            if frame
        ]

    def test_backup(self):
        target = self.tmp_path / "new.jsonl.gz"
        result = run_in_terminal(
            "backup", "--output", str(target), env=terminal_environment()
        )
        assert result.returncode == 0, result.text
        frames = self.assert_drawn_in_place(result.output)
        assert all(len(frame) <= 79 for frame in frames)
        # Rows against the whole backup's rows, counted first.
        assert any(
            re.match(rf"Backing up  [\d,]+ / {self.rows:,} rows  \d+%", frame)
            for frame in frames
        ), frames
        lines = result.screen().lines_written()
        assert lines[-2] == f"Backup written to {target}"
        assert lines[-1].startswith("Backed up database 'default': ")

    def test_restore_steps_then_how_to_undo_it(self):
        mutate_zoo()
        before = raw_contents()
        rows_now = sum(map(len, before.values()))
        result = run_in_terminal(
            "restore", str(self.file), "--noinput", env=terminal_environment()
        )
        assert result.returncode == 0, result.text
        frames = self.assert_drawn_in_place(result.output)
        assert all(len(frame) <= 79 for frame in frames)
        steps = [int(STEP.match(frame).group(1)) for frame in frames]
        assert {STEP.match(frame).group(2) for frame in frames} == {"4"}
        assert steps == sorted(steps) and set(steps) == {1, 2, 3, 4}
        titles = {frame.split("  ")[0] for frame in frames}
        assert {
            "[1/4] Comparing with the file",
            "[2/4] Safety backup",
            "[3/4] Loading rows",
            "[4/4] Reading back",
            "[4/4] Committing",
        } <= titles
        # The comparison and the safety backup count the rows there are now; the
        # load the rows it writes, only those that differ in the tables that differ
        # in few rows (Node's thousands of rows are not written again).
        for step in ("[1/4] Comparing with the file", "[2/4] Safety backup"):
            assert any(
                re.match(rf"{re.escape(step)}  [\d,]+ / {rows_now:,} rows", frame)
                for frame in frames
            ), frames
        loads = [
            int(found.group(1).replace(",", ""))
            for frame in frames
            if (
                found := re.match(
                    r"\[3/4\] Loading rows  [\d,]+ / ([\d,]+) rows", frame
                )
            )
        ]
        assert loads and all(0 < total < NODES for total in loads), frames

        # The file's long path is wider than the terminal.
        lines = result.screen().lines_written()
        assert lines[-6].startswith(f"Restored database 'default' from {self.file} in")
        # What was done, wrapped to the terminal with an indent.
        assert lines[-4].startswith("  ")
        done = f"{lines[-5]} {lines[-4].strip()}"
        assert re.fullmatch(
            r"\d+ tables \(\d+ reloaded whole, \d+ changed row by row, \d+ "
            r"unchanged\): [\d,]+ rows? deleted, [\d,]+ inserted, [\d,]+ updated",
            done,
        ), done
        name = lines[-3].removeprefix("Safety backup: ")
        assert name.startswith("safety-default-") and backup_storage().exists(name)
        undo = f"python -m django restore {name}"
        assert lines[-2:] == ["To undo this restore, run:", f"  {undo}"]
        # The command given undoes the restore.
        undone = subprocess.run(
            [*undo.replace("python", sys.executable, 1).split(), "--noinput"],
            env=environment(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert undone.returncode == 0, undone.stderr
        assert raw_contents() == before

    def test_validate_shows_changed_fields_and_ends_with_a_plain_verdict(self):
        node = Node.objects.get(name="bulk 7")
        node.name = "renamed"
        node.save()
        row = AllFields.objects.order_by("pk").first()
        AllFields.objects.filter(pk=row.pk).update(
            text="x" * 200, decimal_money="99.99"
        )
        result = run_in_terminal(
            "validatebackup", str(self.file), env=terminal_environment()
        )
        assert result.returncode == 1, result.text
        frames = self.assert_drawn_in_place(result.output)
        assert {frame[:5] for frame in frames} == {"[1/2]", "[2/2]"}
        assert any(
            re.match(rf"\[2/2\] Comparing  [\d,]+ / {self.rows:,} rows", frame)
            for frame in frames
        ), frames
        screen = result.screen()
        lines = screen.text()
        assert screen.wraps == 0 and max(map(len, lines)) <= 80
        assert f'  testapp.Node: changed pk {node.pk}: name "bulk 7" → "renamed"' in (
            lines
        )
        # Long values shortened, the line wrapped to the terminal with an indent.
        at = lines.index(
            next(line for line in lines if line.startswith("  testapp.AllFields"))
        )
        # The example and its continuation lines, indented under it.
        continued = list(
            itertools.takewhile(lambda line: line.startswith("      "), lines[at + 1 :])
        )
        assert continued
        example = " ".join([lines[at], *(line.strip() for line in continued)])
        assert example.startswith(f"  testapp.AllFields: changed pk {row.pk}: text ")
        assert f'→ "{"x" * 39}…"' in example
        assert f"decimal_money {row.decimal_money} → 99.99" in example
        # The verdict ends it: no "CommandError:" after it.
        assert re.fullmatch(
            r"\d+ tables match exactly, 2 differ; rows: 2 changed", lines[-1]
        )
        assert "CommandError" not in result.text

    def test_dry_run_fits_the_terminal(self):
        mutate_zoo()
        row = AllFields.objects.order_by("pk").first()
        AllFields.objects.filter(pk=row.pk).update(
            text="x" * 200, decimal_money="99.99"
        )
        # By its name in the backup storage: a long path cannot be wrapped.
        with self.file.open("rb") as stream:
            name = backup_storage().save("zoo.jsonl.gz", stream)
        for columns in (80, 60):
            result = run_in_terminal(
                "restore",
                name,
                "--dry-run",
                env=terminal_environment(),
                columns=columns,
            )
            assert result.returncode == 0, result.text
            screen = Screen(columns).feed(result.output)
            lines = screen.text()
            assert screen.wraps == 0 and max(map(len, lines)) < columns, lines
            header = next(line for line in lines if line.startswith("table "))
            assert header.split() == (
                ["table", "rows", "now", "rows", "in", "file"]
                if columns == 80
                else ["table"]
            ) + ["delete", "insert", "update", "how"]
            # An example too long for one line goes on, indented under the change.
            at = next(
                i
                for i, line in enumerate(lines)
                if line.startswith(f"  update  pk {row.pk}: text")
            )
            assert lines[at + 1].startswith(" " * 10) and lines[at + 1][10] != " "
            assert lines[-1] == "Dry run: nothing was changed."

    def test_results_fit_the_terminal(self):
        # A backup storage of its own: the files listed are these, not other tests'.
        stored = self.tmp_path / "backups"
        stored.mkdir()
        name = "zoo.jsonl.gz"
        shutil.copyfile(self.file, stored / name)
        # A name as long as a copy of a safety backup gets, 51 characters.
        copy = "safety-default-20261201T064751631529Z-copy.jsonl.gz"
        shutil.copyfile(self.file, stored / copy)
        # A name of an upload that leaves a decision too little room beside it.
        upload = "shop-production-before-the-migration-to-0042-of-2026-12-01.jsonl.gz"
        shutil.copyfile(self.file, stored / upload)
        env = terminal_environment(BACKUPS_TEST_BACKUP_DIR=str(stored))
        mutate_zoo()
        # File names and the undo command are never cut: 80 columns hold them.
        for args, code, columns in (
            (["validatebackup", name], 1, 60),
            (["restore", name, "--noinput"], 0, 80),
            (["listbackups"], 0, 80),
            (["prunebackups", "--dry-run"], 0, 80),
        ):
            result = run_in_terminal(*args, env=env, columns=columns)
            assert result.returncode == code, result.text
            screen = result.screen(columns)
            # No line runs over, progress and results alike.
            assert screen.wraps == 0, (args, screen.text())
            assert max(map(len, screen.text())) <= columns, (args, screen.text())
        # The restore's safety backup went there too, and the listings showed them.
        assert len(list(stored.iterdir())) == 4
        assert sum(upload in line for line in screen.text()) == 1

    def test_quiet_without_a_terminal_at_verbosity_0_and_with_json(self):
        piped = subprocess.run(
            [sys.executable, "-m", "django", "validatebackup", str(self.file)],
            env=environment(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert piped.returncode == 0, piped.stderr
        assert piped.stderr == "" and "\r" not in piped.stdout
        quiet = run_in_terminal(
            "validatebackup", str(self.file), "-v", "0", env=terminal_environment()
        )
        assert (quiet.returncode, quiet.output) == (0, b"")
        as_json = run_in_terminal(
            "validatebackup", str(self.file), "--json", env=terminal_environment()
        )
        assert as_json.returncode == 0
        assert b"\r\x1b[K" not in as_json.output
        assert json.loads(as_json.text.replace("\r\n", "\n"))["ok"] is True


class InterruptTests(TransactionTestCase):
    """Ctrl-C at several points of a restore: one line on the screen, exit 130,
    and the database as that line says (read with SQL)."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        filled_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        self.backup_contents = raw_contents()
        mutate_zoo()
        self.before = raw_contents()
        self.marker = self.tmp_path / "paused"

    def interrupt(self, point: str, *args: str) -> list[str]:
        """Restore, Ctrl-C at ``point``; return the screen's lines."""
        result = run_in_terminal(
            "restore",
            str(self.file),
            *args,
            env=terminal_environment(
                "pause",
                BACKUPS_TEST_PAUSE=point,
                BACKUPS_TEST_PAUSE_MARKER=str(self.marker),
            ),
            pause_marker=self.marker,
            interrupt=True,
        )
        assert result.paused_at == point, result.text
        assert result.returncode == 130, result.text
        assert "Traceback" not in result.text
        # The progress line is gone; the message has its own line.
        assert not Screen(80).feed(progress_of(result.output)).text()
        return result.screen().lines_written()

    def safety_name(self, line: str, prefix: str, suffix: str) -> str:
        assert line.startswith(prefix) and line.endswith(suffix), line
        name = line.removeprefix(prefix).removesuffix(suffix)
        assert name.startswith("safety-default-") and backup_storage().exists(name)
        return name

    def test_while_checking_the_file(self):
        lines = self.interrupt("restore-verify", "--noinput", "--full")
        assert lines == ["Restore interrupted: database 'default' was left unchanged."]
        assert raw_contents() == self.before

    def test_while_comparing_and_checking_the_file(self):
        safety_before = safety_files()
        lines = self.interrupt("restore-compare", "--noinput")
        assert lines == ["Restore interrupted: database 'default' was left unchanged."]
        assert raw_contents() == self.before
        assert safety_files() == safety_before

    def test_before_the_load_after_the_safety_backup(self):
        lines = self.interrupt("restore-after-safety", "--noinput")
        assert len(lines) == 1
        self.safety_name(
            lines[0],
            "Restore interrupted: database 'default' was left unchanged; the "
            "safety backup ",
            " was written.",
        )
        assert raw_contents() == self.before

    def test_during_the_load(self):
        lines = self.interrupt("restore-load", "--noinput")
        assert lines == [
            "Restore interrupted: database 'default' was left unchanged; the "
            f"safety backup {lines[0].split()[-3]} was written."
        ]
        assert raw_contents() == self.before

    def test_right_after_the_commit(self):
        # Held back from the commit until the restore knows it committed: then
        # it says that the restore is complete, not "left unchanged".
        lines = self.interrupt("restore-commit", "--noinput")
        assert len(lines) == 1
        name = self.safety_name(
            lines[0],
            "Interrupted after the restore was committed: database 'default' "
            "holds the backup's data; the restore is complete. To undo it, run: "
            "python -m django restore ",
            "",
        )
        assert raw_contents() == self.backup_contents
        assert name

    def test_after_the_commit(self):
        lines = self.interrupt("restore-committed", "--noinput", "--no-safety-backup")
        assert lines == [
            "Interrupted after the restore was committed: database 'default' "
            "holds the backup's data; the restore is complete."
        ]
        assert raw_contents() == self.backup_contents

    def test_at_the_prompt(self):
        result = run_in_terminal(
            "restore",
            str(self.file),
            env=terminal_environment(),
            # Ctrl-C typed: the terminal sends SIGINT and echoes ^C.
            type_after=(b"or 'no' to cancel: ", b"\x03"),
        )
        assert result.returncode == 130, result.text
        lines = result.screen().lines_written()
        assert lines[-2].startswith("Type 'yes' to continue, or 'no' to cancel: ")
        assert lines[-1] == (
            "Restore interrupted: database 'default' was left unchanged."
        )
        # What the restore would do is said in lines that fit the terminal, broken
        # between words.
        start = next(i for i, line in enumerate(lines) if line.startswith("This "))
        warning = lines[start:-2]
        assert all(len(line) < 80 for line in warning), warning
        assert " ".join(warning).startswith("This deletes ")
        assert " ".join(warning).endswith(" to make it equal to the backup.")
        assert raw_contents() == self.before


class JsonErrorTests(TransactionTestCase):
    """Under --json, a command that fails prints one JSON document with the error
    and the exit code on stdout, whatever the exit code."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)

    def run_json(self, *args: str, **extra: str) -> tuple[dict, subprocess.Popen]:
        result = subprocess.run(
            [sys.executable, "-m", "django", *args, "--json"],
            env=environment(**extra),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        # Exactly one document: json.loads refuses anything after it.
        return json.loads(result.stdout), result

    def test_1_a_restore_that_fails_and_is_rolled_back(self):
        from tests.backup_files import rewrite

        def duplicate(label, row):
            if label == "testapp.Label":
                row[1] = "duplicate"
            return row

        broken = rewrite(self.file, self.tmp_path / "dupes.jsonl", row=duplicate)
        before = raw_contents()
        document, result = self.run_json(
            "restore", str(broken), "--noinput", "--no-safety-backup"
        )
        assert result.returncode == 1
        assert document["exit_code"] == 1
        assert document["error"].startswith(
            f"Restore of {broken} failed and was rolled back: testapp.Label"
        )
        assert result.stderr == f"CommandError: {document['error']}\n"
        assert raw_contents() == before

    def test_2_an_incomplete_file(self):
        cut = self.tmp_path / "cut.jsonl.gz"
        cut.write_bytes(self.file.read_bytes()[:-100])
        for command in ("validatebackup", "restore"):
            args = [command, str(cut)] + (["--noinput"] if command == "restore" else [])
            document, result = self.run_json(*args)
            assert result.returncode == 2
            assert document == {
                "error": f"{cut}: is incomplete: it ends early, after line "
                f"{document['error'].split('after line ')[1].split()[0]} (an "
                "unfinished copy or download?)",
                "exit_code": 2,
            }

    def test_2_an_output_folder_that_does_not_exist(self):
        target = self.tmp_path / "missing" / "new.jsonl.gz"
        document, result = self.run_json("backup", "--output", str(target))
        assert (result.returncode, document) == (
            2,
            {
                "error": f"Cannot write {str(target)!r}: the directory "
                f"{str(target.parent)!r} does not exist.",
                "exit_code": 2,
            },
        )
        assert not target.parent.exists()

    def test_3_a_file_that_does_not_fit_the_schema(self):
        from tests.backup_files import rewrite

        def drop_node(header):
            header["tables"] = [
                t for t in header["tables"] if t["label"] != "testapp.Node"
            ]
            return header

        misfit = rewrite(
            self.file,
            self.tmp_path / "misfit.jsonl",
            header=drop_node,
            keep_table=lambda label: label != "testapp.Node",
        )
        before = raw_contents()
        document, result = self.run_json("restore", str(misfit), "--noinput")
        assert result.returncode == 3
        # The plan, with the error and its code.
        assert document["can_restore"] is False
        assert document["schema_differences"]
        assert document["exit_code"] == 3
        assert document["error"] == (
            f"{misfit} does not fit database 'default': "
            f"{len(document['schema_differences'])} schema differences (listed in "
            "schema_differences); nothing was changed."
        )
        assert raw_contents() == before

    def test_4_could_not_run(self):
        document, result = self.run_json(
            "validatebackup", str(self.file), "--database", "nope"
        )
        assert (result.returncode, document) == (
            4,
            {
                "error": "Unknown database 'nope'; the aliases in DATABASES are: "
                "'default', 'other'.",
                "exit_code": 4,
            },
        )
        document, result = self.run_json("backup", "--no-such-option")
        assert (result.returncode, document) == (
            4,
            {"error": "unrecognized arguments: --no-such-option", "exit_code": 4},
        )

    def test_130_interrupted_with_the_safety_backup_named(self):
        marker = self.tmp_path / "paused"
        mutate_zoo()
        before = raw_contents()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "restore",
                str(self.file),
                "--noinput",
                "--json",
            ],
            env=environment(
                "pause",
                BACKUPS_TEST_PAUSE="restore-after-safety",
                BACKUPS_TEST_PAUSE_MARKER=str(marker),
            ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not marker.exists():
                assert child.poll() is None, child.stderr.read()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            child.send_signal(signal.SIGINT)
            stdout, stderr = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        document = json.loads(stdout)
        name = document["safety_backup"]
        assert child.returncode == 130
        assert document == {
            "error": "Restore interrupted: database 'default' was left unchanged; "
            f"the safety backup {name} was written.",
            "exit_code": 130,
            "database_changed": False,
            "safety_backup": name,
        }
        assert stderr == document["error"] + "\n"
        assert backup_storage().exists(name)
        assert raw_contents() == before

    def test_differences_are_the_report_and_nothing_more(self):
        Node.objects.create(name="extra")
        document, result = self.run_json("validatebackup", str(self.file))
        assert result.returncode == 1
        assert document["ok"] is False
        assert (result.stderr, "error" in document) == ("", False)


class BrokenPipeTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_reader_that_goes_away_is_no_traceback(self):
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        child = subprocess.Popen(
            [sys.executable, "-m", "django", "restore", str(file), "--dry-run"],
            env=environment(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.stdout.close()  # as `| head -0` would
        stderr = child.stderr.read()
        child.stderr.close()
        child.wait(timeout=120)
        assert (child.returncode, stderr) == (141, b"")


LABEL = "verylongapplabel.AModelWithAQuiteLongNameIndeed_and_its_m2m_table"


@pytest.mark.parametrize("width", [200, 79, 59, 39, 19])
def test_a_line_never_wider_than_the_terminal_least_useful_left_out(width):
    line = ProgressLine(io.StringIO(), enabled=False, steps=RESTORE_STEPS)
    report = Progress("restore", LABEL, 40_000, 90_000, 123_456)
    text = line.text(report, 61_728, 12.0, width)
    assert len(text) <= width
    full = (
        "[4/5] Loading rows  61,728 / 123,456 rows  50%  12 s left  5,144 rows/s  "
        f"{LABEL}"
    )
    expected = {
        200: full,
        # The rate goes first, then the table, then the time left...
        79: "[4/5] Loading rows  61,728 / 123,456 rows  50%  12 s left",
        59: "[4/5] Loading rows  61,728 / 123,456 rows  50%  12 s left",
        # ...then the rows, keeping the share done...
        39: "[4/5] Loading rows  50%",
        # ...and what is left is cut.
        19: "[4/5] Loading rows",
    }
    assert text == expected[width]


NAMES = ["zoo.jsonl.gz", "n" * 66 + ".jsonl.gz"]


def test_a_wrapped_last_column_beside_the_others_when_it_has_room():
    lines = table(
        ["name", "decision"],
        [(NAMES[0], "keep: newest, last, daily, weekly, monthly, yearly")],
        width=40,
        text_last=True,
    ).splitlines()
    assert lines[0].split() == ["name", "decision"]
    assert lines[2].startswith("zoo.jsonl.gz  keep: newest")
    assert lines[3].startswith(" " * 14) and lines[3][14] != " "
    assert max(map(len, lines)) <= 40


@pytest.mark.parametrize("text_last", [True, False], ids=["wrapped", "aligned"])
def test_the_last_column_goes_under_rows_whose_names_leave_it_no_room(text_last):
    decisions = ["keep: newest, last, daily, weekly, monthly, yearly", "delete"]
    if not text_last:
        decisions = ["unchecked", "intact"]
    text = table(
        ["name", "decision"],
        list(zip(NAMES, decisions, strict=True)),
        width=80,
        text_last=text_last,
    )
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    # Names whole, each on its own line, its decision under it, indented.
    assert lines[:3] == ["name", "    decision", "-" * 75]
    assert lines[3::2] == NAMES
    assert lines[4::2] == ["    " + decision for decision in decisions]


def test_no_estimate_without_an_honest_total():
    line = ProgressLine(io.StringIO(), enabled=False, steps=RESTORE_STEPS)
    # More rows than counted (written meanwhile): rows and rate only.
    grown = line.text(Progress("safety", "a.B", 10, 10, 100), 150, 3.0, 79)
    assert grown == "[3/5] Safety backup  150 rows  50 rows/s  a.B"
    # Too early for a rate or a time left.
    early = line.text(Progress("verify", "a.B", 10, None), 10, 0.2, 79)
    assert early == "[1/5] Checking the file  10 rows  a.B"
    # A restore's lock belongs to its next step; a reload counts passes.
    assert line.text(Progress("lock", "", 0, None), 0, 0, 79) == (
        "[2/5] Locking the tables"
    )
    assert line.text(Progress("reload", "", 1, 3), 0, 0, 79) == (
        "[5/5] Loading again what triggers changed (pass 1 of 3)"
    )
    single = ProgressLine(io.StringIO(), enabled=False)
    assert single.text(Progress("backup", "a.B", 5, 5, 5), 5, 2.0, 79) == (
        "Backing up  5 / 5 rows  100%  2 rows/s  a.B"
    )


def test_durations_as_people_say_them():
    assert [duration(s) for s in (0.2, 45, 185, 3720)] == [
        "1 s",
        "45 s",
        "3 min 05 s",
        "1 h 02 min",
    ]


@pytest.mark.skipif(connection.vendor != "sqlite", reason="one vendor is enough")
def test_screen_replays_wrapping_erasing_and_colour():
    """The screen model itself: what these tests rely on."""
    screen = Screen(10).feed(b"0123456789\rab\x1b[K\r\n\x1b[31m\rred\x1b[K\x1b[0m")
    assert (screen.text(), screen.wraps, screen.coloured_progress) == (
        ["ab", "red"],
        0,
        ["\x1b[31m"],
    )
    assert Screen(10).feed(b"0123456789X").wraps == 1
