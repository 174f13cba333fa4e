"""Restore like ``restore --noinput``, reporting each stage and pausing at one.

For the kill tests: the restore library reports its stages through its progress
callback; this command prints each new stage as ``event STAGE`` on standard output
as it begins and, at ``--pause-at``, sleeps, so that a test can kill the process at
a moment it has observed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand

from backups_app.progress import Progress
from backups_app.restore import restore_backup


class Command(BaseCommand):
    help = "Restore a backup, printing each stage; pause at one of them."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--database", default="default")
        parser.add_argument("--pause-at", default="")
        parser.add_argument("--pause", type=float, default=60.0)
        parser.add_argument("--safety-backup", action="store_true")

    def handle(self, *args: Any, file: str, **options: Any) -> None:
        seen = set()

        def report(progress: Progress) -> None:
            # "restore" is reported per batch; its first report comes after the
            # first batch of rows was written.
            event = progress.stage
            if event in seen:
                return
            seen.add(event)
            sys.stdout.write(f"event {event}\n")
            sys.stdout.flush()
            if event == options["pause_at"]:
                time.sleep(options["pause"])

        restore_backup(
            file,
            using=options["database"],
            safety_backup=options["safety_backup"],
            progress=report,
        )
        sys.stdout.write("event done\n")
        sys.stdout.flush()
