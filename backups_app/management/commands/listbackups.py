from __future__ import annotations

import argparse
from typing import Any

from django.utils import timezone

from backups_app.operations.inventory import (
    StoredBackup,
    list_backups,
    media_blob_totals,
)

from ._output import (
    BackupsCommand,
    age,
    human_size,
    number,
    running,
    table,
    terminal_width,
)


def health(backup: StoredBackup) -> str:
    """The worst that is known of a backup, in one word or two."""
    if backup.kind == "partial":
        return backup.integrity  # writing, left behind, other host
    if backup.integrity == "damaged":
        return "damaged"
    if backup.last_drill == "failed":
        return "drill failed"
    if backup.last_validation == "differ":
        return "differ"
    if backup.last_drill == "passed":
        return "drilled"
    return backup.last_validation or backup.integrity


def media_size(backup: StoredBackup) -> str:
    """The bytes of the files a backup has, "?" when not known, "-" without media."""
    if not backup.media:
        return "-"
    return "?" if backup.media_size is None else human_size(backup.media_size)


def local_created(backup: StoredBackup) -> str:
    if backup.created is None:
        return "-"
    return f"{timezone.localtime(backup.created):%Y-%m-%d %H:%M}"


class Command(BackupsCommand):
    help = "List the backups in the backup storage, newest first."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--database", help="Only the backups of this alias.")
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document, nothing else."
        )

    def handle(
        self, *args: Any, database: str | None, json: bool, **options: Any
    ) -> None:
        with running(self, {**options, "json": json}):
            backups = list_backups(database, partials=True)
        if json:
            self.write_json([b.to_dict() for b in backups])
            return
        if not backups:
            self.stdout.write("No backups in the backup storage.")
            return
        self.stdout.write(
            table(
                [
                    "name",
                    "kind",
                    "database",
                    "created",
                    "age",
                    "size",
                    "tables",
                    "rows",
                    "media",
                    "health",
                ],
                [
                    (
                        b.name,
                        b.kind,
                        b.database or "-",
                        local_created(b),
                        age(b.created) if b.created else "-",
                        human_size(b.size),
                        number(b.tables),
                        number(b.rows),
                        media_size(b),
                        health(b),
                    )
                    for b in backups
                ],
                width=terminal_width(self.stdout),
                # A terminal too narrow for the rest keeps name and health.
                optional=[
                    "created",
                    "tables",
                    "rows",
                    "media",
                    "database",
                    "kind",
                    "size",
                    "age",
                ],
            )
        )
        if any(b.media for b in backups):
            blobs, size = media_blob_totals()
            self.stdout.write(
                self.fit(
                    f"Media: {number(blobs)} blobs, {human_size(size)} in the backup "
                    "storage, shared by the backups with media (each content stored "
                    "once).",
                    indent=7,
                )
            )
