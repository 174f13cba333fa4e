"""The backup file: a header, one section per table, and a trailer, as JSON Lines.

Every line is one JSON value. Lines that start with ``{`` are records, lines that
start with ``[`` are rows of the current table. docs/format.md describes it in full.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import orjson

from .exceptions import BackupFormatError, one_line

FORMAT_NAME = "backups_app"
FORMAT_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
# Blocks of encoded rows that may wait for the writer thread.
MAX_PENDING_BLOCKS = 8


def _record(**fields: Any) -> bytes:
    return orjson.dumps(fields) + b"\n"


class BackupWriter:
    """Write a backup to a binary stream, keeping counts and digests as it goes.

    With ``background=True`` the digests, compression and writes happen, in order,
    on a thread of their own: hashlib, zlib and file writes release the GIL, so they
    overlap with reading and encoding the next rows. At most MAX_PENDING_BLOCKS
    blocks wait for it, which bounds memory. Use it as a context manager, so the
    thread has stopped before the stream is closed.
    """

    def __init__(self, stream: IO[bytes], *, background: bool = False):
        self.stream = stream
        self.file_digest = hashlib.sha256()
        self.tables = 0
        self.rows = 0
        self._table: str | None = None
        self._table_digest = None
        self._table_rows = 0
        self._worker = (
            ThreadPoolExecutor(1, thread_name_prefix="backups_app-writer")
            if background
            else None
        )
        self._slots = threading.BoundedSemaphore(MAX_PENDING_BLOCKS)
        self._failure: BaseException | None = None

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    def _run(self, step, data: bytes) -> None:
        """Run a write step after the ones before it."""
        if self._worker is None:
            step(data)
            return
        if self._failure is not None:
            raise self._failure
        self._slots.acquire()
        self._worker.submit(step, data).add_done_callback(self._step_done)

    def _step_done(self, future) -> None:
        self._slots.release()
        if future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    def _wait(self) -> None:
        """Wait until every step so far is done; raise what one of them raised."""
        if self._worker is not None:
            self._worker.submit(lambda: None).result()
            if self._failure is not None:
                raise self._failure

    def _write_now(self, data: bytes) -> None:
        self.file_digest.update(data)
        self.stream.write(data)

    def _write_rows_now(self, data: bytes) -> None:
        self._table_digest.update(data)
        self._write_now(data)

    def _write(self, data: bytes) -> None:
        self._run(self._write_now, data)

    def write_header(self, header: dict[str, Any]) -> None:
        self._write(
            _record(kind="header", format=FORMAT_NAME, version=FORMAT_VERSION, **header)
        )

    def begin_table(self, label: str, table: str, columns: Iterable[str]) -> None:
        self._table = label
        self._table_digest = hashlib.sha256()
        self._table_rows = 0
        self._write(
            _record(kind="table", label=label, table=table, columns=list(columns))
        )

    def write_rows(self, lines: list[bytes]) -> None:
        """Write encoded rows (each one line without its newline)."""
        if lines:
            self.write_block(b"\n".join(lines) + b"\n", len(lines))

    def write_block(self, data: bytes, rows: int) -> None:
        """Write ``rows`` encoded rows already joined, each line ending in a newline."""
        if not rows:
            return
        self._table_rows += rows
        self._run(self._write_rows_now, data)

    def end_table(self) -> tuple[int, str]:
        self._wait()
        digest = self._table_digest.hexdigest()
        self._write(
            _record(kind="end", label=self._table, rows=self._table_rows, digest=digest)
        )
        self.tables += 1
        self.rows += self._table_rows
        result = (self._table_rows, digest)
        self._table = None
        return result

    def write_trailer(self) -> str:
        self._wait()
        digest = self.file_digest.hexdigest()
        self.stream.write(
            _record(kind="trailer", tables=self.tables, rows=self.rows, digest=digest)
        )
        return digest


@dataclass(frozen=True)
class TableEnd:
    label: str
    rows: int
    digest: str


class TableSection:
    """One table of a backup being read: its columns, then its rows, once."""

    def __init__(self, reader: BackupReader, record: dict[str, Any]):
        self._reader = reader
        self.label: str = record["label"]
        self.table: str = record["table"]
        self.columns: list[str] = record["columns"]
        self.end: TableEnd | None = None

    def batches(self, size: int) -> Iterator[list[bytes]]:
        """Yield the row lines of the table in lists of at most ``size``."""
        return self._reader._row_batches(self, size)

    def skip(self) -> None:
        for _ in self.batches(10_000):
            pass


class BackupReader:
    """Read a backup from a (decompressed) binary stream, checking it as it goes.

    Each table's row count and digest are checked when its section ends, and the
    whole-file digest when the trailer is reached; any mismatch, a missing trailer
    or bytes after it raise BackupFormatError.
    """

    def __init__(self, stream: IO[bytes], name: str = "backup"):
        self._lines = iter(stream)
        self.name = name
        self._file_digest = hashlib.sha256()
        self._line_number = 0
        self.trailer: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self._tables_seen = 0
        self._rows_seen = 0
        self.header = self._read_header()

    def _error(self, message: str) -> BackupFormatError:
        return BackupFormatError(f"{self.name}: {message}")

    def _next_line(self) -> bytes | None:
        try:
            line = next(self._lines)
        except StopIteration:
            return None
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise self._error(
                f"cannot be read past line {self._line_number}: {one_line(exc)}"
            ) from exc
        self._line_number += 1
        return line

    def _next_lines(self, size: int) -> list[bytes]:
        """Up to ``size`` more lines, fewer only at the end; counted by the caller."""
        try:
            return list(itertools.islice(self._lines, size))
        except (OSError, EOFError, ValueError, zlib.error) as exc:
            raise self._error(
                f"cannot be read past line {self._line_number}: {one_line(exc)}"
            ) from exc

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
                    f"line {self._line_number}: expected a table, found {record['kind']!r}"
                )
            self._file_digest.update(line)
            section = TableSection(self, record)
            yield section
            if section.end is None:
                section.skip()

    def _row_batches(self, section: TableSection, size: int) -> Iterator[list[bytes]]:
        if section.end is not None:
            return
        table_digest = hashlib.sha256()
        file_digest = self._file_digest
        count = 0
        while True:
            # Lines are taken ``size`` at a time; rows start with "[" and, as lines
            # split at newlines, all of them do exactly when the batch holds one
            # "\n[" per line after the first. Else the rows end inside this batch.
            batch = self._next_lines(size)
            data = b"".join(batch)
            if data[:1] == b"[" and data.count(b"\n[") == len(batch) - 1:
                if len(batch) < size:
                    raise self._error(f"is truncated inside table {section.label}")
                self._line_number += len(batch)
                # One digest update per batch: the same digest, far fewer calls.
                file_digest.update(data)
                table_digest.update(data)
                count += len(batch)
                yield batch
                continue
            end = next(
                (i for i, line in enumerate(batch) if line[:1] != b"["), len(batch)
            )
            if end == len(batch):
                raise self._error(f"is truncated inside table {section.label}")
            rows, line = batch[:end], batch[end]
            self._line_number += end + 1
            if end + 1 < len(batch):
                self._lines = itertools.chain(batch[end + 1 :], self._lines)
            if rows:
                data = b"".join(rows)
                file_digest.update(data)
                table_digest.update(data)
                count += len(rows)
                yield rows
            break
        record = self._parse_record(line)
        if record["kind"] != "end" or record.get("label") != section.label:
            raise self._error(
                f"line {self._line_number}: table {section.label} is not closed"
            )
        if (
            record.get("rows") != count
            or record.get("digest") != table_digest.hexdigest()
        ):
            raise self._error(
                f"table {section.label} is damaged: its rows do not match its digest"
            )
        self._file_digest.update(line)
        self._tables_seen += 1
        self._rows_seen += count
        section.end = TableEnd(section.label, count, record["digest"])

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
