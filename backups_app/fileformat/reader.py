"""Read a backup file, checking its counts and digests as it goes.

The decompressed stream is read READ_SIZE bytes at a time into a buffer that ends
at a line break. Records are taken from it a line at a time; rows are handed out as
blocks of whole lines, or compared in place with rows a caller expects, without
splitting them into lines. Digests are computed on a thread of their own.
"""

from __future__ import annotations

import hashlib
import operator
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, NoReturn

import orjson

from ..conf import app_settings
from ..exceptions import BackupFormatError, NotABackupError, one_line
from ..progress import Progress, ProgressCallback, ignore_progress
from .codec import JSON_NAMES, JSON_TYPES, loads_block
from .manifest import (
    MEDIA_COLUMNS,
    MEDIA_KEY,
    MEDIA_LABEL,
    MEDIA_TABLE,
    entry_problem,
    media_header_problem,
)
from .pipeline import SerialWorker
from .undo import undo_header_problem
from .writer import (
    FORMAT_NAME,
    MAX_PENDING_BLOCKS,
    MEDIA_FORMAT_VERSION,
    SUPPORTED_VERSIONS,
    UNDO_FORMAT_NAME,
)

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

# How much of a backup is read at a time: as much as decompression hands out.
READ_SIZE = 2 << 20
# The most bytes of rows in one block from ``blocks()``, unless one row is longer:
# a restore holds a block's rows as Python values at once.
ROW_BLOCK = 1 << 19
ROW_START = ord("[")
UNBOUNDED = 1 << 62

# The header's keys, with the type each must have: what the writer always writes and
# what readers rely on. Keys not listed here are ignored (docs/format.md).
HEADER_TYPES: dict[str, type] = {
    "created": str,
    "app_version": str,
    "django_version": str,
    "python_version": str,
    "vendor": str,
    "database": str,
    "origin": str,
    "use_tz": bool,
    "exclude": list,
    "migrations": list,
    "tables": list,
}


# Said of a file that ends early: the likely cause.
UNFINISHED = "(an unfinished copy or download?)"


@dataclass(frozen=True)
class TableEnd:
    label: str
    rows: int
    digest: str


class _Hashing:
    """Feed bytes to digests on a thread of their own, in order, a few steps behind.

    hashlib releases the GIL while it hashes a large block, so hashing overlaps with
    reading and comparing the next rows. ``wait()`` returns once every block given
    so far is in its digests.
    """

    def __init__(self) -> None:
        self._worker = SerialWorker("backups_app-digests", MAX_PENDING_BLOCKS)

    @staticmethod
    def _update(data: ReadableBuffer, digests: tuple[Any, ...]) -> None:
        for digest in digests:
            digest.update(data)

    def update(self, data: ReadableBuffer, *digests: Any) -> None:
        self._worker.submit(self._update, data, digests)

    def wait(self) -> None:
        self._worker.wait()

    def close(self) -> None:
        self._worker.close()


class TableSection:
    """One table of a backup being read: its columns, then its rows, once."""

    counted = True  # its rows are among the trailer's counts

    @property
    def title(self) -> str:
        """What error messages call the section."""
        return f"table {self.label}"

    @property
    def a_row(self) -> str:
        return f"a row of {self.label}"

    def __init__(
        self,
        reader: BackupReader,
        record: dict[str, Any],
        described: dict[str, Any] | None = None,
    ):
        self._reader = reader
        # (position, types a value may have) of each column whose type is known.
        self._value_types = value_types(described) if described else []
        self.label: str = record["label"]
        self.table: str = record["table"]
        self.columns: list[str] = record["columns"]
        self.end: TableEnd | None = None
        self.digest = hashlib.sha256()
        self.rows = 0  # rows read so far
        # The file's line number of the first row of the block handed out last.
        self._block_line = 0
        # The file's line number of the table's first row (right after this record).
        self._first_line = reader._line_number + 1

    def take(self, *pieces: bytes | memoryview, rows: int) -> bool:
        """Move past the table's next rows if they are exactly these bytes.

        The pieces, joined, must be ``rows`` whole row lines, each ending in a
        newline, as ``codec.lines_encoder`` and a newline make them. When the file
        holds something else there, nothing is taken and False is returned; the
        rows can still be read with ``blocks()``.
        """
        return self._reader._take_rows(self, pieces, rows)

    def ended(self) -> TableEnd:
        """Return the table's end record, known once its last row has been read."""
        if self.end is None:
            raise RuntimeError(f"{self.label}: its rows have not all been read")
        return self.end

    def blocks(self) -> Iterator[bytes]:
        """Yield the table's (other) rows as blocks of whole lines, each ending in a
        newline, as many as the reader has at hand (about READ_SIZE bytes).

        Each line starts with ``[`` and ends with ``]``; what is between is checked
        only by ``parse()``. Once the last block has been taken, the table's row
        count and digest have been checked and ``end`` is set.
        """
        return self._reader._row_blocks(self)

    def parse(self, block: bytes) -> list[list[Any]]:
        """Return the rows of the block ``blocks()`` handed out last, as lists.

        Raises BackupFormatError unless every row is a JSON array of one value per
        column, of a JSON type its column's type allows (docs/format.md, Values),
        and no primary key column holds null.
        """
        try:
            rows = loads_block(block)
        except orjson.JSONDecodeError:
            rows = None
        columns = len(self.columns)
        if rows is None or not all(len(row) == columns for row in rows):
            self._reader._bad_row(self, block)
        # Column by column, the types seen: a few C loops per block.
        for position, allowed in self._value_types:
            if not set(map(type, map(operator.itemgetter(position), rows))) <= allowed:
                self._reader._bad_row(self, block)
        return rows

    def peek(self) -> bytes | None:
        """Return the table's next row line, without its newline, and leave it
        there; None after the last row (the table's end is then checked)."""
        return self._reader._peek_row(self)

    def advance(self, line: bytes) -> None:
        """Move past ``line``, the next row, which ``peek()`` returned."""
        self._reader._take_row(self, line)

    def parse_line(self, line: bytes) -> list[Any]:
        """Return the next row, ``line`` (from ``peek()``), as a list, checked as
        ``parse()`` checks a block."""
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            row = None
        if (
            not isinstance(row, list)
            or len(row) != len(self.columns)
            or not all(
                type(row[position]) in allowed
                for position, allowed in self._value_types
            )
        ):
            self._reader._bad_row(self, line + b"\n", self._first_line + self.rows)
        return row

    def checked_blocks(self) -> Iterator[bytes]:
        """``blocks()``, each parsed and checked first (see ``parse()``)."""
        for block in self.blocks():
            self.parse(block)
            yield block

    def batches(self, size: int) -> Iterator[list[bytes]]:
        """Yield the row lines of the table, without newlines, in lists of ``size``
        (the last one shorter)."""
        pending: list[bytes] = []
        for block in self.blocks():
            pending.extend(row_lines(block))
            while len(pending) >= size:
                yield pending[:size]
                del pending[:size]
        if pending:
            yield pending

    def skip(self) -> None:
        for _ in self.blocks():
            pass


class MediaSection(TableSection):
    """The media manifest of a backup being read: one entry per file reference,
    ``[source, pk, name, size, digest]`` (fileformat.manifest), once."""

    counted = False  # its entries are not rows of the trailer's counts
    title = "the media manifest"
    a_row = "an entry of the media manifest"

    def __init__(self, reader: BackupReader, record: dict[str, Any]):
        super().__init__(
            reader,
            {"label": MEDIA_LABEL, "table": MEDIA_LABEL, "columns": record["columns"]},
            MEDIA_TABLE,
        )
        self.sources: list[dict[str, Any]] = reader.header[MEDIA_KEY]["sources"]

    def hand_over(
        self, media: Callable[[dict[str, Any], list[list[Any]]], None]
    ) -> None:
        """Hand the entries to ``media(header, entries)``, a block at a time, as
        they are checked."""
        for block in self.blocks():
            media(self._reader.header, self.parse(block))

    def parse(self, block: bytes) -> list[list[Any]]:
        """Return the entries of the block ``blocks()`` handed out last; raise
        BackupFormatError unless each follows the manifest's rules."""
        entries = super().parse(block)
        for index, entry in enumerate(entries):
            problem = entry_problem(entry, self.sources)
            if problem:
                raise self._reader._error(
                    f"line {self._block_line + index}: a media entry {problem}"
                )
        return entries


class BackupReader:
    """Read a backup from a (decompressed) binary stream, checking it as it goes.

    Every rule of docs/format.md is enforced: the header's keys and types, one
    section per table of the header, in its order, with its label, table and
    columns, rows that are one line each, each table's row count and digest, the
    trailer's counts and whole-file digest, nothing after it, and the sizes of lines
    (``BACKUPS["MAX_LINE_BYTES"]``), rows or records. Whatever breaks one
    raises BackupFormatError, with one line naming the file and where.

    What is inside a row line is checked when it is parsed (``TableSection.parse``):
    a restore parses every row anyway, and a validation compares most rows as bytes.
    """

    def __init__(self, stream: IO[bytes], name: str = "backup", *, undo: bool = False):
        # Whether an undo file is read as what it is (differential/undo.py); other
        # readers refuse it, as they refuse anything but a backup.
        self._undo = undo
        self._stream = stream
        self._buffer = b""
        self._position = 0
        self._partial: list[bytes | memoryview] = []
        self._partial_size = 0
        self._at_end = False
        self.name = name
        self._file_digest = hashlib.sha256()
        self._line_number = 0
        self.trailer: dict[str, Any] | None = None
        self._tables_seen = 0
        self._rows_seen = 0
        self._hashing: _Hashing | None = None
        # Rows taken from the buffer, not yet hashed: (section, start, stop).
        self._unhashed: tuple[TableSection, int, int] | None = None
        self._max_line = app_settings.MAX_LINE_BYTES or UNBOUNDED
        self._expected: tuple[dict[str, Any], str] | None = None
        self.header = self._read_header()
        self._described = self.header["tables"]
        # Whether a media manifest is still due after the tables (version 3).
        self._media_due = self.header["version"] >= MEDIA_FORMAT_VERSION
        self.media: MediaSection | None = None

    def _error(self, message: str) -> BackupFormatError:
        return BackupFormatError(f"{self.name}: {message}")

    def _not_a_backup(
        self, message: str = "is not a backups_app backup (no header)"
    ) -> NotABackupError:
        return NotABackupError(f"{self.name}: {message}")

    def verified(self, ends: dict[str, TableEnd]) -> Verified:
        """What the whole file was found to hold, once ``tables()`` has ended:
        ``ends``, the table ends its caller kept, with the header and trailer."""
        assert self.trailer is not None  # checked at the end of tables()
        return Verified(
            self.header,
            ends,
            self.trailer["digest"],
            self.trailer,
            self.media.end if self.media is not None else None,
        )

    def expect(self, header: dict[str, Any], digest: str) -> None:
        """Insist on the same file as an earlier read: this header, and at its end,
        this whole-file digest. A file replaced or changed in between is refused."""
        if self.header != header:
            raise self._changed()
        self._expected = (header, digest)

    def _changed(self) -> BackupFormatError:
        return self._error(
            "changed since it was checked: it is not the file that was read before"
        )

    # -- the buffer ------------------------------------------------------------------

    def _read(self) -> bytes:
        if self._at_end:
            return b""
        try:
            chunk = self._stream.read(READ_SIZE)
        except BackupFormatError as exc:
            # A bound of decompression (streams.gunzip), said without the file's name.
            raise self._error(str(exc)) from exc
        except EOFError as exc:
            # The compressed stream stops inside its data: the file was cut short.
            raise self._error(
                f"is incomplete: it ends early, after line {self._line_number} "
                f"{UNFINISHED}"
            ) from exc
        except (OSError, ValueError, zlib.error) as exc:
            raise self._error(
                f"cannot be read past line {self._line_number}: {one_line(exc)}"
            ) from exc
        self._at_end = not chunk
        return chunk

    def _fill(self) -> bool:
        """Add the next whole lines of the stream to the buffer's unread bytes.

        The buffer ends at a newline; the start of a line after it waits in
        ``_partial``. Only at the end of the stream may a last line lack its newline.
        Returns False when there was nothing more to add.
        """
        self._hash_taken()
        parts, self._partial = self._partial, []
        added = bool(parts)
        if self._position < len(self._buffer):
            parts.insert(0, memoryview(self._buffer)[self._position :])
        while True:
            chunk = self._read()
            if not chunk:
                if not added:
                    return False
                self._buffer, self._position = b"".join(parts), 0
                self._partial_size = 0
                return True
            added = True
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                # A line longer than any allowed must not be gathered in memory.
                self._partial_size += len(chunk)
                if self._partial_size > self._max_line:
                    # The unread lines before it are at the end of the buffer.
                    before = self._buffer.count(b"\n", self._position)
                    raise self._too_long(self._line_number + before + 1)
                parts.append(chunk)
                continue
            if not parts and cut == len(chunk):
                self._buffer = chunk  # the usual case, whole lines: no copy
            else:
                parts.append(memoryview(chunk)[:cut])
                self._buffer = b"".join(parts)
            self._partial_size = len(chunk) - cut
            if cut < len(chunk):
                self._partial = [chunk[cut:]]
            self._position = 0
            return True

    def _too_long(self, line: int) -> BackupFormatError:
        return self._error(
            f"line {line} is longer than {self._max_line:,} bytes "
            "(BACKUPS['MAX_LINE_BYTES']); refused as damaged"
        )

    def _next_line(self) -> bytes | None:
        """The next line with its newline (the last one may lack it); None at the end."""
        while True:
            newline = self._buffer.find(b"\n", self._position)
            if newline >= 0 or not self._fill():
                break
        start = self._position
        stop = newline + 1 if newline >= 0 else len(self._buffer)
        if start == stop:
            return None
        self._position = stop
        self._line_number += 1
        return self._buffer[start:stop]

    # -- records -----------------------------------------------------------------------

    def _next_record(self, expected: str) -> tuple[bytes, dict[str, Any]]:
        """The next line, which must be a record; ``expected`` says what was due."""
        line = self._next_line()
        if line is None:
            raise self._error(f"is incomplete: it ends before {expected} {UNFINISHED}")
        if len(line) > self._max_line:
            raise self._too_long(self._line_number)
        if not line.startswith(b"{"):
            raise self._error(
                f"line {self._line_number}: expected {expected}, found a row"
                if line.startswith(b"[")
                else f"line {self._line_number} is not valid JSON"
            )
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._error(f"line {self._line_number} is not valid JSON") from None
        kind = record.get("kind") if isinstance(record, dict) else None
        if not isinstance(kind, str):
            raise self._error(f"line {self._line_number} is not a record")
        return line, record

    def _read_header(self) -> dict[str, Any]:
        line = self._next_line()
        if not line:
            raise self._not_a_backup("is empty")
        if len(line) > self._max_line:
            raise self._too_long(1)
        if not line.startswith(b"{"):
            raise self._not_a_backup()
        try:
            header = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._not_a_backup() from None
        if not isinstance(header, dict) or header.get("kind") != "header":
            raise self._not_a_backup()
        if header.get("format") == UNDO_FORMAT_NAME and not self._undo:
            raise self._not_a_backup(
                "is an undo file (the rows a restore replaced), not a backup: "
                "restore it to undo that restore"
            )
        if header.get("format") not in (FORMAT_NAME, UNDO_FORMAT_NAME):
            raise self._not_a_backup()
        version = header.get("version")
        # Exactly the integer: JSON's 1.0 and true are equal to 1 in Python.
        if type(version) is not int or version not in SUPPORTED_VERSIONS:
            raise self._error(
                f"has format version {version!r}; this version of "
                f"backups_app reads {sorted(SUPPORTED_VERSIONS)}"
            )
        problem = header_problem(header)
        if problem is None and version >= MEDIA_FORMAT_VERSION:
            problem = (
                media_header_problem(header[MEDIA_KEY])
                if MEDIA_KEY in header
                else f"has no {MEDIA_KEY!r}"
            )
        if problem is None and header["format"] == UNDO_FORMAT_NAME:
            problem = undo_header_problem(header)
        if problem:
            raise self._error(f"is damaged: its header {problem}")
        self._file_digest.update(line)
        return header

    @property
    def is_undo(self) -> bool:
        return bool(self.header["format"] == UNDO_FORMAT_NAME)

    def tables(self, *, media: bool = False) -> Iterator[TableSection]:
        """Yield each table section in file order; then check the trailer.

        The media manifest of a version 3 file is checked and skipped, or, with
        ``media``, yielded too (a MediaSection, after the tables).
        """
        self._hashing = _Hashing()
        try:
            while True:
                described = (
                    self._described[self._tables_seen]
                    if self._tables_seen < len(self._described)
                    else None
                )
                due = (
                    f"the section of {described['label']}"
                    if described
                    else "its media manifest"
                    if self._media_due
                    else "its trailer"
                )
                line, record = self._next_record(due)
                kind = record["kind"]
                if kind == "media" and described is None and self._media_due:
                    if record.get("columns") != list(MEDIA_COLUMNS):
                        raise self._error(
                            f"line {self._line_number}: the media manifest does not "
                            "have the columns of its format version"
                        )
                    self._media_due = False
                    self._file_digest.update(line)
                    self.media = MediaSection(self, record)
                    if media:
                        yield self.media
                    if self.media.end is None:
                        for block in self.media.blocks():
                            self.media.parse(block)
                    continue
                if kind == "trailer":
                    if described is None and self._media_due:
                        raise self._error(
                            f"line {self._line_number}: expected {due}, which its "
                            "header declares, found its trailer"
                        )
                    self._check_trailer(record)
                    return
                if kind != "table":
                    raise self._error(
                        f"line {self._line_number}: expected {due}, found {kind!r}"
                    )
                self._check_section(record, described, due)
                self._file_digest.update(line)
                section = TableSection(self, record, described)
                yield section
                if section.end is None:
                    section.skip()
        finally:
            self._hashing.close()

    def _check_section(
        self, record: dict[str, Any], described: dict[str, Any] | None, due: str
    ) -> None:
        label = record.get("label")
        if described is None or label != described["label"]:
            raise self._error(
                f"line {self._line_number}: expected {due}, "
                f"found a section of {label!r}"
            )
        if record.get("table") != described["table"] or record.get("columns") != [
            column["name"] for column in described["columns"]
        ]:
            raise self._error(
                f"line {self._line_number}: the section of {label} does not have "
                "the table and columns its header lists"
            )

    def _check_trailer(self, record: dict[str, Any]) -> None:
        if record.get("digest") != self._file_digest.hexdigest():
            raise self._error("is damaged: the file digest does not match")
        tables, rows = record.get("tables"), record.get("rows")
        if (
            type(tables) is not int
            or type(rows) is not int
            or tables != self._tables_seen
            or rows != self._rows_seen
        ):
            raise self._error("is damaged: the trailer's counts do not match")
        if self._tables_seen < len(self._described):
            missing = self._described[self._tables_seen]["label"]
            raise self._error(
                f"is damaged: it has no section for {missing}, which its header lists"
            )
        if self._next_line() is not None:
            raise self._error("has data after its trailer")
        if self._expected is not None and record["digest"] != (
            self._expected[1] or record["digest"]
        ):
            raise self._changed()
        self.trailer = record

    # -- rows --------------------------------------------------------------------------

    def _took_rows(
        self, section: TableSection, start: int, stop: int, rows: int
    ) -> None:
        """Count rows taken from the buffer; hash them with the others next to them."""
        section.rows += rows
        self._line_number += rows
        unhashed = self._unhashed
        if unhashed is not None and unhashed[0] is section and unhashed[2] == start:
            self._unhashed = (section, unhashed[1], stop)
        else:
            self._hash_taken()
            self._unhashed = (section, start, stop)

    def _hash_taken(self) -> None:
        """Hand the rows taken from the buffer so far to the hashing thread."""
        if self._unhashed is not None:
            section, start, stop = self._unhashed
            self._unhashed = None
            assert self._hashing is not None  # rows are taken in tables()
            self._hashing.update(
                memoryview(self._buffer)[start:stop], self._file_digest, section.digest
            )

    def _take_rows(
        self, section: TableSection, pieces: tuple[bytes | memoryview, ...], rows: int
    ) -> bool:
        if section.end is not None:
            return False
        size = sum(map(len, pieces))
        while len(self._buffer) - self._position < size:
            if not self._fill():
                return False
        buffer, start = self._buffer, self._position
        if buffer[start] != ROW_START:
            return False
        offset = start
        for piece in pieces:
            if not buffer.startswith(piece, offset):
                return False
            offset += len(piece)
        self._position = offset
        self._took_rows(section, start, offset, rows)
        return True

    def _peek_row(self, section: TableSection) -> bytes | None:
        if section.end is not None:
            return None
        while (newline := self._buffer.find(b"\n", self._position)) < 0:
            if not self._fill():
                raise self._error(
                    f"is incomplete: it ends inside {section.title} {UNFINISHED}"
                )
        if self._buffer[self._position] != ROW_START:
            self._end_section(section)
            return None
        if newline - self._position > self._max_line:
            raise self._too_long(self._line_number + 1)
        return self._buffer[self._position : newline]

    def _take_row(self, section: TableSection, line: bytes) -> None:
        start = self._position
        self._position += len(line) + 1
        self._took_rows(section, start, self._position, 1)

    def _next_row_block(self, section: TableSection) -> tuple[int, int, int] | None:
        """Where the next rows of the buffer start and stop, and how many lines they
        are; None where the rows end.

        Rows are the lines that start with ``[``; the first line that does not is
        the table's end record, which is left in the buffer. A block is at most
        ROW_BLOCK bytes (and MAX_LINE_BYTES) unless it is one longer row.
        """
        limit = min(ROW_BLOCK, self._max_line)
        while True:
            buffer, start = self._buffer, self._position
            whole = (
                len(buffer)
                if buffer.endswith(b"\n")
                else buffer.rfind(b"\n", start) + 1
            )
            if start < len(buffer) and buffer[start] != ROW_START:
                return None
            if whole - start > limit:
                whole = buffer.rfind(b"\n", start, start + limit) + 1 or (
                    buffer.index(b"\n", start) + 1
                )
            if whole > start:
                break
            if not self._fill():
                raise self._error(
                    f"is incomplete: it ends inside {section.title} {UNFINISHED}"
                )
        lines = buffer.count(b"\n", start, whole)
        if buffer.count(b"\n[", start, whole) == lines - 1:
            stop = whole
        else:
            stop = _end_of_rows(buffer, start)
            lines = buffer.count(b"\n", start, stop)
        if stop - start > self._max_line:
            # Only a block of one row can be longer than the limit.
            raise self._too_long(self._line_number + 1)
        if buffer.count(b"]\n", start, stop) != lines:
            number = self._line_number + 1 + _first_unclosed(buffer, start, stop)
            raise self._error(
                f"line {number}: {section.a_row} is not one JSON array on one line"
            )
        self._position = stop
        return start, stop, lines

    def _row_blocks(self, section: TableSection) -> Iterator[bytes]:
        if section.end is not None:
            return
        while (rows := self._next_row_block(section)) is not None:
            start, stop, lines = rows
            buffer = self._buffer
            section._block_line = self._line_number + 1
            self._took_rows(section, start, stop, lines)
            yield buffer if start == 0 and stop == len(buffer) else buffer[start:stop]
        self._end_section(section)

    def _bad_row(
        self, section: TableSection, block: bytes, first_line: int | None = None
    ) -> NoReturn:
        """Raise the error for the first row of ``block`` that is not well formed;
        ``first_line`` is the file's line number of its first row (by default, of the
        block handed out last)."""
        columns = len(section.columns)
        if first_line is None:
            first_line = section._block_line
        for index, line in enumerate(row_lines(block)):
            number = first_line + index
            if not line.endswith(b"]"):
                # As _next_row_block says it, for a row read by itself (peek()).
                raise self._error(
                    f"line {number}: {section.a_row} is not one JSON array on one line"
                )
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise self._error(f"line {number} is not valid JSON") from None
            if len(row) != columns:
                raise self._error(
                    f"line {number}: {section.a_row} has {len(row)} values "
                    f"for {columns} columns"
                )
            for position, allowed in section._value_types:
                if type(row[position]) not in allowed:
                    name = section.columns[position]
                    raise self._error(
                        f"line {number}: {section.a_row} has "
                        f"{JSON_NAMES[type(row[position])]} in column {name!r}"
                    )
        raise self._error(f"the rows of {section.title} are not well formed")

    def _end_section(self, section: TableSection) -> None:
        line, record = self._next_record(f"the end of {section.label}")
        if record["kind"] != "end" or record.get("label") != section.label:
            raise self._error(
                f"line {self._line_number}: {section.title} is not closed"
            )
        self._hash_taken()
        assert self._hashing is not None  # sections are read in tables()
        self._hashing.wait()
        rows, digest = record.get("rows"), record.get("digest")
        if (
            type(rows) is not int
            or rows != section.rows
            or digest != section.digest.hexdigest()
        ):
            raise self._error(
                f"{section.title} is damaged: its rows do not match its digest"
            )
        self._file_digest.update(line)
        if section.counted:
            self._tables_seen += 1
            self._rows_seen += section.rows
        section.end = TableEnd(section.label, section.rows, digest)


def _first_unclosed(buffer: bytes, start: int, stop: int) -> int:
    """How many lines after ``start`` the first line not ending in ``]`` is."""
    for index, line in enumerate(buffer[start:stop].split(b"\n")):
        if not line.endswith(b"]"):
            return index
    return 0


def _end_of_rows(buffer: bytes, start: int) -> int:
    """Where the first line at or after ``start`` that does not start with ``[`` starts."""
    # Usually the end record, right after the last row.
    record = buffer.find(b"\n{", start) + 1
    if (
        record
        and buffer.count(b"\n[", start, record)
        == buffer.count(b"\n", start, record) - 1
    ):
        return record
    offset = start
    while offset < len(buffer) and buffer[offset] == ROW_START:
        offset = buffer.index(b"\n", offset) + 1
    return offset


def _is_text_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def value_types(described: dict[str, Any]) -> list[tuple[int, frozenset[type]]]:
    """(position, allowed JSON types) of each column of a header table whose type
    is known; a primary key column may not hold null."""
    pk = set(described["pk"])
    checks = []
    for position, column in enumerate(described["columns"]):
        allowed = JSON_TYPES.get(column["type"])
        if allowed is None:
            if column["name"] not in pk:
                continue
            allowed = frozenset({bool, int, float, str, list, dict})
        if column["name"] not in pk:
            allowed = allowed | {type(None)}
        checks.append((position, allowed))
    return checks


def header_problem(header: dict[str, Any]) -> str | None:
    """Say what is wrong with a header's keys and table list; None when nothing is."""
    for key, expected in HEADER_TYPES.items():
        if key not in header:
            return f"has no {key!r}"
        if type(header[key]) is not expected:
            return f"has {key!r} of the wrong type"
    for key in ("exclude", "migrations"):
        if not _is_text_list(header[key]):
            return f"has {key!r} that is not a list of strings"
    # Optional: files written before it have none.
    if "unmanaged" in header and not _is_text_list(header["unmanaged"]):
        return "has 'unmanaged' that is not a list of strings"
    labels = set()
    for number, table in enumerate(header["tables"], 1):
        problem = _table_problem(table)
        if problem:
            return f"describes table {number} wrongly: {problem}"
        if table["label"] in labels:
            return f"lists {table['label']} twice"
        labels.add(table["label"])
    return None


def _table_problem(table: Any) -> str | None:
    if not isinstance(table, dict):
        return "not an object"
    for key in ("label", "table"):
        if not isinstance(table.get(key), str) or not table[key]:
            return f"no {key!r}"
    columns = table.get("columns")
    if not isinstance(columns, list) or not columns:
        return f"{table['label']} has no 'columns'"
    names = []
    for column in columns:
        if (
            not isinstance(column, dict)
            or not isinstance(column.get("name"), str)
            or not isinstance(column.get("type"), str)
            or not isinstance(column.get("generated", False), bool)
        ):
            return f"{table['label']} has a column without a name and a type"
        names.append(column["name"])
    if len(set(names)) != len(names):
        return f"{table['label']} names a column twice"
    pk = table.get("pk")
    if not _is_text_list(pk) or not pk or not set(pk) <= set(names):
        return f"{table['label']} has a 'pk' that is not among its columns"
    return None


def row_lines(block: bytes) -> list[bytes]:
    """The lines of a block of rows, without their newlines."""
    return block[:-1].split(b"\n") if block else []


@dataclass(frozen=True)
class Verified:
    """What reading a whole backup found: its header, table ends, file digest and
    trailer (whose other keys, such as a signature, the reader does not check)."""

    header: dict[str, Any]
    ends: dict[str, TableEnd]
    digest: str
    trailer: dict[str, Any]
    # The media manifest's count and digest (format version 3), else None.
    media: TableEnd | None = None


def verify_file(
    stream: IO[bytes],
    name: str = "backup",
    *,
    rows: bool = False,
    progress: ProgressCallback = ignore_progress,
    media: Callable[[dict[str, Any], list[list[Any]]], None] | None = None,
    undo: bool = False,
) -> Verified:
    """Read a whole backup, checking every rule and digest; with ``rows``, parse and
    check every row too. ``progress`` hears of the rows read, as the "verify" stage.
    ``media(header, entries)`` is handed the media manifest's entries, a block at a
    time, as they are checked. With ``undo``, an undo file is read too."""
    reader = BackupReader(stream, name, undo=undo)
    return verified_read(reader, rows=rows, progress=progress, media=media)


def verified_read(
    reader: BackupReader,
    *,
    rows: bool = False,
    progress: ProgressCallback = ignore_progress,
    media: Callable[[dict[str, Any], list[list[Any]]], None] | None = None,
) -> Verified:
    """``verify_file`` with a reader that has read no more than the header."""
    ends: dict[str, TableEnd] = {}
    for section in reader.tables(media=media is not None):
        if section is reader.media:
            assert media is not None  # asked for with it
            reader.media.hand_over(media)
            continue
        progress(Progress("verify", section.label, 0, None))
        for block in section.blocks():
            if rows:
                section.parse(block)
            progress(Progress("verify", section.label, section.rows, None))
        assert section.end is not None  # set by its last block
        ends[section.label] = section.end
    return reader.verified(ends)


def verify(
    stream: IO[bytes], name: str = "backup"
) -> tuple[dict[str, Any], dict[str, TableEnd]]:
    """Read a whole backup, checking every digest; return its header and table ends."""
    verified = verify_file(stream, name)
    return verified.header, verified.ends
