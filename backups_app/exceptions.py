"""The errors the library raises; the commands turn each into one line and an exit code."""

from __future__ import annotations

from typing import Any

# The longest value an error message shows.
SHOWN_LENGTH = 60


class BackupError(Exception):
    """Root of every error the library raises on purpose."""


class BackupFormatError(BackupError):
    """The file is damaged, truncated or not a backup at all."""


class NotABackupError(BackupFormatError):
    """The file is empty, or its first line is no backups_app header: whatever it
    is, no restore can read it."""


class IncompatibleBackupError(BackupError):
    """The file is intact but does not fit this database (schema, version, vendor)."""

    def __init__(self, message: str, differences: list[str] | tuple[str, ...] = ()):
        super().__init__(message)
        self.differences = tuple(differences)


class RestoreError(BackupError):
    """The restore failed and was rolled back; the database is as it was."""


class StorageError(BackupError):
    """A backup could not be found, read or written where it was asked for."""


class OperationInProgressError(BackupError):
    """Another restore (or a backup during a restore) holds the lock."""


class CannotRunError(BackupError):
    """The operation could not start: an unknown database alias or label, or a
    database that cannot be reached. Nothing was read, written or changed."""


def one_line(exc: BaseException) -> str:
    """Return an exception's message on one line (drivers add DETAIL lines and such)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def database_message(exc: BaseException) -> str:
    """The driver's message on one line, without what PostgreSQL adds to say where
    (its CONTEXT, the statement's line with a caret under the place, and every
    value of the failing row): we say where, naming the table, column and row."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [
        line for line in lines if line and line != "^" and not line.startswith("LINE ")
    ]
    parts = "; ".join(kept).split("; ")
    return "; ".join(part for part in parts if not part.startswith(WHERE_PREFIXES))


# What PostgreSQL adds to an error to say where it happened.
WHERE_PREFIXES = ("CONTEXT:", "DETAIL:  Failing row contains")


def error_text(exc: BaseException) -> str:
    """``ValueError: message``, on one line."""
    return f"{type(exc).__name__}: {one_line(exc)}"


def shown_value(value: Any) -> str:
    """A value as an error message shows it: its repr, at most SHOWN_LENGTH long."""
    text = repr(value)
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 3] + "..."
