from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from backups_app.validate import ValidationReport, validate_backup

from ._output import (
    EXIT_CANNOT_RUN,
    EXIT_DIFFERS,
    EXIT_UNUSABLE_FILE,
    BackupsCommand,
    add_common_arguments,
    json_text,
    number,
    running,
    table,
)


class Command(BackupsCommand):
    help = (
        "Compare a backup with the database table by table; exit 0 when they are "
        "equal, 1 when they differ, 2 when the file is unusable, 4 when it cannot run."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_common_arguments(
            parser, database_help="Database alias to compare with", takes_file=True
        )
        parser.add_argument(
            "--file-only",
            action="store_true",
            help="Only check the file's integrity (and its media blobs); do not touch "
            "the database.",
        )
        parser.add_argument(
            "--no-media",
            action="store_false",
            dest="media",
            help="Compare the rows only, not the files of a backup with media.",
        )

    def handle(
        self,
        *args: Any,
        file: str,
        database: str,
        file_only: bool,
        json: bool,
        media: bool = True,
        **options: Any,
    ) -> None:
        self.interrupted = (
            "Validation interrupted before it finished; nothing was changed."
        )
        # 1 means "the database differs" and nothing else: a comparison that fails
        # midway (a database error, a value that cannot be read) could not run.
        with running(self, {**options, "json": json}, EXIT_CANNOT_RUN) as progress:
            report = validate_backup(
                file,
                using=database,
                file_only=file_only,
                progress=progress,
                media=media,
            )
        if json:
            self.stdout.write(json_text(report.to_dict()))
        else:
            self._render(report, options["verbosity"])
        if report.blobs is not None and not report.blobs.ok:
            raise CommandError(
                f"{report.source} cannot be restored: {report.summary_line()}.",
                returncode=EXIT_UNUSABLE_FILE,
            )
        if not report.ok:
            # The differences are already printed; the exit code is the verdict.
            raise CommandError(
                "The database differs from the backup.", returncode=EXIT_DIFFERS
            )

    def _render(self, report: ValidationReport, verbosity: int) -> None:
        if verbosity == 0:
            return
        if report.file_only:
            if verbosity >= 2:
                rows = [(t.label, number(t.file_rows)) for t in report.tables]
                self.stdout.write(table(["table", "rows"], rows))
            if report.blobs is not None and not report.blobs.ok:
                for example in report.blobs.examples:
                    self.stdout.write(f"  media blob of {example}")
                return
            self.stdout.write(self.style.SUCCESS(report.summary_line()))
            return
        shown = (
            report.tables
            if verbosity >= 2
            else [t for t in report.tables if not t.matches]
        )
        if shown:
            self.stdout.write(
                table(
                    [
                        "table",
                        "in file",
                        "in db",
                        "missing",
                        "extra",
                        "changed",
                        "status",
                    ],
                    [
                        (
                            t.label,
                            number(t.file_rows),
                            number(t.db_rows),
                            number(t.missing),
                            number(t.extra),
                            number(t.changed),
                            t.problem or t.status,
                        )
                        for t in shown
                    ],
                )
            )
        for t in report.tables:
            for what in ("missing", "extra", "changed"):
                examples = getattr(t, f"{what}_examples")
                if examples:
                    self.stdout.write(
                        f"  {t.label}: {what} primary keys, e.g. "
                        + ", ".join(json_text(e) for e in examples)
                    )
        self._render_media(report, verbosity)
        for difference in report.schema_differences:
            self.stdout.write(self.style.WARNING(f"  schema: {difference}"))
        style = self.style.SUCCESS if report.ok else self.style.ERROR
        self.stdout.write(style(report.summary_line()))

    def _render_media(self, report: ValidationReport, verbosity: int) -> None:
        shown = [m for m in report.media if verbosity >= 2 or not m.matches]
        if not shown:
            return
        self.stdout.write(
            table(
                ["media", "files", "missing", "extra", "changed", "status"],
                [
                    (
                        m.source,
                        number(m.files),
                        number(m.missing),
                        number(m.extra),
                        number(m.changed),
                        m.status,
                    )
                    for m in shown
                ],
            )
        )
        for m in report.media:
            what_is_shown = "names" if m.source.startswith("storage ") else "pks"
            for what in ("missing", "extra", "changed"):
                examples = getattr(m, f"{what}_examples")
                if examples:
                    self.stdout.write(
                        f"  {m.source}: {what} files, e.g. {what_is_shown} "
                        + ", ".join(json_text(e) for e in examples)
                    )
