from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError

from backups_app import signals
from backups_app.exceptions import IncompatibleBackupError
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
    BackupsCommand,
    add_common_arguments,
    command_error,
    json_text,
    number,
    running,
    table,
)


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
        # The plan says which rows would change where it is shown; a restore without
        # a preview compares the tables only inside its transaction.
        shown = dry_run or interactive or verbosity >= 2
        with running(self, {**options, "json": json}) as progress:
            plan = plan_restore(
                file, using=database, progress=progress, compare=shown and not full
            )
        if json and (dry_run or not plan.can_restore):
            self.stdout.write(json_text(plan.to_dict()))
        elif verbosity >= 1 and (dry_run or interactive or verbosity >= 2):
            self._render_plan(plan)
        elif verbosity >= 1:
            self._render_differences(plan)
        foreign = plan.provenance != "ours"
        if foreign and verbosity >= 1:
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: {plan.source.name} was not made by this installation "
                    "(its mac does not verify); it may hold any users and permissions."
                )
            )
        if not plan.can_restore:
            raise command_error(
                IncompatibleBackupError(
                    f"{plan.source.name} does not fit database {database!r}: "
                    f"{len(plan.schema_differences)} schema differences (listed above); "
                    "nothing was changed."
                )
            )
        if dry_run:
            if not json and verbosity >= 1:
                self.stdout.write("Dry run: nothing was changed.")
            return
        if foreign and not interactive and not allow_foreign:
            raise CommandError(
                f"Restore refused: {plan.source.name} was not made by this "
                "installation; pass --allow-foreign to restore it anyway.",
                returncode=EXIT_FAILED,
            )
        if interactive:
            self._confirm(plan, foreign)
        with (
            running(self, {**options, "json": json}) as progress,
            self._interruption_told(database),
        ):
            summary = restore_backup(
                plan, safety_backup=safety_backup, progress=progress, full=full
            )
        if json:
            self.stdout.write(json_text(summary.to_dict()))
            return
        if verbosity >= 1:
            if summary.safety_backup:
                self.stdout.write(
                    f"Safety backup of the previous data: {summary.safety_backup}"
                )
            self.stdout.write(
                self.style.SUCCESS(
                    f"Restored {plan.source.name} into database {database!r} in "
                    f"{summary.seconds:.1f} s: {restored_text(summary)}"
                )
            )

    @contextlib.contextmanager
    def _interruption_told(self, database: str) -> Iterator[None]:
        """Keep ``self.interrupted`` true to what the restore has done so far."""
        unchanged = f"Restore interrupted: database {database!r} was left unchanged"

        def safety_written(sender, using, summary, **kwargs):
            if using == database and summary.origin == "safety":
                self.interrupted = (
                    f"{unchanged}; the safety backup {summary.name} was written."
                )

        def restored(sender, using, summary, **kwargs):
            if using == database:
                self.interrupted = (
                    f"Interrupted after the restore was committed: database "
                    f"{database!r} holds the backup's data; the restore is complete."
                )

        signals.post_backup.connect(safety_written, weak=False)
        signals.post_restore.connect(restored, weak=False)
        try:
            yield
        finally:
            signals.post_backup.disconnect(safety_written)
            signals.post_restore.disconnect(restored)

    def _render_plan(self, plan: RestorePlan) -> None:
        header = plan.header
        self.stdout.write(
            f"Backup {plan.source.name}: taken {header.get('created')} from "
            f"{header.get('vendor')} database {header.get('database')!r}"
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
        self._render_differences(plan)

    def _render_changes(self, plan: RestorePlan) -> None:
        """The tables that would change, with what; the others folded in one line."""
        changing = [t for t in plan.tables if not t.unchanged]
        unchanged = [t.label for t in plan.tables if t.unchanged]
        if changing:
            rows = [
                (
                    t.label,
                    number(t.rows_now),
                    number(t.rows_in_file),
                    number(t.delete),
                    number(t.insert),
                    number(t.update),
                    "reload whole" if t.reload else "rows",
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
                    text_last=True,
                )
            )
        if unchanged:
            self.stdout.write(
                f"{len(unchanged)} tables unchanged"
                + (f": {folded(unchanged)}" if changing else "")
            )
        for t in changing:
            self.stdout.write(t.label)
            for line in example_lines(t):
                self.stdout.write(f"  {line}")

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
        self.stdout.write(
            self.style.WARNING(
                what
                + (" The file was NOT made by this installation." if foreign else "")
            )
        )
        try:
            answer = input("Type 'yes' to continue, or 'no' to cancel: ")
        except EOFError:
            answer = ""
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
    for example in examples.get("update", []):
        fields = ", ".join(
            f"{change['field']} {change['old']} → {change['new']}"
            for change in example["fields"]
        )
        lines.append(f"update  pk {example['pk']}: {fields or 'spelling only'}")
    shown = len(examples.get("update", []))
    if (plan.update or 0) > shown:
        lines.append(f"update  +{plan.update - shown:,} more rows")
    return lines


def restored_text(summary: RestoreSummary) -> str:
    """What a restore did, in one line of its summary."""
    tables = f"{summary.tables} tables"
    if summary.reloaded and summary.tables_changed + summary.tables_unchanged:
        tables += (
            f" ({len(summary.reloaded)} reloaded whole, {summary.tables_changed} "
            f"changed row by row, {summary.tables_unchanged} unchanged)"
        )
    elif not summary.reloaded:
        tables += (
            f" ({summary.tables_changed} changed row by row, "
            f"{summary.tables_unchanged} unchanged)"
        )
    return (
        f"{tables}; {number(summary.rows_deleted - summary.rows_updated)} rows "
        f"deleted, {number(summary.rows_inserted - summary.rows_updated)} inserted, "
        f"{number(summary.rows_updated)} updated"
    )
