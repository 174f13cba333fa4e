from __future__ import annotations

import argparse
import os
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.db import connections

from backups_app.backup import BackupSummary, MediaSummary, create_backup
from backups_app.operations.prune import (
    collect_blobs,
    plan_blob_collection,
    plan_prune,
    prune,
)
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
from .prunebackups import media_line


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
        media = parser.add_mutually_exclusive_group()
        media.add_argument(
            "--media",
            action="store_true",
            default=None,
            help="Back up the files that FileField and ImageField rows reference too, "
            "as blobs in the backup storage (default: BACKUPS['MEDIA']).",
        )
        media.add_argument(
            "--no-media",
            action="store_false",
            dest="media",
            help="Back up the rows only, whatever BACKUPS['MEDIA'] says.",
        )
        parser.add_argument(
            "--media-storage",
            action="append",
            dest="media_storages",
            metavar="ALIAS",
            help="Back up every file of this STORAGES alias too, referenced or not; "
            "repeat for more (default: BACKUPS['MEDIA_STORAGES']).",
        )
        parser.add_argument(
            "--strict-media",
            action="store_true",
            help="Fail, writing no backup, when a file that a row references is "
            "missing (by default a warning).",
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
        media: bool | None = None,
        media_storages: list[str] | None = None,
        strict_media: bool = False,
        **options: Any,
    ) -> None:
        options["media_options"] = {
            "media": media,
            "media_storages": media_storages,
            "strict_media": strict_media,
        }
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
                output,
                using=database,
                exclude=exclude,
                progress=progress,
                **options["media_options"],
            )
        self.interrupted = (
            f"Interrupted after the backup was written to {where(summary)}."
        )
        out = self._out(output)
        verbosity = options["verbosity"]
        if summary.media is not None and summary.media.missing and verbosity >= 1:
            self._warn_missing(summary.media)
        if summary.unmanaged_left_out and verbosity >= 1:
            self._warn_unmanaged(summary.unmanaged_left_out)
        if json:
            return summary
        if verbosity >= 2:
            out.write(
                table(
                    ["table", "rows"],
                    [(t.label, number(t.rows)) for t in summary.tables],
                )
            )
        if verbosity >= 1 and summary.media is not None:
            media = summary.media
            out.write(
                f"Media: {number(media.files)} files ({human_size(media.size)}) "
                f"from {media.sources} sources; {number(media.blobs_added)} new blobs "
                f"({human_size(media.bytes_added)}) written to the backup storage"
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

    def _warn_missing(self, media: MediaSummary) -> None:
        """Name the files that rows reference but that could not be backed up."""
        for missing in media.missing_examples:
            self.stderr.write(self.style.WARNING(f"Warning: {missing}"))
        more = media.missing - len(media.missing_examples)
        if more > 0:
            self.stderr.write(
                self.style.WARNING(f"Warning: and {number(more)} more files like these")
            )
        files = (
            "file that rows reference is"
            if media.missing == 1
            else "files that rows reference are"
        )
        self.stderr.write(
            self.style.WARNING(
                f"Warning: {number(media.missing)} {files} not in the backup "
                "(--strict-media makes this an error)."
            )
        )

    def _warn_unmanaged(self, labels: tuple[str, ...]) -> None:
        """Name the unmanaged models whose tables are in the database but not in the
        backup: never left out silently."""
        tables = (
            "table of 1 unmanaged model is"
            if len(labels) == 1
            else f"tables of {len(labels)} unmanaged models are"
        )
        self.stderr.write(
            self.style.WARNING(
                self.fit(
                    f"Warning: the {tables} not in the backup: {', '.join(labels)} "
                    "(BACKUPS['UNMANAGED'] names the ones to back up).",
                    indent=9,
                )
            )
        )

    def _prune(self, database: str, json: bool, options: dict[str, Any]) -> list[str]:
        """Apply the retention policy to the backups of ``database``; return the
        names deleted."""
        with running(self, {**options, "json": json}):
            deleted = prune(plan_prune(database=database))
            blobs = collect_blobs(plan_blob_collection())
        if not json and options["verbosity"] >= 1:
            self.stdout.write(
                f"Pruned {len(deleted)} old backup{'' if len(deleted) == 1 else 's'} "
                f"of database {database!r} by the retention policy."
            )
            if blobs.blobs:
                self.stdout.write(media_line(blobs, dry_run=False))
        return deleted
