"""A scratch SQLite file for the references and digests of one operation.

A site may have millions of files: their references are written here rather than
held in memory, and the questions asked of them (each distinct file once, which
names a backup references and the rows no longer do) are SQL over indexed tables.
The file lives in the temporary folder and is deleted on ``close()``.

Tables:

- ``refs``: references, in the order they were met (rowid): a manifest's entries,
  or the rows' references a backup is collecting (size and digest still null);
- ``keys``: the storage key (``sources.storage_key``) of each source, by number;
- ``files``: one row per distinct file (storage key and name): its content in the
  backup (size, digest), what was found (state), and the size and modification time
  it had then in its storage (``now_*``), to tell later whether it changed since;
- ``current``: the references the database's rows hold now, by source (validation);
- ``live``: the names the database's rows reference now, by storage key, in the
  restore's scope (1) or not (0) (``restore --prune-media``);
- ``stored``: the files a whole storage holds now.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

FETCH = 1000

SCHEMA = """
CREATE TABLE refs (
    source INTEGER NOT NULL, pk TEXT, name TEXT NOT NULL, size INTEGER, digest TEXT
);
CREATE TABLE files (
    storage TEXT NOT NULL,
    name TEXT NOT NULL,
    size INTEGER,
    digest TEXT,
    state TEXT,
    now_size INTEGER,
    now_modified TEXT,
    PRIMARY KEY (storage, name)
);
CREATE TABLE keys (source INTEGER PRIMARY KEY, storage TEXT NOT NULL);
CREATE TABLE current (source INTEGER NOT NULL, pk TEXT, name TEXT NOT NULL);
CREATE TABLE live (storage TEXT NOT NULL, name TEXT NOT NULL, scope INTEGER NOT NULL);
CREATE TABLE stored (storage TEXT NOT NULL, name TEXT NOT NULL);
"""


class Index:
    def __init__(self) -> None:
        handle, self.path = tempfile.mkstemp(prefix="backups_app-media-", suffix=".db")
        os.close(handle)
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False
        )
        self._db.executescript(
            "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
            "PRAGMA temp_store=FILE; PRAGMA cache_size=-16000;" + SCHEMA
        )
        self._indexed: set[str] = set()
        self._db.execute("BEGIN")
        # Removed with the object too, for an index whose owner is never closed (a
        # restore plan that is only looked at).
        self._finalizer = weakref.finalize(self, _remove, self._db, self.path)

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def execute(self, sql: str, parameters: Iterable[Any] = ()) -> None:
        self._db.execute(sql, tuple(parameters))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(sql, rows)

    def one(self, sql: str, parameters: Iterable[Any] = ()) -> Any:
        """The first row of a query (a tuple), or None."""
        return self._db.execute(sql, tuple(parameters)).fetchone()

    def rows(self, sql: str, parameters: Iterable[Any] = ()) -> Iterator[Any]:
        """Yield the rows of a query, a batch at a time, from a cursor of its own
        (so that the caller may write to the index meanwhile)."""
        cursor = self._db.execute(sql, tuple(parameters))
        try:
            while batch := cursor.fetchmany(FETCH):
                yield from batch
        finally:
            # Left unfinished by an error, the index may be closed by now.
            with contextlib.suppress(sqlite3.ProgrammingError):
                cursor.close()

    def set_storages(self, keys: Iterable[str]) -> None:
        """Record the storage key of each source (by position)."""
        self.executemany(
            "INSERT INTO keys (source, storage) VALUES (?, ?)", enumerate(keys)
        )

    def index(self, name: str) -> None:
        """Build one of the indexes the queries use, once its table is filled."""
        if name in self._indexed:
            return
        self._indexed.add(name)
        self._db.execute(INDEXES[name])


def _remove(db: sqlite3.Connection, path: str) -> None:
    with contextlib.suppress(sqlite3.Error):
        db.close()
    with contextlib.suppress(OSError):
        os.unlink(path)


INDEXES = {
    "refs_name": "CREATE INDEX refs_name ON refs (source, name)",
    "live_name": "CREATE INDEX live_name ON live (source, name)",
}
