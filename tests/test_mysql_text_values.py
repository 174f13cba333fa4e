"""MySQL streams dates, datetimes and decimals as the server's text, encoded directly.

A backup reads them as text (``mysql._as_text``), where mysqlclient would parse them
in Python; a read-back of a few rows (``fetch_rows``) still gets the driver's
objects. Both must give the file the same values, and the text must not leak into
the connection's other queries.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest
from django.db import connection
from django.test import TestCase
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.db.backends import backend_for
from backups_app.db.tables import table_specs
from backups_app.db.values import column_encoder
from tests.valuesapp.models import Value

pytestmark = pytest.mark.skipif(
    connection.vendor != "mysql", reason="the text values are MySQL's"
)


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
