from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import CommandError
from django.db import connections

from backups_app.conf import app_settings
from backups_app.exceptions import BackupError
from backups_app.operations.health import HealthPolicy, check_database

from ._output import BackupsCommand, running

EXIT_UNHEALTHY = 1
EXIT_CANNOT_CHECK = 2


class Command(BackupsCommand):
    cannot_run_exit = EXIT_CANNOT_CHECK
    help = (
        "Check that backups keep coming and are sound: exit 0 healthy, 1 unhealthy "
        "(one line per problem), 2 could not check."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--database",
            action="append",
            metavar="ALIAS",
            help="Check this alias; repeat for more (default: BACKUPS['HEALTH'] "
            "['DATABASES']).",
        )
        parser.add_argument(
            "--max-age",
            metavar="DURATION",
            help="Unhealthy when the newest backup is older (90s, 45m, 26h, 7d).",
        )
        parser.add_argument(
            "--min-size",
            metavar="SIZE",
            help="Unhealthy when the newest backup is smaller (e.g. 10M).",
        )
        parser.add_argument(
            "--no-verify",
            action="store_true",
            help="Do not read the newest backup whole to check its digests.",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON document, nothing else."
        )

    def handle(
        self,
        *args: Any,
        database: list[str] | None,
        max_age: str | None,
        min_size: str | None,
        no_verify: bool,
        json: bool,
        **options: Any,
    ) -> None:
        databases = database or list(app_settings.HEALTH["DATABASES"])
        unknown = [alias for alias in databases if alias not in connections]
        if unknown:
            raise CommandError(
                f"Unknown database {unknown[0]!r}; the aliases are: "
                f"{', '.join(sorted(connections.settings))}.",
                returncode=EXIT_CANNOT_CHECK,
            )
        try:
            policy = HealthPolicy.from_settings(max_age=max_age, min_size=min_size)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=EXIT_CANNOT_CHECK) from exc
        with running(self, {**options, "json": True}):
            try:
                problems = [
                    problem
                    for alias in databases
                    for problem in check_database(alias, policy, verify=not no_verify)
                ]
            except BackupError as exc:
                raise CommandError(str(exc), returncode=EXIT_CANNOT_CHECK) from exc
        if json:
            self.write_json(
                {
                    "healthy": not problems,
                    "databases": databases,
                    "problems": [p.to_dict() for p in problems],
                }
            )
        elif problems:
            for problem in problems:
                self.stdout.write(problem.message)
        elif options["verbosity"] >= 1:
            self.stdout.write(f"Backups are healthy: {', '.join(databases)}.")
        if problems:
            raise CommandError(
                f"{len(problems)} problem{'s' if len(problems) > 1 else ''} with "
                "the backups.",
                returncode=EXIT_UNHEALTHY,
            )
