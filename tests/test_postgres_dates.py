"""PostgreSQL's dates and timestamps that Python's datetime cannot hold.

``infinity``, ``-infinity``, dates before year 1 (BC) and after 9999 are valid
values of PostgreSQL's date, timestamp and timestamptz; psycopg refuses to load
them. A read that meets one reads the rest of the table with such values as
PostgreSQL's text (``postgresql._text_when_out_of_range``), which the file keeps
and a restore gives back to PostgreSQL as it was.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from django.db import connection
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.fileformat.reader import BackupReader
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.valuesapp.models import Value

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
        rows = []
        with gzip.open(self.file) as stream:
            for section in BackupReader(stream, str(self.file)).tables():
                if section.label != "valuesapp.Value":
                    section.skip()
                    continue
                where = [section.columns.index(c) for c in ("day", "moment")]
                for batch in section.batches(100):
                    rows += [
                        [row[i] for i in where] for row in map(orjson.loads, batch)
                    ]
        return rows

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
