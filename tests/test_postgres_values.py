"""PostgreSQL's values that Python's datetime and timedelta cannot hold.

``infinity``, ``-infinity``, dates before year 1 (BC) and after 9999 are valid
values of PostgreSQL's date, timestamp and timestamptz; psycopg refuses to load
them. A read that meets one reads the rest of the table with such values as
PostgreSQL's text (``postgresql._text_when_out_of_range``), which the file keeps
and a restore gives back to PostgreSQL as it was.

An interval with months or years (``1 year 2 mons``) has no timedelta: psycopg
counts a month as 30 days, so it came back as another interval. It is read as
PostgreSQL's text (``postgresql._calendar_as_text``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import section_values
from tests.valuesapp.models import Value

if settings.POSTGRES_FIELDS:
    from tests.postgresapp.models import PostgresValue

pytestmark = [
    pytest.mark.usefixtures("tmp_path_on_test_case"),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="PostgreSQL's own values"
    ),
]

TABLE = Value._meta.db_table
# (day, moment) as PostgreSQL writes them in a UTC session.
UNBOUNDED = [
    ("infinity", "infinity"),
    ("-infinity", "-infinity"),
    ("0044-03-15 BC", "0044-03-15 12:00:00+00 BC"),
    ("10000-01-01", "10000-01-01 10:00:00.5+00"),
]


def stored() -> list[tuple]:
    """Each Value row's day and moment as PostgreSQL's text."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, day::text, moment::text FROM {TABLE} ORDER BY id")
        return list(cursor.fetchall())


class UnboundedDatesTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        # Rows before and after them: the read goes on from where it met one.
        Value.objects.bulk_create(Value(integer=n) for n in range(50))
        with connection.cursor() as cursor:
            for day, moment in UNBOUNDED:
                cursor.execute(
                    f"INSERT INTO {TABLE} (day, moment) VALUES (%s::date, %s::timestamptz)",
                    [day, moment],
                )
        Value.objects.bulk_create(Value(integer=n) for n in range(50, 100))
        self.stored = stored()
        self.file = self.tmp_path / "dates.jsonl.gz"
        create_backup(self.file)

    def file_rows(self) -> list[list]:
        return section_values(self.file, "valuesapp.Value", ["day", "moment"])

    def damage(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET day = '2000-01-01', moment = now() "
                "WHERE day IS NOT NULL"
            )

    def test_the_file_holds_postgresqls_text(self):
        rows = self.file_rows()
        assert [row for row in rows if row != [None, None]] == [
            list(values) for values in UNBOUNDED
        ]
        assert len(rows) == 104

    def test_a_full_restore_puts_them_back(self):
        self.damage()
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored() == self.stored

    def test_a_restore_row_by_row_puts_them_back(self):
        self.damage()
        summary = restore_backup(self.file, safety_backup=False)
        assert summary.rows_updated == len(UNBOUNDED)
        assert stored() == self.stored

    def test_validation_sees_them_change(self):
        assert validate_backup(self.file).ok
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET moment = '294276-12-31 00:00:00+00' "
                "WHERE moment = 'infinity'"
            )
        report = validate_backup(self.file)
        (table,) = [t for t in report.tables if not t.matches]
        assert (table.label, table.changed) == ("valuesapp.Value", 1)


def stored_intervals() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, duration::text FROM {TABLE} ORDER BY id")
        return list(cursor.fetchall())


class CalendarIntervalsTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        Value.objects.bulk_create(
            Value(duration=dt.timedelta(days=n, microseconds=n)) for n in range(100)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {TABLE} (duration) VALUES ('1 mon'), "
                "('1 year 2 mons 3 days 04:05:06.5'), ('-1 mons +3 days')"
            )
        self.stored = stored_intervals()
        self.file = self.tmp_path / "intervals.jsonl.gz"
        create_backup(self.file)

    def test_they_are_kept_as_text_and_restored_as_they_were(self):
        assert [d for _, d in self.stored[-3:]] == [
            "1 mon",
            "1 year 2 mons 3 days 04:05:06.5",
            "-1 mons +3 days",
        ]
        with connection.cursor() as cursor:
            # Equal by PostgreSQL's comparison, but another value.
            cursor.execute(
                f"UPDATE {TABLE} SET duration = '30 days' WHERE duration = '1 mon'"
            )
        report = validate_backup(self.file)
        (table,) = [t for t in report.tables if not t.matches]
        assert (table.label, table.changed) == ("valuesapp.Value", 1)
        restore_backup(self.file, safety_backup=False)
        assert stored_intervals() == self.stored
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_intervals() == self.stored
        assert validate_backup(self.file).ok

    @override_settings(BACKUPS={"POSTGRES_COPY": False})
    def test_without_copy_too(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE}")
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_intervals() == self.stored


def stored_postgres_values() -> list[tuple]:
    """Every column of PostgresValue as PostgreSQL's text."""
    columns = ", ".join(
        f"{f.column}::text" for f in PostgresValue._meta.local_concrete_fields
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns} FROM {PostgresValue._meta.db_table} ORDER BY id"
        )
        return list(cursor.fetchall())


@pytest.mark.skipif(
    not settings.POSTGRES_FIELDS, reason="tests.postgresapp is installed on its own"
)
class ContribPostgresFieldsTests(TestCase):
    """Every field of django.contrib.postgres, with the values that are hard to
    keep: empty and nested arrays with NULLs, hstore NULL values, empty and
    unbounded ranges of each bound kind, a weighted search vector."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {PostgresValue._meta.db_table} (tags, matrix, moments, "
                "attributes, integers, big_integers, decimals, datetimes, dates, "
                "search) VALUES "
                "('{a,\"b c\",\"\",NULL}', '{{1,NULL},{3,4}}', "
                '\'{2026-11-30 18:00:00+00}\', \'a=>1, "b c"=>NULL, ""=>""\', '
                "'[1,5)', '(,9223372036854775807)', '(1.5,2.25]', "
                "'[2026-01-01 00:00+00,infinity)', 'empty', "
                "setweight(to_tsvector('english', 'the quick brown foxes'), 'A')), "
                "('{}', '{}', '{}', '', '(,)', 'empty', '[0,0]', "
                "'(,2026-01-01 00:00+00]', '[2026-01-01,2026-02-01)', ''), "
                "(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
            )
        PostgresValue.objects.bulk_create(
            PostgresValue(tags=[str(n)], integers=(n, n + 1)) for n in range(100)
        )
        self.stored = stored_postgres_values()
        self.file = self.tmp_path / "contrib.jsonl.gz"
        create_backup(self.file)

    def test_a_full_restore_gives_them_back_as_stored(self):
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {PostgresValue._meta.db_table}")
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_postgres_values() == self.stored
        assert validate_backup(self.file).ok

    def test_a_restore_row_by_row_gives_them_back_as_stored(self):
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {PostgresValue._meta.db_table} SET tags = '{{x}}', "
                "attributes = 'z=>1', integers = '[7,8)', search = 'z' "
                f"WHERE id IN (SELECT id FROM {PostgresValue._meta.db_table} "
                "ORDER BY id LIMIT 3)"
            )
        assert not validate_backup(self.file).ok
        summary = restore_backup(self.file, safety_backup=False)
        assert summary.rows_updated == 3
        assert stored_postgres_values() == self.stored
