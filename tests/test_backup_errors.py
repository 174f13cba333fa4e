"""Which tables a backup covers on this database, and backups that cannot be taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.test import TestCase, TransactionTestCase

from backups_app.backup import create_backup
from backups_app.db.tables import table_specs
from backups_app.exceptions import BackupError
from backups_app.fileformat.reader import BackupReader
from tests.gatedapp.models import EmptyStringsAreNull, OracleOnly
from tests.testapp.models import AllFields, Secretive
from tests.utils import run_command

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class TablesDjangoDoesNotCreateTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_models_migrate_skips_here_are_left_out_with_their_m2m_tables(self):
        # What migrate decided: the tables are not there.
        with connection.cursor() as cursor:
            tables = set(connection.introspection.table_names(cursor))
        gated = {
            OracleOnly._meta.db_table,
            OracleOnly.others.through._meta.db_table,
            EmptyStringsAreNull._meta.db_table,
        }
        assert not gated & tables
        labels = {spec.label for spec in table_specs()}
        assert not {label for label in labels if label.startswith("gatedapp.")}

    def test_backup_succeeds_without_them(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        summary = create_backup(file)
        assert "gatedapp.OracleOnly" not in {t.label for t in summary.tables}


class MissingTableTests(TransactionTestCase):
    """A model whose table should exist but does not: one line naming the model."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        with connection.schema_editor() as editor:
            editor.delete_model(Secretive)
        self.addCleanup(self.recreate)

    def recreate(self):
        with connection.schema_editor() as editor:
            editor.create_model(Secretive)

    def test_backup_names_the_model_and_its_table(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        with pytest.raises(BackupError) as excinfo:
            create_backup(file)
        assert str(excinfo.value) == (
            "testapp.Secretive: table 'testapp_secretive' does not exist in database "
            "'default'; run migrate, or exclude the model."
        )
        assert list(self.tmp_path.iterdir()) == []

    def test_restore_and_validate_name_the_model_too(self):
        file = self.tmp_path / "zoo.jsonl"
        self.recreate()
        create_backup(file)
        with connection.schema_editor() as editor:
            editor.delete_model(Secretive)
        message = (
            "testapp.Secretive: table 'testapp_secretive' does not exist in database "
            "'default'; run migrate, or exclude the model."
        )
        for command, code in (
            (["validatebackup", str(file)], 4),
            (["restore", str(file), "--noinput"], 3),
        ):
            with pytest.raises(CommandError) as excinfo:
                run_command(*command)
            assert (str(excinfo.value), excinfo.value.returncode) == (message, code)

    def test_excluding_the_model_makes_the_backup_work(self):
        summary = create_backup(
            self.tmp_path / "zoo.jsonl", exclude=["testapp.Secretive"]
        )
        assert "testapp.Secretive" not in {t.label for t in summary.tables}


@pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="PostgreSQL and MariaDB check decimal precision, dates, times and JSON "
    "on write, so such values cannot be stored there",
)
class UnreadableValueTests(TestCase):
    """A stored value Django cannot read: model, field and pk, and no file."""

    databases = {"default"}
    tmp_path: Path

    def store(self, column: str, value) -> int:
        AllFields.objects.create(char="a good row before the bad one")
        pk = AllFields.objects.create().pk
        AllFields.objects.create(char="and one after it")
        with connection.cursor() as cursor:
            # SQLite keeps what it is given; the JSON column's CHECK is skipped too.
            cursor.execute("PRAGMA ignore_check_constraints = 1")
            try:
                cursor.execute(
                    f"UPDATE testapp_allfields SET {column} = %s WHERE id = %s",
                    [value, pk],
                )
            finally:
                cursor.execute("PRAGMA ignore_check_constraints = 0")
        return pk

    def backup_error(self) -> tuple[str, int]:
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "--output", str(self.tmp_path / "zoo.jsonl.gz"))
        assert list(self.tmp_path.iterdir()) == []
        return str(excinfo.value), excinfo.value.returncode

    def test_decimal_beyond_max_digits(self):
        pk = self.store("decimal_money", 123456789012.5)
        assert self.backup_error() == (
            f"testapp.AllFields.decimal_money, pk {pk}: the stored value "
            "123456789012.5 does not fit the field (max_digits 10, decimal_places 2)",
            1,
        )

    def test_date_text_that_is_no_date(self):
        pk = self.store("day", "yesterday")
        assert self.backup_error() == (
            f"testapp.AllFields.day, pk {pk}: the stored value 'yesterday' is not a "
            "valid date",
            1,
        )

    def test_datetime_text_that_is_no_datetime(self):
        pk = self.store("moment", "soon")
        assert self.backup_error() == (
            f"testapp.AllFields.moment, pk {pk}: the stored value 'soon' is not a "
            "valid datetime",
            1,
        )

    def test_json_text_that_is_no_json_is_kept_as_stored(self):
        # Format version 2 carries a JSON column's text as the database keeps it,
        # without parsing it: what SQLite holds is what the backup holds.
        text = '{"price": 12.5'
        pk = self.store("json", text)
        file = self.tmp_path / "zoo.jsonl"
        run_command("backup", "--output", str(file))
        with open(file, "rb") as stream:
            reader = BackupReader(stream, str(file))
            for section in reader.tables():
                rows = [
                    row for block in section.blocks() for row in section.parse(block)
                ]
                if section.label == "testapp.AllFields":
                    position = section.columns.index("json")
                    stored = {row[0]: row[position] for row in rows}
        assert stored[pk] == text

    def test_long_values_are_shortened(self):
        value = "y" * 200
        pk = self.store("day", value)
        shown = repr(value)[:57] + "..."
        assert self.backup_error() == (
            f"testapp.AllFields.day, pk {pk}: the stored value {shown} is not a "
            "valid date",
            1,
        )

    def test_validatebackup_names_the_value_and_could_not_run(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        pk = self.store("decimal_money", 123456789012.5)
        with pytest.raises(CommandError) as excinfo:
            run_command("validatebackup", str(file))
        assert (str(excinfo.value), excinfo.value.returncode) == (
            f"testapp.AllFields.decimal_money, pk {pk}: the stored value "
            "123456789012.5 does not fit the field (max_digits 10, decimal_places 2)",
            4,
        )


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="only PostgreSQL stores intervals longer than Python's timedelta",
)
class UnfetchableValueTests(TransactionTestCase):
    """A value the driver itself cannot read: found again by key pages."""

    databases = {"default"}
    tmp_path: Path

    def test_backup_names_model_field_and_pk_of_an_interval_too_long(self):
        # (Infinite dates, which psycopg cannot load either, are kept as text:
        # tests/test_postgres_dates.py. One in an earlier row does not hide this.)
        AllFields.objects.bulk_create(AllFields() for _ in range(1200))
        pks = AllFields.objects.order_by("pk").values_list("pk", flat=True)
        pk = pks[700]
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE testapp_allfields SET moment = '-infinity' WHERE id = %s",
                [pks[300]],
            )
            cursor.execute(
                "UPDATE testapp_allfields SET duration = '1000000000 days' "
                "WHERE id = %s",
                [pk],
            )
        with pytest.raises(CommandError) as excinfo:
            run_command("backup", "--output", str(self.tmp_path / "zoo.jsonl.gz"))
        assert (str(excinfo.value), excinfo.value.returncode) == (
            f"Cannot read database 'default': testapp.AllFields.duration, pk {pk}: "
            "can't parse interval '1000000000 days': days=1000000000; must have "
            "magnitude <= 999999999",
            1,
        )
        assert list(self.tmp_path.iterdir()) == []
