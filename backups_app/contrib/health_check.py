"""A check for django-health-check (4.x): unhealthy when ``checkbackups`` would be.

Install the extra (``pip install django-backups-app[health]``) and list the check in
your health view::

    path("health/", HealthCheckView.as_view(checks=[
        "health_check.checks.Database",
        "backups_app.contrib.health_check.Backups",
    ]))

The newest backup's header and records are read, not the whole file, so the check is
quick enough for a health endpoint; ``checkbackups`` also reads the newest file whole.
"""

from __future__ import annotations

import dataclasses
import datetime

from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from ..conf import app_settings
from ..operations.health import HealthPolicy, check_database


@dataclasses.dataclass
class Backups(HealthCheck):
    """The backups of ``databases`` (default: ``BACKUPS['HEALTH']['DATABASES']``)."""

    databases: tuple[str, ...] | None = None
    timeout = datetime.timedelta(seconds=30)

    def run(self) -> None:
        policy = HealthPolicy.from_settings()
        databases = self.databases or tuple(app_settings.HEALTH["DATABASES"])
        problems = [
            problem
            for database in databases
            for problem in check_database(database, policy, verify=False)
        ]
        if problems:
            raise ServiceUnavailable("; ".join(p.message for p in problems))
