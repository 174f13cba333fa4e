"""Tables the database writes to by itself while a restore loads: triggers.

Each test makes triggers on ``triggerapp.Post`` in raw SQL for the vendor under
test, fills the tables through the ORM (so the triggers fire), takes a backup,
changes everything, restores, and compares the stored contents of every table
involved, the non-model ones included, with what they held at backup time.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection, connections
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from backups_app.exceptions import RestoreError
from backups_app.restore import restore_backup
from tests.triggerapp.models import AuditEntry, Counter, Post, PostIndex

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

# A counter table no model owns, kept by a trigger.
TOTAL_TABLE = "triggerapp_post_total"

TABLES = {
    "triggerapp_post": "SELECT id, title, body FROM triggerapp_post ORDER BY id",
    "triggerapp_auditentry": (
        "SELECT id, post_id, action FROM triggerapp_auditentry ORDER BY id"
    ),
    "triggerapp_counter": "SELECT name, value FROM triggerapp_counter ORDER BY name",
    "triggerapp_postindex": (
        "SELECT rowid, title, body FROM triggerapp_postindex ORDER BY rowid"
    ),
    TOTAL_TABLE: f"SELECT id, posts FROM {TOTAL_TABLE} ORDER BY id",
}

SQLITE = {
    "audit": [
        "CREATE TRIGGER triggerapp_audit_insert AFTER INSERT ON triggerapp_post "
        "BEGIN INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (new.id, 'insert'); END",
        "CREATE TRIGGER triggerapp_audit_delete AFTER DELETE ON triggerapp_post "
        "BEGIN INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (old.id, 'delete'); END",
    ],
    "counters": [
        "CREATE TRIGGER triggerapp_count_insert AFTER INSERT ON triggerapp_post BEGIN "
        "UPDATE triggerapp_counter SET value = value + 1 WHERE name = 'posts'; "
        f"UPDATE {TOTAL_TABLE} SET posts = posts + 1; END",
        "CREATE TRIGGER triggerapp_count_delete AFTER DELETE ON triggerapp_post BEGIN "
        "UPDATE triggerapp_counter SET value = value - 1 WHERE name = 'posts'; "
        f"UPDATE {TOTAL_TABLE} SET posts = posts - 1; END",
    ],
    # As Wagtail keeps its FTS5 index on SQLite.
    "index": [
        "CREATE TRIGGER triggerapp_index_insert AFTER INSERT ON triggerapp_post BEGIN "
        "INSERT INTO triggerapp_postindex (rowid, title, body) "
        "VALUES (new.id, new.title, new.body); END",
        "CREATE TRIGGER triggerapp_index_delete AFTER DELETE ON triggerapp_post BEGIN "
        "DELETE FROM triggerapp_postindex WHERE rowid = old.id; END",
        "CREATE TRIGGER triggerapp_index_update AFTER UPDATE ON triggerapp_post BEGIN "
        "UPDATE triggerapp_postindex SET title = new.title, body = new.body "
        "WHERE rowid = new.id; END",
    ],
    # Each writes into the other's table: never settles.
    "ping_pong": [
        "CREATE TRIGGER triggerapp_ping AFTER INSERT ON triggerapp_counter BEGIN "
        "INSERT INTO triggerapp_auditentry (post_id, action) VALUES (0, 'ping'); END",
        "CREATE TRIGGER triggerapp_pong AFTER INSERT ON triggerapp_auditentry BEGIN "
        "UPDATE triggerapp_counter SET value = value + 1; END",
    ],
    # Emptying either table writes into the other one.
    "delete_ping_pong": [
        "CREATE TRIGGER triggerapp_ping AFTER DELETE ON triggerapp_counter BEGIN "
        "INSERT INTO triggerapp_auditentry (post_id, action) VALUES (0, 'ping'); END",
        "CREATE TRIGGER triggerapp_pong AFTER DELETE ON triggerapp_auditentry BEGIN "
        "INSERT INTO triggerapp_counter (name, value) VALUES ('pong' || old.id, 0); "
        "END",
    ],
}


def _pg_function(name: str, body: str, events: str, table: str) -> list[str]:
    return [
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN {body} RETURN NULL; END $$",
        f"CREATE TRIGGER {name} AFTER {events} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()",
    ]


POSTGRES = {
    "audit": _pg_function(
        "triggerapp_audit",
        "IF TG_OP = 'DELETE' THEN INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (OLD.id, 'delete'); ELSE INSERT INTO triggerapp_auditentry "
        "(post_id, action) VALUES (NEW.id, 'insert'); END IF;",
        "INSERT OR DELETE",
        "triggerapp_post",
    ),
    "counters": _pg_function(
        "triggerapp_count",
        "UPDATE triggerapp_counter SET value = value + "
        "CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END WHERE name = 'posts'; "
        f"UPDATE {TOTAL_TABLE} SET posts = posts + "
        "CASE TG_OP WHEN 'INSERT' THEN 1 ELSE -1 END;",
        "INSERT OR DELETE",
        "triggerapp_post",
    ),
    "index": _pg_function(
        "triggerapp_index",
        "IF TG_OP <> 'INSERT' THEN DELETE FROM triggerapp_postindex "
        "WHERE rowid = OLD.id; END IF; IF TG_OP <> 'DELETE' THEN "
        "INSERT INTO triggerapp_postindex (rowid, title, body) "
        "VALUES (NEW.id, NEW.title, NEW.body); END IF;",
        "INSERT OR UPDATE OR DELETE",
        "triggerapp_post",
    ),
    "ping_pong": _pg_function(
        "triggerapp_ping",
        "INSERT INTO triggerapp_auditentry (post_id, action) VALUES (0, 'ping');",
        "INSERT",
        "triggerapp_counter",
    )
    + _pg_function(
        "triggerapp_pong",
        "UPDATE triggerapp_counter SET value = value + 1;",
        "INSERT",
        "triggerapp_auditentry",
    ),
    "delete_ping_pong": _pg_function(
        "triggerapp_ping",
        "INSERT INTO triggerapp_auditentry (post_id, action) VALUES (0, 'ping');",
        "DELETE",
        "triggerapp_counter",
    )
    + _pg_function(
        "triggerapp_pong",
        "INSERT INTO triggerapp_counter (name, value) VALUES ('pong' || OLD.id, 0);",
        "DELETE",
        "triggerapp_auditentry",
    ),
}

MYSQL = {
    "audit": [
        "CREATE TRIGGER triggerapp_audit_insert AFTER INSERT ON triggerapp_post "
        "FOR EACH ROW INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (NEW.id, 'insert')",
        "CREATE TRIGGER triggerapp_audit_delete AFTER DELETE ON triggerapp_post "
        "FOR EACH ROW INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (OLD.id, 'delete')",
    ],
    "counters": [
        "CREATE TRIGGER triggerapp_count_insert AFTER INSERT ON triggerapp_post "
        "FOR EACH ROW BEGIN "
        "UPDATE triggerapp_counter SET value = value + 1 WHERE name = 'posts'; "
        f"UPDATE {TOTAL_TABLE} SET posts = posts + 1; END",
        "CREATE TRIGGER triggerapp_count_delete AFTER DELETE ON triggerapp_post "
        "FOR EACH ROW BEGIN "
        "UPDATE triggerapp_counter SET value = value - 1 WHERE name = 'posts'; "
        f"UPDATE {TOTAL_TABLE} SET posts = posts - 1; END",
    ],
    "index": [
        "CREATE TRIGGER triggerapp_index_insert AFTER INSERT ON triggerapp_post "
        "FOR EACH ROW INSERT INTO triggerapp_postindex (rowid, title, body) "
        "VALUES (NEW.id, NEW.title, NEW.body)",
        "CREATE TRIGGER triggerapp_index_delete AFTER DELETE ON triggerapp_post "
        "FOR EACH ROW DELETE FROM triggerapp_postindex WHERE rowid = OLD.id",
        "CREATE TRIGGER triggerapp_index_update AFTER UPDATE ON triggerapp_post "
        "FOR EACH ROW UPDATE triggerapp_postindex SET title = NEW.title, "
        "body = NEW.body WHERE rowid = NEW.id",
    ],
    "ping_pong": [
        "CREATE TRIGGER triggerapp_ping AFTER INSERT ON triggerapp_counter "
        "FOR EACH ROW INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (0, 'ping')",
        "CREATE TRIGGER triggerapp_pong AFTER INSERT ON triggerapp_auditentry "
        "FOR EACH ROW UPDATE triggerapp_counter SET value = value + 1",
    ],
    "delete_ping_pong": [
        "CREATE TRIGGER triggerapp_ping AFTER DELETE ON triggerapp_counter "
        "FOR EACH ROW INSERT INTO triggerapp_auditentry (post_id, action) "
        "VALUES (0, 'ping')",
        "CREATE TRIGGER triggerapp_pong AFTER DELETE ON triggerapp_auditentry "
        "FOR EACH ROW INSERT INTO triggerapp_counter (name, value) "
        "VALUES (CONCAT('pong', OLD.id), 0)",
    ],
}

TRIGGERS = {"sqlite": SQLITE, "postgresql": POSTGRES, "mysql": MYSQL}


def run_sql(*statements: str) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def contents() -> dict[str, list[tuple]]:
    """Return the stored rows of every table involved, read with raw SQL."""
    found = {}
    with connection.cursor() as cursor:
        for table, query in TABLES.items():
            cursor.execute(query)
            found[table] = [tuple(row) for row in cursor.fetchall()]
    return found


def trigger_names() -> list[tuple[str, str]]:
    """Return (trigger, table) of every trigger of the test database."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT name, tbl_name FROM sqlite_master WHERE type='trigger'"
            )
        elif connection.vendor == "postgresql":
            cursor.execute(
                "SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c "
                "ON c.oid = t.tgrelid WHERE NOT t.tgisinternal "
                "AND pg_table_is_visible(c.oid)"
            )
        else:
            cursor.execute(
                "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE TRIGGER_SCHEMA = DATABASE()"
            )
        return cursor.fetchall()


class TriggerTests(TransactionTestCase):
    """A restore ends exact, non-model tables included, whatever triggers write.

    TransactionTestCase: MariaDB commits on CREATE TRIGGER, and the restore then
    runs as it does outside tests (SQLite with foreign key enforcement off).
    """

    databases = {"default"}
    reset_sequences = True
    tmp_path: Path

    def setUp(self):
        run_sql(f"CREATE TABLE {TOTAL_TABLE} (id INTEGER PRIMARY KEY, posts INTEGER)")
        run_sql(f"INSERT INTO {TOTAL_TABLE} (id, posts) VALUES (1, 0)")
        Counter.objects.create(name="posts", value=0)
        Counter.objects.create(name="visits", value=7)

    def tearDown(self):
        triggers = trigger_names()
        with connection.cursor() as cursor:
            for name, table in triggers:
                if connection.vendor == "postgresql":
                    cursor.execute(f"DROP TRIGGER {name} ON {table}")
                    cursor.execute(f"DROP FUNCTION {name}()")
                else:
                    cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(f"DROP TABLE {TOTAL_TABLE}")

    def add_triggers(self, *features: str) -> None:
        for feature in features:
            run_sql(*TRIGGERS[connection.vendor][feature])

    def fill(self) -> None:
        for number in range(1, 6):
            Post.objects.create(title=f"Post {number}", body=f"About {number} things")
        Post.objects.filter(title="Post 2").update(title="Post two")
        Post.objects.filter(title="Post 4").delete()

    def mutate(self) -> None:
        """Change the model tables, through the triggers and behind their backs."""
        Post.objects.create(title="Added", body="later")
        Post.objects.create(title="Added again", body="later still")
        Post.objects.filter(title="Post 1").delete()
        Post.objects.filter(title="Post 3").update(title="Post three")
        AuditEntry.objects.create(post_id=999, action="manual")
        Counter.objects.filter(name="visits").update(value=8)

    def assert_restores_exactly(self, *features: str) -> dict[str, list[tuple]]:
        self.add_triggers(*features)
        self.fill()
        before = contents()
        file = self.tmp_path / "triggers.jsonl.gz"
        create_backup(file)
        self.mutate()
        assert contents() != before
        restore_backup(file, safety_backup=False)
        assert contents() == before
        return before

    def test_a_trigger_that_inserts_into_another_model_table(self):
        before = self.assert_restores_exactly("audit")
        assert [row[1:] for row in before["triggerapp_auditentry"]] == [
            (1, "insert"),
            (2, "insert"),
            (3, "insert"),
            (4, "insert"),
            (5, "insert"),
            (4, "delete"),
        ]

    def test_triggers_that_keep_counters_in_a_model_and_a_raw_table(self):
        before = self.assert_restores_exactly("counters")
        assert before["triggerapp_counter"] == [("posts", 4), ("visits", 7)]
        assert before[TOTAL_TABLE] == [(1, 4)]

    def test_a_search_index_fed_by_triggers(self):
        # On SQLite an FTS5 virtual table behind a model, like Wagtail's index.
        before = self.assert_restores_exactly("index")
        assert [row[:2] for row in before["triggerapp_postindex"]] == [
            (1, "Post 1"),
            (2, "Post two"),
            (3, "Post 3"),
            (5, "Post 5"),
        ]
        if connection.vendor == "sqlite":
            found = PostIndex.objects.raw(
                "SELECT rowid, title, body FROM triggerapp_postindex "
                "WHERE triggerapp_postindex MATCH 'three'"
            )
            assert [entry.pk for entry in found] == []
            found = PostIndex.objects.raw(
                "SELECT rowid, title, body FROM triggerapp_postindex "
                "WHERE triggerapp_postindex MATCH 'two'"
            )
            assert [entry.pk for entry in found] == [2]

    def test_all_of_them_at_once(self):
        self.assert_restores_exactly("audit", "counters", "index")

    def assert_refused(self, features: str, message: str) -> None:
        self.fill()
        file = self.tmp_path / "refused.jsonl.gz"
        create_backup(file)
        self.add_triggers(features)
        self.mutate()
        before = contents()
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, safety_backup=False)
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: {message}"
        )
        assert contents() == before

    def test_a_table_whose_load_changes_it_rolls_the_restore_back(self):
        # Loading Counter fires a trigger into AuditEntry, whose trigger updates
        # Counter: it can never hold the file's rows.
        if connection.vendor == "mysql":
            # MariaDB refuses the inner trigger itself.
            message = (
                "triggerapp.Counter, pk 'posts': (1442, \"Can't update table "
                "'triggerapp_counter' in stored function/trigger because it is "
                "already used by statement which invoked this stored "
                'function/trigger")'
            )
        else:
            message = (
                "triggerapp.Counter: differs from the backup right after loading it "
                "(2 rows read back, 2 in the backup; first difference at pk 'posts'); "
                "the database changes what is written (a trigger, or values the "
                "columns cannot hold exactly)"
            )
        self.assert_refused("ping_pong", message)

    def test_triggers_that_never_settle_roll_the_restore_back(self):
        # Emptying either table writes into the other: reloading one spoils the
        # other, round after round, until the bound.
        self.assert_refused(
            "delete_ping_pong",
            "triggerapp.Counter: still differs from the backup after loading it 4 "
            "times (7 rows read back, 2 in the backup; first difference at pk "
            "'pong10'); a trigger keeps changing it",
        )


class SnapshotReaderTests(TransactionTestCase):
    """A reader whose snapshot began before the restore keeps seeing the old rows.

    PostgreSQL's TRUNCATE is not MVCC-safe: such a reader would see the restored
    tables empty. The restore empties tables with DELETE.
    """

    databases = {"default"}
    tmp_path: Path

    def test_a_reader_that_began_before_the_restore_sees_the_old_rows(self):
        if connection.vendor == "sqlite":
            pytest.skip(
                "SQLite's rollback journal lets no reader keep a snapshot while "
                "another connection commits"
            )
        for number in range(3):
            Post.objects.create(title=f"Post {number}")
        file = self.tmp_path / "posts.jsonl.gz"
        create_backup(file)
        Post.objects.create(title="Later")
        query = "SELECT title FROM triggerapp_post ORDER BY id"
        reader = connections.create_connection("default")
        try:
            reader.set_autocommit(False)
            with reader.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                if reader.vendor == "mysql":
                    cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                # The snapshot begins with the first read, of a table the restore
                # leaves alone.
                cursor.execute("SELECT COUNT(*) FROM django_migrations")
                restore_backup(file, safety_backup=False)
                cursor.execute(query)
                seen_by_reader = [row[0] for row in cursor.fetchall()]
            reader.rollback()
        finally:
            reader.close()
        assert seen_by_reader == ["Post 0", "Post 1", "Post 2", "Later"]
        assert list(Post.objects.order_by("id").values_list("title", flat=True)) == [
            "Post 0",
            "Post 1",
            "Post 2",
        ]
