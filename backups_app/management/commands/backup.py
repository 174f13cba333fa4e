from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import BaseCommand

from backups_app.backup import create_backup
from backups_app.streams import stored_path

from ._output import (
    add_common_arguments,
    human_size,
    json_text,
    number,
    running,
    table,
)


def where(summary) -> str:
    """Say where a backup went: a path, or a name in the backup storage."""
    if summary.storage_name is None:
        return summary.name
    location = stored_path(summary.storage_name)
    suffix = f" ({location})" if location else ""
    return f"{summary.storage_name} in the backup storage{suffix}"


class Command(BaseCommand):
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

    def handle(
        self,
        *args: Any,
        output: str | None,
        database: str,
        exclude: list[str],
        json: bool,
        **options: Any,
    ) -> None:
        with running(self, {**options, "json": json}) as progress:
            summary = create_backup(
                output, using=database, exclude=exclude, progress=progress
            )
        # Backing up to stdout (or to a device or a pipe, such as /dev/stdout)
        # leaves stdout to the backup itself.
        streamed = output == "-" or (output is not None and not os.path.isfile(output))
        out = self.stderr if streamed else self.stdout
        if json:
            out.write(json_text(summary.to_dict()))
            return
        verbosity = options["verbosity"]
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
