"""A failed restore says which table, column and row failed, and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test import TestCase, TransactionTestCase, override_settings

from backups_app.backup import create_backup
from backups_app.differential.undo import write_undo
from backups_app.exceptions import RestoreError
from backups_app.fileformat.streams import BackupSource, backup_storage
from backups_app.fileformat.writer import BackupWriter
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import rewrite
from tests.factories import mutate_zoo, populate_zoo
from tests.testapp.models import AllFields, Author, Book, Label
from tests.utils import snapshot, stored_files

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

ALL_FIELDS_COLUMNS = [f.column for f in AllFields._meta.local_concrete_fields]


def pks(model) -> list[Any]:
    return list(model._base_manager.order_by("pk").values_list("pk", flat=True))


def change_column(label: str, pk: Any, column: str, value: Any):
    """Return a ``rewrite`` row callback setting one value of one AllFields row."""
    index = ALL_FIELDS_COLUMNS.index(column)

    def change(row_label: str, row: list[Any]) -> list[Any]:
        if row_label == label and row[0] == pk:
            row[index] = value
        return row

    return change


class RestoreErrorTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.good = self.tmp_path / "good.jsonl.gz"
        create_backup(self.good)
        mutate_zoo()
        self.before = snapshot()

    def assert_refused(self, file: Path, message: str) -> None:
        # The same line whether the tables are compared with the file and only
        # their differences written, or emptied and loaded whole.
        for full in (False, True):
            with pytest.raises(RestoreError) as excinfo:
                restore_backup(file, safety_backup=False, full=full)
            assert str(excinfo.value) == (
                f"Restore of {file} failed and was rolled back: {message}"
            ), f"full={full}"
            assert snapshot() == self.before

    def with_authors(self, name: str, author_of) -> Path:
        """The good file with each Book's author_id (its last column) set to
        ``author_of(pk)`` where that is not None."""

        def point(label, row):
            if label == "testapp.Book" and (author := author_of(row[0])) is not None:
                row[-1] = author
            return row

        return rewrite(self.good, self.tmp_path / name, row=point)

    def test_a_foreign_key_to_a_missing_row_names_the_row_and_the_value(self):
        first_book = pks(Book)[0]
        broken = self.with_authors("orphan.jsonl", lambda pk: 987654)
        self.assert_refused(
            broken,
            f"testapp.Book.author_id, pk {first_book}: no testapp.Author row has "
            "id = 987654 (foreign key)",
        )

    def test_of_several_rows_without_a_parent_the_first_is_named(self):
        # The first row in key order, whichever missing value a probe meets first.
        first, second = pks(Book)[:2]
        broken = self.with_authors("orphans.jsonl", {first: 999999, second: 555555}.get)
        self.assert_refused(
            broken,
            f"testapp.Book.author_id, pk {first}: no testapp.Author row has "
            "id = 999999 (foreign key)",
        )

    def duplicate_label(self) -> tuple[Path, int]:
        def same_name(label, row):
            if label == "testapp.Label":
                row[1] = "duplicate"
            return row

        broken = rewrite(self.good, self.tmp_path / "dupes.jsonl", row=same_name)
        return broken, pks(Label)[1]

    def unique_message(self) -> str:
        return {
            "sqlite": "UNIQUE constraint failed: testapp_label.name",
            "postgresql": 'duplicate key value violates unique constraint "testapp_'
            'label_name_key"; DETAIL:  Key (name)=(duplicate) already exists.',
            "mysql": "(1062, \"Duplicate entry 'duplicate' for key 'name'\")",
        }[connection.vendor]

    def test_a_failed_insert_names_the_row(self):
        # PostgreSQL: COPY's error says the line; elsewhere the batch is replayed.
        broken, second = self.duplicate_label()
        self.assert_refused(
            broken, f"testapp.Label, pk {second}: {self.unique_message()}"
        )

    @override_settings(BACKUPS={"POSTGRES_COPY": False})
    def test_a_failed_insert_names_the_row_without_copy(self):
        broken, second = self.duplicate_label()
        self.assert_refused(
            broken, f"testapp.Label, pk {second}: {self.unique_message()}"
        )

    def test_a_value_that_cannot_be_converted_names_its_column(self):
        pk = pks(AllFields)[0]
        broken = rewrite(
            self.good,
            self.tmp_path / "float.jsonl",
            row=change_column("testapp.AllFields", pk, "floating", "a lot"),
        )
        self.assert_refused(
            broken,
            f"testapp.AllFields.floating, pk {pk}: 'a lot' cannot be converted "
            "(ValueError: could not convert string to float: 'a lot')",
        )

    def test_a_value_too_wide_for_its_column_names_the_row(self):
        pk = pks(AllFields)[0]
        broken = rewrite(
            self.good,
            self.tmp_path / "wide.jsonl",
            row=change_column(
                "testapp.AllFields", pk, "decimal_money", "123456789012.00"
            ),
        )
        message = {
            # SQLite stores it; reading it back into a decimal(10, 2) fails.
            "sqlite": f"testapp.AllFields.decimal_money, pk {pk}: the database "
            "does not give back the value written (InvalidOperation: [<class "
            "'decimal.InvalidOperation'>])",
            "postgresql": f"testapp.AllFields.decimal_money, pk {pk}: numeric field "
            "overflow; DETAIL:  A field with precision 10, scale 2 must round to an "
            "absolute value less than 10^8.",
            "mysql": f'testapp.AllFields.decimal_money, pk {pk}: (1264, "Out of range value for '
            "column 'decimal_money' at row 1\")",
        }[connection.vendor]
        self.assert_refused(broken, message)

    def test_a_null_in_a_column_that_refuses_nulls_names_the_column(self):
        pk = pks(AllFields)[0]
        broken = rewrite(
            self.good,
            self.tmp_path / "null.jsonl",
            row=change_column("testapp.AllFields", pk, "gen_a", None),
        )
        message = {
            "sqlite": "NOT NULL constraint failed: testapp_allfields.gen_a",
            # Without its DETAIL, which lists every value of the row.
            "postgresql": 'null value in column "gen_a" of relation '
            '"testapp_allfields" violates not-null constraint',
            "mysql": "(1048, \"Column 'gen_a' cannot be null\")",
        }[connection.vendor]
        for full in (False, True):
            with pytest.raises(RestoreError) as excinfo:
                restore_backup(broken, safety_backup=False, full=full)
            assert str(excinfo.value) == (
                f"Restore of {broken} failed and was rolled back: "
                f"testapp.AllFields.gen_a, pk {pk}: {message}"
            ), f"full={full}"
            assert snapshot() == self.before

    def test_a_safety_backup_that_fills_the_disk_stops_the_restore(self):
        # From the backup storage, where an undo file can be made for it.
        with self.good.open("rb") as stream:
            source = BackupSource.from_storage(
                backup_storage().save("good.jsonl.gz", stream)
            )
        kept = stored_files()

        def disk_full(writer, data):
            raise OSError(28, "No space left on device")

        for full in (False, True):  # an undo file, a whole safety backup
            with (
                mock.patch.object(BackupWriter, "_write_now", disk_full),
                mock.patch("backups_app.restore.write_undo", wraps=write_undo) as spy,
                pytest.raises(RestoreError) as excinfo,
            ):
                restore_backup(source, safety_backup=True, full=full)
            assert spy.called is not full
            message = str(excinfo.value)
            assert message.startswith(
                f"Restore of {source.name} failed and was rolled back: no safety "
                "backup could be taken: Cannot write "
            ), message
            assert message.endswith(
                ": No space left on device; restore without one to go on"
            ), message
            assert snapshot() == self.before
            # No partial file is left, under any name.
            assert stored_files() == kept
            assert not list(Path(backup_storage().location).glob("*.partial"))

    def test_a_value_changed_on_the_way_in_names_the_first_row_that_differs(self):
        pks_now = pks(AllFields)
        pk = pks_now[1]
        changed = rewrite(
            self.good,
            self.tmp_path / "digits.jsonl",
            row=change_column(
                "testapp.AllFields", pk, "decimal_wide", "12345678901.2345678901"
            ),
        )
        if connection.vendor != "sqlite":
            # PostgreSQL and MariaDB store 21 digits exactly.
            restore_backup(changed, safety_backup=False)
            return
        # SQLite keeps decimals as 64-bit floats: 21 digits go in, 15 come back.
        # (The table differs in a few rows: those written are read back.)
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(changed, safety_backup=False)
        message = str(excinfo.value)
        assert message.startswith(
            f"Restore of {changed} failed and was rolled back: testapp.AllFields: the "
            "database does not hold the backup's values after writing ("
        )
        assert message.endswith(
            f"first difference at pk {pk}). The target cannot store some values "
            "exactly."
        )
        assert snapshot() == self.before

    def test_a_mysql_date_that_is_no_date_goes_where_such_dates_are_stored(self):
        # A backup of MySQL keeps its zero dates as the server's text.
        pk = pks(AllFields)[0]
        zero = rewrite(
            self.good,
            self.tmp_path / "zero.jsonl",
            row=change_column("testapp.AllFields", pk, "day", "0000-00-00"),
        )
        if connection.vendor == "postgresql":
            self.assert_refused(
                zero,
                f"testapp.AllFields.day, pk {pk}: date/time field value out of range: "
                '"0000-00-00"',
            )
            return
        # SQLite keeps any text; MySQL keeps zero dates (the restore allows them).
        restore_backup(zero, safety_backup=False)
        assert validate_backup(zero).ok
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CAST(day AS CHAR) FROM testapp_allfields WHERE id = %s", [pk]
            )
            assert cursor.fetchone() == ("0000-00-00",)

    def test_a_postgresql_infinity_goes_where_such_dates_are_stored(self):
        # A backup of PostgreSQL keeps its infinities as its own text.
        pk = pks(AllFields)[0]
        endless = rewrite(
            self.good,
            self.tmp_path / "infinity.jsonl",
            row=change_column("testapp.AllFields", pk, "moment", "infinity"),
        )
        if connection.vendor != "postgresql":
            self.assert_refused(
                endless,
                f"testapp.AllFields.moment, pk {pk}: 'infinity' cannot be converted "
                "(ValueError: Invalid isoformat string: 'infinity')",
            )
            return
        restore_backup(endless, safety_backup=False)
        assert validate_backup(endless).ok
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT moment::text FROM testapp_allfields WHERE id = %s", [pk]
            )
            assert cursor.fetchone() == ("infinity",)

    def test_a_postgresql_interval_of_months_goes_where_such_intervals_are_stored(
        self,
    ):
        # A backup of PostgreSQL keeps an interval with months as its own text.
        pk = pks(AllFields)[0]
        months = rewrite(
            self.good,
            self.tmp_path / "months.jsonl",
            row=change_column("testapp.AllFields", pk, "duration", "1 mon"),
        )
        if connection.vendor != "postgresql":
            # Both keep durations as a count of microseconds.
            message = {
                "sqlite": f"testapp.AllFields.duration, pk {pk}: the database does "
                "not give back the value written (ValueError: invalid literal for "
                "int() with base 10: '1 mon')",
                "mysql": f'testapp.AllFields.duration, pk {pk}: (1265, "Data truncated for '
                "column 'duration' at row 1\")",
            }[connection.vendor]
            self.assert_refused(months, message)
            return
        restore_backup(months, safety_backup=False)
        assert validate_backup(months).ok
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT duration::text FROM testapp_allfields WHERE id = %s", [pk]
            )
            assert cursor.fetchone() == ("1 mon",)


class OutOfScopeForeignKeyTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_row_outside_the_scope_left_pointing_at_a_removed_row(self):
        populate_zoo()
        file = self.tmp_path / "no-books.jsonl.gz"
        create_backup(file, exclude=["testapp.Book"])
        newcomer = Author.objects.create(name="Newcomer")
        book = Book.objects.create(title="Orphan to be", author=newcomer)
        before = snapshot()
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, safety_backup=False)
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: testapp.Book.author_id, "
            f"pk {book.pk}: no testapp.Author row has id = {newcomer.pk} (foreign key)"
        )
        assert snapshot() == before


RAW_TABLE = "h_author_notes"


class RawTableForeignKeyTests(TransactionTestCase):
    """A table no model owns, whose foreign key points into a restored table.

    TransactionTestCase: CREATE TABLE commits on MariaDB, and on SQLite the restore
    then runs with foreign key enforcement off, as it does outside tests.
    """

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        deferrable = (
            " DEFERRABLE INITIALLY DEFERRED"
            if connection.vendor == "postgresql"
            else ""
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE {RAW_TABLE} (id INTEGER PRIMARY KEY, author_id INTEGER "
                f"REFERENCES testapp_author (id){deferrable})"
            )

    def tearDown(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {RAW_TABLE}")

    def test_its_rows_are_checked_too(self):
        Author.objects.create(name="Kept")
        file = self.tmp_path / "authors.jsonl.gz"
        create_backup(file)
        newcomer = Author.objects.create(name="Newcomer")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {RAW_TABLE} (id, author_id) VALUES (1, %s)", [newcomer.pk]
            )
        before = snapshot()
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, safety_backup=False)
        if connection.vendor == "postgresql":
            # PostgreSQL enforces it by itself, at the end of the load.
            detail = (
                'update or delete on table "testapp_author" violates foreign key '
                f'constraint "{RAW_TABLE}_author_id_fkey" on table "{RAW_TABLE}"; '
                f"DETAIL:  Key (id)=({newcomer.pk}) is still referenced from table "
                f'"{RAW_TABLE}".'
            )
        else:
            detail = (
                f"table '{RAW_TABLE}', column 'author_id': no testapp.Author row has "
                f"id = {newcomer.pk} (foreign key)"
            )
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: {detail}"
        )
        assert snapshot() == before
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, author_id FROM {RAW_TABLE}")
            assert list(cursor.fetchall()) == [(1, newcomer.pk)]
