"""The base of every vendor: snapshots, streaming reads, bulk writes, locks, checks.

Everything goes through Django's connection; no client binaries are involved.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any

from django.core.management.color import no_style
from django.db import connections, transaction
from django.db.models import Field

from ...exceptions import RestoreError
from ...fileformat.codec import TEXT_KINDS, kind
from ..integrity import (
    ForeignKey,
    catalog_foreign_keys,
    model_foreign_keys,
    orphan_message,
    orphan_sql,
    parents_sql,
)
from ..tables import TableSpec, column_of
from ..values import owned_bytes

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


class Backend:
    """Operations shared by every vendor; subclasses override what their vendor needs."""

    # How many rows a full reload of a table writes (deletes and inserts) in the
    # time a restore of only the rows that differ deletes or inserts one: a table is
    # changed row by row while its rows to write, times this, are fewer than a
    # reload's. Measured with bench/run.py --change-fraction (docs/benchmarks.md).
    row_change_cost = 4.0
    # A changed row's UPDATE sets every column but the primary key (the database
    # leaves what did not change alone, and a column that would update itself, as
    # MySQL's ON UPDATE CURRENT_TIMESTAMP, gets its value), or only the columns
    # that changed (SQLite rewrites the index entries of every column it sets).
    updates_every_column = True

    def __init__(self, using: str):
        self.using = using
        self.connection = connections[using]
        self.quote = self.connection.ops.quote_name

    # -- reading -------------------------------------------------------------------

    def order_by_sql(self, spec: TableSpec) -> str:
        return ", ".join(self.order_column(field) for field in spec.pk_fields)

    def order_column(self, field: Field[Any, Any]) -> str:
        """Return what sorts a primary key column in the format's order: text by
        code point, UUIDs as their lower-case hyphenated text, numbers, dates and
        times by value (which is their text order too)."""
        column = self.quote(column_of(field))
        if kind(field) in TEXT_KINDS or kind(field) == "GenericIPAddressField":
            return self.binary_order(column)
        # UUIDs as char(32) of lower-case hex (SQLite, MySQL) or PostgreSQL's uuid
        # (compared byte by byte) already sort as their hyphenated text.
        return column

    def binary_order(self, column: str) -> str:
        """Make text sort by code point, the same on every vendor."""
        return f"{column} COLLATE BINARY"

    def select_column(self, field: Field[Any, Any]) -> str:
        return self.quote(column_of(field))

    def select_sql(self, spec: TableSpec, where: str = "") -> str:
        columns = ", ".join(self.select_column(f) for f in spec.fields)
        return (
            f"SELECT {columns} FROM {self.quote(spec.table)} "
            + (f"WHERE {where} " if where else "")
            + f"ORDER BY {self.order_by_sql(spec)}"
        )

    def key_in_sql(self, spec: TableSpec, count: int) -> str:
        """Return a condition on the primary key: one of ``count`` keys (parameters,
        a value per key column)."""
        columns = [self.quote(column_of(f)) for f in spec.pk_fields]
        if len(columns) == 1:
            return f"{columns[0]} IN ({', '.join(['%s'] * count)})"
        one = f"({', '.join(['%s'] * len(columns))})"
        return f"({', '.join(columns)}) IN ({', '.join([one] * count)})"

    def fetch_rows(
        self, spec: TableSpec, where: str, params: list[Any]
    ) -> list[tuple[Any, ...]]:
        """Return the rows that ``where`` selects, in primary key order, as
        ``stream_rows`` gives them: a few rows, read at once."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_sql(spec, where), params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

    def stream_rows(
        self, spec: TableSpec, batch_size: int, *, first: int | None = None
    ) -> Generator[list[tuple[Any, ...]], None, None]:
        """Yield the table's rows in primary key order, in lists of raw tuples.

        ``first``: the caller may well stop after this many rows (a backend whose
        cursors cannot stop early at no cost reads them in a query of their own)."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.select_sql(spec))
            while rows := cursor.fetchmany(batch_size):
                yield rows

    def count(self, spec: TableSpec) -> int:
        with self.connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {self.quote(spec.table)}")
            count: int = cursor.fetchone()[0]
        return count

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the block in one read transaction that sees a single point in time."""
        outermost = not self.connection.in_atomic_block
        with transaction.atomic(using=self.using):
            if outermost:
                with self.connection.cursor() as cursor:
                    self.begin_snapshot(cursor)
            yield

    def begin_snapshot(self, cursor: Any) -> None:
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

    def delete_rows(self, spec: TableSpec, keys: list[tuple[Any, ...]]) -> int:
        """Delete the rows with these primary keys (tuples of the key's columns, as
        ``stream_rows`` gave them); return how many the database deleted."""
        params = [value for key in keys for value in key]
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {self.quote(spec.table)} "
                f"WHERE {self.key_in_sql(spec, len(keys))}",
                params,
            )
            deleted: int = cursor.rowcount
        return deleted

    def update_sql(self, spec: TableSpec, columns: list[str]) -> str:
        assignments = ", ".join(f"{self.quote(column)} = %s" for column in columns)
        where = " AND ".join(f"{self.quote(column)} = %s" for column in spec.pk_columns)
        return f"UPDATE {self.quote(spec.table)} SET {assignments} WHERE {where}"

    def update_rows(
        self, spec: TableSpec, columns: list[str], rows: list[tuple[Any, ...]]
    ) -> int:
        """Set ``columns`` of rows found by primary key: each row is the columns'
        decoded values, then its key (as ``stream_rows`` gave it). Return how many
        rows the database found."""
        with self.connection.cursor() as cursor:
            cursor.executemany(self.update_sql(spec, columns), rows)
            found: int = cursor.rowcount
        return found

    def update_row(
        self, spec: TableSpec, columns: list[str], row: tuple[Any, ...]
    ) -> int:
        """Update one row, as ``update_rows`` does, with a plain UPDATE: to find the
        row and column of a failed batch."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.update_sql(spec, columns), row)
            found: int = cursor.rowcount
        return found

    def unique_columns(self, spec: TableSpec) -> set[str] | None:
        """The columns of the table's unique constraints and indexes, and of any
        other constraint that is not a check, a foreign key or a plain index (such
        as PostgreSQL's exclusion constraints): an UPDATE of one could meet another
        row's value. None when one is on an expression, whose columns are unknown."""
        with self.connection.cursor() as cursor:
            constraints = self.connection.introspection.get_constraints(
                cursor, spec.table
            )
        columns: set[str] = set()
        for constraint in constraints.values():
            plain = (
                constraint["check"]
                or constraint["foreign_key"]
                or (constraint["index"] and not constraint["unique"])
            )
            if plain and not constraint["primary_key"]:
                continue
            names = constraint["columns"]
            if not names or None in names:
                return None
            columns.update(names)
        return columns

    def unique_column_finder(
        self, specs: list[TableSpec]
    ) -> Callable[[TableSpec], set[str] | None]:
        """Return ``unique_columns`` for each of ``specs``, to be asked while their
        rows stream in: here, each table's constraints are read when first asked."""
        return self.unique_columns

    @staticmethod
    def unique_columns_by_table(
        rows: Iterable[tuple[str, str | None]],
    ) -> Callable[[TableSpec], set[str] | None]:
        """``unique_columns`` from the ``(table, column)`` of every column of every
        unique index of the database (a column None: a part on an expression)."""
        unique: dict[str, set[str] | None] = {}
        for table, column in rows:
            columns = unique.setdefault(table, set())
            if columns is not None:
                if column is None:
                    unique[table] = None
                else:
                    columns.add(column)
        return lambda spec: unique.get(spec.table, set())

    def deletes_cascade(self, specs: list[TableSpec]) -> bool:
        """Whether deleting rows of these tables makes the database change rows of
        them by itself (ON DELETE CASCADE, SET NULL or SET DEFAULT), now."""
        return False

    def trigger_tables(self) -> set[str]:
        """Return the names of the tables that carry triggers of their own."""
        return set()

    def insert_into_sql(self, spec: TableSpec) -> str:
        """``INSERT INTO table (columns)``: an INSERT up to its VALUES."""
        columns = ", ".join(self.quote(column_of(f)) for f in spec.insert_fields)
        return f"INSERT INTO {self.quote(spec.table)} ({columns})"

    def insert_sql(self, spec: TableSpec) -> str:
        placeholders = ", ".join(["%s"] * len(spec.insert_fields))
        return f"{self.insert_into_sql(spec)} VALUES ({placeholders})"

    def insert_rows(
        self, spec: TableSpec, batches: Iterable[list[tuple[Any, ...]]]
    ) -> int:
        """Insert already decoded rows; return how many were written."""
        sql = self.insert_sql(spec)
        written = 0
        with self.connection.cursor() as cursor:
            for rows in batches:
                cursor.executemany(sql, rows)
                written += len(rows)
        return written

    def insert_row(self, spec: TableSpec, row: tuple[Any, ...]) -> None:
        """Insert one decoded row: to find which row of a failed batch is at fault."""
        with self.connection.cursor() as cursor:
            cursor.execute(self.insert_sql(spec), row)

    def failed_row(self, exc: BaseException) -> tuple[int, str | None] | None:
        """Return the 0-based row of the last insert that ``exc`` names, and its column.

        None when the error does not say (only PostgreSQL's COPY does).
        """
        return None

    def failed_column(self, exc: BaseException) -> str | None:
        """Return the column a refused single-row write names in ``exc``, if any."""
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

    def foreign_keys(self, specs: list[TableSpec]) -> list[ForeignKey]:
        """Return the foreign keys a restore of ``specs`` could break: those of the
        restored tables, and those of other tables that point into them."""
        with self.connection.cursor() as cursor:
            existing = set(self.connection.introspection.table_names(cursor))
        keys = model_foreign_keys(specs, self.using, existing)
        if self.foreign_keys_unchecked():
            # Enforcement was off while writing, so rows of tables that no model
            # owns may be left pointing at replaced rows: the database's catalog
            # names their foreign keys, in one query.
            keys += catalog_foreign_keys(self.catalog_foreign_keys(), keys, specs)
        return keys

    def check_constraints(
        self,
        specs: list[TableSpec],
        values: Callable[[ForeignKey], Iterable[list[Any]] | None] | None = None,
    ) -> str | None:
        """Check the foreign keys a restore of ``specs`` could break.

        Return a message naming the first row that points at a missing parent, or
        None. One anti-join per foreign key column (db/integrity.py) instead of Django's
        per-table introspection. ``values`` may narrow a key's check to the rows
        whose foreign key holds given values (lists of parameters), or, returning
        None, leave it whole.
        """
        keys = self.foreign_keys(specs)
        with self.connection.cursor() as cursor:
            for fk in keys:
                chunks = None if values is None else values(fk)
                if chunks is None:
                    if not self.may_have_orphans(cursor, fk):
                        continue
                    cursor.execute(orphan_sql(fk, self.quote))
                    row = cursor.fetchone()
                    if row is not None:
                        return orphan_message(fk, row)
                    continue
                for chunk in chunks:
                    # Only values no parent row holds can have orphans: looking
                    # for their children alone spares the child table a scan
                    # (which the planner may choose for a long list of values).
                    absent = self._parentless(cursor, fk, chunk)
                    if not absent:
                        continue
                    cursor.execute(orphan_sql(fk, self.quote, len(absent)), absent)
                    row = cursor.fetchone()
                    if row is not None:
                        return orphan_message(fk, row)
        return None

    def may_have_orphans(self, cursor: Any, fk: ForeignKey) -> bool:
        """Whether ``fk``'s table may hold a row whose parent is missing, by a query
        cheaper than the one that names the row. True here: a backend without such
        a query always runs that one."""
        return True

    def _parentless(self, cursor: Any, fk: ForeignKey, values: list[Any]) -> list[Any]:
        """The values among ``values`` that may lack a parent row: all but those the
        parent table returns as equal (a value of another type than the driver
        returns, a UUID given as text say, is kept, to be checked by the database)."""
        cursor.execute(parents_sql(fk, self.quote, len(values)), values)
        present = {owned_bytes(value) for (value,) in cursor.fetchall()}
        return [value for value in values if value not in present]

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

    def begin_restore(self, cursor: Any) -> None:
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
