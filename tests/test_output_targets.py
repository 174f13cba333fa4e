"""Where ``backup --output`` may write: regular files are replaced when complete,
devices and FIFOs are written into as streams, nothing else is touched. And the
partial files of killed backups are cleaned up, only those."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.test import TestCase, TransactionTestCase

from backups_app.backup import create_backup
from backups_app.exceptions import StorageError
from backups_app.fileformat import streams
from backups_app.validate import validate_backup
from tests.factories import populate_zoo
from tests.test_processes import ROOT, child_environment, manage

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class SpecialTargetTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()

    def test_a_symlink_to_elsewhere_is_refused_and_left_alone(self):
        elsewhere = self.tmp_path / "elsewhere.jsonl.gz"
        link = self.tmp_path / "link.jsonl.gz"
        link.symlink_to(elsewhere)
        with pytest.raises(StorageError) as excinfo:
            create_backup(link)
        assert str(excinfo.value) == (
            f"Refusing to write {str(link)!r}: it is a symbolic link; give the path "
            "it points to, or another."
        )
        assert link.is_symlink() and os.readlink(link) == str(elsewhere)
        assert not elsewhere.exists()

    def test_a_symlink_to_a_regular_file_is_refused_too(self):
        target = self.tmp_path / "real.jsonl"
        target.write_bytes(b"keep")
        link = self.tmp_path / "link.jsonl"
        link.symlink_to(target)
        with pytest.raises(StorageError):
            create_backup(link)
        assert target.read_bytes() == b"keep" and link.is_symlink()

    def test_a_directory_is_refused(self):
        with pytest.raises(StorageError) as excinfo:
            create_backup(self.tmp_path)
        assert str(excinfo.value) == (
            f"Cannot write {str(self.tmp_path)!r}: it is a directory."
        )

    def test_a_fifo_is_written_into_as_a_stream(self):
        fifo = self.tmp_path / "pipe.jsonl.gz"
        os.mkfifo(fifo)
        received = []

        def read():
            with open(fifo, "rb") as pipe:
                received.append(pipe.read())

        reader = threading.Thread(target=read)
        reader.start()
        summary = create_backup(fifo)
        reader.join(timeout=30)
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        copy = self.tmp_path / "copy.jsonl.gz"
        copy.write_bytes(received[0])
        assert validate_backup(copy).ok
        assert summary.name == str(fifo)

    def test_dev_null_is_written_into_and_stays_a_device(self):
        create_backup("/dev/null")
        assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


class SpecialTargetCommandTests(TransactionTestCase):
    """The command-line view: exit codes and one line on standard error."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()

    def test_dev_full_is_a_one_line_error_and_stays_a_device(self):
        result = manage("backup", "--output", "/dev/full")
        assert result.returncode == 2
        assert result.stderr.decode().splitlines() == [
            "CommandError: Cannot write /dev/full: No space left on device."
        ]
        assert stat.S_ISCHR(os.lstat("/dev/full").st_mode)

    def test_closed_standard_output(self):
        result = subprocess.run(
            [sys.executable, "-m", "django", "backup", "--output", "-"],
            stdout=None,
            stderr=subprocess.PIPE,
            env=child_environment(),
            cwd=ROOT,
            timeout=120,
            # Close descriptor 1 in the child before it starts Python.
            preexec_fn=lambda: os.close(1),
        )
        assert result.returncode == 2
        assert result.stderr.decode().splitlines() == [
            "CommandError: Cannot write to standard output: it is closed."
        ]

    def test_standard_output_closed_by_its_reader(self):
        child = subprocess.Popen(
            [sys.executable, "-m", "django", "backup", "--output", "-"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_environment(),
            cwd=ROOT,
        )
        child.stdout.read(10)
        child.stdout.close()
        _, stderr = child.communicate(timeout=120)
        assert child.returncode == 2
        assert stderr.decode().splitlines() == [
            "CommandError: Cannot write <stdout>: Broken pipe."
        ]

    def test_dev_stdout_gets_the_backup_and_nothing_else(self):
        result = manage("backup", "--output", "/dev/stdout")
        assert result.returncode == 0, result.stderr.decode()
        piped = self.tmp_path / "piped.jsonl"
        piped.write_bytes(result.stdout)
        assert validate_backup(piped).ok
        assert b"Backup written to /dev/stdout" in result.stderr


def partial_name(host: str, pid: int, token: str = "abcd1234") -> str:
    return f".backup-{host}-{pid}-{token}.partial"


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


class StalePartialFileTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_only_dead_writers_leftovers_are_removed(self):
        host = streams._host()
        old = time.time() - streams.STALE_AFTER - 60
        dead = self.tmp_path / partial_name(host, dead_pid())
        dead.write_bytes(b"left by a killed backup")
        remote_old = self.tmp_path / partial_name("elsewhere", 4242, "old_1234")
        remote_old.write_bytes(b"old")
        os.utime(remote_old, (old, old))
        remote_new = self.tmp_path / partial_name("elsewhere", 4242, "new_1234")
        remote_new.write_bytes(b"being written on another host")
        alive = self.tmp_path / partial_name(host, os.getpid())
        alive.write_bytes(b"being written here")
        os.utime(alive, (old, old))
        # Old and its pid reused, but its writer still holds the lock.
        held = open(alive, "rb")  # noqa: SIM115 (closed below)
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        not_ours = self.tmp_path / "backup-1234.partial"
        not_ours.write_bytes(b"someone else's")
        os.utime(not_ours, (old, old))
        link = self.tmp_path / partial_name(host, dead_pid(), "link1234")
        link.symlink_to(not_ours)
        try:
            create_backup(self.tmp_path / "new.jsonl.gz")
        finally:
            held.close()
        left = sorted(p.name for p in self.tmp_path.iterdir())
        assert left == sorted(
            [alive.name, remote_new.name, not_ours.name, link.name, "new.jsonl.gz"]
        )

    def test_a_backup_writes_a_locked_partial_file_named_after_its_writer(self):
        seen = []

        def look(progress):
            if seen:
                return
            (partial,) = [
                p for p in self.tmp_path.iterdir() if p.name.endswith(".partial")
            ]
            match = streams.PARTIAL_NAME.fullmatch(partial.name)
            with open(partial, "rb") as probe:
                try:
                    fcntl.flock(probe.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    locked = False
                except OSError:
                    locked = True
            seen.append((match["host"], int(match["pid"]), locked))

        create_backup(self.tmp_path / "b.jsonl.gz", progress=look)
        assert seen == [(streams._host(), os.getpid(), True)]
