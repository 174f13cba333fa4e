"""Fuzzing the readers: damaged and crafted files never get further than they may.

Every variant of a backup (tests/fuzz_corpus.py: truncations, bit flips, line
edits, and resealed files breaking each structural rule) goes through
``validatebackup --file-only``, ``validatebackup`` and ``restore --noinput``.
Each must end with a documented exit status and at most one line of error, never
another exception (a traceback on the command line), and leave the database
exactly as it was, unless the file is still a valid backup: then the restore
makes the database equal to it. Undo files with a media manifest get the same
cases (``UndoFileWithMediaCorpusTests``), signed with this installation's key as
the files it writes are, and the media storages must be left as they were too.

The default run is bounded (BACKUPS_FUZZ_CASES seeded cases, 60 by default, and
BACKUPS_FUZZ_EXAMPLES hypothesis examples, 20); ``-m fuzz`` selects these tests,
and larger values of both run longer.
"""

from __future__ import annotations

import gzip
import os
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from django.core.management.base import CommandError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.fileformat.streams import backup_storage
from backups_app.provenance import sign
from backups_app.restore import restore_backup
from tests.backup_files import plain_lines
from tests.factories import populate_zoo
from tests.fuzz_corpus import MUTATIONS, cases
from tests.media_utils import clear_media, media_state, populate_media
from tests.test_media_restore import change_everything
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
        files_before = media_state()
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
            assert media_state() == files_before, (name, outcomes)
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


class UndoFileWithMediaCorpusTests(FuzzMixin, HypothesisTestCase):
    """The same cases made of an undo file whose restore put media files back: its
    restore rebuilds the backup it names, with its own manifest of files."""

    databases = {"default"}

    def make_backup(self) -> list[bytes]:
        clear_media()
        rows = populate_media()
        stored = create_backup(None, media=True).name
        change_everything(rows)
        summary = restore_backup(stored)
        assert summary.safety_backup is not None
        with backup_storage().open(summary.safety_backup, "rb") as stream:
            lines = gzip.decompress(stream.read()).splitlines(keepends=True)
        assert orjson.loads(lines[0])["format"] == "backups_app-undo"
        assert orjson.loads(lines[0])["media"]
        return lines

    def test_seeded_corpus(self):
        lines = self.make_backup()
        for name, content in cases(lines, SEED, CASES):
            with self.subTest(case=name):
                self.check_case(name, signed(content))


def signed(content: bytes) -> bytes:
    """A crafted plain file whose trailer carries this installation's mac, as if it
    had written it (undo files are refused otherwise): the rules of the reader, not
    the mac, must refuse it."""
    lines = content.splitlines(keepends=True)
    try:
        header = orjson.loads(lines[0])
        trailer = orjson.loads(lines[-1])
    except (IndexError, orjson.JSONDecodeError):
        return content
    if not (isinstance(header, dict) and isinstance(trailer, dict)):
        return content
    if trailer.get("kind") != "trailer" or not isinstance(trailer.get("digest"), str):
        return content
    trailer["mac"] = sign(trailer["digest"], header)
    return b"".join(lines[:-1]) + orjson.dumps(trailer) + b"\n"


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
