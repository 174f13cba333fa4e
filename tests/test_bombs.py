"""Decompression bombs are refused as damaged, in bounded memory and time.

The bombs are made at test time from gzip members of 16 MB each, compressed once
and repeated: a file of about 1-2 MB that expands to 1-2 GB. Peak memory is
measured in a process of its own (a wrapper reports its child's
``RUSAGE_CHILDREN``), so earlier tests' children do not count.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from tests.backup_files import plain_lines
from tests.factories import populate_zoo
from tests.test_processes import ROOT, child_environment
from tests.utils import snapshot

MEMBER = 16 << 20
# Whole processes: Django and the test settings take about 70 MB before any file.
PEAK_RSS_LIMIT_MB = 300
SECONDS_LIMIT = 20

MEASURE = """
import resource, subprocess, sys
result = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
sys.stderr.buffer.write(result.stderr)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
print(peak, result.returncode)
"""

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def repeated_member(data: bytes, times: int) -> bytes:
    """``times`` gzip members of ``data``: gzip -d gives ``data * times``."""
    return gzip.compress(data, compresslevel=9, mtime=0) * times


def run_measured(*args: str) -> tuple[int, int, str, float]:
    """Run manage.py; return its peak RSS in MB, exit status, stderr and seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, sys.executable, "-m", "django", *args],
        capture_output=True,
        env=child_environment(),
        cwd=ROOT,
        timeout=120,
    )
    seconds = time.monotonic() - started
    peak, code = map(int, result.stdout.split())
    return peak, code, result.stderr.decode(), seconds


# Slow: each bomb is refused by a real process reading hundreds of megabytes. The
# file is refused before the database is touched, so SQLite alone (make test-slow)
# covers them.
@pytest.mark.slow
class BombTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        good = self.tmp_path / "good.jsonl.gz"
        create_backup(good)
        self.lines = plain_lines(good)
        self.header = orjson.loads(self.lines[0])
        self.before = snapshot()

    def assert_refused_in_bounds(
        self, bomb: Path, message: str, commands=("validatebackup", "restore")
    ) -> None:
        arguments = {
            "validatebackup": ["validatebackup", str(bomb)],
            "file-only": ["validatebackup", str(bomb), "--file-only"],
            "restore": ["restore", str(bomb), "--noinput", "--no-safety-backup"],
        }
        for command in map(arguments.get, commands):
            peak, code, stderr, seconds = run_measured(*command)
            assert code == 2, (command, stderr)
            assert stderr.splitlines() == [f"CommandError: {bomb}: {message}"]
            assert peak < PEAK_RSS_LIMIT_MB, (command, peak)
            assert seconds < SECONDS_LIMIT, (command, seconds)
            print(f"{command[0]} {bomb.name}: {peak} MB, {seconds:.1f} s")
        assert snapshot() == self.before

    def test_a_row_that_never_ends(self):
        # A valid header and table record, then a row of a gigabyte of zeros.
        start = self.lines[0] + self.lines[1] + b"[1,"
        bomb = self.tmp_path / "endless-row.jsonl.gz"
        bomb.write_bytes(
            gzip.compress(start, mtime=0) + repeated_member(bytes(MEMBER), 64)
        )
        assert bomb.stat().st_size < 2 << 20
        self.assert_refused_in_bounds(
            bomb,
            "line 3 is longer than 67,108,864 bytes (BACKUPS['MAX_LINE_BYTES']); "
            "refused as damaged",
        )

    def test_zeros_from_the_start(self):
        bomb = self.tmp_path / "zeros.jsonl.gz"
        bomb.write_bytes(repeated_member(b"{" + bytes(MEMBER - 1), 1) * 64)
        self.assert_refused_in_bounds(
            bomb,
            "line 1 is longer than 67,108,864 bytes (BACKUPS['MAX_LINE_BYTES']); "
            "refused as damaged",
            commands=["file-only"],
        )

    def test_short_rows_without_end(self):
        # Every line is short, and a row of its table (the first row of the file,
        # again and again): only the expansion ratio tells this from a backup, even
        # to a restore that parses the rows it compares one by one.
        first_row = next(i for i, line in enumerate(self.lines) if line[:1] == b"[")
        start = b"".join(self.lines[:first_row])
        row = self.lines[first_row]
        bomb = self.tmp_path / "rows.jsonl.gz"
        bomb.write_bytes(
            gzip.compress(start, mtime=0)
            + repeated_member(row * (MEMBER // len(row)), 128)
        )
        self.assert_refused_in_bounds(
            bomb,
            "is refused as damaged: it expands to more than 250 times its "
            "compressed size (BACKUPS['MAX_EXPANSION_RATIO'])",
        )
