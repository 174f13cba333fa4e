from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from typing import Any

from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS

from backups_app import signals
from backups_app.changes import described
from backups_app.conf import app_settings
from backups_app.exceptions import IncompatibleBackupError
from backups_app.progress import Progress, ProgressCallback
from backups_app.restore import (
    RestorePlan,
    RestoreSummary,
    TablePlan,
    plan_restore,
    restore_backup,
)

from ._output import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    RESTORE_STEPS,
    BackupsCommand,
    add_common_arguments,
    command_error,
    error_document,
    human_size,
    local_time,
    number,
    running,
    stage_times_text,
    table,
    terminal_width,
)


def files(count: int) -> str:
    return f"{number(count)} file{'' if count == 1 else 's'}"


def manage_py() -> str:
    """How this command was started, to show a command to run next: ``python
    manage.py``, ``python -m django`` or ``django-admin``."""
    program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if program == "__main__.py":
        return "python -m django"
    if program.endswith(".py"):
        return f"python {shlex.quote(program)}"
    return shlex.quote(program) if program else "python manage.py"


def undo_command(safety_backup: str, database: str, settings: str | None) -> str:
    """The command that restores ``safety_backup`` into ``database``."""
    words = [manage_py(), "restore", shlex.quote(safety_backup)]
    if database != DEFAULT_DB_ALIAS:
        words += ["--database", shlex.quote(database)]
    if settings:
        words += ["--settings", shlex.quote(settings)]
    return " ".join(words)


class CommitGuard:
    """Hold Ctrl-C back while the restore commits.

    Passed on as the restore's progress callback, it sees the "commit" stage just
    before the transaction commits and "committed" just after. In between, SIGINT
    is noted rather than raised: interrupted there, the command could not tell
    whether the commit happened. At "committed", ``on_committed`` is called (the
    command's message becomes "the restore is complete") and a noted Ctrl-C is
    raised.
    """

    def __init__(self, progress: ProgressCallback, on_committed: Callable[[], None]):
        self.progress = progress
        self.on_committed = on_committed
        self.wants_counts = getattr(progress, "wants_counts", True)
        self.pending = False
        self._previous: Any = None

    def __call__(self, report: Progress) -> None:
        if report.stage == "commit":
            self._hold()
        self.progress(report)
        if report.stage == "committed":
            self.on_committed()
            self._release()

    def _hold(self) -> None:
        if self._previous is not None:
            return
        if threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            return  # someone else's handler: theirs to keep
        self._previous = signal.signal(signal.SIGINT, self._note)

    def _note(self, signum: int, frame: Any) -> None:
        self.pending = True

    def _release(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[CommitGuard]:
        """Make sure SIGINT is handled as before once the restore is over."""
        try:
            yield self
        finally:
            if self._previous is not None:
                signal.signal(signal.SIGINT, self._previous)
                self._previous = None


class Command(BackupsCommand):
    help = "Make the database exactly equal to a backup, in one transaction."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_common_arguments(
            parser, database_help="Database alias to restore into", takes_file=True
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask for confirmation.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and show what would change; change nothing.",
        )
        parser.add_argument(
            "--no-safety-backup",
            action="store_false",
            dest="safety_backup",
            default=None,
            help="Do not back up the current data first (BACKUPS['SAFETY_BACKUP']).",
        )
        parser.add_argument(
            "--full",
            action="store_true",
            help="Reload every table whole, without comparing it with the file first.",
        )
        parser.add_argument(
            "--allow-foreign",
            action="store_true",
            help="With --noinput, restore a file not made by this installation.",
        )
        parser.add_argument(
            "--no-media",
            action="store_false",
            dest="media",
            help="Restore the rows only; leave the files of a backup with media alone.",
        )
        parser.add_argument(
            "--prune-media",
            action="store_true",
            help="After the restore, delete the files that the rows referenced "
            "before it and no row references after it (listed by --dry-run).",
        )

    def handle(
        self,
        *args: Any,
        file: str,
        database: str,
        interactive: bool,
        dry_run: bool,
        safety_backup: bool | None,
        json: bool,
        allow_foreign: bool = False,
        full: bool = False,
        media: bool = True,
        prune_media: bool = False,
        **options: Any,
    ) -> None:
        verbosity = options["verbosity"]
        self.interrupted = (
            f"Restore interrupted: database {database!r} was left unchanged."
        )
        if interactive and not dry_run:
            if json:
                raise CommandError(
                    "--json needs --noinput or --dry-run.", returncode=EXIT_CANNOT_RUN
                )
            if file == "-":
                raise CommandError(
                    "Restore cancelled: the backup comes from standard input, so there "
                    "is no way to confirm; pass --noinput."
                )
        if safety_backup is None:
            safety_backup = app_settings.SAFETY_BACKUP
        steps = [
            s
            for s in RESTORE_STEPS
            if (s != "safety" or safety_backup) and (s != "compare" or not full)
        ]
        # The plan says which rows would change where it is shown; a restore
        # without a preview compares the tables only inside its transaction.
        compare = (dry_run or interactive or verbosity >= 2) and not full
        # Nor does such a restore check the file beforehand: it reads the header,
        # then checks the whole file in the read that compares the tables, before
        # it writes anything (plan_restore(verify=False)).
        verify = compare or full or prune_media
        if dry_run:
            steps = ["verify", "compare"] if compare else ["verify"]
        elif not verify:
            steps.remove("verify")
        with running(self, {**options, "json": json}, steps=steps) as progress:
            plan = plan_restore(
                file,
                using=database,
                progress=progress,
                compare=compare,
                media=media,
                prune_media=prune_media,
                verify=verify,
            )
        if prune_media and plan.can_restore and plan.media is None:
            raise CommandError(
                f"--prune-media: {plan.source.name} has no media files"
                + ("" if media else " to restore (--no-media)")
                + ".",
                returncode=EXIT_CANNOT_RUN,
            )
        misfit = None
        if not plan.can_restore:
            misfit = command_error(
                IncompatibleBackupError(
                    f"{plan.source.name} does not fit database {database!r}: "
                    f"{len(plan.schema_differences)} schema differences (listed "
                    f"{'in schema_differences' if json else 'above'}); nothing was "
                    "changed."
                )
            )
        if json and (dry_run or misfit):
            # The plan, and with a misfit also the error and its exit code.
            self.write_json(
                {**plan.to_dict(), **(error_document(misfit) if misfit else {})}
            )
        elif verbosity >= 1 and (dry_run or interactive or verbosity >= 2):
            self._render_plan(plan)
        elif verbosity >= 1:
            self._render_differences(plan)
        foreign = plan.verified and self._foreign(plan, verbosity)
        if misfit:
            raise misfit
        if dry_run:
            if not json and verbosity >= 1:
                self.stdout.write("Dry run: nothing was changed.")
            return
        if foreign and not interactive and not allow_foreign:
            raise self._refused(plan)
        if interactive:
            self._confirm(plan, foreign)
        settings = options.get("settings")
        with (
            running(self, {**options, "json": json}, steps=steps) as progress,
            self._interruption_told(database, settings) as committed,
            CommitGuard(progress, committed).held() as guarded,
        ):

            def verified(checked: RestorePlan) -> None:
                # A file that the restore's own read checked (not the plan's): told
                # and refused as above, before the restore writes anything.
                if not plan.verified:
                    progress.clear()
                    if self._foreign(checked, verbosity) and not allow_foreign:
                        raise self._refused(checked)

            summary = restore_backup(
                plan,
                safety_backup=safety_backup,
                progress=guarded,
                full=full,
                media=media,
                on_verified=verified,
            )
        undo = (
            undo_command(summary.safety_backup, database, settings)
            if summary.safety_backup
            else None
        )
        if json:
            self.write_json({**summary.to_dict(), "undo": undo})
            return
        if verbosity >= 1:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Restored database {database!r} from {plan.source.name} in "
                    f"{summary.seconds:.1f} s"
                )
            )
            self.stdout.write(self.fit(restored_text(summary), indent=2))
            if summary.media is not None:
                self._render_media_done(summary.media)
            if verbosity >= 2:
                for line in stage_times_text(summary.stages):
                    self.stdout.write(line)
            if undo:
                self.stdout.write(f"Safety backup: {summary.safety_backup}")
                self.stdout.write(f"To undo this restore, run:\n  {undo}")
            else:
                self.stdout.write(
                    "No safety backup was taken: this restore cannot be undone "
                    "with one."
                )

    @contextlib.contextmanager
    def _interruption_told(
        self, database: str, settings: str | None
    ) -> Iterator[Callable[[], None]]:
        """Keep ``self.interrupted`` true to what the restore has done so far;
        yield what to call once the restore has committed."""
        unchanged = f"Restore interrupted: database {database!r} was left unchanged"
        safety: list[str] = []

        def safety_written(
            sender: Any, using: str, summary: Any, **kwargs: Any
        ) -> None:
            if using == database and summary.origin == "safety":
                safety.append(summary.name)
                self.interrupted = (
                    f"{unchanged}; the safety backup {summary.name} was written."
                )
                self.interrupted_details = {
                    "database_changed": False,
                    "safety_backup": summary.name,
                }

        def committed(**kwargs: Any) -> None:
            self.interrupted = (
                f"Interrupted after the restore was committed: database "
                f"{database!r} holds the backup's data; the restore is complete."
            )
            self.interrupted_details = {
                "database_changed": True,
                "safety_backup": safety[-1] if safety else None,
            }
            if safety:
                undo = undo_command(safety[-1], database, settings)
                self.interrupted += f" To undo it, run: {undo}"

        def restored(sender: Any, using: str, summary: Any, **kwargs: Any) -> None:
            if using == database:
                committed()

        self.interrupted_details = {"database_changed": False}
        signals.post_backup.connect(safety_written, weak=False)
        signals.post_restore.connect(restored, weak=False)
        try:
            yield committed
        finally:
            signals.post_backup.disconnect(safety_written)
            signals.post_restore.disconnect(restored)

    def _render_plan(self, plan: RestorePlan) -> None:
        header = plan.header
        self.stdout.write(f"Backup: {plan.source.name}")
        self.stdout.write(
            self.fit(
                f"Taken:  {local_time(header.get('created'))} "
                f"({header.get('vendor')}, database {header.get('database')!r})",
                indent=8,
            )
        )
        if plan.compared:
            self._render_changes(plan)
        else:
            rows = [
                (t.label, number(t.rows_now), number(t.rows_in_file))
                for t in plan.tables
            ]
            rows.append(("total", number(plan.rows_now), number(plan.rows_in_file)))
            self.stdout.write(table(["table", "rows now", "rows in file"], rows))
        self._render_media(plan)
        self._render_differences(plan)

    def _render_changes(self, plan: RestorePlan) -> None:
        """The tables that would change, with what; the others folded in one line."""
        changing = [t for t in plan.tables if not t.unchanged]
        unchanged = [t.label for t in plan.tables if t.unchanged]
        width = terminal_width(self.stdout)
        if changing:
            rows = [
                (
                    t.label,
                    number(t.rows_now),
                    number(t.rows_in_file),
                    number(t.delete),
                    number(t.insert),
                    number(t.update),
                    "whole" if t.reload else "rows",
                )
                for t in changing
            ]
            totals = plan.changes()
            rows.append(
                (
                    "total",
                    number(plan.rows_now),
                    number(plan.rows_in_file),
                    number(totals["delete"]),
                    number(totals["insert"]),
                    number(totals["update"]),
                    "",
                )
            )
            self.stdout.write(
                table(
                    [
                        "table",
                        "rows now",
                        "rows in file",
                        "delete",
                        "insert",
                        "update",
                        "how",
                    ],
                    rows,
                    width=None if width is None else width - 1,
                    optional=("rows in file", "rows now"),
                    text_last=True,
                )
            )
        if unchanged:
            self.stdout.write(
                self.fit(
                    f"{len(unchanged)} tables unchanged"
                    + (f": {folded(unchanged)}" if changing else ""),
                    indent=2,
                )
            )
        for t in changing:
            self.stdout.write(t.label)
            for line in example_lines(t):
                # Continued under the first primary key, or under the update.
                indent = 10 if line.startswith("update") else len("  delete  pk ")
                self.stdout.write(self.fit(f"  {line}", indent=indent))

    def _render_media(self, plan: RestorePlan) -> None:
        media = plan.media
        if media is None:
            return
        self.stdout.write(
            self.fit(
                f"Media: {files(media.files)} in the backup: "
                f"{number(media.unchanged)} already right, {number(media.missing)} "
                f"missing and {number(media.changed)} changed, to write "
                f"({human_size(media.bytes_to_write)})",
                indent=7,
            )
        )
        if media.absent_at_backup:
            self.stdout.write(
                f"  {number(media.absent_at_backup)} references had no file when the "
                "backup was taken; those files are left as they are."
            )
        if media.prune:
            self.stdout.write(
                f"--prune-media deletes {files(media.prune_count)} that no row "
                "references after the restore" + (":" if media.prune_count else ".")
            )
            for storage, name in media.prune_names():
                self.stdout.write(f"  {storage}: {name}")

    def _render_media_done(self, media: dict[str, Any]) -> None:
        self.stdout.write(
            f"Media: {files(media['written'])} written "
            f"({human_size(media['bytes_written'])}), {number(media['unchanged'])} "
            "already right"
        )
        if "pruned" in media:
            self.stdout.write(
                f"Pruned {files(len(media['pruned']))} that no row references."
            )
        for failure in media.get("prune_failed", ()):
            self.stderr.write(
                self.style.WARNING(f"Warning: could not delete {failure}")
            )

    def _foreign(self, plan: RestorePlan, verbosity: int) -> bool:
        """Whether the (checked) file was made elsewhere; warn if so."""
        foreign = plan.provenance != "ours"
        if foreign and verbosity >= 1:
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {plan.source.name} was not made by this installation "
                    "(its mac does not verify); it may hold any users and permissions."
                )
            )
        return foreign

    def _refused(self, plan: RestorePlan) -> CommandError:
        return CommandError(
            f"Restore refused: {plan.source.name} was not made by this "
            "installation; pass --allow-foreign to restore it anyway.",
            returncode=EXIT_FAILED,
        )

    def _render_differences(self, plan: RestorePlan) -> None:
        for difference in plan.schema_differences:
            self.stdout.write(self.style.ERROR(f"  schema: {difference}"))

    def _confirm(self, plan: RestorePlan, foreign: bool = False) -> None:
        if not sys.stdin.isatty():
            raise CommandError(
                "Restore cancelled: standard input is not a terminal; pass --noinput "
                "to restore without asking.",
                returncode=EXIT_FAILED,
            )
        if plan.compared:
            totals = plan.changes()
            what = (
                f"This deletes {number(totals['delete'])}, inserts "
                f"{number(totals['insert'])} and updates {number(totals['update'])} "
                f"rows in database {plan.database!r} (as compared now), to make it "
                "equal to the backup."
            )
        else:
            what = (
                f"This replaces every row of {len(plan.tables)} tables in database "
                f"{plan.database!r} with the backup's rows."
            )
        what += " The file was NOT made by this installation." if foreign else ""
        # Asked at a terminal only: wrapped between words to its width.
        width = (terminal_width(self.stdout) or 80) - 1
        self.stdout.write(
            self.style.WARNING(
                textwrap.fill(
                    what, width, break_long_words=False, break_on_hyphens=False
                )
            )
        )
        try:
            answer = input("Type 'yes' to continue, or 'no' to cancel: ")
        except EOFError:
            answer = ""
        except KeyboardInterrupt:
            # The message that follows goes on a line of its own, not after the
            # prompt.
            self.stderr.write("")
            raise
        if answer.strip() != "yes":
            raise CommandError("Restore cancelled.", returncode=EXIT_FAILED)


# Labels listed by name in the line of unchanged tables, at most.
FOLDED_LABELS = 5


def folded(labels: list[str]) -> str:
    shown = ", ".join(labels[:FOLDED_LABELS])
    if len(labels) > FOLDED_LABELS:
        shown += f" and {len(labels) - FOLDED_LABELS} more"
    return shown


def _pks(pks: list[Any], count: int) -> str:
    text = ", ".join(str(pk) for pk in pks)
    if count > len(pks):
        text += f" (+{count - len(pks):,} more)"
    return text


def example_lines(plan: TablePlan) -> list[str]:
    """``delete  pk 7, 9``, ``update  pk 17: price 9.99 → 12.50``: a table's
    example changes, as a dry run shows them."""
    examples = plan.examples or {}
    lines = []
    for kind in ("delete", "insert"):
        count = getattr(plan, kind) or 0
        if count and examples.get(kind):
            lines.append(f"{kind}  pk {_pks(examples[kind], count)}")
        elif count:
            lines.append(f"{kind}  {count:,} rows")
    for pk, changes in examples.get("update", []):
        lines.append(f"update  pk {pk}: {described(changes) or 'spelling only'}")
    more = (plan.update or 0) - len(examples.get("update", []))
    if more > 0:
        lines.append(f"update  +{more:,} more rows")
    return lines


def restored_text(summary: RestoreSummary) -> str:
    """What a restore did, in one line: ``20 tables (2 reloaded whole, 3 changed
    row by row, 15 unchanged): 12 rows deleted, 30 inserted, 5 updated`` (``1 row
    deleted``)."""
    parts = []
    if summary.reloaded:
        parts.append(f"{len(summary.reloaded)} reloaded whole")
    if summary.tables_changed or summary.tables_unchanged:
        parts += [
            f"{summary.tables_changed} changed row by row",
            f"{summary.tables_unchanged} unchanged",
        ]
    tables = f"{summary.tables} tables"
    if len(parts) > 1:
        tables += f" ({', '.join(parts)})"
    rows = summary.rows_changed()
    deleted = rows["deleted"]
    return (
        f"{tables}: {number(deleted)} {'row' if deleted == 1 else 'rows'} deleted, "
        f"{number(rows['inserted'])} inserted, {number(rows['updated'])} updated"
    )
