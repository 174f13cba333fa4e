from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from backups_app.changes import described
from backups_app.validate import ValidationReport, validate_backup

from ._output import (
    EXIT_CANNOT_RUN,
    EXIT_DIFFERS,
    EXIT_UNUSABLE_FILE,
    VALIDATE_STEPS,
    BackupsCommand,
    CommandOutcome,
    add_common_arguments,
    json_text,
    number,
    running,
    table,
    terminal_width,
)


def keys(examples: list) -> str:
    """Primary keys as a short list: ``49, 50`` or ``[1, "a"]`` for composite ones."""
    return ", ".join(json_text(e).replace("\n", "").replace("  ", "") for e in examples)


def verdict(report: ValidationReport) -> str:
    """The last line: the summary, with the rows that differ."""
    line = report.summary_line()
    counts = [
        f"{count:,} {what}"
        for what in ("missing", "extra", "changed")
        if (count := sum(getattr(t, what) for t in report.tables))
    ]
    if counts:
        line += "; rows: " + ", ".join(counts)
    return line


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
        steps = VALIDATE_STEPS[:1] if file_only else VALIDATE_STEPS
        with running(
            self, {**options, "json": json}, EXIT_CANNOT_RUN, steps
        ) as progress:
            report = validate_backup(
                file,
                using=database,
                file_only=file_only,
                progress=progress,
                media=media,
            )
        if json:
            self.write_json(report.to_dict())
        else:
            self._render(report, options["verbosity"])
        if report.blobs is not None and not report.blobs.ok:
            raise CommandError(
                f"{report.source} cannot be restored: {report.summary_line()}.",
                returncode=EXIT_UNUSABLE_FILE,
            )
        if not report.ok:
            # The differences and the summary are printed (or the report is the
            # JSON document): the exit code says the rest, without an error line.
            raise CommandOutcome(returncode=EXIT_DIFFERS)

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
        width = terminal_width(self.stdout)
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
                    width=None if width is None else width - 1,
                    optional=["in file", "in db"],
                    text_last=True,
                )
            )
        for t in report.tables:
            for what in ("missing", "extra"):
                examples = getattr(t, f"{what}_examples")
                if examples:
                    more = ", ..." if getattr(t, what) > len(examples) else ""
                    self._example(f"  {t.label}: {what} pk {keys(examples)}{more}")
            for pk, changes in t.changed_rows:
                self._example(
                    f"  {t.label}: changed pk {keys([pk])}: {described(changes)}"
                )
            if t.changed > len(t.changed_rows):
                left = t.changed - len(t.changed_rows)
                self._example(
                    f"  {t.label}: {left:,} more changed row{'s' if left > 1 else ''}"
                )
        self._render_media(report, verbosity, width)
        for difference in report.schema_differences:
            self.stdout.write(self.style.WARNING(f"  schema: {difference}"))
        style = self.style.SUCCESS if report.ok else self.style.ERROR
        self.stdout.write(style(self.fit(verdict(report), indent=2)))

    def _example(self, line: str) -> None:
        """Write a line of examples, wrapped to the terminal with an indent."""
        self.stdout.write(self.fit(line, indent=6))

    def _render_media(
        self, report: ValidationReport, verbosity: int, width: int | None
    ) -> None:
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
                width=None if width is None else width - 1,
                optional=["files"],
                text_last=True,
            )
        )
        for m in report.media:
            what_is_shown = "name" if m.source.startswith("storage ") else "pk"
            for what in ("missing", "extra", "changed"):
                examples = getattr(m, f"{what}_examples")
                if examples:
                    more = ", ..." if getattr(m, what) > len(examples) else ""
                    self._example(
                        f"  {m.source}: {what} files, {what_is_shown} "
                        f"{keys(examples)}{more}"
                    )
