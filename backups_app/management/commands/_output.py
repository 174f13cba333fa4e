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
from typing import Any, NoReturn, cast

import orjson
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    SystemCheckError,
)
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from django.utils.timesince import timesince

from backups_app.backup import require_database
from backups_app.exceptions import (
    BackupError,
    BackupFormatError,
    CannotRunError,
    IncompatibleBackupError,
    OperationInProgressError,
    StorageError,
)
from backups_app.operations.units import format_count, format_size
from backups_app.progress import Progress, ProgressCallback, ignore_progress

# The exit codes of the three commands (README.md and docs/usage.md have the table).
# 1 is each command's own failure, and for validatebackup only "the database differs";
# a command that could not run at all (bad usage, unknown alias or label, database
# unreachable, a restore under way) exits 4, never 1 or 2.
EXIT_FAILED = 1
EXIT_DIFFERS = 1
EXIT_UNUSABLE_FILE = 2
EXIT_SCHEMA_MISMATCH = 3
EXIT_CANNOT_RUN = 4
# 128 + SIGINT, as shells report a process stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


def command_error(exc: BackupError, failed: int = EXIT_FAILED) -> CommandError:
    """Turn a library error into a one-line CommandError with its documented exit code.

    ``failed`` is the code of the errors that are the command's own failure.
    """
    if isinstance(exc, (BackupFormatError, StorageError)):
        code = EXIT_UNUSABLE_FILE
    elif isinstance(exc, IncompatibleBackupError):
        code = EXIT_SCHEMA_MISMATCH
    elif isinstance(exc, (CannotRunError, OperationInProgressError)):
        code = EXIT_CANNOT_RUN
    else:
        code = failed
    return CommandError(str(exc), returncode=code)


class UsageErrorParser(CommandParser):
    """Argparse exits 2 on bad usage, which would read as "unusable file"."""

    # The code of "could not run"; set from the command's cannot_run_exit.
    cannot_run_exit = EXIT_CANNOT_RUN

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.print_usage(sys.stderr)
            self.exit(self.cannot_run_exit, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}", returncode=self.cannot_run_exit)


class BackupsCommand(BaseCommand):
    """What the three commands share: usage errors and Ctrl-C exit with their codes."""

    # What an interruption (Ctrl-C) leaves behind; a command updates it as it goes.
    interrupted = "Interrupted."
    # The exit code of "could not run" (checkbackups' contract makes it 2).
    cannot_run_exit = EXIT_CANNOT_RUN

    def create_parser(
        self, prog_name: str, subcommand: str, **kwargs: Any
    ) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser itself; only its error() changes.
        parser.__class__ = UsageErrorParser
        cast(UsageErrorParser, parser).cannot_run_exit = self.cannot_run_exit
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        if options.get("force_color") and options.get("no_color"):
            raise CommandError(
                "The --no-color and --force-color options can't be used together.",
                returncode=self.cannot_run_exit,
            )
        database = options.get("database")
        if isinstance(database, str):
            # Before Django's system checks: on Django 6 some of them connect to
            # the databases, and an unreachable one would end in a traceback there.
            try:
                require_database(database)
            except CannotRunError as exc:
                raise CommandError(str(exc), returncode=self.cannot_run_exit) from exc
        try:
            return super().execute(*args, **options)
        except SystemCheckError as exc:
            # A bad setting: the command could not run (Django's default is 1).
            exc.returncode = self.cannot_run_exit
            raise
        except KeyboardInterrupt:
            # One line and the shell's code for Ctrl-C instead of a traceback;
            # whatever the work held (transactions, temporary files) is already
            # released by the time the interruption gets here.
            raise CommandError(self.interrupted, returncode=EXIT_INTERRUPTED) from None


def human_size(size: int | None) -> str:
    return format_size(size, missing="-")


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
    return format_count(value, missing="-")


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


def terminal_width(stream: Any) -> int | None:
    """Return the width of the terminal ``stream`` writes to, or None for a pipe."""
    if not getattr(stream, "isatty", lambda: False)():
        return None
    return shutil.get_terminal_size().columns


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()


ERASE_LINE = "\x1b[K"


class ProgressLine:
    """Show progress on one rewritten line of a terminal; silent elsewhere."""

    def __init__(self, stream: Any, enabled: bool):
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


def progress_for(command: BaseCommand, options: dict[str, Any]) -> ProgressLine:
    enabled = options["verbosity"] >= 1 and not options.get("json")
    return ProgressLine(command.stderr, enabled and sys.stderr.isatty())


@contextlib.contextmanager
def running(
    command: BaseCommand, options: dict[str, Any], failed: int = EXIT_FAILED
) -> Iterator[ProgressCallback]:
    """Call the library: show progress, and turn its errors into CommandErrors.

    Where no progress is shown the library is told so, and skips the work only
    progress needs (a backup counts each table's rows to show a percentage).
    """
    progress = progress_for(command, options)
    try:
        yield progress if progress.enabled else ignore_progress
    except BackupError as exc:
        raise command_error(exc, failed) from exc
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
