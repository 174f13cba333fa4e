"""Real processes: exit codes of manage.py, a restore killed midway, writers during a backup."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from django.db import close_old_connections, connection, connections, transaction
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.testapp.models import Author, Book, Node
from tests.utils import snapshot

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, stdin: bytes | None = None, timeout: float = 120):
    """Run ``python -m django`` against the test databases; return the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=child_environment(),
        cwd=ROOT,
    )


def child_environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "BACKUPS_TEST_CHILD": "1",
        "PYTHONPATH": str(ROOT),
    }


pytestmark = [pytest.mark.process, pytest.mark.usefixtures("tmp_path_on_test_case")]


class ExitCodeTests(TransactionTestCase):
    """The documented exit codes, as a deploy hook or cron job sees them."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        backup = manage("backup", "--output", str(self.file))
        assert backup.returncode == 0, backup.stderr.decode()

    def test_validate_exits_0_when_equal_and_1_when_different(self):
        equal = manage("validatebackup", str(self.file))
        assert equal.returncode == 0, equal.stderr.decode()
        assert b"tables match exactly, 0 differ" in equal.stdout
        Node.objects.create(name="extra")
        different = manage("validatebackup", str(self.file))
        assert different.returncode == 1
        assert b"testapp.Node" in different.stdout
        # A plain verdict, on stdout; nothing on stderr.
        assert (
            different.stdout.decode()
            .splitlines()[-1]
            .endswith("tables match exactly, 1 differ; rows: 1 extra")
        )
        assert different.stderr == b""

    def test_unusable_file_exits_2_with_one_line_and_no_traceback(self):
        broken = self.tmp_path / "broken.jsonl.gz"
        broken.write_bytes(self.file.read_bytes()[:200])
        for command in (["validatebackup"], ["restore", "--noinput"]):
            result = manage(*command, str(broken))
            assert result.returncode == 2, (command, result.stderr)
            lines = result.stderr.decode().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("CommandError: "), lines
            assert "Traceback" not in result.stderr.decode()

    def test_restore_exits_3_on_schema_mismatch(self):
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
        before = snapshot()
        result = manage("restore", str(misfit), "--noinput")
        assert result.returncode == 3
        assert b"schema: testapp.Node: a table of this database" in result.stdout
        assert snapshot() == before

    def test_restore_without_a_terminal_is_refused_unless_noinput(self):
        mutate_zoo()
        before = snapshot()
        refused = manage("restore", str(self.file), stdin=b"yes\n")
        assert refused.returncode == 1
        assert b"pass --noinput" in refused.stderr
        assert snapshot() == before

    def test_restore_from_standard_input(self):
        expected = snapshot()
        mutate_zoo()
        result = manage(
            "restore",
            "-",
            "--noinput",
            "--no-safety-backup",
            stdin=self.file.read_bytes(),
        )
        assert result.returncode == 0, result.stderr.decode()
        assert snapshot() == expected

    def test_backup_to_standard_output_is_a_valid_backup(self):
        result = manage("backup", "--output", "-")
        assert result.returncode == 0, result.stderr.decode()
        piped = self.tmp_path / "piped.jsonl"
        piped.write_bytes(result.stdout)
        check = manage("validatebackup", str(piped))
        assert check.returncode == 0, check.stdout.decode() + check.stderr.decode()

    def test_unknown_database_alias(self):
        result = manage("backup", "--database", "nope")
        assert result.returncode == 4
        assert b"Unknown database 'nope'" in result.stderr


def restore_in_progress(vendor: str) -> bool:
    """Tell from outside whether a restore holds its lock on the test database."""
    if vendor == "sqlite":
        probe = sqlite3.connect(connection.settings_dict["NAME"], timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()
    with connections["other"].cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s",
                [zlib.crc32(b"backups_app.restore") & 0xFFFFFFFF],
            )
            return cursor.fetchone()[0] > 0
        cursor.execute(
            "SELECT IS_USED_LOCK(%s)",
            [f"backups_app.restore.{connection.settings_dict['NAME']}"[:64]],
        )
        return cursor.fetchone()[0] is not None


class KilledRestoreTests(TransactionTestCase):
    databases = {"default", "other"}
    tmp_path: Path

    # Slow (300,000 rows, about a minute): test_restore_safety kills restores after
    # their first write on every vendor in the quick suite.
    @pytest.mark.slow
    def test_database_is_unchanged_after_a_restore_is_killed_midway(self):
        populate_zoo()
        # Enough rows that the restore is still writing when it is killed.
        Node.objects.bulk_create(
            (Node(name=f"bulk {i}") for i in range(300_000)), batch_size=5_000
        )
        file = self.tmp_path / "big.jsonl.gz"
        create_backup(file)
        mutate_zoo()
        Node.objects.filter(name__startswith="bulk 1").delete()
        before = snapshot()
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "restore",
                str(file),
                "--noinput",
                "--no-safety-backup",
            ],
            env=child_environment(),
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not restore_in_progress(connection.vendor):
                assert child.poll() is None, child.stderr.read().decode()
                assert time.monotonic() < deadline, "the restore never started"
                time.sleep(0.01)
            time.sleep(0.05)
            assert child.poll() is None, "the restore finished before it was killed"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        # The server notices the dead client and rolls its transaction back.
        deadline = time.monotonic() + 30
        while restore_in_progress(connection.vendor) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert snapshot() == before
        # Nothing was left locked: the next restore goes through.
        restore_backup(file, safety_backup=False)


class ConcurrentWriterTests(TransactionTestCase):
    """A backup is one snapshot even while another connection keeps writing."""

    databases = {"default", "other"}
    tmp_path: Path

    def _rollback_journal(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=DELETE")
            assert cursor.fetchone()[0] == "delete"

    def test_restored_data_satisfies_the_writers_invariant(self):
        if connection.vendor == "sqlite":
            # Readers and a writer can only overlap in WAL mode. The mode stays on
            # the file: the tests after this one get the rollback journal back.
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA journal_mode=WAL")
            self.addCleanup(self._rollback_journal)
        for i in range(20):
            Book.objects.create(
                title=f"b{i}", author=Author.objects.create(name=f"a{i}")
            )
        written = threading.Event()
        stop = threading.Event()
        errors = []

        def writer():
            # Each transaction adds an author together with their one book.
            try:
                count = 0
                while not stop.is_set():
                    with transaction.atomic():
                        author = Author.objects.create(name=f"w{count}")
                        Book.objects.create(title=f"w{count}", author=author)
                    count += 1
                    if count >= 10:
                        written.set()
            except Exception as exc:  # reported by the main thread
                errors.append(exc)
                written.set()
            finally:
                close_old_connections()
                connections.close_all()

        def pause_between_authors_and_books(progress):
            if progress.label == "testapp.Book" and progress.done == 0:
                assert written.wait(timeout=30), "the writer wrote nothing"

        thread = threading.Thread(target=writer)
        thread.start()
        file = self.tmp_path / "during-writes.jsonl.gz"
        try:
            create_backup(file, progress=pause_between_authors_and_books)
        finally:
            stop.set()
            thread.join(timeout=30)
        assert not errors, errors
        restore_backup(file, safety_backup=False)
        authors = set(Author.objects.values_list("pk", flat=True))
        book_authors = list(Book.objects.values_list("author_id", flat=True))
        assert set(book_authors) <= authors
        assert sorted(book_authors) == sorted(authors)
