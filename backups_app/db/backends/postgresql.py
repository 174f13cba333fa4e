"""PostgreSQL: COPY, advisory locks, sequences and server-side cursors."""

from __future__ import annotations

import datetime
import logging
import re
import zlib
from collections.abc import Callable, Generator, Iterable
from typing import Any

from django.db import DatabaseError, models, transaction
from django.db.models import Field

from ...exceptions import OperationInProgressError
from ...fileformat.codec import TEXT_KINDS, kind
from ..integrity import ForeignKey
from ..prefetch import prefetched
from ..tables import TableSpec, column_of
from .base import (
    LOCK_NAME,
    Backend,
    SequenceSettlement,
    deadlock_error,
    writer_error,
)

logger = logging.getLogger("backups_app")

COPY_CONTEXT = re.compile(
    r"COPY [^,]+, line (?P<line>\d+)(?:, column (?P<column>[^:]+))?"
)


def _psycopg_tz_loader() -> Any:
    import psycopg
    from psycopg.pq import Format

    return psycopg.adapters.get_loader(
        psycopg.postgres.types["timestamptz"].oid, Format.TEXT
    )


# The rows of an update_rows, in the session's own schema of temporary tables.
UPDATES_TABLE = "pg_temp.backups_app_updates"
INSUFFICIENT_PRIVILEGE = "42501"

# The types with values Python's datetime cannot hold: the infinities, dates before
# year 1 (BC) and after 9999, and the end of a day, 24:00:00.
UNBOUNDED_TEMPORAL_TYPES = ("date", "timestamp", "timestamptz", "time", "timetz")


def _composed_loader(
    base: type, load: Callable[[Callable[[Any], Any], Any], Any]
) -> type:
    """A psycopg loader whose ``load`` is ``load(base_load, data)``, around the
    loader class ``base`` (psycopg's C loaders cannot be subclassed)."""
    from psycopg.adapt import Loader

    class Composed(Loader):
        def __init__(self, oid: int, context: Any = None):
            super().__init__(oid, context)
            self._base = base(oid, context).load

        def load(self, data: Any) -> Any:
            return load(self._base, data)

    return Composed


def _text_when_out_of_range(base_load: Callable[[Any], Any], data: Any) -> Any:
    """The base loader's value, or PostgreSQL's own text of a value that Python's
    datetime cannot hold (``infinity``, ``0044-03-15 BC``, ``10000-01-01``, the
    time ``24:00:00``): the file keeps that text, and PostgreSQL reads it back as
    the same value."""
    from psycopg import DataError

    try:
        return base_load(data)
    except DataError:
        return bytes(data).decode()


def _calendar_as_text(base_load: Callable[[Any], Any], data: Any) -> Any:
    """The base loader's timedelta of an interval of days and time, and
    PostgreSQL's own text of one with months or years (``1 year 2 mons``), which
    no timedelta holds: psycopg counts a month as 30 days and a year as 360, so
    it would come back as another interval."""
    text = bytes(data)
    if b"mon" in text or b"year" in text:
        return text.decode()
    return base_load(text)


def _out_of_range(error: BaseException) -> bool:
    """Whether ``error`` (Django's) is a loader's refusal of a value Python cannot
    hold: psycopg's DataError raised on the client, which has no SQLSTATE. An
    error of the server's aborts the transaction and is never read past."""
    from psycopg import DataError

    cause = error.__cause__
    return isinstance(cause, DataError) and cause.sqlstate is None


class PostgreSQLBackend(Backend):
    def __init__(self, using: str):
        super().__init__(using)
        self._other_types: dict[str, frozenset[str]] = {}

    def binary_order(self, column: str) -> str:
        return f'{column} COLLATE "C"'

    def select_column(self, field: Field[Any, Any]) -> str:
        from django.contrib.postgres.fields import RangeField

        column = super().select_column(field)
        if isinstance(field, RangeField) or self._text_of_other_type(field):
            # psycopg's Range objects are no JSON; PostgreSQL's text of a range
            # ("[1,5)", "empty", "(,2026-01-01 00:00:00+00]") reads back as it, as
            # does the text of any type a text field is put over.
            return f"{column}::text"
        return column

    def order_column(self, field: Field[Any, Any]) -> str:
        if kind(field) == "GenericIPAddressField":
            # inet sorts by family and bits ("9.0.0.1" before "10.0.0.1"); the file
            # holds its text, which host() gives for Django's host addresses.
            return self.binary_order(f"host({self.quote(column_of(field))})")
        if self._text_of_other_type(field):
            # Types without collations (macaddr, an enum) sort by their text.
            return self.binary_order(f"{self.quote(column_of(field))}::text")
        return super().order_column(field)

    def _text_of_other_type(self, field: Field[Any, Any]) -> bool:
        """Whether a text field's column is of another type than PostgreSQL's
        string types: a type Django has no field for, which ``inspectdb`` guesses
        a TextField for (money, macaddr, xml, bit, interval, arrays, an enum, ...),
        or a custom field's ``db_type()``.

        Such a column is read as its text (``::text``), which COPY and INSERT turn
        back into the same value. psycopg's reading is not that: lists of arrays,
        timedeltas of intervals, numbers of oid, and xml's output leaves out the
        value's declaration of version 1.0. Columns of the string types (a domain
        over one too) are read as they are: char(n)'s cast to text drops its
        padding. One catalog query per table, the first time.
        """
        if kind(field) not in TEXT_KINDS:
            return False
        table = field.model._meta.db_table
        if table not in self._other_types:
            with self.connection.cursor() as cursor:
                cursor.execute(
                    "SELECT a.attname FROM pg_attribute a "
                    "JOIN pg_type t ON t.oid = a.atttypid "
                    "WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
                    "AND NOT a.attisdropped AND t.typcategory <> 'S'",
                    [self.quote(table)],
                )
                self._other_types[table] = frozenset(row[0] for row in cursor)
        return column_of(field) in self._other_types[table]

    def begin_snapshot(self, cursor: Any) -> None:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _utc_session(self, raw: Any) -> bool:
        return self.connection.timezone is datetime.UTC and raw.info.parameter_status(
            "TimeZone"
        ) in ("UTC", "Etc/UTC")

    def _register_loaders(
        self, cursor: Any, raw: Any, *, out_of_range: bool = False
    ) -> None:
        """The loaders of our reads. With ``out_of_range``, dates, timestamps and
        times Python cannot hold come as PostgreSQL's text (slower: asked for only
        after such a value was met)."""
        from psycopg.pq import Format
        from psycopg.types.string import TextLoader

        # numeric and uuid come back as text, already in the file's canonical form,
        # which saves a conversion per value.
        cursor.adapters.register_loader("numeric", TextLoader)
        cursor.adapters.register_loader("uuid", TextLoader)
        if self._utc_session(raw):
            # Django's timestamptz loader is Python code that only swaps in the
            # connection's tzinfo; with a UTC session psycopg's own (C) loader
            # gives the same values, about four times faster.
            cursor.adapters.register_loader("timestamptz", _psycopg_tz_loader())
        if raw.info.parameter_status("IntervalStyle") == "postgres":
            interval = cursor.adapters.types["interval"].oid
            base = cursor.adapters.get_loader(interval, Format.TEXT)
            cursor.adapters.register_loader(
                "interval", _composed_loader(base, _calendar_as_text)
            )
        if out_of_range:
            for name in UNBOUNDED_TEMPORAL_TYPES:
                oid = cursor.adapters.types[name].oid
                base = cursor.adapters.get_loader(oid, Format.TEXT)
                cursor.adapters.register_loader(
                    name, _composed_loader(base, _text_when_out_of_range)
                )

    def stream_rows(
        self, spec: TableSpec, batch_size: int, *, first: int | None = None
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        # A server-side cursor closes at once, wherever it is.
        self.connection.ensure_connection()
        # The query is made here: making it may read the catalog, through
        # Django's connection, which the prefetching thread may not use.
        sql = self.select_sql(spec)
        return prefetched(self._fetch_batches(spec, sql, batch_size))

    def _fetch_batches(
        self, spec: TableSpec, sql: str, batch_size: int
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        read = 0
        try:
            for rows in self._cursor_batches(spec, sql, batch_size):
                read += len(rows)
                yield rows
        except DatabaseError as exc:
            if not _out_of_range(exc):
                raise
            # A date Python cannot hold (infinity, BC): the rest of the table, from
            # the batch that held it, with such values as text. The same rows in
            # the same order: the snapshot, or the restore's locks.
            rest = f"{sql} OFFSET {read}"
            yield from self._cursor_batches(spec, rest, batch_size, out_of_range=True)

    def _cursor_batches(
        self, spec: TableSpec, sql: str, batch_size: int, *, out_of_range: bool = False
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        raw = self.connection.connection
        # A named (server-side) cursor streams.
        with (
            self.connection.wrap_database_errors,
            raw.cursor(name=f"backups_app_{spec.table[:40]}") as cursor,
        ):
            self._register_loaders(cursor, raw, out_of_range=out_of_range)
            cursor.itersize = batch_size
            cursor.execute(sql)
            while rows := cursor.fetchmany(batch_size):
                yield rows

    def fetch_rows(
        self, spec: TableSpec, where: str, params: list[Any]
    ) -> list[tuple[Any, ...]]:
        self.connection.ensure_connection()
        sql = self.select_sql(spec, where)
        try:
            return self._fetch_all(sql, params)
        except DatabaseError as exc:
            if not _out_of_range(exc):
                raise
            return self._fetch_all(sql, params, out_of_range=True)

    def _fetch_all(
        self, sql: str, params: list[Any], *, out_of_range: bool = False
    ) -> list[tuple[Any, ...]]:
        raw = self.connection.connection
        with self.connection.wrap_database_errors, raw.cursor() as cursor:
            self._register_loaders(cursor, raw, out_of_range=out_of_range)
            cursor.execute(sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

    def deletes_cascade(self, specs: list[TableSpec]) -> bool:
        # Django declares its foreign keys NO ACTION; raw SQL may not have.
        tables = [self.quote(spec.table) for spec in specs]
        if not tables:
            return False
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM pg_constraint WHERE contype = 'f' "
                "AND confdeltype NOT IN ('a', 'r') "
                "AND conrelid = ANY(%s::regclass[]) "
                "AND confrelid = ANY(%s::regclass[]) LIMIT 1",
                [tables, tables],
            )
            return cursor.fetchone() is not None

    def trigger_tables(self) -> set[str]:
        # tgisinternal: the triggers PostgreSQL makes for foreign keys.
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT c.relname FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE NOT t.tgisinternal AND t.tgenabled <> 'D' "
                "AND pg_table_is_visible(c.oid)"
            )
            return {row[0] for row in cursor.fetchall()}

    def check_constraints(
        self,
        specs: list[TableSpec],
        values: Callable[[ForeignKey], Iterable[list[Any]] | None] | None = None,
    ) -> str | None:
        message = super().check_constraints(specs, values)
        if message is None:
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED and stay on
            # during a restore: make the database check them now, inside the
            # transaction, so that keys no model declares fail here too.
            self.connection.check_constraints()
        return message

    def failed_row(self, exc: BaseException) -> tuple[int, str | None] | None:
        # COPY errors say where: "CONTEXT: COPY table, line 3, column price: ...".
        diag = getattr(exc.__cause__ or exc, "diag", None)
        context = getattr(diag, "context", None) or ""
        found = COPY_CONTEXT.search(context)
        if found is None:
            return None
        return int(found["line"]) - 1, found["column"]

    def failed_column(self, exc: BaseException) -> str | None:
        # Set for a null in a NOT NULL column, among others.
        diag = getattr(exc.__cause__ or exc, "diag", None)
        return getattr(diag, "column_name", None) or None

    def insert_rows(
        self, spec: TableSpec, batches: Iterable[list[tuple[Any, ...]]]
    ) -> int:
        from ...conf import app_settings

        if not app_settings.POSTGRES_COPY:
            return super().insert_rows(spec, batches)
        columns = [column_of(f) for f in spec.insert_fields]
        return self._copy(self.quote(spec.table), columns, batches)

    def _copy(
        self, table: str, columns: list[str], batches: Iterable[list[tuple[Any, ...]]]
    ) -> int:
        """COPY rows into ``table`` (its name as SQL)."""
        names = ", ".join(self.quote(column) for column in columns)
        sql = f"COPY {table} ({names}) FROM STDIN"
        written = 0
        with (
            self.connection.wrap_database_errors,
            self.connection.cursor() as cursor,
            cursor.cursor.copy(sql) as copy,
        ):
            write_row = copy.write_row
            for rows in batches:
                for row in rows:
                    write_row(row)
                written += len(rows)
        return written

    def update_rows(
        self, spec: TableSpec, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> int:
        # executemany sends an UPDATE per row (55 µs each here). Instead the rows go
        # through COPY, as inserted rows do, into a temporary table of the columns
        # (of their very types), and one UPDATE takes them from there. A role that
        # may not create temporary tables (REVOKE TEMPORARY) updates row by row.
        from ...conf import app_settings

        if not app_settings.POSTGRES_COPY:
            return super().update_rows(spec, columns, rows)
        table, keys = self.quote(spec.table), spec.pk_columns
        names = [*columns, *keys]
        selected = ", ".join(self.quote(column) for column in names)
        assignments = ", ".join(f"{self.quote(c)} = u.{self.quote(c)}" for c in columns)
        joined = " AND ".join(
            f"{table}.{self.quote(c)} = u.{self.quote(c)}" for c in keys
        )
        with self.connection.cursor() as cursor:
            try:
                with transaction.atomic(using=self.using):
                    cursor.execute(
                        f"CREATE TEMPORARY TABLE {UPDATES_TABLE} ON COMMIT DROP AS "
                        f"SELECT {selected} FROM {table} WITH NO DATA"
                    )
            except DatabaseError as exc:
                if getattr(exc.__cause__, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                    raise
                return super().update_rows(spec, columns, rows)
            self._copy(UPDATES_TABLE, names, [rows])
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM {UPDATES_TABLE} AS u "
                f"WHERE {joined}"
            )
            found: int = cursor.rowcount
            cursor.execute(f"DROP TABLE {UPDATES_TABLE}")
        return found

    def _lock_key(self) -> int:
        return zlib.crc32(LOCK_NAME.encode())

    def begin_restore(self, cursor: Any) -> None:
        # Read committed, whatever the connection's default: every statement of the
        # safety backup must see all that was committed before lock_tables got its
        # locks, not a snapshot taken at the transaction's first statement.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")

    def take_restore_lock(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [self._lock_key()])
            if not cursor.fetchone()[0]:
                raise OperationInProgressError(
                    "Another restore or backup is running on this database."
                )

    def lock_tables(self, specs: list[TableSpec], wait: float) -> None:
        # EXCLUSIVE mode stops every writer (and SELECT ... FOR UPDATE) until commit
        # but not plain readers, who go on reading the old rows. One table at a
        # time, in load order, so that a timeout can name the table; lock_timeout
        # bounds each wait and is put back afterwards (0 would mean no limit).
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('lock_timeout')")
            before = cursor.fetchone()[0]
            cursor.execute(
                "SELECT set_config('lock_timeout', %s, true)",
                [f"{max(1, round(wait * 1000))}ms"],
            )
            for spec in specs:
                try:
                    cursor.execute(
                        f"LOCK TABLE {self.quote(spec.table)} IN EXCLUSIVE MODE"
                    )
                except DatabaseError as exc:
                    state = getattr(exc.__cause__, "sqlstate", None)
                    if state == "55P03":  # lock_not_available
                        raise writer_error(spec.label, wait) from exc
                    if state == "40P01":  # deadlock_detected
                        raise deadlock_error(spec.label) from exc
                    raise
            cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])

    def _sequences(self, specs: list[TableSpec]) -> list[tuple[str, str, str]]:
        """Return (sequence, table, column) for each table with a generated key."""
        columns = []
        for spec in specs:
            for field in spec.model._meta.local_fields:
                if isinstance(field, models.AutoField):
                    columns.append((spec.table, column_of(field)))
                    break
        if not columns:
            return []
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_get_serial_sequence(t, c) FROM unnest(%s::text[], "
                "%s::text[]) WITH ORDINALITY AS x(t, c, n) ORDER BY n",
                [[self.quote(t) for t, _ in columns], [c for _, c in columns]],
            )
            names = [row[0] for row in cursor.fetchall()]
        return [
            (name, table, column)
            for name, (table, column) in zip(names, columns, strict=True)
            if name is not None
        ]

    def reset_sequences(self, specs: list[TableSpec]) -> SequenceSettlement:
        # setval is not transactional: a restore that rolls back, or is killed,
        # after lowering a sequence would leave it below the old rows, and the next
        # insert would collide. So only raise here (what a rollback leaves is a gap
        # of unused ids) and lower after commit (settle_sequences).
        settle = []
        with self.connection.cursor() as cursor:
            for sequence, table, column in self._sequences(specs):
                cursor.execute(
                    f"SELECT last_value, is_called, (SELECT MAX({self.quote(column)}) "
                    f"FROM {self.quote(table)}) FROM {sequence}"
                )
                last_value, is_called, largest = cursor.fetchone()
                next_now = last_value + 1 if is_called else last_value
                next_wanted = max(largest or 0, 0) + 1
                if next_now < next_wanted:
                    cursor.execute("SELECT setval(%s, %s, true)", [sequence, largest])
                elif next_now > next_wanted:
                    settle.append((sequence, table, column))
        return tuple(settle)

    def settle_sequences(self, settle: SequenceSettlement) -> None:
        # A short transaction of its own, after the restore committed; losing it
        # (a kill, a failure) only leaves gaps. A table that another session is
        # writing to at this moment keeps its gap too (NOWAIT): lowering its
        # sequence under an insert not yet committed could hand out that id again.
        skipped = []
        try:
            with (
                transaction.atomic(using=self.using),
                self.connection.cursor() as cursor,
            ):
                for sequence, table, column in settle:
                    quoted = self.quote(column)
                    try:
                        with transaction.atomic(using=self.using):
                            cursor.execute(
                                f"LOCK TABLE {self.quote(table)} "
                                "IN EXCLUSIVE MODE NOWAIT"
                            )
                            cursor.execute(
                                f"SELECT setval(%s, GREATEST(MAX({quoted}), 1), "
                                f"COALESCE(MAX({quoted}) >= 1, false)) "
                                f"FROM {self.quote(table)}",
                                [sequence],
                            )
                    except DatabaseError:
                        skipped.append(table)
        except DatabaseError as exc:
            logger.warning(
                "Sequences were left above the restored rows (new rows get higher "
                "ids, nothing else changes): %s",
                exc,
            )
            return
        if skipped:
            logger.info(
                "Sequences of %s were left above the restored rows: other sessions "
                "were writing to them.",
                ", ".join(skipped),
            )

    def ensure_no_restore(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_try_advisory_xact_lock_shared(%s)", [self._lock_key()]
            )
            if not cursor.fetchone()[0]:
                raise OperationInProgressError("A restore is running on this database.")
