from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError

from backups_app.operations.prune import (
    BlobCollection,
    collect_blobs,
    plan_blob_collection,
    plan_prune,
    policy_from,
    prune,
)
from backups_app.operations.retention import RetentionPolicy
from backups_app.operations.units import parse_size

from ._output import (
    EXIT_CANNOT_RUN,
    BackupsCommand,
    age,
    human_size,
    running,
    table,
    terminal_width,
)

PERIOD_OPTIONS = ("last", "daily", "weekly", "monthly", "yearly")


def media_line(blobs: BlobCollection, dry_run: bool) -> str:
    """What became of the media blobs, in one line."""
    kept = blobs.blobs - len(blobs.unneeded)
    if blobs.refused:
        done = "none deleted"
    elif dry_run:
        done = (
            f"would delete {len(blobs.unneeded)} that no kept backup needs "
            f"({human_size(blobs.unneeded_size)})"
        )
    else:
        done = (
            f"deleted {blobs.deleted} that no kept backup needed "
            f"({human_size(blobs.deleted_size)})"
        )
    return (
        f"Media blobs: {blobs.blobs} ({human_size(blobs.size)}); {done}; {kept} kept"
        + (
            f" ({blobs.young} unneeded but written in the last hour)"
            if blobs.young
            else ""
        )
        + "."
    )


class Command(BackupsCommand):
    help = (
        "Delete old backups by a retention policy (the BACKUPS['RETENTION'] setting "
        "unless options are given). Never deletes the newest backup of a database, "
        "the newest intact one, or a file that is not one of this site's backups."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        for period in PERIOD_OPTIONS:
            parser.add_argument(
                f"--keep-{period}",
                type=int,
                metavar="N",
                help=f"Keep the newest backup of each of the last N {period} periods"
                if period != "last"
                else "Keep the N newest backups.",
            )
        parser.add_argument(
            "--max-total-size",
            metavar="SIZE",
            help="Then delete the oldest kept backups until the rest fit (e.g. 20G).",
        )
        parser.add_argument("--database", help="Only the backups of this alias.")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Show what would be deleted and why; delete nothing.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document, nothing else."
        )

    def _policy(self, options: dict[str, Any]) -> RetentionPolicy | None:
        values: dict[str, Any] = {
            period: options[f"keep_{period}"]
            for period in PERIOD_OPTIONS
            if options[f"keep_{period}"] is not None
        }
        if options["max_total_size"] is not None:
            values["max_total_size"] = parse_size(options["max_total_size"])
        return policy_from(values) if values else None

    def handle(
        self,
        *args: Any,
        database: str | None,
        dry_run: bool,
        json: bool,
        **options: Any,
    ) -> None:
        try:
            policy = self._policy(options)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_CANNOT_RUN) from exc
        with running(self, {**options, "json": json}):
            decisions = plan_prune(database=database, policy=policy)
            deleted = [] if dry_run else prune(decisions)
            # Then the media blobs that no backup left in the storage needs.
            blobs = plan_blob_collection(
                leaving={d.backup.name for d in decisions if not d.keep}
                if dry_run
                else set()
            )
            if not dry_run:
                collect_blobs(blobs)
        if json:
            self.write_json(
                {
                    "dry_run": dry_run,
                    "deleted": deleted,
                    "decisions": [d.to_dict() for d in decisions],
                    "media": blobs.to_dict(),
                }
            )
            return
        if options["verbosity"] >= 1 and decisions:
            self.stdout.write(
                table(
                    ["name", "kind", "age", "size", "decision"],
                    [
                        (
                            d.backup.name,
                            d.backup.kind,
                            age(d.backup.created) if d.backup.created else "-",
                            human_size(d.backup.size),
                            (
                                "keep: "
                                + ", ".join(d.reasons).replace(
                                    "newest intact", "intact"
                                )
                            )
                            if d.keep
                            else (
                                "delete" + (f" ({d.reasons[0]})" if d.reasons else "")
                            ),
                        )
                        for d in decisions
                    ],
                    width=terminal_width(self.stdout),
                    optional=["kind", "size", "age"],
                    text_last=True,
                )
            )
        doomed = [d for d in decisions if not d.keep]
        size = sum(d.backup.size or 0 for d in doomed)
        if dry_run:
            self.stdout.write(
                f"Would delete {len(doomed)} of {len(decisions)} files "
                f"({human_size(size)}); nothing was deleted (--dry-run)."
            )
        else:
            self.stdout.write(
                f"Deleted {len(deleted)} of {len(decisions)} files ({human_size(size)})."
            )
        if blobs.blobs:
            self.stdout.write(self.fit(media_line(blobs, dry_run), indent=2))
            if blobs.refused:
                self.stderr.write(
                    self.style.WARNING(
                        f"Warning: no media blob deleted: {blobs.refused}."
                    )
                )
