"""Rendering shared by the three commands: tables, sizes, progress, JSON, exit codes."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import shutil
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from django.utils.timesince import timesince

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


def age(value: datetime.datetime, now: datetime.datetime | None = None) -> str:
    """Return how long ago ``value`` was: ``just now``, ``3 hours ago``."""
    now = now or (
        timezone.now() if timezone.is_aware(value) else datetime.datetime.now()
    )
    if (now - value).total_seconds() < 60:
        return "just now"
    return timesince(value, now, depth=1).replace("\xa0", " ") + " ago"


def local_time(value: datetime.datetime | None) -> str:
    """Return a time as the site's local date and time with its age."""
    if value is None:
        return "-"
    shown = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{shown:%Y-%m-%d %H:%M} ({age(value)})"


def number(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    width: int | None = None,
    optional: Sequence[str] = (),
    text_last: bool = False,
) -> str:
    """Return a plain text table, first column left-aligned, the others right-aligned.

    With ``width``, the ``optional`` columns are left out, in the order given, until
    the table fits. ``text_last`` left-aligns the last column and, with ``width``,
    wraps it onto continuation lines instead of letting the terminal wrap the row.
    """
    cells = [list(map(str, headers))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    shown = list(range(len(headers)))

    def total() -> int:
        return sum(widths[i] + 2 for i in shown) - 2

    for name in optional:
        if width is None or total() <= width:
            break
        shown.remove(list(headers).index(name))
    last = shown[-1]
    if text_last and width is not None and total() > width:
        widths[last] = max(len(cells[0][last]), width - (total() - widths[last]), 12)
    lines = []
    for index, row in enumerate(cells):
        texts = [row[last]]
        if text_last:
            texts = textwrap.wrap(row[last], widths[last]) or [""]
        parts = [row[shown[0]].ljust(widths[shown[0]])]
        parts += [row[i].rjust(widths[i]) for i in shown[1:-1]]
        if len(shown) > 1:
            parts.append(texts[0] if text_last else texts[0].rjust(widths[last]))
        lines.append("  ".join(parts).rstrip())
        indent = " " * (total() - widths[last])
        lines += [indent + text for text in texts[1:]]
        if index == 0:
            lines.append("  ".join("-" * widths[i] for i in shown))
    return "\n".join(lines)


def terminal_width(stream) -> int | None:
    """Return the width of the terminal ``stream`` writes to, or None for a pipe."""
    if not getattr(stream, "isatty", lambda: False)():
        return None
    return shutil.get_terminal_size().columns


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()


ERASE_LINE = "\x1b[K"


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
        # One character short of the width, and the rest of the line erased
        # (ESC [ K): a line that filled the terminal would wrap onto a new one.
        width = shutil.get_terminal_size().columns - 1
        self.stream.write("\r" + text[:width] + ERASE_LINE, ending="")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + ERASE_LINE, ending="")
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
