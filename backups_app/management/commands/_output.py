"""Rendering shared by the three commands: tables, sizes, progress, JSON, exit codes."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS

from backups_app.exceptions import (
    BackupError,
    BackupFormatError,
    IncompatibleBackupError,
    StorageError,
)
from backups_app.progress import Progress, ProgressCallback, ignore_progress

EXIT_FAILED = 1
EXIT_UNUSABLE_FILE = 2
EXIT_SCHEMA_MISMATCH = 3


def command_error(exc: BackupError) -> CommandError:
    """Turn a library error into a one-line CommandError with its documented exit code."""
    if isinstance(exc, (BackupFormatError, StorageError)):
        code = EXIT_UNUSABLE_FILE
    elif isinstance(exc, IncompatibleBackupError):
        code = EXIT_SCHEMA_MISMATCH
    else:
        code = EXIT_FAILED
    return CommandError(str(exc), returncode=code)


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a plain text table, first column left-aligned, the others right-aligned."""
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for index, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])]
        parts += [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()


class ProgressLine:
    """Show progress on one rewritten line of a terminal; silent elsewhere."""

    def __init__(self, stream, enabled: bool):
        self.stream = stream
        self.enabled = enabled and getattr(stream, "isatty", lambda: False)()
        self._last = 0.0
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.2 and progress.done:
            return
        self._last = now
        text = f"{progress.stage:<14} {progress.label:<40.40}"
        if progress.done or progress.total:
            text += f" {progress.done:>12,}"
            if progress.total:
                text += f" / {progress.total:,} ({progress.done * 100 // max(progress.total, 1)}%)"
        self.stream.write("\r" + text.ljust(90)[:120], ending="")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + " " * 120 + "\r", ending="")
            self.stream.flush()
            self._shown = False


def progress_for(command, options: dict[str, Any]) -> ProgressLine:
    enabled = options["verbosity"] >= 1 and not options.get("json")
    return ProgressLine(command.stderr, enabled and sys.stderr.isatty())


@contextlib.contextmanager
def running(command, options: dict[str, Any]) -> Iterator[ProgressCallback]:
    """Call the library: show progress, and turn its errors into CommandErrors.

    Where no progress is shown the library is told so, and skips the work only
    progress needs (a backup counts each table's rows to show a percentage).
    """
    progress = progress_for(command, options)
    try:
        yield progress if progress.enabled else ignore_progress
    except BackupError as exc:
        raise command_error(exc) from exc
    finally:
        progress.clear()


def add_common_arguments(
    parser: argparse.ArgumentParser, *, database_help: str, takes_file: bool
) -> None:
    """Add FILE (for commands that read a backup), --database and --json."""
    if takes_file:
        parser.add_argument(
            "file", help="Backup file: a path, a name in the backup storage, or -."
        )
    parser.add_argument(
        "--database",
        default=DEFAULT_DB_ALIAS,
        help=f"{database_help} (default: %(default)s).",
    )
    parser.add_argument(
        "--json", action="store_true", help="Print one JSON document, nothing else."
    )
