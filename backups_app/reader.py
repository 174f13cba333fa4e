"""Read a backup file, checking its counts and digests as it goes.

The decompressed stream is read READ_SIZE bytes at a time into a buffer that ends
at a line break. Records are taken from it a line at a time; rows are handed out as
blocks of whole lines, or compared in place with rows a caller expects, without
splitting them into lines. Digests are computed on a thread of their own.
"""

from __future__ import annotations

import collections
import hashlib
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import orjson

from .exceptions import BackupFormatError, one_line
from .format import FORMAT_NAME, MAX_PENDING_BLOCKS, SUPPORTED_VERSIONS

# How much of a backup is read at a time: as much as decompression hands out.
READ_SIZE = 2 << 20
# The most bytes of rows in one block from ``blocks()``, unless one row is longer:
# a restore holds a block's rows as Python values at once.
ROW_BLOCK = 1 << 19
ROW_START = ord("[")


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

    def __init__(self):
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="backups_app-digests")
        self._pending: collections.deque[Future] = collections.deque()

    @staticmethod
    def _update(data, digests) -> None:
        for digest in digests:
            digest.update(data)

    def update(self, data, *digests) -> None:
        if len(self._pending) >= MAX_PENDING_BLOCKS:
            self._pending.popleft().result()
        self._pending.append(self._worker.submit(self._update, data, digests))

    def wait(self) -> None:
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        self._worker.shutdown(wait=True)


class TableSection:
    """One table of a backup being read: its columns, then its rows, once."""

    def __init__(self, reader: BackupReader, record: dict[str, Any]):
        self._reader = reader
        self.label: str = record["label"]
        self.table: str = record["table"]
        self.columns: list[str] = record["columns"]
        self.end: TableEnd | None = None
        self.digest = hashlib.sha256()
        self.rows = 0  # rows read so far

    def take(self, *pieces, rows: int) -> bool:
        """Move past the table's next rows if they are exactly these bytes.

        The pieces, joined, must be ``rows`` whole row lines, each ending in a
        newline, as ``codec.lines_encoder`` and a newline make them. When the file
        holds something else there, nothing is taken and False is returned; the
        rows can still be read with ``blocks()``.
        """
        return self._reader._take_rows(self, pieces, rows)

    def blocks(self) -> Iterator[bytes]:
        """Yield the table's (other) rows as blocks of whole lines, each ending in a
        newline, as many as the reader has at hand (about READ_SIZE bytes).

        Once the last block has been taken, the table's row count and digest have
        been checked and ``end`` is set.
        """
        return self._reader._row_blocks(self)

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


class BackupReader:
    """Read a backup from a (decompressed) binary stream, checking it as it goes.

    Each table's row count and digest are checked when its section ends, and the
    whole-file digest when the trailer is reached; any mismatch, a missing trailer
    or bytes after it raise BackupFormatError.
    """

    def __init__(self, stream: IO[bytes], name: str = "backup"):
        self._stream = stream
        self._buffer = b""
        self._position = 0
        self._partial: list[bytes] = []
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
        self.header = self._read_header()

    def _error(self, message: str) -> BackupFormatError:
        return BackupFormatError(f"{self.name}: {message}")

    # -- the buffer ------------------------------------------------------------------

    def _read(self) -> bytes:
        if self._at_end:
            return b""
        try:
            chunk = self._stream.read(READ_SIZE)
        except (OSError, EOFError, ValueError, zlib.error) as exc:
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
                return True
            added = True
            cut = chunk.rfind(b"\n") + 1
            if not cut:
                parts.append(chunk)
                continue
            if not parts and cut == len(chunk):
                self._buffer = chunk  # the usual case, whole lines: no copy
            else:
                parts.append(memoryview(chunk)[:cut])
                self._buffer = b"".join(parts)
            if cut < len(chunk):
                self._partial = [chunk[cut:]]
            self._position = 0
            return True

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

    def _parse_record(self, line: bytes) -> dict[str, Any]:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._error(f"line {self._line_number} is not valid JSON") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise self._error(f"line {self._line_number} is not a record")
        return record

    def _read_header(self) -> dict[str, Any]:
        line = self._next_line()
        if not line:
            raise self._error("is empty")
        if not line.startswith(b"{"):
            raise self._error("is not a backups_app backup (no header)")
        try:
            header = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise self._error("is not a backups_app backup (no header)") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            raise self._error("is not a backups_app backup (no header)")
        if header.get("version") not in SUPPORTED_VERSIONS:
            raise self._error(
                f"has format version {header.get('version')!r}; this version of "
                f"backups_app reads {sorted(SUPPORTED_VERSIONS)}"
            )
        self._file_digest.update(line)
        return header

    def tables(self) -> Iterator[TableSection]:
        """Yield each table section in file order; then check the trailer."""
        self._hashing = _Hashing()
        try:
            while True:
                line = self._next_line()
                if line is None:
                    raise self._error("is truncated: it ends before its trailer")
                record = self._parse_record(line)
                if record["kind"] == "trailer":
                    self._check_trailer(record)
                    return
                if record["kind"] != "table":
                    raise self._error(
                        f"line {self._line_number}: expected a table, "
                        f"found {record['kind']!r}"
                    )
                self._file_digest.update(line)
                section = TableSection(self, record)
                yield section
                if section.end is None:
                    section.skip()
        finally:
            self._hashing.close()

    def _check_trailer(self, record: dict[str, Any]) -> None:
        if record.get("digest") != self._file_digest.hexdigest():
            raise self._error("is damaged: the file digest does not match")
        if (
            record.get("tables") != self._tables_seen
            or record.get("rows") != self._rows_seen
        ):
            raise self._error("is damaged: the trailer's counts do not match")
        if self._next_line() is not None:
            raise self._error("has data after its trailer")
        self.trailer = record

    # -- rows --------------------------------------------------------------------------

    def _took_rows(self, section: TableSection, start: int, stop: int, rows: int):
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
            self._hashing.update(
                memoryview(self._buffer)[start:stop], self._file_digest, section.digest
            )

    def _take_rows(self, section: TableSection, pieces, rows: int) -> bool:
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

    def _next_row_block(self, section: TableSection) -> tuple[int, int, int] | None:
        """Where the next rows of the buffer start and stop, and how many lines they
        are; None where the rows end.

        Rows are the lines that start with ``[``; the first line that does not is
        the table's end record, which is left in the buffer.
        """
        while True:
            buffer, start = self._buffer, self._position
            whole = (
                len(buffer)
                if buffer.endswith(b"\n")
                else buffer.rfind(b"\n", start) + 1
            )
            if start < len(buffer) and buffer[start] != ROW_START:
                return None
            if whole - start > ROW_BLOCK:
                whole = buffer.rfind(b"\n", start, start + ROW_BLOCK) + 1 or (
                    buffer.index(b"\n", start) + 1
                )
            if whole > start:
                break
            if not self._fill():
                raise self._error(f"is truncated inside table {section.label}")
        lines = buffer.count(b"\n", start, whole)
        if buffer.count(b"\n[", start, whole) == lines - 1:
            stop = whole
        else:
            stop = _end_of_rows(buffer, start)
            lines = buffer.count(b"\n", start, stop)
        self._position = stop
        return start, stop, lines

    def _row_blocks(self, section: TableSection) -> Iterator[bytes]:
        if section.end is not None:
            return
        while (rows := self._next_row_block(section)) is not None:
            start, stop, lines = rows
            buffer = self._buffer
            self._took_rows(section, start, stop, lines)
            yield buffer if start == 0 and stop == len(buffer) else buffer[start:stop]
        self._end_section(section)

    def _end_section(self, section: TableSection) -> None:
        line = self._next_line()
        record = self._parse_record(line)
        if record["kind"] != "end" or record.get("label") != section.label:
            raise self._error(
                f"line {self._line_number}: table {section.label} is not closed"
            )
        self._hash_taken()
        self._hashing.wait()
        if (
            record.get("rows") != section.rows
            or record.get("digest") != section.digest.hexdigest()
        ):
            raise self._error(
                f"table {section.label} is damaged: its rows do not match its digest"
            )
        self._file_digest.update(line)
        self._tables_seen += 1
        self._rows_seen += section.rows
        section.end = TableEnd(section.label, section.rows, record["digest"])


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


def row_lines(block: bytes) -> list[bytes]:
    """The lines of a block of rows, without their newlines."""
    return block[:-1].split(b"\n") if block else []


def verify(
    stream: IO[bytes], name: str = "backup"
) -> tuple[dict[str, Any], dict[str, TableEnd]]:
    """Read a whole backup, checking every digest; return its header and table ends."""
    reader = BackupReader(stream, name)
    ends: dict[str, TableEnd] = {}
    for section in reader.tables():
        section.skip()
        ends[section.label] = section.end
    return reader.header, ends
