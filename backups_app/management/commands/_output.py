"""Rendering shared by the three commands: tables, sizes, progress, JSON, exit codes."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import math
import os
import shutil
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NoReturn, cast

import orjson
from django.core.management.base import (
    BaseCommand,
    CommandError,
    CommandParser,
    OutputWrapper,
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
from backups_app.progress import Progress, long_stages

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
# 128 + SIGPIPE: what reads stdout went away (``| head``).
EXIT_BROKEN_PIPE = 141


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


class CommandOutcome(CommandError):
    """An end that is no failure of the command: an interruption, a validation that
    found differences. Its message, if any, is printed as it is, without the
    ``CommandError:`` of failures.

    ``details`` go into the JSON document of ``--json`` (a safety backup's name).
    """

    def __init__(
        self,
        message: str = "",
        *,
        returncode: int,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, returncode=returncode)
        self.details = dict(details or {})


def error_document(exc: CommandError) -> dict[str, Any]:
    """The JSON document of a command that ended with ``exc``, under ``--json``."""
    return {
        "error": str(exc),
        "exit_code": exc.returncode,
        **getattr(exc, "details", {}),
    }


def _wants_json(args: Sequence[str]) -> bool:
    return any(arg == "--json" for arg in args if isinstance(arg, str))


class UsageErrorParser(CommandParser):
    """Argparse exits 2 on bad usage, which would read as "unusable file"."""

    # The code of "could not run"; set from the command's cannot_run_exit.
    cannot_run_exit = EXIT_CANNOT_RUN
    # --json was on the command line: a usage error is a JSON document too.
    json_errors = False

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        self.json_errors = _wants_json(sys.argv[1:] if args is None else args)
        return super().parse_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            self.print_usage(sys.stderr)
            if self.json_errors:
                error = CommandError(message, returncode=self.cannot_run_exit)
                sys.stdout.write(json_text(error_document(error)) + "\n")
                sys.stdout.flush()
            self.exit(self.cannot_run_exit, f"{self.prog}: error: {message}\n")
        raise CommandError(f"Error: {message}", returncode=self.cannot_run_exit)


class BackupsCommand(BaseCommand):
    """What the commands share: exit codes for usage errors and Ctrl-C, and how an
    error is said (one line; with --json also a JSON document on stdout)."""

    # What an interruption (Ctrl-C) leaves behind; a command updates it as it goes.
    interrupted = "Interrupted."
    # What the JSON document of an interruption adds (a safety backup's name).
    interrupted_details: Mapping[str, Any] = MappingProxyType({})
    # The exit code of "could not run" (checkbackups' contract makes it 2).
    cannot_run_exit = EXIT_CANNOT_RUN
    # Set once the JSON document is written: --json prints exactly one.
    json_written = False
    # Where the JSON document goes; stderr when stdout carries a backup.
    json_stream: OutputWrapper | None = None

    def fit(self, text: str, indent: int = 0) -> str:
        """Wrap ``text`` to the terminal's width (one column short of it, so that no
        line ends in its last column), or leave it whole for a pipe."""
        width = terminal_width(self.stdout)
        return wrapped(text, None if width is None else width - 1, indent)

    def write_json(self, data: Any, stream: OutputWrapper | None = None) -> None:
        """Write the command's one JSON document (to stdout unless ``stream``)."""
        (stream or self.json_stream or self.stdout).write(json_text(data))
        self.json_written = True

    def create_parser(
        self, prog_name: str, subcommand: str, **kwargs: Any
    ) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser itself; only its error() changes.
        parser.__class__ = UsageErrorParser
        cast(UsageErrorParser, parser).cannot_run_exit = self.cannot_run_exit
        return parser

    def execute(self, *args: Any, **options: Any) -> str | None:
        from_command_line = getattr(self, "_called_from_command_line", False)
        try:
            output = self._execute(*args, **options)
            if from_command_line:
                # A closed pipe shows here rather than at exit, where Python would
                # print its own complaint.
                self.stdout.flush()
            return output
        except CommandError as exc:
            if not from_command_line or options.get("traceback"):
                raise
            self._say_error(exc, options)
            sys.exit(exc.returncode)
        except BrokenPipeError:
            if not from_command_line:
                raise
            # The reader of stdout went away (``| head``): stop quietly, with the
            # code of a process ended by SIGPIPE, and no complaint at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(EXIT_BROKEN_PIPE)

    def _say_error(self, exc: CommandError, options: dict[str, Any]) -> None:
        """Print how the command ended, as Django would (one line on stderr), with
        the JSON document too under --json."""
        if isinstance(exc, SystemCheckError):
            # It takes care of its own formatting.
            self.stderr.write(str(exc), lambda x: x)
        elif isinstance(exc, CommandOutcome):
            if exc.returncode == EXIT_INTERRUPTED and self.stderr.isatty():
                # Over the "^C" the terminal echoed.
                self.stderr.write("\r" + ERASE_LINE, style_func=str, ending="")
            if str(exc):
                self.stderr.write(str(exc), style_func=str)
        else:
            self.stderr.write(f"CommandError: {exc}")
        if options.get("json") and str(exc) and not self.json_written:
            stream = self.json_stream or self.stdout
            stream.write(json_text(error_document(exc)))
            stream.flush()

    def _execute(self, *args: Any, **options: Any) -> str | None:
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
            raise CommandOutcome(
                self.interrupted,
                returncode=EXIT_INTERRUPTED,
                details=self.interrupted_details,
            ) from None


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


def local_time(value: datetime.datetime | str | None) -> str:
    """Return a time as the site's local date and time with its age:
    ``2026-11-30 14:02, 11 minutes ago``. Takes a datetime or ISO 8601 text."""
    if isinstance(value, str):
        try:
            value = datetime.datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if value is None:
        return "-"
    shown = timezone.localtime(value) if timezone.is_aware(value) else value
    return f"{shown:%Y-%m-%d %H:%M}, {age(value)}"


def number(value: int | None) -> str:
    return format_count(value, missing="-")


# The narrowest a wrapped last column gets beside the others; with less room it
# goes under its row, indented this much.
TEXT_MIN = 12
UNDER_INDENT = 4


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
    When the columns before it leave the last one too little room (a long file
    name, which is never cut), it goes on lines of its own under each row.
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
    under = False
    if width is not None and len(shown) > 1 and total() > width:
        room = width - (total() - widths[last])
        needed = max(len(cells[0][last]), TEXT_MIN) if text_last else widths[last]
        if room < needed:
            under = True
        elif text_last:
            widths[last] = room
    before = shown[:-1] if under else shown
    wrap = width - UNDER_INDENT if under and width is not None else widths[last]
    lines = []
    for index, row in enumerate(cells):
        texts = (textwrap.wrap(row[last], wrap) or [""]) if text_last else [row[last]]
        parts = [row[shown[0]].ljust(widths[shown[0]])]
        parts += [row[i].rjust(widths[i]) for i in shown[1:-1]]
        if under:
            lines.append("  ".join(parts).rstrip())
            lines += [" " * UNDER_INDENT + text for text in texts]
        else:
            if len(shown) > 1:
                parts.append(texts[0] if text_last else texts[0].rjust(widths[last]))
            lines.append("  ".join(parts).rstrip())
            indent = " " * (total() - widths[last])
            lines += [indent + text for text in texts[1:]]
        if index == 0:
            lines.append("  ".join("-" * widths[i] for i in before))
    return "\n".join(lines)


def terminal_width(stream: Any) -> int | None:
    """Return the width of the terminal ``stream`` writes to, or None for a pipe."""
    if not getattr(stream, "isatty", lambda: False)():
        return None
    return shutil.get_terminal_size().columns


def json_text(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2, default=str).decode()


ERASE_LINE = "\x1b[K"

# What each stage of the library is called on the progress line, and the step of a
# command it belongs to (restore's steps: verify, compare, safety, load, check).
STAGES: dict[str, tuple[str, str]] = {
    "backup": ("backup", "Backing up"),
    "verify": ("verify", "Checking the file"),
    "validate": ("compare", "Comparing"),
    "compare": ("compare", "Comparing with the file"),
    "lock": ("lock", "Locking the tables"),
    "safety": ("safety", "Safety backup"),
    "delete": ("load", "Deleting rows"),
    "restore": ("load", "Loading rows"),
    "check": ("check", "Checking foreign keys"),
    "verify-written": ("check", "Reading back"),
    "reload": ("check", "Loading again what triggers changed"),
    "sequences": ("check", "Setting sequences"),
    "commit": ("check", "Committing"),
    "committed": ("check", "Committed"),
    "settle": ("check", "Setting sequences"),
    # Media files (counted as rows on the line).
    "media-rows": ("backup", "Reading the file fields"),
    "media": ("backup", "Backing up files"),
    "media-compare": ("verify", "Comparing files with their storages"),
    "media-blobs": ("verify", "Checking media blobs"),
    "media-write": ("check", "Putting files back"),
    "media-prune": ("check", "Deleting files no row references"),
    "media-validate": ("compare", "Comparing files"),
    "media-needs": ("", "Reading what the backups need"),
}


def stage_times_text(stages: dict[str, float]) -> list[str]:
    """Lines saying where the time of an operation went, stage by stage."""
    times = long_stages(stages)
    if not times:
        return []
    names = [STAGES[stage][1] if stage in STAGES else stage for stage, _ in times]
    width = max(map(len, names))
    return ["Time by stage:"] + [
        f"  {name:<{width}}  {seconds:6.1f} s"
        for name, (_, seconds) in zip(names, times, strict=True)
    ]


# Steps of the commands, for "[k/n]": a restore's lock belongs to the step after it.
RESTORE_STEPS = ("verify", "compare", "safety", "load", "check")
VALIDATE_STEPS = ("verify", "compare")
# The line is redrawn at most this often (seconds), and at every new stage.
REDRAW_INTERVAL = 0.1


def columns(stream: Any) -> int:
    """Return the width of the terminal ``stream`` writes to."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


def duration(seconds: float) -> str:
    """Return a duration as people say it: ``45 s``, ``3 min 05 s``, ``1 h 02 min``."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def wrapped(text: str, width: int | None, indent: int = 0) -> str:
    """``text`` wrapped between words to ``width`` (a terminal's; None leaves it one
    line, for a pipe), its continuation lines indented by ``indent`` spaces. Only a
    word longer than a line is cut."""
    if width is None or len(text) <= width:
        return text
    return textwrap.fill(
        text,
        width,
        subsequent_indent=" " * indent,
        break_long_words=True,
        break_on_hyphens=False,
    )


def fitted(parts: Sequence[tuple[int, str]], width: int) -> str:
    """Join the texts of ``parts`` with two spaces, leaving out the least important
    (highest number) until the line fits ``width``; cut the rest if it still does
    not."""
    kept = [part for part in parts if part[1]]
    while len(kept) > 1 and len("  ".join(text for _, text in kept)) > width:
        kept.remove(max(kept, key=lambda part: part[0]))
    return "  ".join(text for _, text in kept)[:width]


class ProgressLine:
    """Show progress on one line of a terminal, redrawn in place; silent elsewhere.

    The line has the step (``[3/4]``), what is being done, the rows done of the
    step's total, the rate and the time left, and the table; what does not fit the
    terminal's width is left out, least useful first, so that the line never wraps.
    No colour: stderr's default style is red, which reads as an error.
    """

    def __init__(self, stream: Any, enabled: bool, steps: Sequence[str] = ()) -> None:
        self.stream = stream
        self.enabled = enabled and getattr(stream, "isatty", lambda: False)()
        self.steps = list(steps)
        self._shown = False
        self._drawn = 0.0
        self._stage = ""
        self._started = 0.0
        self._label = ""
        self._before = 0  # rows of the stage's earlier tables
        self._done = 0  # rows of the current table

    @property
    def wants_counts(self) -> bool:
        # Silent, it needs no totals: the library then skips counting rows for it.
        return self.enabled

    def __call__(self, progress: Progress) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        new_stage = progress.stage != self._stage
        if new_stage:
            self._stage, self._started = progress.stage, now
            self._label, self._before, self._done = progress.label, 0, 0
        elif progress.label != self._label:
            self._before += self._done
            self._label, self._done = progress.label, 0
        self._done = progress.done
        if not new_stage and now - self._drawn < REDRAW_INTERVAL:
            return
        self._drawn = now
        done = self._before + self._done
        width = columns(self.stream) - 1
        self.draw(self.text(progress, done, now - self._started, width))

    def step(self, stage: str) -> str:
        key = STAGES.get(stage, (stage, ""))[0]
        if key == "lock":
            key = next(
                (s for s in ("compare", "safety", "load") if s in self.steps), key
            )
        if len(self.steps) < 2 or key not in self.steps:
            return ""
        return f"[{self.steps.index(key) + 1}/{len(self.steps)}]"

    def text(self, progress: Progress, done: int, elapsed: float, width: int) -> str:
        """Return the line for ``progress``, ``done`` rows and ``elapsed`` seconds
        into its stage, at most ``width`` characters."""
        title = STAGES.get(progress.stage, ("", progress.stage))[1]
        heading = " ".join(filter(None, [self.step(progress.stage), title]))
        if progress.stage == "reload":
            # done and total count the passes, not rows.
            heading += f" (pass {progress.done} of {progress.total})"
            return fitted([(0, heading)], width)
        total = progress.stage_total
        if total is not None and done > total:
            total = None  # more rows than counted: no honest estimate
        rows = percent = rate = left = ""
        if done or total:
            rows = f"{done:,} / {total:,} rows" if total else f"{done:,} rows"
        if total:
            percent = f"{done * 100 // total}%"
        if done and elapsed >= 0.5:
            per_second = done / elapsed
            rate = f"{per_second:,.0f} rows/s"
            if total and total > done and elapsed >= 1:
                left = f"{duration((total - done) / per_second)} left"
        return fitted(
            [
                (0, heading),
                (2, rows),
                (1, percent),
                (3, left),
                (5, rate),
                (4, progress.label),
            ],
            width,
        )

    def draw(self, text: str) -> None:
        # The line is kept shorter than the terminal and the rest of it erased
        # (ESC [ K): a line that filled the terminal would wrap onto a new one.
        self.stream.write("\r" + text + ERASE_LINE, style_func=str, ending="")
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self.stream.write("\r" + ERASE_LINE, style_func=str, ending="")
            self.stream.flush()
            self._shown = False


def progress_for(
    command: BaseCommand, options: dict[str, Any], steps: Sequence[str] = ()
) -> ProgressLine:
    """Return the progress line of a command: on its stderr when that is a
    terminal, at verbosity 1 or more, and never with --json."""
    enabled = options["verbosity"] >= 1 and not options.get("json")
    return ProgressLine(command.stderr, enabled, steps)


@contextlib.contextmanager
def running(
    command: BaseCommand,
    options: dict[str, Any],
    failed: int = EXIT_FAILED,
    steps: Sequence[str] = (),
) -> Iterator[ProgressLine]:
    """Call the library: show progress, and turn its errors into CommandErrors.

    Where no progress is shown the library is told so, and skips the work only
    progress needs (a backup counts each table's rows to show a percentage).
    ``steps`` are the command's steps (STAGES), shown as "[k/n]".
    """
    progress = progress_for(command, options, steps)
    try:
        yield progress
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
