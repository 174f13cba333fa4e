from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from backups_app.operations.drill import DrillRefused, run_drill

from ._output import EXIT_CANNOT_RUN, BackupsCommand, running

EXIT_DRILL_FAILED = 1


class Command(BackupsCommand):
    help = (
        "Restore a backup (default: the newest of --source) into a scratch database, "
        "validate it there and record the result. Exit 0 only when it restored "
        "exactly."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "file",
            nargs="?",
            help="Backup to drill: a path or a name in the backup storage "
            "(default: the newest backup of --source).",
        )
        parser.add_argument(
            "--database",
            required=True,
            metavar="SCRATCH_ALIAS",
            help="The scratch database to restore into; its data is replaced.",
        )
        parser.add_argument(
            "--source",
            default="default",
            metavar="ALIAS",
            help="Whose newest backup to drill when no FILE is given "
            "(default: %(default)s).",
        )
        parser.add_argument(
            "--allow-source-database",
            action="store_true",
            help="Allow the scratch database to be the one the backup came from.",
        )
        parser.add_argument(
            "--no-migrate",
            action="store_true",
            help="Do not run migrate on the scratch database first.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document, nothing else."
        )

    def handle(
        self,
        *args: Any,
        file: str | None,
        database: str,
        source: str,
        allow_source_database: bool,
        no_migrate: bool,
        json: bool,
        **options: Any,
    ) -> None:
        with running(self, {**options, "json": json}) as progress:
            try:
                result = run_drill(
                    file,
                    scratch=database,
                    source_database=source,
                    allow_source_database=allow_source_database,
                    migrate=not no_migrate,
                    progress=progress,
                )
            except DrillRefused as exc:
                raise CommandError(str(exc), returncode=EXIT_CANNOT_RUN) from exc
        if json:
            self.write_json(result.to_dict())
        elif result.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Drill passed: {result.backup_name} restored into "
                    f"{database!r} in {result.seconds:.1f} s; {result.message}."
                )
            )
        if not result.ok:
            raise CommandError(
                f"Drill failed: {result.backup_name} into {database!r}: "
                f"{result.summary}",
                returncode=EXIT_DRILL_FAILED,
            )
