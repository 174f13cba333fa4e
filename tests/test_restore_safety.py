"""A restore under concurrent writers and crashes: no committed write lost, no half state.

"Unchanged" is checked on the contents as the database stores them, read with plain
SQL; sequences (PostgreSQL), ``sqlite_sequence`` and InnoDB's counters are read the
same way. "Restored" is checked with ``tests.utils.snapshot`` (values as Django reads
them): SQLite keeps JSON as the text it was given, which a restore writes in the
backup's canonical form.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, connections, models, transaction
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from backups_app.exceptions import RestoreError
from backups_app.fileformat.streams import backup_storage
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.test_processes import ROOT, child_environment, restore_in_progress
from tests.testapp.models import Label, Node
from tests.utils import _comparable, snapshot, snapshot_models

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def raw_contents(using: str = "default") -> dict[str, list[tuple]]:
    """Return every backed-up table's rows, read with plain SQL in primary key order."""
    quote = connections[using].ops.quote_name
    mysql = connections[using].vendor == "mysql"
    contents = {}
    with connections[using].cursor() as cursor:
        for model in snapshot_models():
            fields = model._meta.local_concrete_fields
            columns = ", ".join(
                # MySQL's text: mysqlclient reads NULL and a zero date both as None.
                f"CAST({quote(f.column)} AS CHAR)"
                if mysql and f.get_internal_type() in ("DateField", "DateTimeField")
                else quote(f.column)
                for f in fields
            )
            order = ", ".join(quote(f.column) for f in model._meta.pk_fields)
            cursor.execute(
                f"SELECT {columns} FROM {quote(model._meta.db_table)} ORDER BY {order}"
            )
            contents[model._meta.db_table] = [
                tuple(_comparable(value) for value in row) for row in cursor.fetchall()
            ]
    return contents


def sequence_state(using: str = "default") -> dict[str, tuple]:
    """Return what decides each table's next generated id, as the database keeps it."""
    db = connections[using]
    with db.cursor() as cursor:
        if db.vendor == "sqlite":
            cursor.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name")
            return {name: (seq,) for name, seq in cursor.fetchall()}
        if db.vendor == "mysql":
            cursor.execute(
                "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES "
                "WHERE TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL "
                "ORDER BY TABLE_NAME"
            )
            return {name: (value,) for name, value in cursor.fetchall()}
        state = {}
        for model in snapshot_models():
            auto = [
                f for f in model._meta.local_fields if isinstance(f, models.AutoField)
            ]
            if not auto:
                continue
            table = model._meta.db_table
            cursor.execute(
                "SELECT pg_get_serial_sequence(%s, %s)",
                [db.ops.quote_name(table), auto[0].column],
            )
            sequence = cursor.fetchone()[0]
            cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
            state[table] = cursor.fetchone()
        return state


def next_values(state: dict[str, tuple]) -> dict[str, int]:
    """Return the next id each PostgreSQL sequence of ``state`` hands out."""
    return {
        table: last + 1 if called else last for table, (last, called) in state.items()
    }


def largest_ids(using: str = "default") -> dict[str, int]:
    """Return the largest id of each table with a generated key (0 when empty)."""
    result = {}
    for model in snapshot_models():
        auto = [f for f in model._meta.local_fields if isinstance(f, models.AutoField)]
        if auto:
            largest = model._base_manager.using(using).aggregate(
                m=models.Max(auto[0].attname)
            )["m"]
            result[model._meta.db_table] = largest or 0
    return result


def assert_next_inserts_work(using: str = "default") -> None:
    """New rows get ids above every existing one (no duplicate key)."""
    before = largest_ids(using)
    node = Node.objects.using(using).create(name="inserted after")
    label = Label.objects.using(using).create(name="inserted after")
    assert node.pk > before[Node._meta.db_table]
    assert label.pk > before[Label._meta.db_table]


def safety_files() -> set[str]:
    storage = backup_storage()
    try:
        return {name for name in storage.listdir("")[1] if name.startswith("safety-")}
    except FileNotFoundError:
        return set()


class KilledRestoreTests(TransactionTestCase):
    """``SIGKILL`` at observed moments of a restore: the database is whole afterwards.

    The child reports each stage of the restore as it begins and sleeps at the one the
    test kills it in; where the database shows the moment from outside (a transaction
    id, modified rows, a changed sequence), the test waits to see that too.
    """

    databases = {"default", "other"}
    # Fresh sequences in "other", for the test that restores into it.
    reset_sequences = True
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        self.backup_contents = raw_contents()
        self.backup_snapshot = snapshot()
        mutate_zoo()
        Node.objects.bulk_create(Node(name=f"extra {i}") for i in range(50))
        self.before = raw_contents()
        self.sequences_before = sequence_state()

    def kill_at(
        self, event: str, using: str = "default", observe=None, *options: str
    ) -> list[str]:
        """Run a restore into ``using`` and SIGKILL it at ``event``; return the events."""
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "django",
                "restore_with_events",
                str(self.file),
                "--database",
                using,
                "--pause-at",
                event,
                *options,
            ],
            env=child_environment(),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        events = []
        try:
            while f"event {event}" not in events:
                line = child.stdout.readline()
                assert line, f"the restore ended before {event}: {child.stderr.read()}"
                events.append(line.strip())
            if observe is not None:
                deadline = time.monotonic() + 20
                while not observe():
                    assert time.monotonic() < deadline, f"{event} not seen from outside"
                    time.sleep(0.02)
            assert child.poll() is None, "the restore finished before it was killed"
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
            child.stderr.close()
        assert child.returncode == -signal.SIGKILL
        # The server notices the dead client and rolls its transaction back.
        deadline = time.monotonic() + 30
        while restore_in_progress(connection.vendor) and time.monotonic() < deadline:
            time.sleep(0.05)
        return events

    def wrote(self) -> bool:
        """Tell from outside whether the restore has written (and not committed)."""
        vendor = connection.vendor
        name = connection.settings_dict["NAME"]
        if vendor == "sqlite":
            journal = Path(name + "-journal")
            return journal.exists() and journal.stat().st_size > 0
        with connections["other"].cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
                    [name],
                )
            else:
                cursor.execute(
                    "SELECT count(*) FROM information_schema.innodb_trx t "
                    "JOIN information_schema.PROCESSLIST p "
                    "ON p.ID = t.trx_mysql_thread_id "
                    "WHERE p.DB = %s AND t.trx_rows_modified > 0",
                    [name],
                )
            return cursor.fetchone()[0] > 0

    def test_killed_after_its_first_write(self):
        events = self.kill_at("restore", observe=self.wrote)
        assert events[-4:] == [
            "event lock",
            "event compare",
            "event delete",
            "event restore",
        ]
        assert raw_contents() == self.before
        assert sequence_state() == self.sequences_before
        assert_next_inserts_work()
        restore_backup(self.file, safety_backup=False)
        assert snapshot() == self.backup_snapshot

    def test_killed_after_the_safety_backup_which_stays_complete(self):
        safety_before = safety_files()
        events = self.kill_at("delete", "default", None, "--safety-backup")
        assert events[-4:] == [
            "event lock",
            "event compare",
            "event safety",
            "event delete",
        ]
        assert raw_contents() == self.before
        (name,) = safety_files() - safety_before
        # A complete backup of the unchanged database; no partial file is left.
        assert validate_backup(name).ok
        assert not [
            n for n in backup_storage().listdir("")[1] if n.endswith(".partial")
        ]

    def test_killed_just_before_commit(self):
        events = self.kill_at("commit")
        assert events[-2:] == ["event sequences", "event commit"]
        assert raw_contents() == self.before
        if connection.vendor == "postgresql":
            # Sequences the restore raised stay raised (a gap of unused ids).
            after = next_values(sequence_state())
            before = next_values(self.sequences_before)
            assert all(after[table] >= before[table] for table in before)
        else:
            assert sequence_state() == self.sequences_before
        assert_next_inserts_work()

    def test_killed_after_raising_sequences_on_a_fresh_database(self):
        if connection.vendor != "postgresql":
            pytest.skip(
                "only PostgreSQL sequences change outside the transaction; "
                "sqlite_sequence is a table, InnoDB counters are not lowered"
            )
        fresh = sequence_state("other")
        contents = raw_contents("other")
        node_table = Node._meta.db_table

        def node_sequence_raised():
            return sequence_state("other")[node_table] != fresh[node_table]

        self.kill_at("commit", using="other", observe=node_sequence_raised)
        assert raw_contents("other") == contents
        # Raised past the backup's ids: harmless, the next insert works.
        assert next_values(sequence_state("other"))[node_table] > max(
            row[0] for row in self.backup_contents[node_table]
        )
        assert_next_inserts_work("other")

    def test_killed_after_commit_before_lowering_sequences(self):
        if connection.vendor != "postgresql":
            pytest.skip(
                "only PostgreSQL sequences are lowered after commit; sqlite_sequence "
                "is set in the transaction, InnoDB counters are not lowered"
            )
        events = self.kill_at("settle")
        assert events[-4:] == [
            "event sequences",
            "event commit",
            "event committed",
            "event settle",
        ]
        assert snapshot() == self.backup_snapshot
        # Not lowered to the restored rows, but never below them.
        after = next_values(sequence_state())
        assert (
            after[Node._meta.db_table]
            == next_values(self.sequences_before)[Node._meta.db_table]
        )
        largest = largest_ids()
        assert all(after[table] > largest[table] for table in after)
        assert_next_inserts_work()


class SequenceTests(TransactionTestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        self.backup_snapshot = snapshot()
        mutate_zoo()
        Node.objects.bulk_create(Node(name=f"extra {i}") for i in range(50))

    def test_next_ids_follow_the_restored_rows(self):
        restore_backup(self.file, safety_backup=False)
        assert snapshot() == self.backup_snapshot
        largest = largest_ids()
        if connection.vendor == "postgresql":
            # Lowered after commit to exactly what the rows imply.
            assert next_values(sequence_state()) == {
                table: value + 1 for table, value in largest.items()
            }
        elif connection.vendor == "sqlite":
            state = sequence_state()
            assert {t: state[t][0] for t in largest if t in state} == {
                t: v for t, v in largest.items() if v
            }
        assert_next_inserts_work()
        restore_backup(self.file, using="other", safety_backup=False)
        assert snapshot("other") == self.backup_snapshot
        assert_next_inserts_work("other")

    def test_failed_read_back_leaves_rows_and_sequences_as_they_were(self):
        if connection.vendor != "postgresql":
            pytest.skip(
                "made to fail with PostgreSQL's char(n), which pads the values it "
                "returns; PostgreSQL's sequences are the ones outside the transaction"
            )
        table = Node._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE "{table}" ALTER COLUMN name TYPE char(100)')
        try:
            before = raw_contents()
            sequences = sequence_state()
            with pytest.raises(RestoreError) as excinfo:
                restore_backup(self.file, safety_backup=False)
            assert str(excinfo.value) == (
                f"Restore of {self.file} failed and was rolled back: testapp.Node: "
                "the database does not hold the backup's values after writing (5 rows "
                "read back, 5 in the backup; first difference at pk "
                f"{Node.objects.order_by('pk').first().pk}). The target cannot store "
                "some values exactly."
            )
            assert raw_contents() == before
            assert sequence_state() == sequences
            assert_next_inserts_work()
        finally:
            with connection.cursor() as cursor:
                cursor.execute(
                    f'ALTER TABLE "{table}" ALTER COLUMN name TYPE varchar(100)'
                )


class ConcurrentWriterTests(TransactionTestCase):
    """Writers committing while a restore runs lose nothing: each committed row is in
    the safety backup or, written after the restore committed, in the database."""

    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        Node.objects.bulk_create(
            (Node(name=f"bulk {i}") for i in range(20_000)), batch_size=5_000
        )
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)

    def test_no_committed_write_is_lost(self):
        stop = threading.Event()
        committed: list[tuple[str, float, float]] = []  # name, started, committed
        rejected: list[str] = []

        def writer():
            try:
                count = 0
                while not stop.is_set():
                    name = f"w{count}"
                    count += 1
                    started = time.monotonic()
                    try:
                        Label.objects.create(name=name)
                    except DatabaseError as exc:
                        rejected.append(f"{name}: {exc}")
                        continue
                    committed.append((name, started, time.monotonic()))
            finally:
                connections.close_all()

        locked_at = []

        def pause_under_the_locks(progress):
            # Give the writer time to run into the locks, several times.
            if progress.stage == "safety" and not locked_at:
                locked_at.append(time.monotonic())
                time.sleep(0.5)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while len(committed) < 5:
                assert thread.is_alive()
                time.sleep(0.01)
            summary = restore_backup(
                self.file, safety_backup=True, progress=pause_under_the_locks
            )
            restored_at = time.monotonic()
            while not any(started > restored_at for _, started, _ in committed):
                assert thread.is_alive()
                time.sleep(0.01)
        finally:
            stop.set()
            thread.join(timeout=60)
        final = set(Label.objects.values_list("name", flat=True))
        restore_backup(summary.safety_backup, using="other", safety_backup=False)
        in_safety = set(Label.objects.using("other").values_list("name", flat=True))
        names = [name for name, _, _ in committed]
        lost = [name for name in names if name not in final | in_safety]
        assert lost == []
        # The writer did write during the restore: a write begun under the locks
        # waited and committed after the restore, so it is in the database.
        blocked = [
            name for name, started, done in committed if locked_at[0] < started < done
        ]
        assert blocked and blocked[0] in final
        assert not any(name.startswith("w") for name in in_safety & final)


class LockWaitTests(TransactionTestCase):
    """A session holding a write on a table in scope makes the restore wait, then fail."""

    databases = {"default", "other"}
    tmp_path: Path

    def test_restore_gives_up_on_a_writer_and_changes_nothing(self):
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        mutate_zoo()
        before = raw_contents()
        safety_before = safety_files()
        holding = threading.Event()
        release = threading.Event()
        errors = []

        def holder():
            try:
                with transaction.atomic():
                    Label.objects.create(name="uncommitted")
                    holding.set()
                    assert release.wait(timeout=60)
            except Exception as exc:  # reported by the main thread
                errors.append(exc)
                holding.set()
            finally:
                connections.close_all()

        thread = threading.Thread(target=holder)
        thread.start()
        try:
            assert holding.wait(timeout=30)
            started = time.monotonic()
            with pytest.raises(RestoreError) as excinfo:
                restore_backup(file, safety_backup=True, lock_wait=1)
            waited = time.monotonic() - started
            what = (
                "database 'default'"
                if connection.vendor == "sqlite"
                else "testapp.Label"
            )
            assert str(excinfo.value) == (
                f"Another session is writing to {what} and did not finish within "
                "1 s; the database was left unchanged."
            )
            assert 0.9 < waited < 10
            assert raw_contents() == before
            assert safety_files() == safety_before
        finally:
            release.set()
            thread.join(timeout=60)
        assert not errors, errors
        assert Label.objects.filter(name="uncommitted").exists()
        # With the writer gone, the same restore goes through.
        restore_backup(file, safety_backup=False)


class SnapshotReaderTests(TransactionTestCase):
    """PostgreSQL readers keep seeing the old rows while a restore runs, and readers
    whose snapshot began before it never see its tables empty afterwards."""

    databases = {"default", "other"}
    tmp_path: Path

    def test_readers_see_old_or_new_rows_never_empty_tables(self):
        if connection.vendor != "postgresql":
            pytest.skip("REPEATABLE READ snapshots of PostgreSQL's MVCC")
        import psycopg

        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        mutate_zoo()
        old = raw_contents()[Node._meta.db_table]
        config = connection.settings_dict
        options = {
            "host": config["HOST"],
            "port": config["PORT"],
            "user": config["USER"],
            "password": config["PASSWORD"],
            "dbname": config["NAME"],
            "autocommit": True,
        }
        query = 'SELECT * FROM "testapp_node" ORDER BY id'
        seen_during = []
        with (
            psycopg.connect(**options) as snapshot_reader,
            psycopg.connect(**options) as reader,
        ):
            snapshot_reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            snapshot_reader.execute("SELECT 1")  # the snapshot starts here
            reader.execute("SET statement_timeout = '5s'")

            def read_while_restoring(progress):
                if progress.stage == "check" and not seen_during:
                    seen_during.append(reader.execute(query).fetchall())

            restore_backup(file, safety_backup=False, progress=read_while_restoring)
            seen_after = snapshot_reader.execute(query).fetchall()
            snapshot_reader.execute("COMMIT")
        assert seen_during == [old]
        assert seen_after == old


class DeadlockTests(TransactionTestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def test_a_writer_deadlocked_with_the_restore_is_named(self):
        if connection.vendor != "postgresql":
            pytest.skip(
                "PostgreSQL's deadlock detector aborts the session that waited "
                "longest, the restore here; SQLite has one write lock, and InnoDB "
                "aborts the transaction holding fewer locks, the writer"
            )
        from backups_app.db.tables import table_specs

        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        order = [spec.label for spec in table_specs("default")]
        # The writer holds the later table, then asks for the earlier one, which
        # the restore has locked while it waits for the later.
        first, later = sorted(
            [Label, Node], key=lambda model: order.index(model._meta.label)
        )
        before = raw_contents()
        errors = []

        def writer():
            try:
                with transaction.atomic(), connection.cursor() as cursor:
                    make = {Label: "INSERT INTO testapp_label (name) VALUES ('x')"}
                    make[Node] = "INSERT INTO testapp_node (name) VALUES ('x')"
                    cursor.execute(make[later])
                    holding.set()
                    deadline = time.monotonic() + 30
                    while True:
                        cursor.execute(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted "
                            "AND relation = %s::regclass",
                            [later._meta.db_table],
                        )
                        if cursor.fetchone()[0]:
                            break
                        assert time.monotonic() < deadline, "the restore never waited"
                        time.sleep(0.02)
                    cursor.execute(make[first])
            except Exception as exc:  # reported by the main thread
                errors.append(exc)
            finally:
                holding.set()
                connections.close_all()

        holding = threading.Event()
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            assert holding.wait(timeout=30)
            with pytest.raises(RestoreError) as excinfo:
                restore_backup(file, safety_backup=False, lock_wait=20)
        finally:
            thread.join(timeout=60)
        assert not errors, errors
        assert str(excinfo.value) == (
            f"Another session writing to {later._meta.label} was waiting for this "
            "restore while it waited for that session (a deadlock); the database "
            "was left unchanged."
        )
        after = raw_contents()
        for model in (Label, Node):
            table = model._meta.db_table
            assert len(after[table]) == len(before[table]) + 1
            after[table] = [row for row in after[table] if "x" not in row]
            before[table] = [row for row in before[table] if "x" not in row]
        assert after == before
