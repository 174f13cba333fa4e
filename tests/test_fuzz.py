"""Fuzzing the readers: damaged and crafted files never get further than they may.

Every variant of a backup (tests/fuzz_corpus.py: truncations, bit flips, line
edits, and resealed files breaking each structural rule) goes through
``validatebackup --file-only``, ``validatebackup`` and ``restore --noinput``.
Each must end with a documented exit status and at most one line of error, never
another exception (a traceback on the command line), and leave the database
exactly as it was, unless the file is still a valid backup: then the restore
makes the database equal to it.

The default run is bounded (BACKUPS_FUZZ_CASES seeded cases, 60 by default, and
BACKUPS_FUZZ_EXAMPLES hypothesis examples, 20); ``-m fuzz`` selects these tests,
and larger values of both run longer.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from tests.backup_files import plain_lines
from tests.factories import populate_zoo
from tests.fuzz_corpus import MUTATIONS, cases
from tests.test_processes import ROOT, child_environment
from tests.utils import run_command, snapshot

CASES = int(os.environ.get("BACKUPS_FUZZ_CASES", "60"))
EXAMPLES = int(os.environ.get("BACKUPS_FUZZ_EXAMPLES", "20"))
SEED = int(os.environ.get("BACKUPS_FUZZ_SEED", "1"))

# The exit statuses docs/usage.md gives each command.
ALLOWED = {
    "file-only": {0, 2},
    "validatebackup": {0, 1, 2},
    "restore": {0, 1, 2, 3},
}

pytestmark = [pytest.mark.fuzz, pytest.mark.usefixtures("tmp_path_on_test_case")]


def exit_status(name: str, *args: str) -> tuple[int, str]:
    """Run a command in-process; return its exit status and its error message.

    A CommandError is what the command line prints as one line; any other
    exception propagates and fails the test, as it would print a traceback.
    """
    try:
        run_command(name, *args, verbosity=0)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, ""


class FuzzMixin:
    tmp_path: Path

    def make_backup(self) -> list[bytes]:
        populate_zoo()
        good = self.tmp_path / "good.jsonl.gz"
        create_backup(good)
        return plain_lines(good)

    def check_case(self, name: str, content: bytes) -> None:
        file = self.tmp_path / (
            "case.jsonl.gz" if content[:2] == b"\x1f\x8b" else "case.jsonl"
        )
        file.write_bytes(content)
        before = snapshot()
        outcomes = {
            "file-only": exit_status("validatebackup", str(file), "--file-only"),
            "validatebackup": exit_status("validatebackup", str(file)),
            "restore": exit_status(
                # Crafted files carry no mac of this site: they are foreign.
                "restore",
                str(file),
                "--noinput",
                "--no-safety-backup",
                "--allow-foreign",
            ),
        }
        for command, (status, message) in outcomes.items():
            assert status in ALLOWED[command], (name, command, status, message)
            assert "\n" not in message, (name, command, message)
        intact = outcomes["file-only"][0] == 0
        if outcomes["restore"][0] == 0:
            assert intact, (name, outcomes)
            status, message = exit_status("validatebackup", str(file))
            assert status == 0, (name, "not equal after the restore", message)
        else:
            assert snapshot() == before, (name, outcomes)
        if not intact:
            # Never equal, never restored. A comparison parses only the rows that
            # differ from the database's, and a restore checks the schema before
            # it parses rows: rows that do not fit their own header may show as
            # differences (1) or a schema mismatch (3) rather than damage (2).
            assert outcomes["validatebackup"][0] in {1, 2}, (name, outcomes)
            assert outcomes["restore"][0] in {2, 3}, (name, outcomes)


class SeededCorpusTests(FuzzMixin, HypothesisTestCase):
    databases = {"default"}

    def test_seeded_corpus(self):
        lines = self.make_backup()
        for name, content in cases(lines, SEED, CASES):
            with self.subTest(case=name):
                self.check_case(name, content)

    def test_every_mutation_is_exercised(self):
        assert len(MUTATIONS) <= CASES


class HypothesisFuzzTests(FuzzMixin, HypothesisTestCase):
    databases = {"default"}
    lines: list[bytes] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
        derandomize=True,
    )
    @given(
        name=st.sampled_from(sorted(MUTATIONS)), rng=st.randoms(use_true_random=False)
    )
    def test_mutations(self, name: str, rng: random.Random):
        if not self.lines:
            type(self).lines = self.make_backup()
        else:
            populate_zoo()
        self.check_case(name, MUTATIONS[name](self.lines, rng))


# Slow (four manage.py processes); SeededCorpusTests runs every mutation in-process.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_real_processes_print_no_traceback(tmp_path):
    """A few cases through manage.py: the exit status and stderr a shell sees."""
    populate_zoo()
    good = tmp_path / "good.jsonl.gz"
    create_backup(good)
    lines = plain_lines(good)
    chosen = ["drop-section", "truncate-gz"]
    for name in chosen:
        content = MUTATIONS[name](lines, random.Random(SEED))
        file = tmp_path / f"{name}.jsonl"
        file.write_bytes(content)
        for command in (
            ["validatebackup", str(file)],
            [
                "restore",
                str(file),
                "--noinput",
                "--no-safety-backup",
                "--allow-foreign",
            ],
        ):
            result = subprocess.run(
                [sys.executable, "-m", "django", *command],
                capture_output=True,
                env=child_environment(),
                cwd=ROOT,
                timeout=120,
            )
            stderr = result.stderr.decode()
            assert result.returncode == 2, (name, command, stderr)
            assert "Traceback" not in stderr
            assert len(stderr.splitlines()) == 1, stderr
            assert stderr.startswith(f"CommandError: {file}: "), stderr
