"""MySQL's shortcuts around mysqlclient's Python code give the same values.

Reading: a backup streams dates, datetimes and decimals as the server's text
(``mysql._as_text``), where mysqlclient would parse them in Python; a read-back of a
few rows (``fetch_rows``) still gets the driver's objects. Both must give the file
the same values, and the text must not leak into the connection's other queries.

Stopping early: a merge that may stop after its first rows reads them with a query
of their own (``stream_rows(first=...)``), and the rest with a second.

Writing: a restore makes the SQL literals of its INSERTs itself
(``mysql._literal_function``), which must be mysqlclient's, in statements of many
rows (``mysql._statements``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from unittest import mock

import orjson
import pytest
from django.db import connection
from django.test import SimpleTestCase, TestCase, override_settings
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.db.backends import backend_for
from backups_app.db.backends.mysql import _literal_function, _statements
from backups_app.db.tables import table_specs
from backups_app.db.values import column_encoder
from backups_app.restore import restore_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.test_restore_safety import raw_contents
from tests.valuesapp.models import Value

pytestmark = [
    pytest.mark.usefixtures("tmp_path_on_test_case"),
    pytest.mark.skipif(
        connection.vendor != "mysql", reason="the shortcuts are MySQL's"
    ),
]


def encoder(name: str):
    field = Value._meta.get_field(name)
    encode = column_encoder(field, Value._meta.db_table, connection)
    assert encode is not None
    return lambda value: orjson.dumps(encode(value))


def parsed_by_the_driver(kind: str, text: str):
    from MySQLdb.times import Date_or_None, DateTime_or_None

    return (Date_or_None if kind == "day" else DateTime_or_None)(text)


def as_objects(name: str, text: str) -> bytes:
    """What the file held when mysqlclient made objects of the text."""
    value = parsed_by_the_driver(name, text)
    return b"null" if value is None else encoder(name)(value)


class TextAndObjectsAgreeTests(HypothesisTestCase):
    @given(st.datetimes(min_value=dt.datetime(1000, 1, 1)))
    @example(dt.datetime(2026, 11, 30, 18, 0, 0))  # a zero fraction
    @example(dt.datetime(9999, 12, 31, 23, 59, 59, 999999))
    def test_a_datetime6(self, moment):
        text = f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}"
        assert encoder("moment")(text) == as_objects("moment", text)

    @given(st.dates(min_value=dt.date(1000, 1, 1)))
    def test_a_date(self, day):
        text = day.isoformat()
        assert encoder("day")(text) == as_objects("day", text)

    def test_other_shapes_and_impossible_dates_come_out_as_the_drivers_objects(self):
        for name, text in [
            ("moment", "2026-11-30 18:00:00"),  # datetime(0)
            ("moment", "2026-11-30 18:00:00.125"),  # datetime(3)
            ("moment", "0000-00-00 00:00:00.000000"),  # a zero date
            ("moment", "2026-02-31 12:00:00.000000"),  # ALLOW_INVALID_DATES
            ("moment", "2026-11-00 12:00:00.000000"),  # a zero in a date
            ("day", "0000-00-00"),
            ("day", "2026-02-31"),
        ]:
            with self.subTest(text=text):
                assert encoder(name)(text) == as_objects(name, text)
        assert encoder("moment")("2026-11-30 18:00:00.125") == (
            b'"2026-11-30T18:00:00.125000+00:00"'
        )


class NaiveDatetimesTests(SimpleTestCase):
    @override_settings(USE_TZ=False)
    def test_without_time_zones_text_and_objects_agree_too(self):
        for text in ["2026-11-30 18:00:00.000000", "2026-11-30 18:00:00.250000"]:
            with self.subTest(text=text):
                assert encoder("moment")(text) == as_objects("moment", text)
        assert encoder("moment")("2026-11-30 18:00:00.000000") == (
            b'"2026-11-30T18:00:00"'
        )


class StreamedAsTextTests(TestCase):
    databases = {"default"}

    def setUp(self):
        self.row = Value.objects.create(
            day=dt.date(2026, 11, 30),
            moment=dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC),
            decimal=Decimal("12.50000"),
        )
        (self.spec,) = [s for s in table_specs("default") if s.model is Value]
        self.backend = backend_for("default")
        self.columns = list(self.spec.columns)

    def values(self, row):
        return [row[self.columns.index(c)] for c in ("day", "moment", "decimal")]

    def test_the_stream_has_text_and_the_connection_keeps_its_objects(self):
        (batch,) = list(self.backend.stream_rows(self.spec, 100))
        assert self.values(batch[0]) == [
            "2026-11-30",
            "2026-11-30 18:00:00.000000",
            "12.50000",
        ]
        (row,) = self.backend.fetch_rows(self.spec, "", [])
        assert self.values(row) == [
            dt.date(2026, 11, 30),
            dt.datetime(2026, 11, 30, 18, 0),
            Decimal("12.50000"),
        ]

    def test_a_stream_left_early_gives_the_objects_back_too(self):
        Value.objects.create(day=dt.date(2026, 1, 1))
        stream = self.backend.stream_rows(self.spec, 1)
        next(stream)
        stream.close()
        assert Value.objects.values_list("day", flat=True).first() == dt.date(
            2026, 11, 30
        )


def raw_connection():
    connection.ensure_connection()
    return connection.connection


class LiteralTests(HypothesisTestCase):
    @given(
        st.one_of(
            st.text(),
            st.integers(),
            st.none(),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
            st.decimals(allow_nan=False, allow_infinity=False),
            st.binary(),
        )
    )
    @example("it's a \\ back\\slash, a \x00 and a \u2603")
    @example(2**70)
    def test_a_value_gets_mysqlclients_own_literal(self, value):
        raw = raw_connection()
        assert _literal_function(raw)(value) == raw.literal(value)


class StatementTests(TestCase):
    databases = {"default"}

    def test_rows_are_cut_into_statements_that_fit(self):
        literal = _literal_function(raw_connection())
        rows = [(n, "x" * n) for n in range(50)]
        statements = list(_statements(b"INSERT INTO t VALUES ", rows, literal, 200))
        assert len(statements) > 5
        for statement in statements:
            assert statement.startswith(b"INSERT INTO t VALUES (")
            assert len(statement) <= 200 or statement.count(b"),(") == 0
        joined = b",".join(s.removeprefix(b"INSERT INTO t VALUES ") for s in statements)
        assert joined == b",".join(b"(%d,'%s')" % (n, b"x" * n) for n in range(50))


class SmallStatementsRestoreTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_restore_in_statements_of_a_row_or_two_is_exact(self):
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        before = raw_contents()
        mutate_zoo()
        backend = type(backend_for("default"))
        with mock.patch.object(backend, "_statement_limit", return_value=60):
            restore_backup(file, safety_backup=False, full=True)
        assert raw_contents() == before


class FirstRowsTests(TestCase):
    databases = {"default"}

    def setUp(self):
        Value.objects.bulk_create(Value(integer=n) for n in range(25))
        (self.spec,) = [s for s in table_specs("default") if s.model is Value]
        self.backend = backend_for("default")

    def rows(self, **options):
        batches = list(self.backend.stream_rows(self.spec, 3, **options))
        assert all(1 <= len(batch) <= 3 for batch in batches)
        return [row for batch in batches for row in batch]

    def test_the_rows_are_the_same_wherever_the_first_query_stops(self):
        every = self.rows()
        assert len(every) == 25
        for first in (1, 3, 5, 24, 25, 30):
            with self.subTest(first=first):
                assert self.rows(first=first) == every

    def test_a_merge_stopped_after_the_first_rows_leaves_the_connection_usable(self):
        stream = self.backend.stream_rows(self.spec, 5, first=5)
        assert len(next(stream)) == 5
        stream.close()
        assert Value.objects.count() == 25
