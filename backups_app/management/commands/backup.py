from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.db import connections

from backups_app.backup import BackupSummary, create_backup
from backups_app.operations.prune import plan_prune, prune
from backups_app.records import stored_location

from ._output import (
    EXIT_CANNOT_RUN,
    BackupsCommand,
    add_common_arguments,
    human_size,
    number,
    running,
    table,
)


def where(summary: BackupSummary) -> str:
    """Say where a backup went: a path, or a name in the backup storage."""
    if summary.storage_name is None:
        return summary.name
    location = stored_location(summary.storage_name)
    suffix = f" ({location})" if location else ""
    return f"{summary.storage_name} in the backup storage{suffix}"


class Command(BackupsCommand):
    help = "Write a complete, integrity-checked backup of a database."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "-o",
            "--output",
            help="Path of the backup file, or - for standard output. Default: a new "
            "name in the backup storage. A .gz suffix compresses.",
        )
        parser.add_argument(
            "-e",
            "--exclude",
            action="append",
            default=[],
            metavar="APP[.MODEL]",
            help="Leave out an app or model; repeat for more.",
        )
        add_common_arguments(
            parser, database_help="Database alias to back up", takes_file=False
        )
        parser.add_argument(
            "--all-databases",
            action="store_true",
            help="Back up every database in DATABASES, each to a new name in the "
            "backup storage.",
        )
        parser.add_argument(
            "--prune",
            action="store_true",
            help="Then delete old backups of each database backed up, by the "
            "BACKUPS['RETENTION'] policy (never after a failed backup).",
        )

    def handle(
        self,
        *args: Any,
        output: str | None,
        database: str,
        exclude: list[str],
        json: bool,
        all_databases: bool,
        prune: bool,
        **options: Any,
    ) -> None:
        if all_databases and output is not None:
            raise CommandError(
                "--all-databases writes one file per database into the backup "
                "storage; it cannot go with --output.",
                returncode=EXIT_CANNOT_RUN,
            )
        if prune and output is not None:
            raise CommandError(
                "--prune deletes old backups from the backup storage; it cannot go "
                "with --output.",
                returncode=EXIT_CANNOT_RUN,
            )
        databases = list(connections) if all_databases else [database]
        self.json_stream = self._out(output)
        summaries, failures, pruned = [], [], {}
        for alias in databases:
            try:
                summary = self._back_up(output, alias, exclude, json, options)
            except CommandError as exc:
                if not all_databases:
                    raise
                failures.append((alias, exc))
                self.stderr.write(f"{alias}: {exc}")
                continue
            summaries.append(summary)
            if prune:
                pruned[alias] = self._prune(alias, json, options)
        if json:
            if not all_databases and not prune:
                self.write_json(summaries[0].to_dict())
            else:
                self.write_json(
                    {
                        "backups": [s.to_dict() for s in summaries],
                        "failed": {alias: str(exc) for alias, exc in failures},
                        "pruned": pruned,
                    }
                )
        if failures:
            raise CommandError(
                f"{len(failures)} of {len(databases)} databases could not be backed "
                "up: " + ", ".join(alias for alias, _ in failures) + ".",
                returncode=max(exc.returncode for _, exc in failures),
            )

    def _out(self, output: str | None) -> OutputWrapper:
        """Backing up to stdout (or to a device or a pipe, such as /dev/stdout)
        leaves stdout to the backup itself."""
        streamed = output == "-" or (
            output is not None and os.path.exists(output) and not os.path.isfile(output)
        )
        return self.stderr if streamed else self.stdout

    def _back_up(
        self,
        output: str | None,
        database: str,
        exclude: list[str],
        json: bool,
        options: dict[str, Any],
    ) -> BackupSummary:
        if output == "-":
            self.interrupted = (
                "Backup interrupted: what was written to standard output is "
                "incomplete and is no backup."
            )
        else:
            self.interrupted = "Backup interrupted: no backup file was written."
        with running(self, {**options, "json": json}) as progress:
            summary = create_backup(
                output, using=database, exclude=exclude, progress=progress
            )
        self.interrupted = (
            f"Interrupted after the backup was written to {where(summary)}."
        )
        out = self._out(output)
        verbosity = options["verbosity"]
        if json:
            return summary
        if verbosity >= 2:
            out.write(
                table(
                    ["table", "rows"],
                    [(t.label, number(t.rows)) for t in summary.tables],
                )
            )
        if verbosity >= 1:
            out.write(f"Backup written to {where(summary)}")
            out.write(
                self.style.SUCCESS(
                    f"Backed up database {database!r}: {summary.table_count} tables, "
                    f"{number(summary.rows)} rows, {human_size(summary.size)} "
                    f"in {summary.seconds:.1f} s"
                )
            )
        return summary

    def _prune(self, database: str, json: bool, options: dict[str, Any]) -> list[str]:
        """Apply the retention policy to the backups of ``database``; return the
        names deleted."""
        with running(self, {**options, "json": json}):
            deleted = prune(plan_prune(database=database))
        if not json and options["verbosity"] >= 1:
            self.stdout.write(
                f"Pruned {len(deleted)} old backup{'' if len(deleted) == 1 else 's'} "
                f"of database {database!r} by the retention policy."
            )
        return deleted
