"""What a restore changes in each table, found and applied inside its transaction.

``find_changes`` runs after the restore has locked its tables: one pass over the
file, each table merged with the database's rows (``merge``). A table whose rows to
write (deletes, inserts and updates) cost less than reloading it whole, by the
vendor's ``row_change_cost``, gets a ``TableChanges``: the keys of the rows to delete
(extra rows, and the old versions of changed rows that are deleted and inserted
again), the file's lines of the rows to insert (missing rows, and the new versions of
those changed rows), and the changed rows updated in place (``_Updates``: key,
columns, line), spooled in bounded memory (``store``). Every other table is reloaded
whole, as before; a merge stops as soon as its table is known to be one of them.

``Changes`` then does, per table, what ``restore.py`` asks:

- ``delete``: children first, every reloaded table emptied and every changed table's
  rows deleted by primary key; a changed row whose differing columns include a key
  or a unique column is deleted and inserted again, so that a unique value moving
  from one row to another never meets itself;
- ``insert``: the rows to insert, parents first, in the load's order, then the
  updates of the rows changed in place;
- ``foreign_key_values``: narrows the foreign key check of a key between changed (or
  untouched) tables to the values the written rows point at and those of the parent
  rows removed; keys touching a reloaded table are checked whole;
- ``check_written``: the read-back, limited to the rows written. Every other row of a
  changed table was compared with the file, byte for byte, in this transaction, after
  the tables were locked against every other writer; the restore's own statements
  only delete the rows they name (each DELETE's row count is checked), update the
  rows they name (the rows found counted too) and insert; the rows inserted and
  updated are read back here. What could still change a row nobody wrote is the database
  itself: triggers, or foreign keys whose ON DELETE cascades. When tables in scope
  have either, every table is read back whole instead (``side_effects``), and a table
  that differs is reloaded, as for a full restore.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from django.db import DatabaseError, transaction

from ..db.backends import Backend
from ..db.integrity import ForeignKey
from ..db.schema import aligned
from ..db.tables import TableSpec
from ..db.values import (
    block_encoder,
    column_decoder,
    column_encoder,
    owned_bytes,
    row_decoder,
)
from ..exceptions import database_message, error_text, shown_value
from ..fileformat.codec import loads_block, loads_row, pk_value
from ..fileformat.encryption import ScratchKey, scratch_key
from ..fileformat.reader import (
    BackupReader,
    TableEnd,
    TableSection,
    Verified,
    row_lines,
)
from ..progress import Progress, ProgressCallback, ignore_progress, passed_on
from ..validate import file_normaliser
from .merge import Merged, StopComparing, merge_table
from .store import Spool, Stretch

if TYPE_CHECKING:
    from ..restore import RestorePlan

# Rows a statement deletes, or reads back, at most (one parameter per key column).
STATEMENT_ROWS = 500
# Once this many rows of a table were compared, a table whose differences so far are
# twice as many as a cheap change allows is reloaded whole without merging further.
# One batch: every row of a table that changed wholesale costs a step of the merge
# (with 10,000 rows, a restore of 1M rows that all differ took 8% longer than --full).
SAMPLE_ROWS = 2_000
CONVERSION_ERRORS = (ValueError, ArithmeticError, TypeError, LookupError)


class ChangesFailed(Exception):
    """A step of writing the rows that differ failed; the message says where."""


@dataclass
class TableChanges:
    """The rows of one table a restore deletes and inserts instead of reloading it."""

    spec: TableSpec  # its fields in the file's column order
    key_columns: tuple[str, ...]  # of each removed key: the primary key, then the
    # columns other tables' foreign keys point at
    extra: int = 0  # rows only the database has: deleted
    missing: int = 0  # rows only the file has: inserted
    changed: int = 0  # rows in both with other values: updated, or deleted and
    # inserted again
    updates: int = 0  # of the changed rows, those updated
    removed: Stretch = field(default_factory=Stretch)
    added: Stretch = field(default_factory=Stretch)
    updated: Stretch = field(default_factory=Stretch)
    # For an undo file (``Changes(undo=True)``): the database's lines of the rows
    # removed, the primary keys (the file's values, as JSON) of the rows added, and
    # the table's row count and digest before the restore.
    old: Stretch = field(default_factory=Stretch)
    dropped: Stretch = field(default_factory=Stretch)
    rows_before: int = 0
    digest_before: str = ""

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def rows_removed(self) -> int:
        """Rows deleted, counting the changed rows, as a restore reports them."""
        return self.extra + self.changed

    @property
    def rows_added(self) -> int:
        """Rows written, counting the changed rows, as a restore reports them."""
        return self.missing + self.changed

    @property
    def writes(self) -> int:
        return self.rows_removed + self.rows_added


def unreadable(
    spec: TableSpec, rows: list[tuple[Any, ...]], exc: BaseException, connection: Any
) -> str:
    """Say which value of ``rows`` (as the database gave them back, after writing)
    cannot be read as its field: column and primary key, where it can be found."""
    fields = list(spec.fields)
    encoders = [
        (index, f.column, column_encoder(f, spec.table, connection))
        for index, f in enumerate(fields)
    ]
    for row in rows:
        for index, column, encoder in encoders:
            if encoder is None or row[index] is None:
                continue
            try:
                encoder(row[index])
            except CONVERSION_ERRORS as error:
                pk = shown_value(pk_value(fields, spec.pk_fields, list(row)))
                return (
                    f"{spec.label}.{column}, pk {pk}: the database does not give "
                    f"back the value written ({error_text(error)})"
                )
    return f"{spec.label}: a value does not read back ({error_text(exc)})"


def unconvertible(
    spec: TableSpec,
    rows: list[list[Any]],
    exc: BaseException,
    connection: Any,
    version: int,
) -> str:
    """Say which value of ``rows`` (as the file has them) cannot be converted to what
    the database takes: column and primary key, where it can be found."""
    fields = list(spec.fields)
    decoders = [
        (fields.index(f), f.column, column_decoder(f, connection, version))
        for f in spec.insert_fields
    ]
    for row in rows:
        if not isinstance(row, list) or len(row) != len(fields):
            return (
                f"{spec.label}: a row has {len(row)} values, the table "
                f"{len(fields)} columns"
            )
        for index, column, decoder in decoders:
            if decoder is None or row[index] is None:
                continue
            try:
                decoder(row[index])
            except CONVERSION_ERRORS as error:
                pk = shown_value(pk_value(fields, spec.pk_fields, row))
                return (
                    f"{spec.label}.{column}, pk {pk}: {shown_value(row[index])} "
                    f"cannot be converted ({error_text(error)})"
                )
    return f"{spec.label}: a value cannot be converted ({error_text(exc)})"


def refused_row(
    spec: TableSpec,
    row: list[Any],
    error: DatabaseError,
    backend: Backend,
    column: str | None = None,
) -> str:
    """Say which row of the file (and column, where the error names one) the
    database refused to write."""
    column = column or backend.failed_column(error)
    where = f"{spec.label}.{column}" if column else spec.label
    pk = shown_value(pk_value(list(spec.fields), spec.pk_fields, row))
    return f"{where}, pk {pk}: {database_message(error)}"


def reload_cheaper(writes: int, rows_now: int, rows_in_file: int, cost: float) -> bool:
    """Whether reloading a table whole costs less than writing ``writes`` rows of it
    (deletes plus inserts) one by one."""
    return writes * cost >= rows_now + rows_in_file


class _Collector:
    """The differences of one table, spooled for the restore; stops the merge once
    the table is cheaper to reload."""

    def __init__(
        self,
        changes: TableChanges,
        removed: Spool,
        added: Spool,
        key_positions: list[int],
        rows_now: int,
        rows_in_file: int,
        cost: float,
        undo: _UndoSpools | None = None,
        updates: _Updates | None = None,
    ):
        self.changes = changes
        self.removed = removed
        self.added = added
        self.undo = undo
        self.updates = updates
        self.key_positions = key_positions
        self.pk_positions = key_positions[: len(changes.spec.pk_fields)]
        self.rows_now = rows_now
        self.rows_in_file = rows_in_file
        self.cost = cost
        self.writes = 0

    def _key(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        # Spooled with pickle.
        return tuple(map(owned_bytes, map(row.__getitem__, self.key_positions)))

    def _wrote(self, rows: int) -> None:
        self.writes += rows
        if reload_cheaper(self.writes, self.rows_now, self.rows_in_file, self.cost):
            raise StopComparing

    def _dropped(self, values: list[Any]) -> None:
        if self.undo is not None:
            self.undo.dropped.add(orjson.dumps([values[i] for i in self.pk_positions]))

    def extra_row(self, line: bytes, row: tuple[Any, ...]) -> None:
        self.changes.extra += 1
        self.removed.add(self._key(row))
        if self.undo is not None:
            self.undo.old.add(line)
        self._wrote(1)

    def missing_row(self, line: bytes, values: list[Any]) -> None:
        self.changes.missing += 1
        self.added.add(line)
        self._dropped(values)
        self._wrote(1)

    def changed_row(
        self, line: bytes, values: list[Any], old_line: bytes, row: tuple[Any, ...]
    ) -> None:
        self.changes.changed += 1
        if self.undo is not None:
            self.undo.old.add(old_line)
        self._dropped(values)
        updates = self.updates
        columns = updates.columns(values, old_line) if updates is not None else None
        if updates is not None and columns:
            self.changes.updates += 1
            key = self._key(row)[: len(self.pk_positions)]
            updates.spool.add((key, columns, line))
        else:
            self.removed.add(self._key(row))
            self.added.add(line)
        # Two writes either way, as row_change_cost was measured: counted as one,
        # a table whose every row changed passed its sample at the very margin, and
        # was compared on through a third of its rows before it was reloaded.
        self._wrote(2)

    def seen(self, rows: int) -> None:
        # Changes spread over the table: judged on a sample, with a margin of two.
        if rows >= SAMPLE_ROWS and self.writes * self.cost >= 4 * rows:
            raise StopComparing


class _Updates:
    """Which changed rows of a table are updated in place, and which columns.

    A changed row is updated when none of the columns that differ is part of its
    primary key, of a key other tables point at, or of a unique constraint or index
    (or any constraint that compares rows): so an UPDATE can never meet another
    row's value half-way. Generated columns may differ too (the database computes
    them again; the read-back checks them). Every other changed row is deleted and
    inserted again. The constraints are read from the database once, at the
    table's first changed row.
    """

    def __init__(
        self,
        spec: TableSpec,
        key_columns: tuple[str, ...],
        backend: Backend,
        unique_columns: Callable[[TableSpec], set[str] | None],
        spool: Spool,
    ):
        self.spec = spec
        self.key_columns = key_columns
        self.backend = backend
        self.unique_columns = unique_columns
        self.spool = spool
        fields = spec.fields
        # Generated columns: computed by the database, never set.
        self._generated = frozenset(
            position
            for position, column_field in enumerate(fields)
            if column_field not in spec.insert_fields
        )
        # Every column an UPDATE may set: all but the key and the generated ones.
        self._every = tuple(
            position
            for position, column_field in enumerate(fields)
            if position not in self._generated and column_field not in spec.pk_fields
        )
        self._updatable: frozenset[int] | None = None

    def _read_constraints(self) -> frozenset[int]:
        """The columns of ``_every`` that no key and no unique constraint holds."""
        unique = self.unique_columns(self.spec)
        if unique is None:
            return frozenset()
        unsafe = unique | set(self.key_columns)
        columns = self.spec.columns
        return frozenset(p for p in self._every if columns[p] not in unsafe)

    def columns(self, values: list[Any], old_line: bytes) -> tuple[int, ...] | None:
        """The positions of the columns to set for a row changed from ``old_line``
        (the database's) to ``values`` (the file's), or None to delete and insert it.
        Values are compared as the file writes them: 1 and 1.0 differ."""
        if self._updatable is None:
            self._updatable = self._read_constraints()
        dumps = orjson.dumps
        changed = [
            position
            for position, (new, old) in enumerate(
                zip(values, loads_row(old_line), strict=True)
            )
            if position not in self._generated and dumps(new) != dumps(old)
        ]
        if not changed or not self._updatable.issuperset(changed):
            return None
        return self._every if self.backend.updates_every_column else tuple(changed)


class _UndoSpools:
    """What an undo file needs of the tables changed row by row."""

    def __init__(self, key: ScratchKey | None) -> None:
        self.old = Spool(key)
        self.dropped = Spool(key)

    def close(self) -> None:
        self.old.close()
        self.dropped.close()


def find_changes(
    plan: RestorePlan,
    specs: list[TableSpec],
    backend: Backend,
    progress: ProgressCallback = ignore_progress,
    *,
    undo: bool = False,
    media: Callable[[dict[str, Any], list[list[Any]]], None] | None = None,
) -> Changes:
    """Compare every table in scope with the file (``plan``'s, read again and checked
    as it goes); return what to write for the tables cheaper to change than to
    reload. To be called inside the restore's transaction, after its locks.

    With ``undo``, what an undo file needs is kept too (``undo_lines``). A plan
    that is not ``verified`` (made from the header alone) is checked by this read:
    ``Changes.read`` holds what it found. ``media(header, entries)`` is handed the
    media manifest's entries, as ``verify_file`` hands them."""
    key = scratch_key(plan.source.is_encrypted())
    changes = Changes(plan, specs, backend, undo=undo, key=key)
    try:
        changes._find(progress, media)
    except BaseException:
        changes.close()
        raise
    return changes


class Changes:
    """The tables a restore changes row by row, and how; every other table in scope
    is reloaded whole. ``Changes.none(...)`` reloads every table."""

    def __init__(
        self,
        plan: RestorePlan,
        specs: list[TableSpec],
        backend: Backend,
        *,
        undo: bool = False,
        key: ScratchKey | None = None,
    ):
        self.plan = plan
        self.specs = specs
        self.backend = backend
        self.version = plan.header["version"]
        self.tables: dict[str, TableChanges] = {}
        self.by_table = {spec.table: spec for spec in specs}
        self.side_effects = False
        # Rows spilled to disk are encrypted to ``key`` (``scratch_key``).
        self._removed = Spool(key)
        self._added = Spool(key)
        # (primary key, positions of the columns to set, the file's line)
        self._updated = Spool(key)
        self._unique: Callable[[TableSpec], set[str] | None] = backend.unique_columns
        self._undo = _UndoSpools(key) if undo else None
        # What the comparison's read found, for a plan that was not checked before.
        self.read: Verified | None = None

    @classmethod
    def none(
        cls, plan: RestorePlan, specs: list[TableSpec], backend: Backend
    ) -> Changes:
        """No table changed row by row: a full restore."""
        return cls(plan, specs, backend)

    def __contains__(self, label: str) -> bool:
        return label in self.tables

    def close(self) -> None:
        for spool in (self._removed, self._added, self._updated):
            spool.close()
        if self._undo is not None:
            self._undo.close()

    def undo_lines(self, label: str) -> tuple[Iterator[bytes], Iterator[bytes]]:
        """For an undo file, of a table changed row by row: the lines of the rows
        it removes (as the database held them), and the primary keys of the rows
        it adds, each in primary key order."""
        assert self._undo is not None  # found with undo=True
        table = self.tables[label]
        return (
            (line for lines in self._undo.old.chunks(table.old) for line in lines),
            (key for keys in self._undo.dropped.chunks(table.dropped) for key in keys),
        )

    # -- finding -----------------------------------------------------------------------

    def _find(
        self,
        progress: ProgressCallback,
        media: Callable[[dict[str, Any], list[list[Any]]], None] | None,
    ) -> None:
        plan, backend = self.plan, self.backend
        by_label = {spec.label: spec for spec in self.specs}
        with_triggers = backend.trigger_tables()
        self.side_effects = any(
            spec.table in with_triggers for spec in self.specs
        ) or backend.deletes_cascade(self.specs)
        referenced: dict[str, list[str]] = {}
        for fk in backend.foreign_keys(self.specs):
            columns = referenced.setdefault(fk.parent_table, [])
            if fk.parent_column not in columns:
                columns.append(fk.parent_column)
        self._unique = backend.unique_column_finder(self.specs)
        rows_now = {table.label: table.rows_now or 0 for table in plan.tables}
        progress = passed_on(progress, stage_total=plan.rows_now)
        progress(Progress("compare", "", 0, None))
        ends: dict[str, TableEnd] = {}
        with plan.source.open() as stream:
            reader = BackupReader(stream, plan.source.name)
            reader.expect(plan.header, plan.digest)
            for section in reader.tables(media=media is not None):
                if section is reader.media:
                    assert media is not None  # asked for with it
                    reader.media.hand_over(media)
                    continue
                self._table(section, by_label, rows_now, referenced, progress)
                assert section.end is not None  # read to its end
                ends[section.label] = section.end
        if not plan.verified:
            self.read = reader.verified(ends)

    def _table(
        self,
        section: TableSection,
        by_label: dict[str, TableSpec],
        rows_now: dict[str, int],
        referenced: dict[str, list[str]],
        progress: ProgressCallback,
    ) -> None:
        spec = by_label.get(section.label)
        now = rows_now.get(section.label, 0)
        end = self.plan.ends.get(section.label)
        # A plan made from the header alone does not know the file's rows yet: the
        # database's count stands in for them where the cost of a reload is weighed.
        in_file = now if end is None else end.rows
        if spec is None or (
            end is not None
            and (now or in_file)
            and reload_cheaper(
                abs(now - in_file), now, in_file, self.backend.row_change_cost
            )
        ):
            # Known without comparing: at least the difference in rows must be
            # written (a table emptied, or loaded into an empty table).
            section.skip()
            return
        spec = aligned(spec, section.columns)
        self._compare(spec, section, referenced, now, in_file, progress)

    def _compare(
        self,
        spec: TableSpec,
        section: TableSection,
        referenced: dict[str, list[str]],
        now: int,
        in_file: int,
        progress: ProgressCallback,
    ) -> None:
        columns = list(spec.columns)
        key_columns = list(spec.pk_columns)
        key_columns += [
            c for c in referenced.get(spec.table, ()) if c not in key_columns
        ]
        table = TableChanges(spec, tuple(key_columns))
        table.removed = self._removed.begin()
        table.added = self._added.begin()
        table.updated = self._updated.begin()
        digest = None
        if self._undo is not None:
            table.old = self._undo.old.begin()
            table.dropped = self._undo.dropped.begin()
            digest = hashlib.sha256()
        normalise = file_normaliser(spec, self.plan.header, self.backend.connection)
        collector = _Collector(
            table,
            self._removed,
            self._added,
            [columns.index(c) for c in key_columns],
            now,
            in_file,
            self.backend.row_change_cost,
            self._undo,
            # In place where nothing but these rows can change: no triggers or
            # cascades, and values spelled as this database spells them.
            None
            if self.side_effects or normalise is not None
            else _Updates(
                spec, table.key_columns, self.backend, self._unique, self._updated
            ),
        )
        try:
            merged: Merged | None = merge_table(
                spec,
                section,
                self.backend,
                collector,
                normalise=normalise,
                progress=progress,
                stage="compare",
                digest=digest,
                first=SAMPLE_ROWS,
                checked=self._undo is not None,
            )
        except CONVERSION_ERRORS:
            # A stored value its field cannot read (SQLite keeps anything) cannot
            # be compared: the table is reloaded whole, which replaces it. (Its
            # safety backup, if one is taken, names the value and refuses.)
            section.skip()
            merged = None
        self._removed.end()
        self._added.end()
        self._updated.end()
        if self._undo is not None:
            self._undo.old.end()
            self._undo.dropped.end()
        if merged is None:
            return
        if digest is not None:
            table.rows_before = merged.db_rows
            table.digest_before = digest.hexdigest()
        if merged.complete:
            self.tables[spec.label] = table

    # -- what a restore reports ----------------------------------------------------------

    @property
    def written(self) -> int:
        """Rows the restore inserts, over every table."""
        return self.rows_inserted(self.plan)

    @property
    def read_back(self) -> int:
        """Rows the restore reads back before commit, over every table."""
        return sum(
            self.tables[t.label].rows_added
            if t.label in self.tables and not self.side_effects
            else t.rows_in_file or 0
            for t in self.plan.tables
        )

    def rows_deleted(self, plan: RestorePlan) -> int:
        return sum(
            self.tables[t.label].rows_removed
            if t.label in self.tables
            else t.rows_now or 0
            for t in plan.tables
        )

    def rows_inserted(self, plan: RestorePlan) -> int:
        return sum(
            self.tables[t.label].rows_added
            if t.label in self.tables
            else t.rows_in_file or 0
            for t in plan.tables
        )

    @property
    def rows_updated(self) -> int:
        return sum(table.changed for table in self.tables.values())

    # -- applying --------------------------------------------------------------------------

    def delete(self, progress: ProgressCallback = ignore_progress) -> None:
        """Empty the tables reloaded whole and delete the rows that go from the others,
        children first."""
        for spec in reversed(self.specs):
            table = self.tables.get(spec.label)
            if table is None:
                self.backend.empty(spec)
            elif table.removed.rows:
                self._delete_rows(table, progress)

    def _delete_rows(self, table: TableChanges, progress: ProgressCallback) -> None:
        spec = table.spec
        width = len(spec.pk_fields)
        deleted = 0
        for chunk in self._removed.chunks(table.removed):
            for start in range(0, len(chunk), STATEMENT_ROWS):
                keys = [key[:width] for key in chunk[start : start + STATEMENT_ROWS]]
                deleted += self.backend.delete_rows(spec, keys)
            progress(Progress("delete", spec.label, deleted, table.rows_removed))
        if deleted != table.removed.rows and not self.side_effects:
            raise ChangesFailed(
                f"{spec.label}: {deleted} rows deleted where {table.removed.rows} "
                "were found to go; the table changed while the restore held it"
            )

    def insert(
        self, spec: TableSpec, progress: ProgressCallback = ignore_progress
    ) -> None:
        """Insert the table's rows that the database lacks or holds otherwise, and
        update those changed in place."""
        table = self.tables[spec.label]
        if not table.rows_added:
            return
        spec = table.spec
        decode = row_decoder(
            list(spec.fields),
            list(spec.insert_fields),
            self.backend.connection,
            self.version,
        )
        if table.added.rows:
            try:
                with transaction.atomic(using=self.backend.using):
                    self.backend.insert_rows(
                        spec, self._batches(table, decode, progress)
                    )
            except DatabaseError as exc:
                if self.side_effects:
                    # Something the database did by itself (a trigger) may be in
                    # the way: the whole read-back finds the table differing and
                    # reloads it.
                    return
                raise ChangesFailed(self._insert_failure(table, exc)) from exc
        if table.updates:
            self._update(table, decode, progress)

    def _update(
        self,
        table: TableChanges,
        decode: Callable[[list[Any]], tuple[Any, ...]],
        progress: ProgressCallback,
    ) -> None:
        """Set the changed columns of the rows changed in place, by primary key."""
        spec = table.spec
        # Where each column is in a decoded row (insert_fields, in file order).
        decoded_at = {
            list(spec.fields).index(column_field): index
            for index, column_field in enumerate(spec.insert_fields)
        }
        found = 0
        done = table.added.rows
        for chunk in self._updated.chunks(table.updated):
            rows = loads_block(b"".join(line + b"\n" for _, _, line in chunk))
            # One statement per set of columns: one in all on most vendors.
            groups: dict[tuple[int, ...], list[tuple[Any, ...]]] = {}
            try:
                for (key, positions, _), row in zip(chunk, rows, strict=True):
                    values = decode(list(row))
                    groups.setdefault(positions, []).append(
                        (*(values[decoded_at[p]] for p in positions), *key)
                    )
            except CONVERSION_ERRORS as exc:
                raise ChangesFailed(
                    unconvertible(
                        table.spec, rows, exc, self.backend.connection, self.version
                    )
                ) from exc
            for positions, params in groups.items():
                columns = [spec.columns[p] for p in positions]
                try:
                    with transaction.atomic(using=self.backend.using):
                        found += self.backend.update_rows(spec, columns, params)
                except DatabaseError as exc:
                    raise ChangesFailed(
                        self._update_failure(table, columns, params, exc)
                    ) from exc
            done += len(chunk)
            progress(
                Progress("restore", table.label, done, table.rows_added, self.written)
            )
        if found != table.updates:
            raise ChangesFailed(
                f"{spec.label}: {found} rows found to update where {table.updates} "
                "were found changed; the table changed while the restore held it"
            )

    def _update_failure(
        self,
        table: TableChanges,
        columns: list[str],
        params: list[tuple[Any, ...]],
        exc: DatabaseError,
    ) -> str:
        """Find the row whose update the database refused, and the column where it
        can: updating the rows again one at a time, then that row's columns one at a
        time, each in a savepoint."""
        spec = table.spec
        width = len(spec.pk_fields)
        for row in params:
            error = self._update_error(spec, columns, row)
            if error is None:
                continue
            key = row[len(columns) :]
            where = spec.label
            for index, column in enumerate(columns):
                alone = self._update_error(spec, [column], (row[index], *key))
                if alone is not None:
                    where, error = f"{spec.label}.{column}", alone
                    break
            pk = shown_value(key[0] if width == 1 else list(key))
            return f"{where}, pk {pk}: {database_message(error)}"
        return f"{spec.label}: {database_message(exc)}"

    def _update_error(
        self, spec: TableSpec, columns: list[str], row: tuple[Any, ...]
    ) -> DatabaseError | None:
        try:
            with transaction.atomic(using=self.backend.using):
                self.backend.update_row(spec, columns, row)
        except DatabaseError as error:
            return error
        return None

    def _batches(
        self,
        table: TableChanges,
        decode: Callable[[list[Any]], tuple[Any, ...]],
        progress: ProgressCallback,
    ) -> Iterator[list[tuple[Any, ...]]]:
        done = 0
        for lines in self._added.chunks(table.added):
            rows = loads_block(b"\n".join(lines) + b"\n")
            try:
                decoded = [decode(list(row)) for row in rows]
            except CONVERSION_ERRORS as exc:
                raise ChangesFailed(
                    unconvertible(
                        table.spec, rows, exc, self.backend.connection, self.version
                    )
                ) from exc
            yield decoded
            done += len(decoded)
            progress(
                Progress("restore", table.label, done, table.rows_added, self.written)
            )

    def _pk(self, table: TableChanges, row: list[Any]) -> str:
        return shown_value(pk_value(list(table.spec.fields), table.spec.pk_fields, row))

    def _insert_failure(self, table: TableChanges, exc: DatabaseError) -> str:
        """Find the row the database refused: the one COPY names, or, inserting the
        rows again one at a time in savepoints, the first that fails."""
        located = self.backend.failed_row(exc)
        spec = table.spec
        if located is not None:
            index, column = located
            for position, row in enumerate(self._rows_added(table)):
                if position == index:
                    return refused_row(spec, row, exc, self.backend, column)
        decode = row_decoder(
            list(spec.fields),
            list(spec.insert_fields),
            self.backend.connection,
            self.version,
        )
        for row in self._rows_added(table):
            try:
                with transaction.atomic(using=self.backend.using):
                    self.backend.insert_row(spec, decode(list(row)))
            except DatabaseError as error:
                return refused_row(spec, row, error, self.backend)
        return f"{spec.label}: {database_message(exc)}"

    def _written(self, table: TableChanges) -> Iterator[list[bytes]]:
        """The file's lines of the rows written to ``table``: inserted, then
        updated, in lists."""
        yield from self._added.chunks(table.added)
        for chunk in self._updated.chunks(table.updated):
            yield [line for _, _, line in chunk]

    def _rows_added(self, table: TableChanges) -> Iterator[list[Any]]:
        for lines in self._added.chunks(table.added):
            yield from loads_block(b"\n".join(lines) + b"\n")

    # -- checking --------------------------------------------------------------------------

    def foreign_key_values(self, fk: ForeignKey) -> Iterator[list[Any]] | None:
        """The values to check ``fk`` for, in lists of parameters, or None to check
        every row (a table at either end was reloaded whole, or the database may
        have written to the tables by itself)."""
        if self.side_effects:
            return None
        child = self.by_table.get(fk.table)
        parent = self.by_table.get(fk.parent_table)
        for spec in (child, parent):
            if spec is not None and spec.label not in self.tables:
                return None
        parent_changes = self.tables.get(parent.label) if parent else None
        if parent_changes and fk.parent_column not in parent_changes.key_columns:
            return None
        child_changes = self.tables.get(child.label) if child else None
        return self._values(fk, child_changes, parent_changes)

    def _values(
        self,
        fk: ForeignKey,
        child: TableChanges | None,
        parent: TableChanges | None,
    ) -> Iterator[list[Any]]:
        pending: dict[Any, None] = {}
        if parent is not None:
            position = parent.key_columns.index(fk.parent_column)
            for keys in self._removed.chunks(parent.removed):
                for key in keys:
                    if key[position] is not None:
                        pending[key[position]] = None
                if len(pending) >= STATEMENT_ROWS:
                    yield list(pending)
                    pending = {}
        if child is not None:
            spec = child.spec
            index = list(spec.columns).index(fk.column)
            decode = column_decoder(
                spec.fields[index], self.backend.connection, self.version
            )
            for lines in self._written(child):
                for row in loads_block(b"\n".join(lines) + b"\n"):
                    value = row[index]
                    if value is not None:
                        pending[decode(value) if decode else value] = None
                if len(pending) >= STATEMENT_ROWS:
                    yield list(pending)
                    pending = {}
        if pending:
            yield list(pending)

    def check_written(self, progress: ProgressCallback = ignore_progress) -> None:
        """Read back every row written to a changed table; each must be the file's.

        Not needed, and not done, when the whole tables are read back anyway
        (``side_effects``)."""
        if self.side_effects:
            return
        for table in self.tables.values():
            if table.rows_added:
                self._check_table(table, progress)

    def _check_table(self, table: TableChanges, progress: ProgressCallback) -> None:
        spec = table.spec
        connection = self.backend.connection
        encode = block_encoder(spec.fields, spec.table, connection)
        normalise = file_normaliser(spec, self.plan.header, connection)
        fields = list(spec.fields)
        keys = [
            (fields.index(f), column_decoder(f, connection, self.version))
            for f in spec.pk_fields
        ]
        done = 0
        for lines in self._written(table):
            for start in range(0, len(lines), STATEMENT_ROWS):
                part = lines[start : start + STATEMENT_ROWS]
                rows = loads_block(b"\n".join(part) + b"\n")
                params = [
                    row[i] if decode is None else decode(row[i])
                    for row in rows
                    for i, decode in keys
                ]
                found = self.backend.fetch_rows(
                    spec, self.backend.key_in_sql(spec, len(rows)), params
                )
                try:
                    written = row_lines(encode(found))
                except CONVERSION_ERRORS as exc:
                    raise ChangesFailed(
                        unreadable(spec, found, exc, connection)
                    ) from exc
                if normalise is not None:
                    written = [normalise(line) for line in written]
                    part = [normalise(line) for line in part]
                if written != part:
                    raise ChangesFailed(self._difference(table, rows, part, written))
                done += len(part)
                progress(
                    Progress(
                        "verify-written",
                        spec.label,
                        done,
                        table.rows_added,
                        self.read_back,
                    )
                )

    def _difference(
        self,
        table: TableChanges,
        rows: list[list[Any]],
        expected: list[bytes],
        written: list[bytes],
    ) -> str:
        wanted = set(expected)
        same = sum(1 for line in written if line in wanted)
        pk = "?"
        for index, line in enumerate(expected):
            if index >= len(written) or written[index] != line:
                pk = self._pk(table, rows[index])
                break
        return (
            f"{table.label}: the database does not hold the backup's values after "
            f"writing ({len(expected)} rows written, {same} read back as written; "
            f"first difference at pk {pk}). The target cannot store some values "
            "exactly."
        )
