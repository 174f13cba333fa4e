from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from django.core.management.base import CommandError

from backups_app import signals
from backups_app.exceptions import IncompatibleBackupError
from backups_app.restore import RestorePlan, plan_restore, restore_backup

from ._output import (
    EXIT_CANNOT_RUN,
    EXIT_FAILED,
    BackupsCommand,
    add_common_arguments,
    command_error,
    human_size,
    json_text,
    number,
    running,
    table,
)


def files(count: int) -> str:
    return f"{number(count)} file{'' if count == 1 else 's'}"


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
        with running(self, {**options, "json": json}) as progress:
            plan = plan_restore(
                file,
                using=database,
                progress=progress,
                media=media,
                prune_media=prune_media,
            )
        if prune_media and plan.can_restore and plan.media is None:
            raise CommandError(
                f"--prune-media: {plan.source.name} has no media files"
                + ("" if media else " to restore (--no-media)")
                + ".",
                returncode=EXIT_CANNOT_RUN,
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
                plan, safety_backup=safety_backup, progress=progress, media=media
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
                    f"Restored {plan.source.name} into database {database!r}: "
                    f"{summary.tables} tables, {number(summary.rows_inserted)} rows "
                    f"({number(summary.rows_deleted)} rows replaced) in "
                    f"{summary.seconds:.1f} s"
                )
            )
            if summary.media is not None:
                self._render_media_done(summary.media)

    @contextlib.contextmanager
    def _interruption_told(self, database: str) -> Iterator[None]:
        """Keep ``self.interrupted`` true to what the restore has done so far."""
        unchanged = f"Restore interrupted: database {database!r} was left unchanged"

        def safety_written(
            sender: Any, using: str, summary: Any, **kwargs: Any
        ) -> None:
            if using == database and summary.origin == "safety":
                self.interrupted = (
                    f"{unchanged}; the safety backup {summary.name} was written."
                )

        def restored(sender: Any, using: str, summary: Any, **kwargs: Any) -> None:
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
        rows = [
            (t.label, number(t.rows_now), number(t.rows_in_file)) for t in plan.tables
        ]
        rows.append(("total", number(plan.rows_now), number(plan.rows_in_file)))
        self.stdout.write(table(["table", "rows now", "rows in file"], rows))
        self._render_media(plan)
        self._render_differences(plan)

    def _render_media(self, plan: RestorePlan) -> None:
        media = plan.media
        if media is None:
            return
        self.stdout.write(
            f"Media: {files(media.files)} in the backup: "
            f"{number(media.unchanged)} already right, {number(media.missing)} "
            f"missing and {number(media.changed)} changed, to write "
            f"({human_size(media.bytes_to_write)})"
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
        self.stdout.write(
            self.style.WARNING(
                f"This replaces every row of {len(plan.tables)} tables in database "
                f"{plan.database!r} with the backup's rows."
                + (" The file was NOT made by this installation." if foreign else "")
            )
        )
        try:
            answer = input("Type 'yes' to continue, or 'no' to cancel: ")
        except EOFError:
            answer = ""
        if answer.strip() != "yes":
            raise CommandError("Restore cancelled.", returncode=EXIT_FAILED)
