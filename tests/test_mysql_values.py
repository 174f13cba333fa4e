"""MySQL's shortcuts around mysqlclient's Python code give the same values.

Reading: a backup streams dates, datetimes and decimals as the server's text
(``mysql._as_text``), where mysqlclient would parse them in Python, and a read-back
of a few rows (``fetch_rows``) does too. The text must give the file the values the
driver's objects gave, except for dates that are no dates (``0000-00-00``), which
the driver reads as None and the file keeps; and it must not leak into the
connection's other queries.

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
from django.db import DatabaseError, connection, transaction
from django.test import (
    SimpleTestCase,
    TestCase,
    TransactionTestCase,
    override_settings,
)
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase

from backups_app.backup import create_backup
from backups_app.db.backends import backend_for
from backups_app.db.backends.mysql import _literal_function, _statements
from backups_app.db.tables import table_specs
from backups_app.db.values import column_encoder
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import section_values
from tests.factories import mutate_zoo, populate_zoo
from tests.test_restore_safety import raw_contents
from tests.testapp.models import Book, Label
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

    @given(st.times())
    @example(dt.time(0, 0))
    @example(dt.time(23, 59, 59, 999999))
    def test_a_time6(self, moment):
        text = f"{moment:%H:%M:%S}.{moment.microsecond:06d}"
        assert encoder("clock")(text) == encoder("clock")(moment)

    def test_times_beyond_a_day_are_kept_as_the_servers_text(self):
        # Django's parse of a TIME (its converter for mysqlclient) refuses them.
        for text, kept in [
            ("100:00:00.000000", "100:00:00"),
            ("-01:00:00.000000", "-01:00:00"),
            ("838:59:59.500000", "838:59:59.500000"),
            ("24:00:00", "24:00:00"),
        ]:
            with self.subTest(text=text):
                assert encoder("clock")(text) == orjson.dumps(kept)
        assert encoder("clock")("18:00:00.125") == b'"18:00:00.125000"'

    def test_other_shapes_come_out_as_the_drivers_objects(self):
        for text in ["2026-11-30 18:00:00", "2026-11-30 18:00:00.125"]:
            with self.subTest(text=text):
                assert encoder("moment")(text) == as_objects("moment", text)
        assert encoder("moment")("2026-11-30 18:00:00.125") == (
            b'"2026-11-30T18:00:00.125000+00:00"'
        )

    def test_dates_that_are_no_dates_are_kept_as_the_servers_text(self):
        # mysqlclient makes None of each: the file held null.
        for name, text, kept in [
            ("moment", "0000-00-00 00:00:00.000000", "0000-00-00T00:00:00+00:00"),
            ("moment", "0000-00-00 00:00:00", "0000-00-00T00:00:00+00:00"),
            ("moment", "2026-02-31 12:00:00.000000", "2026-02-31T12:00:00+00:00"),
            ("moment", "2026-11-00 12:00:00.25", "2026-11-00T12:00:00.250000+00:00"),
            ("day", "0000-00-00", "0000-00-00"),
            ("day", "2026-02-31", "2026-02-31"),
            ("day", "2026-00-01", "2026-00-01"),
        ]:
            with self.subTest(text=text):
                assert as_objects(name, text) == b"null"
                assert encoder(name)(text) == orjson.dumps(kept)

    @override_settings(USE_TZ=False)
    def test_without_time_zones_a_kept_date_has_no_offset(self):
        assert encoder("moment")("0000-00-00 00:00:00.000000") == (
            b'"0000-00-00T00:00:00"'
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

    def test_the_reads_have_text_and_the_connection_keeps_its_objects(self):
        text = ["2026-11-30", "2026-11-30 18:00:00.000000", "12.50000"]
        (batch,) = list(self.backend.stream_rows(self.spec, 100))
        assert self.values(batch[0]) == text
        (row,) = self.backend.fetch_rows(self.spec, "", [])
        assert self.values(row) == text
        assert Value.objects.values_list("day", "moment", "decimal").get() == (
            dt.date(2026, 11, 30),
            dt.datetime(2026, 11, 30, 18, 0, tzinfo=dt.UTC),
            Decimal("12.50000"),
        )

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


class PipelinedInsertTests(TestCase):
    """A restore's INSERTs are sent one ahead: the next rows are read and made into
    a statement while the server runs the one before (``mysql._pipelined``)."""

    databases = {"default"}

    def setUp(self):
        self.backend = backend_for("default")
        self.spec = next(s for s in table_specs("default") if s.model is Label)
        self.events: list[str] = []
        driver = type(raw_connection())
        send, read = driver.send_query, driver.read_query_result

        def sent(raw, statement):
            self.events.append("send")
            return send(raw, statement)

        def read_back(raw):
            self.events.append("read")
            return read(raw)

        self.patches = [
            mock.patch.object(driver, "send_query", sent),
            mock.patch.object(driver, "read_query_result", read_back),
            # A statement per row.
            mock.patch.object(type(self.backend), "_statement_limit", return_value=1),
        ]
        for patch in self.patches:
            patch.start()
            self.addCleanup(patch.stop)

    def batches(self, *names: str, then: BaseException | None = None):
        for number, name in enumerate(names, start=1):
            self.events.append(f"rows {name}")
            yield [(number, name)]
        if then is not None:
            raise then

    def labels(self) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT id, name FROM testapp_label ORDER BY id")
            return list(cursor.fetchall())

    def test_the_next_rows_are_read_before_the_result_of_the_last_statement(self):
        written = self.backend.insert_rows(self.spec, self.batches("a", "b", "c"))
        assert written == 3
        assert self.events == [
            "rows a", "send",
            "rows b", "read", "send",
            "rows c", "read", "send",
            "read",
        ]  # fmt: skip
        assert self.labels() == [(1, "a"), (2, "b"), (3, "c")]

    def test_a_refused_statement_is_raised_when_its_result_is_read(self):
        with pytest.raises(DatabaseError) as excinfo, transaction.atomic():
            self.backend.insert_rows(self.spec, self.batches("a", "a", "b"))
        assert excinfo.value.args[0] == 1062  # ER_DUP_ENTRY, of the second row
        assert self.events == [
            "rows a", "send",
            "rows a", "read", "send",
            "rows b", "read",
        ]  # fmt: skip
        assert self.labels() == []

    def test_a_failure_while_a_statement_runs_reads_its_result_before_rollback(self):
        with pytest.raises(KeyboardInterrupt), transaction.atomic():
            self.backend.insert_rows(
                self.spec, self.batches("a", "b", then=KeyboardInterrupt())
            )
        # The second statement's result was read: the savepoint rolled back, and
        # the connection is in step for what comes next.
        assert self.events[-2:] == ["send", "read"]
        assert self.labels() == []
        Label.objects.create(name="after")
        assert [name for _, name in self.labels()] == ["after"]


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


def session_sql_mode() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        return cursor.fetchone()[0]


def set_session_sql_mode(mode: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET SESSION sql_mode = %s", [mode])


def stored_dates() -> list[tuple]:
    """Each Value row's day and moment as the server's text."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, CAST(day AS CHAR), CAST(moment AS CHAR) "
            f"FROM {Value._meta.db_table} ORDER BY id"
        )
        return list(cursor.fetchall())


class DatesThatAreNoDatesTests(TestCase):
    """MySQL stores dates that are no dates where the session's sql_mode lets it:
    the zero date, a zero month or day, the 31st of February (ALLOW_INVALID_DATES).
    A backup keeps them; a restore puts them back, whatever the restoring session's
    modes say, and does not take them for NULL."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        self.addCleanup(set_session_sql_mode, session_sql_mode())
        set_session_sql_mode("ALLOW_INVALID_DATES")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Value._meta.db_table} (id, day, moment) VALUES "
                "(1, '0000-00-00', '0000-00-00 00:00:00'), "
                "(2, '2026-02-31', '2026-11-00 12:00:00.25'), "
                "(3, '2026-11-30', '2026-11-30 18:00:00'), "
                "(4, NULL, NULL)"
            )
        # Enough rows that two changed ones are written row by row.
        Value.objects.bulk_create(Value(integer=n) for n in range(100))
        self.stored = stored_dates()
        assert self.stored[:2] == [
            (1, "0000-00-00", "0000-00-00 00:00:00.000000"),
            (2, "2026-02-31", "2026-11-00 12:00:00.250000"),
        ]
        self.file = self.tmp_path / "dates.jsonl.gz"
        create_backup(self.file)
        # The modes of a careful server: these dates are refused from here on.
        set_session_sql_mode("STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE")

    def file_rows(self) -> list[list]:
        return section_values(self.file, "valuesapp.Value", ["id", "day", "moment"])

    def damage(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Value._meta.db_table} SET day = NULL, "
                "moment = '2000-01-01 00:00:00' WHERE id IN (1, 2)"
            )

    def test_the_file_holds_the_servers_text(self):
        rows = self.file_rows()
        assert [row[1:] for row in rows[4:]] == [[None, None]] * 100
        assert rows[:4] == [
            [1, "0000-00-00", "0000-00-00T00:00:00+00:00"],
            [2, "2026-02-31", "2026-11-00T12:00:00.250000+00:00"],
            [3, "2026-11-30", "2026-11-30T18:00:00+00:00"],
            [4, None, None],
        ]

    def test_a_full_restore_puts_them_back_and_leaves_the_sessions_modes(self):
        self.damage()
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_dates() == self.stored
        assert session_sql_mode() == "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE"

    def test_a_restore_row_by_row_puts_them_back(self):
        self.damage()
        summary = restore_backup(self.file, safety_backup=False)
        assert summary.rows_updated == 2
        assert stored_dates() == self.stored

    def test_validation_tells_a_zero_date_from_null(self):
        assert validate_backup(self.file).ok
        set_session_sql_mode("ALLOW_INVALID_DATES")
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Value._meta.db_table} SET day = NULL WHERE id = 1")
        report = validate_backup(self.file)
        assert not report.ok
        (table,) = [t for t in report.tables if not t.matches]
        assert (table.label, table.changed) == ("valuesapp.Value", 1)


class TimestampColumnTests(TransactionTestCase):
    """A DateTimeField over a TIMESTAMP column, as legacy schemas have them (often
    with a zero default): read as text too, so its zero value is kept."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        self.alter("TIMESTAMP(6) NULL DEFAULT NULL")
        self.addCleanup(self.alter, "DATETIME(6) NULL")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Value._meta.db_table} (id, moment) VALUES "
                "(1, '0000-00-00 00:00:00'), (2, '2026-11-30 18:00:00.25')"
            )
        Value.objects.bulk_create(Value(id=n, integer=n) for n in range(3, 103))
        self.stored = stored_dates()
        self.file = self.tmp_path / "timestamps.jsonl.gz"
        create_backup(self.file)

    def alter(self, column_type: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"ALTER TABLE {Value._meta.db_table} MODIFY moment {column_type}"
            )

    def test_a_zero_timestamp_is_backed_up_and_restored(self):
        assert self.stored[:2] == [
            (1, None, "0000-00-00 00:00:00.000000"),
            (2, None, "2026-11-30 18:00:00.250000"),
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Value._meta.db_table} SET moment = NULL WHERE id IN (1, 2)"
            )
        restore_backup(self.file, safety_backup=False)
        assert stored_dates() == self.stored
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Value._meta.db_table} WHERE id > 2")
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_dates() == self.stored
        assert validate_backup(self.file).ok

    def instants(self) -> list[tuple]:
        """Each row's moment as MySQL keeps a TIMESTAMP: seconds since the epoch,
        whatever the session's time zone."""
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, UNIX_TIMESTAMP(moment) FROM {Value._meta.db_table} "
                "ORDER BY id"
            )
            return list(cursor.fetchall())

    def set_time_zone(self, zone: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.time_zone")
            (before,) = cursor.fetchone()
            cursor.execute("SET time_zone = %s", [zone])
        self.addCleanup(self.restore_time_zone, before)

    def restore_time_zone(self, zone: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET time_zone = %s", [zone])

    def test_a_session_in_another_time_zone_restores_the_same_instants(self):
        # The backup of setUp ran in the server's zone; a restore, a validation
        # and a backup in another one keep, find and write the same instants.
        instants = self.instants()
        self.set_time_zone("+05:00")
        assert validate_backup(self.file).ok
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Value._meta.db_table} SET moment = NULL WHERE id = 2"
            )
        restore_backup(self.file, safety_backup=False)
        assert self.instants() == instants
        restore_backup(self.file, safety_backup=False, full=True)
        assert self.instants() == instants
        # The session's own zone, once each is over.
        with connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.time_zone")
            assert cursor.fetchone() == ("+05:00",)
        again = self.tmp_path / "in-another-zone.jsonl.gz"
        create_backup(again)
        self.restore_time_zone("-03:00")
        restore_backup(again, safety_backup=False, full=True)
        assert self.instants() == instants
        assert validate_backup(again).ok


class TimesBeyondADayTests(TestCase):
    """A TIME column holds spans of up to 838 hours either way (legacy schemas map
    it to a TimeField): Django's parse of such a value raised ValueError, which
    stopped a backup with a traceback."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {Value._meta.db_table} (id, clock) VALUES "
                "(1, '100:00:00'), (2, '-01:00:00.25'), (3, '18:00:00')"
            )
        Value.objects.bulk_create(Value(id=n, integer=n) for n in range(4, 104))
        self.stored = stored_times()
        self.file = self.tmp_path / "times.jsonl.gz"
        create_backup(self.file)

    def test_they_are_backed_up_and_restored(self):
        assert self.stored[:3] == [
            (1, "100:00:00.000000"),
            (2, "-01:00:00.250000"),
            (3, "18:00:00.000000"),
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Value._meta.db_table} SET clock = '01:00:00' WHERE id < 3"
            )
        restore_backup(self.file, safety_backup=False)
        assert stored_times() == self.stored
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {Value._meta.db_table} WHERE id > 1")
        restore_backup(self.file, safety_backup=False, full=True)
        assert stored_times() == self.stored
        assert validate_backup(self.file).ok


def stored_times() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, CAST(clock AS CHAR) FROM {Value._meta.db_table} ORDER BY id"
        )
        return list(cursor.fetchall())


class RefusedColumnTests(TestCase):
    """The column the server names when it refuses a value, in each of its forms."""

    def refused(self, sql: str) -> str | None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    sql.format(
                        table=connection.ops.quote_name(Value._meta.db_table),
                        books=connection.ops.quote_name(Book._meta.db_table),
                    )
                )
        except DatabaseError as exc:
            return backend_for("default").failed_column(exc)
        raise AssertionError("the server took the value")

    def test_out_of_range(self):  # "for column 'integer'"
        sql = "INSERT INTO {table} (id, `integer`) VALUES (1, 99999999999999)"
        assert self.refused(sql) == "integer"

    def test_wrong_type(self):  # "for column `db`.`table`.`integer`"
        sql = "INSERT INTO {table} (id, `integer`) VALUES (1, 'many')"
        assert self.refused(sql) == "integer"

    def test_null(self):  # "Column 'title' cannot be null"
        sql = "INSERT INTO {books} (title, author_id) VALUES (NULL, NULL)"
        assert self.refused(sql) == "title"
