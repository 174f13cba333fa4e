"""MySQL and MariaDB: named locks, LOAD-free bulk inserts, AUTO_INCREMENT."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from django.db import DatabaseError
from django.db.models import Field

from ...exceptions import OperationInProgressError
from ...fileformat.codec import kind
from ..integrity import ForeignKey, orphan_value_sql
from ..tables import TableSpec, column_of
from .base import (
    LOCK_NAME,
    Backend,
    SequenceSettlement,
    deadlock_error,
    writer_error,
)

# The column in the server's refusals of a value: "Out of range value for column
# 'price' at row 1", "Incorrect integer value: 'x' for column `db`.`t`.`price` at
# row 1", "Column 'price' cannot be null".
REFUSED_COLUMN = re.compile(
    r"for column (?:'(?P<quoted>[^']+)'|`[^`]*`\.`[^`]*`\.`(?P<qualified>[^`]+)`)"
    r"|^Column '(?P<null>[^']+)' cannot be null"
)


@contextlib.contextmanager
def _as_text(converter: dict[Any, Any]) -> Iterator[None]:
    """Have the result of the query run in the block hand out dates, datetimes,
    timestamps, times and decimals as the server's text: mysqlclient parses them in
    Python, which cost a backup of 1M rows more time than anything else, makes None
    of the zero date, Django's parse of a time fails on a span beyond a day, and the
    file holds them as text anyway (``values.mysql_temporal_encoder``,
    ``values.mysql_time_encoder``). mysqlclient picks each column's converter when
    the query runs."""
    from MySQLdb.constants import FIELD_TYPE

    types = (
        FIELD_TYPE.DATE,
        FIELD_TYPE.DATETIME,
        FIELD_TYPE.TIMESTAMP,
        FIELD_TYPE.TIME,
        FIELD_TYPE.NEWDECIMAL,
    )
    saved = {t: converter[t] for t in types if t in converter}
    converter.update(dict.fromkeys(types, str))
    try:
        yield
    finally:
        for t in types:
            converter.pop(t, None)
        converter.update(saved)


# The session time zone of backups, validations and restores (MySQLBackend._in_utc).
UTC = "+00:00"
# MySQL's LIMIT for "no limit" (with an OFFSET, which needs one).
ALL_ROWS = 18446744073709551615
# An INSERT statement of many rows stops growing at this size (or at half the
# server's max_allowed_packet, when that is smaller).
STATEMENT_BYTES = 1 << 20


def _literal_function(raw: Any) -> Callable[[Any], bytes]:
    """``raw.literal`` (mysqlclient's SQL literal of a value), with the common
    types of decoded rows taken straight to the driver's own functions."""
    encoding = raw.encoding
    string_literal: Callable[[bytes], bytes] = raw.string_literal

    def text(value: str) -> bytes:
        return string_literal(value.encode(encoding))

    def integer(value: int) -> bytes:
        return str(value).encode()  # mysqlclient's Thing2Str

    def null(value: None) -> bytes:
        return b"NULL"

    known: dict[type, Callable[[Any], bytes]] = {
        str: text,
        int: integer,
        type(None): null,
    }
    fallback: Callable[[Any], bytes] = raw.literal

    def literal(value: Any) -> bytes:
        return known.get(type(value), fallback)(value)

    return literal


def _statements(
    prefix: bytes,
    rows: list[tuple[Any, ...]],
    literal: Callable[[Any], bytes],
    limit: int,
    suffix: bytes = b"",
) -> Iterator[bytes]:
    """INSERT statements of ``rows``: as many rows each as fit in ``limit`` bytes,
    and at least one; each ends in ``suffix``."""
    parts: list[bytes] = []
    size = len(prefix) + len(suffix)
    for row in rows:
        values = b"(" + b",".join(map(literal, row)) + b")"
        if parts and size + len(values) + 1 > limit:
            yield prefix + b",".join(parts) + suffix
            parts, size = [], len(prefix) + len(suffix)
        parts.append(values)
        size += len(values) + 1
    if parts:
        yield prefix + b",".join(parts) + suffix


@contextlib.contextmanager
def _pipelined(raw: Any) -> Iterator[Callable[[bytes], None]]:
    """Give a function that sends a statement which returns no rows and returns
    while the server still runs it; its result is read when the next one is sent,
    or when the block ends. Reading the file and making the next statement's
    literals (a third of a full restore of 1M rows) then overlap with the server's
    work on the one before, on the same connection and in the same transaction.

    A statement's error is raised when its result is read: by the next call, or
    at the end of the block. When the block ends with an exception of its own, the
    result of the statement still running is read first (an error of its own is
    dropped), so that the connection is free for the rollback that follows.
    """
    pending = False

    def finish() -> None:
        nonlocal pending
        try:
            raw.read_query_result()
        finally:
            # Never read twice: with no result to come, the read would wait forever.
            pending = False

    def execute(statement: bytes) -> None:
        nonlocal pending
        if pending:
            finish()
        raw.send_query(statement)
        pending = True

    try:
        yield execute
    except BaseException:
        if pending:
            with contextlib.suppress(Exception):
                finish()
        raise
    if pending:
        finish()


def restore_sql_mode(sql_mode: str) -> str:
    """The session's ``sql_mode`` while a restore writes: a restored primary key of 0
    stays 0 rather than drawing the next counter value, and the dates that are no
    dates which a backup kept (``values.invalid_date_text``) are stored as they
    were, whatever the server's own modes say of them."""
    modes = [m for m in sql_mode.split(",") if m and m not in REFUSED_DATE_MODES]
    return ",".join(
        dict.fromkeys([*modes, "NO_AUTO_VALUE_ON_ZERO", "ALLOW_INVALID_DATES"])
    )


# Modes that refuse the zero date, or a zero month or day.
REFUSED_DATE_MODES = frozenset({"NO_ZERO_DATE", "NO_ZERO_IN_DATE"})


class MySQLBackend(Backend):
    _max_statement: int | None = None

    def binary_order(self, column: str) -> str:
        return f"CAST({column} AS BINARY)"

    def select_column(self, field: Field[Any, Any]) -> str:
        column = super().select_column(field)
        if kind(field) == "FloatField" and self._has_cast_as_double():
            # A FLOAT column's values come with six digits (16777216 as 1.67772e7,
            # which is another float); as a DOUBLE each is its exact value, which
            # the column takes back as the same float. A DOUBLE stays as it is.
            return f"CAST({column} AS DOUBLE)"
        return column

    def _has_cast_as_double(self) -> bool:
        # Every MariaDB Django supports has it; MySQL from 8.0.17.
        connection: Any = self.connection
        return bool(
            connection.mysql_is_mariadb or connection.mysql_version >= (8, 0, 17)
        )

    def order_column(self, field: Field[Any, Any]) -> str:
        if kind(field) == "UUIDField":
            # MariaDB 10.7+'s uuid type sorts by its own segment order (node
            # first); its binary form is the 16 bytes in text order. On a char(32)
            # column this is the hex text's byte order, the same thing.
            return self.binary_order(self.quote(column_of(field)))
        return super().order_column(field)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._in_utc(), super().snapshot():
            yield

    @contextlib.contextmanager
    def restore_session(self) -> Iterator[None]:
        with self._in_utc(), super().restore_session():
            yield

    @contextlib.contextmanager
    def _in_utc(self) -> Iterator[None]:
        """Run the block in a session whose time zone is UTC.

        MySQL hands out a TIMESTAMP as text in the session's time zone, and reads
        text back in it. A backup, a validation and a restore each run in UTC, so
        that the file holds each instant as UTC text (as it says, with "+00:00")
        and a session in another zone (another server's, an application's own)
        finds and writes the same instants; in a zone with summer time, the text of
        the hour that repeats in autumn would also name either of two instants.
        """
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.time_zone")
            (zone,) = cursor.fetchone()
            if zone != UTC:
                cursor.execute("SET time_zone = %s", [UTC])
        try:
            yield
        finally:
            if zone != UTC:
                with self.connection.cursor() as cursor:
                    cursor.execute("SET time_zone = %s", [zone])

    def begin_snapshot(self, cursor: Any) -> None:
        # Django opens MySQL connections at READ COMMITTED; a backup needs one
        # snapshot for all its tables.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def stream_rows(
        self, spec: TableSpec, batch_size: int, *, first: int | None = None
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        sql = self.select_sql(spec)
        if first is None:
            yield from self._query_batches(sql, batch_size)
            return
        # Closing a cursor before its last row reads all the rest from the server
        # (MySQL's protocol has no way to stop a result): the first rows come from
        # a query of their own, the others, if asked for, from a second one. The
        # table cannot change in between: the snapshot, or the restore's locks.
        read = 0
        for rows in self._query_batches(f"{sql} LIMIT {int(first)}", batch_size):
            read += len(rows)
            yield rows
        if read == first:
            rest = f"{sql} LIMIT {ALL_ROWS} OFFSET {int(first)}"
            yield from self._query_batches(rest, batch_size)

    def _query_batches(
        self, sql: str, batch_size: int
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        from MySQLdb.cursors import SSCursor

        self.connection.ensure_connection()
        raw = self.connection.connection
        # The default cursor buffers a whole result in memory; SSCursor streams it.
        cursor = raw.cursor(SSCursor)
        try:
            with self.connection.wrap_database_errors:
                with _as_text(raw.converter):
                    cursor.execute(sql)
                while rows := cursor.fetchmany(batch_size):
                    yield rows
        finally:
            cursor.close()

    def fetch_rows(
        self, spec: TableSpec, where: str, params: list[Any]
    ) -> list[tuple[Any, ...]]:
        # As text, as stream_rows gives them: a read-back compares them with the
        # streamed rows' encoding, and mysqlclient's objects lose zero dates.
        self.connection.ensure_connection()
        raw = self.connection.connection
        with self.connection.wrap_database_errors, raw.cursor() as cursor:
            with _as_text(raw.converter):
                cursor.execute(self.select_sql(spec, where), params or None)
            return list(cursor.fetchall())

    def insert_rows(
        self, spec: TableSpec, batches: Iterable[list[tuple[Any, ...]]]
    ) -> int:
        # mysqlclient's executemany turns every value into its SQL literal with a
        # few Python calls each, which took a full restore of 1M rows more time
        # than anything else of ours. The same literals, made by the same driver
        # functions with fewer calls, in statements of many rows.
        self.connection.ensure_connection()
        raw = self.connection.connection
        literal = _literal_function(raw)
        prefix = f"{self.insert_into_sql(spec)} VALUES ".encode()
        limit = self._statement_limit()
        written = 0
        with self.connection.wrap_database_errors, _pipelined(raw) as execute:
            for rows in batches:
                for statement in _statements(prefix, rows, literal, limit):
                    execute(statement)
                written += len(rows)
        return written

    def failed_column(self, exc: BaseException) -> str | None:
        # mysqlclient's errors are (code, message).
        message = [*getattr(exc.__cause__ or exc, "args", ()), None, None][1]
        if not isinstance(message, str):
            return None
        found = REFUSED_COLUMN.search(message)
        if found is None:
            return None
        return found["quoted"] or found["qualified"] or found["null"]

    def update_rows(
        self, spec: TableSpec, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> int:
        # mysqlclient's executemany sends an UPDATE per row (150 µs each here). Each
        # row of an INSERT ... ON DUPLICATE KEY UPDATE meets its own row: it exists
        # (the restore holds the table) and keeps every unique value it has (a
        # changed unique column is deleted and inserted instead, Changes). The server
        # counts 2 for a row it updated and 1 for one it inserted.
        self.connection.ensure_connection()
        raw = self.connection.connection
        literal = _literal_function(raw)
        names = ", ".join(self.quote(c) for c in [*columns, *spec.pk_columns])
        prefix = f"INSERT INTO {self.quote(spec.table)} ({names}) VALUES ".encode()
        assignments = ", ".join(
            f"{self.quote(c)} = VALUES({self.quote(c)})" for c in columns
        )
        suffix = f" ON DUPLICATE KEY UPDATE {assignments}".encode()
        affected = 0
        with self.connection.wrap_database_errors, raw.cursor() as cursor:
            for statement in _statements(
                prefix, rows, literal, self._statement_limit(), suffix
            ):
                affected += cursor.execute(statement)
        return affected - len(rows)

    def _statement_limit(self) -> int:
        if self._max_statement is None:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT @@max_allowed_packet")
                packet = int(cursor.fetchone()[0])
            self._max_statement = max(min(STATEMENT_BYTES, packet // 2), 1)
        return self._max_statement

    def unique_column_finder(
        self, specs: list[TableSpec]
    ) -> Callable[[TableSpec], set[str] | None]:
        # No statement can run while a streaming read is open: the unique indexes
        # (the primary key's too) of every table, in one query, first.
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS "
                "WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0"
            )
            # COLUMN_NAME is NULL for a key part on an expression (MySQL 8).
            return self.unique_columns_by_table(cursor.fetchall())

    def trigger_tables(self) -> set[str]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                "WHERE EVENT_OBJECT_SCHEMA = DATABASE()"
            )
            return {row[0] for row in cursor.fetchall()}

    def foreign_keys_unchecked(self) -> bool:
        # constraint_checks_disabled() sets FOREIGN_KEY_CHECKS = 0 for the restore.
        return True

    def may_have_orphans(self, cursor: Any, fk: ForeignKey) -> bool:
        # After a load, InnoDB reads each row the transaction wrote through the
        # table itself, so orphan_sql's scan in key order is cheaper than one
        # through the column's index; a value shared by many rows is probed once
        # (a 1M-row restore's check: 2.0 s, against 0.6 s with this). A unique
        # column's distinct values would be the table over again.
        if not fk.shared:
            return True
        cursor.execute(orphan_value_sql(fk, self.quote))
        return cursor.fetchone() is not None

    def catalog_foreign_keys(self) -> list[tuple[str, str, str, str | None]]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
                "REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
                "WHERE TABLE_SCHEMA = DATABASE() "
                "AND REFERENCED_TABLE_SCHEMA = DATABASE()"
            )
            keys: list[tuple[str, str, str, str | None]] = cursor.fetchall()
        return keys

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            sql_mode = cursor.fetchone()[0]
            cursor.execute("SET SESSION sql_mode = %s", [restore_sql_mode(sql_mode)])
        try:
            with super().writing():
                yield
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET SESSION sql_mode = %s", [sql_mode])

    def reset_sequences(self, specs: list[TableSpec]) -> SequenceSettlement:
        # ALTER TABLE ... AUTO_INCREMENT would commit the transaction. InnoDB already
        # keeps each counter above the largest restored id, so the next insert works.
        return ()

    def _lock_name(self) -> str:
        return f"{LOCK_NAME}.{self.connection.settings_dict['NAME']}"[:64]

    @contextlib.contextmanager
    def restore_transaction(self) -> Iterator[None]:
        # GET_LOCK belongs to the session, not to a transaction: taken before the
        # transaction and released after it ends, so that no second restore can
        # start between this one's last statement and its commit.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", [self._lock_name()])
            if cursor.fetchone()[0] != 1:
                raise OperationInProgressError(
                    "Another restore is running on this database."
                )
        try:
            with super().restore_transaction():
                yield
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", [self._lock_name()])

    def begin_restore(self, cursor: Any) -> None:
        # Repeatable read, whatever the connection's level (Django opens MySQL
        # connections at read committed): only at this level do the locking reads
        # of lock_tables take gap locks, which keep inserts out too.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def lock_tables(self, specs: list[TableSpec], wait: float) -> None:
        # LOCK TABLES would commit the transaction. A locking read of every row in
        # primary key order takes a next-key lock on each, and on the gap after the
        # last: until commit no other session can insert, update or delete rows of
        # the table, while plain (consistent) reads go on. It comes before the
        # transaction's first consistent read, which fixes the snapshot that the
        # safety backup reads. innodb_lock_wait_timeout bounds each wait.
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.innodb_lock_wait_timeout")
            before = cursor.fetchone()[0]
            cursor.execute(
                "SET SESSION innodb_lock_wait_timeout = %s", [max(1, math.ceil(wait))]
            )
            try:
                for spec in specs:
                    try:
                        cursor.execute(
                            f"SELECT COUNT(*) FROM {self.quote(spec.table)} "
                            "FORCE INDEX (PRIMARY) FOR UPDATE"
                        )
                    except DatabaseError as exc:
                        code = exc.args[0] if exc.args else None
                        if code == 1205:  # ER_LOCK_WAIT_TIMEOUT
                            raise writer_error(spec.label, wait) from exc
                        if code == 1213:  # ER_LOCK_DEADLOCK
                            raise deadlock_error(spec.label) from exc
                        raise
            finally:
                cursor.execute("SET SESSION innodb_lock_wait_timeout = %s", [before])

    def ensure_no_restore(self) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT IS_USED_LOCK(%s)", [self._lock_name()])
            holder = cursor.fetchone()[0]
        if holder is not None and holder != self.connection.connection.thread_id():
            raise OperationInProgressError("A restore is running on this database.")
