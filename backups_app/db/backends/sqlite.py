"""SQLite: pragmas, text datetimes and decimals, the restore's page cache."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from django.db import DatabaseError
from django.db.models import Field

from ...fileformat.codec import TEMPORAL_KINDS, kind
from ..tables import TableSpec
from .base import Backend, SequenceSettlement, writer_error

# SQLite's page cache while a restore writes (PRAGMA cache_size, in KiB).
# "NOT NULL constraint failed: app_table.column"
NOT_NULL = re.compile(r"^NOT NULL constraint failed: [^.\s]+\.(?P<column>\S+)$")

RESTORE_CACHE_KIB = 32 * 1024


class SQLiteBackend(Backend):
    _foreign_keys_off = False
    updates_every_column = False

    def select_column(self, field: Field[Any, Any]) -> str:
        column = super().select_column(field)
        if kind(field) in TEMPORAL_KINDS:
            # As text, so that sqlite3's per-value parsing (Django registers it for
            # these declared types) is skipped; the text is already nearly the
            # file's form (codec.sqlite_temporal_encoder).
            return f"CAST({column} AS TEXT)"
        # Not through the converter sqlite3 runs for a declared type Django
        # registers one for ("bool"): it makes False of a 2 or a 't' that another
        # program stored, where Django's own converter leaves them as they are, for
        # a backup to refuse as no booleans. An expression has no declared type.
        return f"+{column}"

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
            before = self._pragma("cache_size") or 0
            cached = (
                -before
                if before < 0
                else before * (self._pragma("page_size") or 0) // 1024
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

    def failed_column(self, exc: BaseException) -> str | None:
        found = NOT_NULL.match(str(exc))
        return found["column"] if found else None

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
            keys: list[tuple[str, str, str, str | None]] = cursor.fetchall()
        return keys

    def deletes_cascade(self, specs: list[TableSpec]) -> bool:
        # Actions only run while foreign keys are enforced: not during a restore,
        # unless it runs inside a transaction opened before (tests).
        if not self._pragma("foreign_keys"):
            return False
        tables = {spec.table for spec in specs}
        with self.connection.cursor() as cursor:
            cursor.execute(
                'SELECT m.name, p."table" FROM sqlite_master m, '
                "pragma_foreign_key_list(m.name) p WHERE m.type = 'table' "
                "AND p.on_delete NOT IN ('NO ACTION', 'RESTRICT')"
            )
            return any(
                child in tables and parent in tables
                for child, parent in cursor.fetchall()
            )

    def unique_column_finder(
        self, specs: list[TableSpec]
    ) -> Callable[[TableSpec], set[str] | None]:
        # The unique indexes of every table, those of UNIQUE and PRIMARY KEY
        # constraints too, in one query (an expression's column has no name).
        # Django's introspection parses each table's SQL with sqlparse: 0.1 s of a
        # restore of the demo's 20 tables with 1% of their rows changed.
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT m.name, c.name FROM sqlite_master m, "
                "pragma_index_list(m.name) i, pragma_index_info(i.name) c "
                "WHERE m.type = 'table' AND i.\"unique\""
            )
            return self.unique_columns_by_table(cursor.fetchall())

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
                # A MAX alone in a scalar subquery is one step down the key's
                # index; beside a COUNT(*), or in a FROM subquery, SQLite reads the
                # whole table (0.1 s of a 1M-row restore).
                cursor.execute(
                    "INSERT INTO sqlite_sequence (name, seq) SELECT %s, "
                    f"(SELECT MAX({self.quote(spec.pk_columns[0])}) "
                    f"FROM {self.quote(spec.table)}) AS seq WHERE seq IS NOT NULL",
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
