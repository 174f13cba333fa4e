"""What differs between database vendors: snapshots, streaming reads, bulk writes, locks.

Everything goes through Django's connection; no client binaries are involved.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import math
import re
import zlib
from collections.abc import Iterable, Iterator

from django.core.management.color import no_style
from django.db import DatabaseError, connections, models, transaction

from .codec import TEMPORAL_KINDS, TEXT_KINDS, kind
from .exceptions import OperationInProgressError, RestoreError
from .graph import TableSpec
from .integrity import (
    catalog_foreign_keys,
    model_foreign_keys,
    orphan_message,
    orphan_sql,
)

logger = logging.getLogger("backups_app")

LOCK_NAME = "backups_app.restore"

# How long a restore waits, in seconds, for sessions writing to its tables.
LOCK_WAIT = 10.0

# Sequences a restore left above what its rows imply, to be lowered after commit:
# (sequence, table, column).
SequenceSettlement = tuple[tuple[str, str, str], ...]


def writer_error(what: str, wait: float) -> RestoreError:
    """Say that another session kept writing to ``what``: a model label, or a database."""
    return RestoreError(
        f"Another session is writing to {what} and did not finish within "
        f"{wait:g} s; the database was left unchanged."
    )


def deadlock_error(what: str) -> RestoreError:
    return RestoreError(
        f"Another session writing to {what} was waiting for this restore while it "
        "waited for that session (a deadlock); the database was left unchanged."
    )


COPY_CONTEXT = re.compile(
    r"COPY [^,]+, line (?P<line>\d+)(?:, column (?P<column>[^:]+))?"
)


class Backend:
    """Operations shared by every vendor; subclasses override what their vendor needs."""

    def __init__(self, using: str):
        self.using = using
        self.connection = connections[using]
        self.quote = self.connection.ops.quote_name

    # -- reading -------------------------------------------------------------------

    def order_by_sql(self, spec: TableSpec) -> str:
        return ", ".join(self.order_column(field) for field in spec.pk_fields)

    def order_column(self, field) -> str:
        """Return what sorts a primary key column in the format's order: text by
        code point, UUIDs as their lower-case hyphenated text, numbers, dates and
        times by value (which is their text order too)."""
        column = self.quote(field.column)
        if kind(field) in TEXT_KINDS or kind(field) == "GenericIPAddressField":
            return self.binary_order(column)
        # UUIDs as char(32) of lower-case hex (SQLite, MySQL) or PostgreSQL's uuid
        # (compared byte by byte) already sort as their hyphenated text.
        return column

    def binary_order(self, column: str) -> str:
        """Make text sort by code point, the same on every vendor."""
        return f"{column} COLLATE BINARY"

    def select_column(self, field) -> str:
        return self.quote(field.column)

    def select_sql(self, spec: TableSpec) -> str:
        columns = ", ".join(self.select_column(f) for f in spec.fields)
        return (
            f"SELECT {columns} FROM {self.quote(spec.table)} "
            f"ORDER BY {self.order_by_sql(spec)}"
        )

    def stream_rows(self, spec: TableSpec, batch_size: int) -> Iterator[list[tuple]]:
        """Yield the table's rows in primary key order, in lists of raw tuples."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_sql(spec))
            while rows := cursor.fetchmany(batch_size):
                yield rows

    def count(self, spec: TableSpec) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.quote(spec.table)}")
            return cursor.fetchone()[0]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the block in one read transaction that sees a single point in time."""
        outermost = not self.connection.in_atomic_block
        with transaction.atomic(using=self.using):
            if outermost:
                with self.connection.cursor() as cursor:
                    self.begin_snapshot(cursor)
            yield

    def begin_snapshot(self, cursor) -> None:
        """Make the transaction just opened a consistent, read-only snapshot.

        Not called inside an enclosing transaction (tests), which has its own.
        """

    # -- writing -------------------------------------------------------------------

    def empty(self, spec: TableSpec) -> None:
        """Delete every row of the table.

        DELETE, never TRUNCATE: DELETE fires the table's row triggers, so tables that
        triggers keep in step (a search index, an audit log, a counter) follow the
        restore; and PostgreSQL's TRUNCATE is not MVCC-safe: a reader whose snapshot
        began before the restore committed would see the restored tables empty.
        """
        with self.connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.quote(spec.table)}")

    def delete_all(self, specs: list[TableSpec]) -> None:
        """Empty the tables, children first."""
        for spec in reversed(specs):
            self.empty(spec)

    def trigger_tables(self) -> set[str]:
        """Return the names of the tables that carry triggers of their own."""
        return set()

    def insert_sql(self, spec: TableSpec) -> str:
        fields = spec.insert_fields
        columns = ", ".join(self.quote(f.column) for f in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        return (
            f"INSERT INTO {self.quote(spec.table)} ({columns}) VALUES ({placeholders})"
        )

    def insert_rows(self, spec: TableSpec, batches: Iterable[list[tuple]]) -> int:
        """Insert already decoded rows; return how many were written."""
        sql = self.insert_sql(spec)
        written = 0
        with self.connection.cursor() as cursor:
            for rows in batches:
                cursor.executemany(sql, rows)
                written += len(rows)
        return written

    def insert_row(self, spec: TableSpec, row: tuple) -> None:
        """Insert one decoded row: to find which row of a failed batch is at fault."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.insert_sql(spec), row)

    def failed_row(self, exc: BaseException) -> tuple[int, str | None] | None:
        """Return the 0-based row of the last insert that ``exc`` names, and its column.

        None when the error does not say (only PostgreSQL's COPY does).
        """
        return None

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the session settings a restore needs while inserting."""
        with self.connection.constraint_checks_disabled():
            yield

    @contextlib.contextmanager
    def restore_session(self) -> Iterator[None]:
        """Session settings for a restore that can only change outside a transaction."""
        yield

    def check_constraints(self, specs: list[TableSpec]) -> str | None:
        """Check the foreign keys a restore of ``specs`` could break.

        Return a message naming the first row that points at a missing parent, or
        None. One anti-join per foreign key column (integrity.py) instead of Django's
        per-table introspection.
        """
        with self.connection.cursor() as cursor:
            existing = set(self.connection.introspection.table_names(cursor))
        keys = model_foreign_keys(specs, self.using, existing)
        if self.foreign_keys_unchecked():
            # Enforcement was off while writing, so rows of tables that no model
            # owns may be left pointing at replaced rows: the database's catalog
            # names their foreign keys, in one query.
            keys += catalog_foreign_keys(self.catalog_foreign_keys(), keys, specs)
        with self.connection.cursor() as cursor:
            for fk in keys:
                cursor.execute(orphan_sql(fk, self.quote))
                row = cursor.fetchone()
                if row is not None:
                    return orphan_message(fk, row)
        return None

    def foreign_keys_unchecked(self) -> bool:
        """Whether the database skipped foreign key checks while the restore wrote."""
        return False

    def catalog_foreign_keys(self) -> list[tuple[str, str, str, str | None]]:
        """Return every foreign key the database declares, as
        ``(table, column, parent table, parent column)``."""
        return []

    def reset_sequences(self, specs: list[TableSpec]) -> SequenceSettlement:
        """Make the next generated ids follow the restored rows (just before commit).

        Return what must still be done after commit (``settle_sequences``).
        """
        statements = self.connection.ops.sequence_reset_sql(
            no_style(), [spec.model for spec in specs]
        )
        with self.connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)
        return ()

    def settle_sequences(self, settle: SequenceSettlement) -> None:
        """After commit: finish what ``reset_sequences`` left; never raise."""

    # -- locking -------------------------------------------------------------------

    @contextlib.contextmanager
    def restore_transaction(self) -> Iterator[None]:
        """Open the restore's transaction holding the restore lock.

        Fails at once if another restore (or, on PostgreSQL, a backup) holds it.
        """
        outermost = not self.connection.in_atomic_block
        with transaction.atomic(using=self.using):
            if outermost:
                with self.connection.cursor() as cursor:
                    self.begin_restore(cursor)
            self.take_restore_lock()
            yield

    def begin_restore(self, cursor) -> None:
        """Set up the transaction just opened for a restore (its first statement)."""

    def take_restore_lock(self) -> None:
        """Take the restore lock for the length of the transaction."""

    def lock_tables(self, specs: list[TableSpec], wait: float) -> None:
        """Keep every other session from writing to the tables until commit.

        Waits at most ``wait`` seconds for sessions writing now; then raises
        RestoreError naming the table.
        """

    def ensure_no_restore(self) -> None:
        """Fail if a restore is running on this database (called by backups)."""


# SQLite's page cache while a restore writes (PRAGMA cache_size, in KiB).
RESTORE_CACHE_KIB = 32 * 1024


class SQLiteBackend(Backend):
    _foreign_keys_off = False

    def select_column(self, field) -> str:
        column = super().select_column(field)
        if kind(field) in TEMPORAL_KINDS:
            # As text, so that sqlite3's per-value parsing (Django registers it for
            # these declared types) is skipped; the text is already nearly the
            # file's form (codec.sqlite_temporal_encoder).
            return f"CAST({column} AS TEXT)"
        return column

    @contextlib.contextmanager
    def restore_session(self) -> Iterator[None]:
        # PRAGMA foreign_keys changes nothing inside a transaction, so a restore
        # would run with enforcement on: every DELETE goes row by row (no truncate)
        # and every insert looks its references up. Off, and checked once before
        # commit (check_constraints), the same restore is several times faster.
        if self.connection.in_atomic_block:
            yield
            return
        was_on = bool(self._pragma("foreign_keys"))
        self._pragma("foreign_keys = OFF")
        self._foreign_keys_off = was_on
        try:
            yield
        finally:
            self._foreign_keys_off = False
            if was_on:
                self._pragma("foreign_keys = ON")

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        # A restore adds to every index of every table it fills; with SQLite's
        # default page cache (2 MB) it reads the same index pages again and again.
        # RESTORE_CACHE_KIB for the length of the restore took a quarter off a
        # 1M-row restore; a connection set up with a larger cache keeps its own.
        with super().writing():
            before = self._pragma("cache_size")
            cached = (
                -before if before < 0 else before * self._pragma("page_size") // 1024
            )
            if cached >= RESTORE_CACHE_KIB:
                yield
                return
            self._pragma(f"cache_size = -{RESTORE_CACHE_KIB}")
            try:
                yield
            finally:
                self._pragma(f"cache_size = {before}")

    def _pragma(self, statement: str) -> int | None:
        with self.connection.cursor() as cursor:
            cursor.execute(f"PRAGMA {statement}")
            row = cursor.fetchone()
        return row[0] if row else None

    def foreign_keys_unchecked(self) -> bool:
        return self._foreign_keys_off

    def catalog_foreign_keys(self) -> list[tuple[str, str, str, str | None]]:
        # One query over every table (table-valued PRAGMA functions, SQLite 3.16+)
        # rather than a PRAGMA per table. "to" is NULL for a key that names only
        # the parent table, which means its primary key.
        with self.connection.cursor() as cursor:
            cursor.execute(
                'SELECT m.name, p."from", p."table", p."to" FROM sqlite_master m, '
                "pragma_foreign_key_list(m.name) p WHERE m.type = 'table'"
            )
            return cursor.fetchall()

    def trigger_tables(self) -> set[str]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
            return {row[0] for row in cursor.fetchall()}

    def reset_sequences(self, specs: list[TableSpec]) -> SequenceSettlement:
        # sqlite_sequence is an ordinary table, so this is rolled back with the rest.
        # Django makes AutoFields AUTOINCREMENT, whose counters live in sqlite_sequence;
        # set them to what the restored rows imply so the next id is the backup's next id.
        tables = [
            spec
            for spec in specs
            if len(spec.pk_fields) == 1
            and spec.pk_fields[0].get_internal_type().endswith("AutoField")
        ]
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='sqlite_sequence'"
            )
            if cursor.fetchone() is None:
                return ()
            for spec in tables:
                cursor.execute(
                    "DELETE FROM sqlite_sequence WHERE name = %s", [spec.table]
                )
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) "
                    f"SELECT %s, MAX({self.quote(spec.pk_columns[0])}) "
                    f"FROM {self.quote(spec.table)} HAVING COUNT(*) > 0",
                    [spec.table],
                )
        return ()

    def lock_tables(self, specs: list[TableSpec], wait: float) -> None:
        # SQLite has one write lock for the whole database. Take it now, as BEGIN
        # IMMEDIATE would (also inside a transaction the caller opened): a DELETE
        # that matches nothing claims it. Read first, the safety backup would hold
        # only a shared lock, and a writer could commit in between (rollback
        # journal: the restore's first DELETE then fails with "database is locked").
        if not specs:
            return
        before = self._pragma("busy_timeout")
        self._pragma(f"busy_timeout = {max(1, round(wait * 1000))}")
        try:
            with self.connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {self.quote(specs[0].table)} WHERE 0")
        except DatabaseError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise writer_error(f"database {self.using!r}", wait) from exc
            raise
        finally:
            self._pragma(f"busy_timeout = {before}")


def _psycopg_tz_loader():
    import psycopg
    from psycopg.pq import Format

    return psycopg.adapters.get_loader(
        psycopg.postgres.types["timestamptz"].oid, Format.TEXT
    )


class PostgreSQLBackend(Backend):
    def binary_order(self, column: str) -> str:
        return f'{column} COLLATE "C"'

    def order_column(self, field) -> str:
        if kind(field) == "GenericIPAddressField":
            # inet sorts by family and bits ("9.0.0.1" before "10.0.0.1"); the file
            # holds its text, which host() gives for Django's host addresses.
            return self.binary_order(f"host({self.quote(field.column)})")
        return super().order_column(field)

    def begin_snapshot(self, cursor) -> None:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    def _utc_session(self, raw) -> bool:
        return self.connection.timezone is datetime.UTC and raw.info.parameter_status(
            "TimeZone"
        ) in ("UTC", "Etc/UTC")

    def stream_rows(self, spec: TableSpec, batch_size: int) -> Iterator[list[tuple]]:
        from psycopg.types.string import TextLoader

        self.connection.ensure_connection()
        raw = self.connection.connection
        # A named (server-side) cursor streams; numeric and uuid come back as text,
        # already in the file's canonical form, which saves a conversion per value.
        with (
            self.connection.wrap_database_errors,
            raw.cursor(name=f"backups_app_{spec.table[:40]}") as cursor,
        ):
            cursor.adapters.register_loader("numeric", TextLoader)
            cursor.adapters.register_loader("uuid", TextLoader)
            if self._utc_session(raw):
                # Django's timestamptz loader is Python code that only swaps in the
                # connection's tzinfo; with a UTC session psycopg's own (C) loader
                # gives the same values, about four times faster.
                cursor.adapters.register_loader("timestamptz", _psycopg_tz_loader())
            cursor.itersize = batch_size
            cursor.execute(self.select_sql(spec))
            while rows := cursor.fetchmany(batch_size):
                yield rows

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

    def check_constraints(self, specs: list[TableSpec]) -> str | None:
        message = super().check_constraints(specs)
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

    def insert_rows(self, spec: TableSpec, batches: Iterable[list[tuple]]) -> int:
        from .conf import app_settings

        if not app_settings.POSTGRES_COPY:
            return super().insert_rows(spec, batches)
        columns = ", ".join(self.quote(f.column) for f in spec.insert_fields)
        sql = f"COPY {self.quote(spec.table)} ({columns}) FROM STDIN"
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

    def _lock_key(self) -> int:
        return zlib.crc32(LOCK_NAME.encode())

    def begin_restore(self, cursor) -> None:
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
                    columns.append((spec.table, field.column))
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


class MySQLBackend(Backend):
    def binary_order(self, column: str) -> str:
        return f"CAST({column} AS BINARY)"

    def order_column(self, field) -> str:
        if kind(field) == "UUIDField":
            # MariaDB 10.7+'s uuid type sorts by its own segment order (node
            # first); its binary form is the 16 bytes in text order. On a char(32)
            # column this is the hex text's byte order, the same thing.
            return self.binary_order(self.quote(field.column))
        return super().order_column(field)

    def begin_snapshot(self, cursor) -> None:
        # Django opens MySQL connections at READ COMMITTED; a backup needs one
        # snapshot for all its tables.
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")

    def stream_rows(self, spec: TableSpec, batch_size: int) -> Iterator[list[tuple]]:
        from MySQLdb.cursors import SSCursor

        self.connection.ensure_connection()
        # The default cursor buffers a whole result in memory; SSCursor streams it.
        cursor = self.connection.connection.cursor(SSCursor)
        try:
            with self.connection.wrap_database_errors:
                cursor.execute(self.select_sql(spec))
                while rows := cursor.fetchmany(batch_size):
                    yield rows
        finally:
            cursor.close()

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

    def catalog_foreign_keys(self) -> list[tuple[str, str, str, str | None]]:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, "
                "REFERENCED_COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
                "WHERE TABLE_SCHEMA = DATABASE() "
                "AND REFERENCED_TABLE_SCHEMA = DATABASE()"
            )
            return cursor.fetchall()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT @@SESSION.sql_mode")
            sql_mode = cursor.fetchone()[0]
            # A restored primary key of 0 must stay 0, not draw the next counter value.
            cursor.execute(
                "SET SESSION sql_mode = %s",
                [",".join(filter(None, [sql_mode, "NO_AUTO_VALUE_ON_ZERO"]))],
            )
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

    def begin_restore(self, cursor) -> None:
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


BACKENDS: dict[str, type[Backend]] = {
    "sqlite": SQLiteBackend,
    "postgresql": PostgreSQLBackend,
    "mysql": MySQLBackend,
}


def backend_for(using: str) -> Backend:
    vendor = connections[using].vendor
    return BACKENDS.get(vendor, Backend)(using)
