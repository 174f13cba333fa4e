"""The backup file: a header, one section per table, and a trailer, as JSON Lines.

Every line is one JSON value. Lines that start with ``{`` are records, lines that
start with ``[`` are rows of the current table. docs/format.md describes it in full.
This module writes it; ``reader`` reads it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import IO, Any

import orjson

from ..conf import app_settings
from ..exceptions import BackupError
from .manifest import MEDIA_COLUMNS, MEDIA_KEY, MEDIA_LABEL
from .pipeline import SerialWorker

FORMAT_NAME = "backups_app"
# An undo file (differential/undo.py): the rows a restore replaced, to be laid over
# the backup it restored. A format of its own, so that no reader takes it for a
# backup: restored as one, it would leave tables holding only those rows.
UNDO_FORMAT_NAME = "backups_app-undo"
# Version 2: JSON columns hold the text the database keeps, not canonical text, and
# times always have six fraction digits. Version 1 files (app 0.1.0) are still read:
# their JSON is canonical, and a time with five fraction digits is one whose
# leading zero orjson 3.13 dropped ("21:28:28.33608" meant .033608).
FORMAT_VERSION = 2
# Version 3: version 2 with a media manifest after the tables (fileformat.manifest).
# Only files with media are written as version 3, so readers of version 2 still read
# every backup without media, and refuse one with media by its version.
MEDIA_FORMAT_VERSION = 3
SUPPORTED_VERSIONS = frozenset({1, 2, 3})
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
        self._header: dict[str, Any] = {}
        self._table_digest = hashlib.sha256()
        self._table_rows = 0
        self._worker = (
            SerialWorker("backups_app-writer", MAX_PENDING_BLOCKS)
            if background
            else None
        )
        # What readers refuse, a backup must not write: it could not be restored.
        self._max_line = app_settings.MAX_LINE_BYTES

    def __enter__(self) -> BackupWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._worker is not None:
            self._worker.close()

    def _run(self, step: Callable[[bytes], None], data: bytes) -> None:
        """Run a write step after the ones before it."""
        if self._worker is None:
            step(data)
        else:
            self._worker.submit(step, data)

    def _wait(self) -> None:
        """Wait until every step so far is done; raise what one of them raised."""
        if self._worker is not None:
            self._worker.wait()

    def _write_now(self, data: bytes) -> None:
        self.file_digest.update(data)
        self.stream.write(data)

    def _write_rows_now(self, data: bytes) -> None:
        self._table_digest.update(data)
        self._write_now(data)

    def _write(self, data: bytes) -> None:
        if self._max_line is not None and len(data) > self._max_line:
            raise BackupError(
                f"A record of the backup would be longer than {self._max_line:,} "
                "bytes (BACKUPS['MAX_LINE_BYTES']), which restores refuse; raise "
                "that setting."
            )
        self._run(self._write_now, data)

    def write_header(
        self, header: dict[str, Any], format_name: str = FORMAT_NAME
    ) -> None:
        self._header = header  # signed in the trailer (provenance)
        version = MEDIA_FORMAT_VERSION if MEDIA_KEY in header else FORMAT_VERSION
        self._write(
            _record(kind="header", format=format_name, version=version, **header)
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
        # Only a block longer than the limit can hold a row longer than it.
        if self._max_line is not None and len(data) > self._max_line:
            longest = max(map(len, data.split(b"\n"))) + 1
            if longest > self._max_line:
                raise BackupError(
                    f"{self._table}: a row is {longest:,} bytes long, longer than "
                    f"{self._max_line:,} (BACKUPS['MAX_LINE_BYTES']), which restores "
                    "refuse; raise that setting."
                )
        self._table_rows += rows
        self._run(self._write_rows_now, data)

    def end_table(self) -> tuple[int, str]:
        result = self._end_section()
        self.tables += 1
        self.rows += self._table_rows
        return result

    def _end_section(self) -> tuple[int, str]:
        self._wait()
        digest = self._table_digest.hexdigest()
        self._write(
            _record(kind="end", label=self._table, rows=self._table_rows, digest=digest)
        )
        self._table = None
        return self._table_rows, digest

    def write_media(self, blocks: Iterable[tuple[bytes, int]]) -> tuple[int, str]:
        """Write the media manifest: ``blocks`` of encoded entries (lines, each
        ending in a newline, and how many). Its entries are not counted as rows."""
        self._table = MEDIA_LABEL
        self._table_digest = hashlib.sha256()
        self._table_rows = 0
        self._write(_record(kind="media", columns=list(MEDIA_COLUMNS)))
        for data, entries in blocks:
            self.write_block(data, entries)
        return self._end_section()

    def write_trailer(self) -> str:
        self._wait()
        digest = self.file_digest.hexdigest()
        from ..provenance import sign

        mac = sign(digest, self._header)
        self.stream.write(
            _record(
                kind="trailer",
                tables=self.tables,
                rows=self.rows,
                digest=digest,
                mac=mac,
            )
        )
        return digest
