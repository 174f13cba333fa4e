"""Compare one table of a backup with the database: a streaming merge by primary key.

Both sides come in primary key order: the database's rows from ``stream_rows`` (the
format's binary order on every vendor), the file's as written. The database's rows
are encoded a batch at a time into the very bytes a backup would hold; a batch that
is exactly the file's next bytes is a batch of equal rows, found with one comparison
of bytes. Where a batch differs, the run of equal rows before the difference is found
by comparing ever longer prefixes (1, 2, 4, ... lines, then halving), the one row that
differs is looked at by its primary key, and comparing bytes resumes right after it.
So rows that differ cost a few comparisons each, wherever they lie, and the file's
rows that equal the database's are never split into lines or parsed.

What differs is handed to a ``Differences`` object (a tally for a report, or the
restore's collector); it may stop the merge early by raising ``StopComparing``.
Memory is a batch of the database's rows and the reader's buffer.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, Protocol

from ..changes import FieldChange, changed_fields
from ..conf import app_settings
from ..db.backends import Backend
from ..db.tables import TableSpec
from ..db.values import block_encoder
from ..exceptions import BackupFormatError
from ..fileformat.codec import loads_row, pk_key_function, pk_value
from ..fileformat.reader import TableSection
from ..progress import Progress, ProgressCallback, ignore_progress

MAX_EXAMPLES = 5


class StopComparing(Exception):  # noqa: N818 (a signal, not an error)
    """Raised by a ``Differences`` object that has seen enough."""


class Differences(Protocol):
    """What a merge reports, row by row, in primary key order."""

    def extra_row(self, line: bytes, row: tuple[Any, ...]) -> None:
        """A row of the database that the file lacks: its line and the driver's row."""

    def missing_row(self, line: bytes, values: list[Any]) -> None:
        """A row of the file that the database lacks: its line and values."""

    def changed_row(
        self, line: bytes, values: list[Any], old_line: bytes, row: tuple[Any, ...]
    ) -> None:
        """A row in both with other values: the file's, then the database's."""

    def seen(self, rows: int) -> None:
        """The merge has read ``rows`` rows of the database so far."""


@dataclass(frozen=True)
class Merged:
    db_rows: int  # rows of the database read (all of them, unless stopped)
    complete: bool  # False when the Differences object stopped the merge


def merge_table(
    spec: TableSpec,
    section: TableSection,
    backend: Backend,
    differences: Differences,
    *,
    normalise: Callable[[bytes], bytes] | None = None,
    progress: ProgressCallback = ignore_progress,
    stage: str = "validate",
    digest: Any = None,
    first: int | None = None,
    checked: bool = False,
) -> Merged:
    """Merge the database's rows of ``spec`` with the file's, in ``section``.

    With ``normalise`` (a file from another vendor or format version, whose values
    may be spelled otherwise), rows are compared line by line in normalised form.
    Reads the section to its end, so that its digest is checked, even when stopped.
    ``digest`` (a hashlib object), when given, is fed the database's rows as a
    backup would write them: the table's digest, if the merge completes.
    ``first``: the rows after which ``differences`` is likely to stop the merge.
    ``checked``: the database's lines go into a file (an undo file), and a value of
    another type than its field's is refused (``values.batch_encoder``).
    """
    key = pk_key_function(spec.fields, spec.pk_fields)
    encode = block_encoder(spec.fields, spec.table, backend.connection, checked=checked)
    merge = _Merge(spec, section, key, differences, normalise)
    db_rows = 0
    complete = True
    batch_size = app_settings.BATCH_SIZE
    # Closed on the way out, read to the end or not: a server-side cursor must be
    # closed inside its transaction.
    with closing(backend.stream_rows(spec, batch_size, first=first)) as batches:
        try:
            for rows in batches:
                block = encode(rows)
                if digest is not None:
                    digest.update(block)
                if normalise is not None or not section.take(block, rows=len(rows)):
                    merge.batch(rows, block)
                db_rows += len(rows)
                differences.seen(db_rows)
                progress(Progress(stage, spec.label, db_rows, None))
            merge.rest_of_file()
        except StopComparing:
            complete = False
    # The rest of the table is read all the same, for its digest.
    section.skip()
    return Merged(db_rows, complete)


class _Merge:
    def __init__(
        self,
        spec: TableSpec,
        section: TableSection,
        key: Callable[[list[Any]], tuple[Any, ...]],
        differences: Differences,
        normalise: Callable[[bytes], bytes] | None,
    ):
        self.spec = spec
        self.section = section
        self.key = key
        self.differences = differences
        self.normalise = normalise

    def batch(self, rows: list[tuple[Any, ...]], block: bytes) -> None:
        """Merge a batch of the database's rows (encoded as ``block``) that does not
        match the file's next bytes as a whole."""
        lines = block[:-1].split(b"\n")
        count = len(lines)
        if count != len(rows):
            raise AssertionError("a batch of rows encoded to another number of lines")
        # Where line i starts in the block: the lengths before it, and i newlines.
        lengths = list(accumulate(map(len, lines), initial=0))
        view = memoryview(block)
        index = 0
        while index < count:
            if self.normalise is None:
                index += self._equal_run(view, lengths, index, count)
                if index == count:
                    break
            index += self._step(lines[index], rows[index])

    def _equal_run(
        self, view: memoryview, lengths: list[int], index: int, count: int
    ) -> int:
        """Take the longest run of the batch's lines from ``index`` on that the file
        holds next, byte for byte; return its length."""
        take = self.section.take

        def lines(first: int, stop: int) -> memoryview:
            return view[lengths[first] + first : lengths[stop] + stop]

        if take(lines(index, count), rows=count - index):
            return count - index
        # Longer and longer runs while they match, then halving the first that
        # did not, down to the line that differs.
        position, step = index, 1
        while True:
            size = min(step, count - position)
            if not take(lines(position, position + size), rows=size):
                bound = position + size
                break
            position += size
            step *= 2
        while bound - position > 1:
            half = (bound - position) // 2
            if take(lines(position, position + half), rows=half):
                position += half
            else:
                bound = position + half
        return position - index

    def _step(self, database_line: bytes, row: tuple[Any, ...]) -> int:
        """Compare one database row with the file's next; return 1 when the database
        row was used up, 0 when only the file's row was."""
        section = self.section
        file_line = section.peek()
        if file_line is None:
            self.differences.extra_row(database_line, row)
            return 1
        values = section.parse_line(file_line)
        if self._same(file_line, database_line):
            section.advance(file_line)
            return 1
        file_key = self.key(values)
        database_key = self.key(loads_row(database_line))
        try:
            order = (file_key > database_key) - (file_key < database_key)
        except TypeError:
            raise BackupFormatError(
                f"{section._reader.name}: table {self.spec.label}: the primary key "
                f"{file_key!r} of row {section.rows + 1} cannot be compared with the "
                "database's"
            ) from None
        if order < 0:
            self.differences.missing_row(file_line, values)
            section.advance(file_line)
            return 0
        if order > 0:
            self.differences.extra_row(database_line, row)
            return 1
        self.differences.changed_row(file_line, values, database_line, row)
        section.advance(file_line)
        return 1

    def _same(self, file_line: bytes, database_line: bytes) -> bool:
        if file_line == database_line:
            return True
        normalise = self.normalise
        return normalise is not None and normalise(file_line) == normalise(
            database_line
        )

    def rest_of_file(self) -> None:
        """The database has no more rows: the file's are missing."""
        section = self.section
        while (line := section.peek()) is not None:
            self.differences.missing_row(line, section.parse_line(line))
            section.advance(line)


@dataclass
class Tally:
    """Differences counted, with the first few primary keys of each kind and, for
    changed rows, the fields that differ: what reports and previews show.

    ``before`` says which side's value comes first in a change: "file" for a
    validation (how the database changed since the backup), "database" for a
    restore's preview (how the restore would change it).
    """

    fields: tuple[Any, ...] = field(repr=False)
    pk_fields: tuple[Any, ...] = field(repr=False)
    before: str = "file"
    extra: int = 0
    missing: int = 0
    changed: int = 0
    extra_examples: list[Any] = field(default_factory=list)
    missing_examples: list[Any] = field(default_factory=list)
    changed_rows: list[tuple[Any, list[FieldChange]]] = field(default_factory=list)

    @classmethod
    def of(cls, spec: Any, before: str = "file") -> Tally:
        return cls(tuple(spec.fields), tuple(spec.pk_fields), before)

    def _pk(self, values: list[Any]) -> Any:
        return pk_value(self.fields, self.pk_fields, values)

    def extra_row(self, line: bytes, row: tuple[Any, ...]) -> None:
        self.extra += 1
        if len(self.extra_examples) < MAX_EXAMPLES:
            self.extra_examples.append(self._pk(loads_row(line)))

    def missing_row(self, line: bytes, values: list[Any]) -> None:
        self.missing += 1
        if len(self.missing_examples) < MAX_EXAMPLES:
            self.missing_examples.append(self._pk(values))

    def changed_row(
        self, line: bytes, values: list[Any], old_line: bytes, row: tuple[Any, ...]
    ) -> None:
        self.changed += 1
        if len(self.changed_rows) < MAX_EXAMPLES:
            old = loads_row(old_line)
            first, second = (values, old) if self.before == "file" else (old, values)
            self.changed_rows.append(
                (self._pk(values), changed_fields(self.fields, first, second))
            )

    def seen(self, rows: int) -> None:
        pass
