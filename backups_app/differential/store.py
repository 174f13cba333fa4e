"""Rows a restore will remove or write, kept in bounded memory until it applies them.

Two spooled temporary files (in memory up to SPOOL_MEMORY bytes each, then on
disk), written table by table: each table's rows are one stretch of each file, in
chunks of up to CHUNK_ROWS rows (pickled lists, each after its length). Only this
process reads them back. Given a ScratchKey, a spool encrypts every chunk to it.
"""

from __future__ import annotations

import pickle
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..fileformat.encryption import ScratchKey

# Bytes of each spool kept in memory before it moves to a temporary file.
SPOOL_MEMORY = 16 << 20
CHUNK_ROWS = 1000
# A chunk's length, before it.
LENGTH = struct.Struct("<Q")


@dataclass
class Stretch:
    """Where one table's rows are in a spool."""

    start: int = 0
    stop: int = 0
    rows: int = 0


class Spool:
    """Lists of items written in order and read back by stretch."""

    def __init__(self, key: ScratchKey | None = None) -> None:
        # Closed by close(), when the restore is over.
        self._file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._key = key
        self._pending: list[Any] = []
        self._stretch: Stretch | None = None

    def begin(self) -> Stretch:
        """Start the stretch of the next table."""
        self._flush()
        self._stretch = Stretch(self._file.tell(), self._file.tell(), 0)
        return self._stretch

    def add(self, item: Any) -> None:
        self._pending.append(item)
        if len(self._pending) >= CHUNK_ROWS:
            self._flush()

    def end(self) -> None:
        """End the current stretch."""
        self._flush()
        self._stretch = None

    def _flush(self) -> None:
        if self._pending:
            chunk = pickle.dumps(self._pending, pickle.HIGHEST_PROTOCOL)
            if self._key is not None:
                chunk = self._key.seal(chunk)
            self._file.write(LENGTH.pack(len(chunk)))
            self._file.write(chunk)
            if self._stretch is not None:
                self._stretch.rows += len(self._pending)
            self._pending = []
        if self._stretch is not None:
            self._stretch.stop = self._file.tell()

    def chunks(self, stretch: Stretch) -> Iterator[list[Any]]:
        """Yield the items of a stretch in the order written, in lists."""
        position = stretch.start
        while position < stretch.stop:
            self._file.seek(position)
            (length,) = LENGTH.unpack(self._file.read(LENGTH.size))
            chunk = self._file.read(length)
            position = self._file.tell()
            if self._key is not None:
                chunk = self._key.unseal(chunk)
            yield pickle.loads(chunk)
        self._file.seek(0, 2)

    def close(self) -> None:
        self._file.close()
