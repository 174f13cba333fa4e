"""Are backups still coming, and are they any good? The rules of ``checkbackups``.

For each database: there is a backup; the newest is recent enough, big enough, not
much smaller than the one before, intact (read whole and its digests checked), and
neither its last validation nor the last restore drill of that database failed.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass
from typing import Any

from django.utils import timezone

from ..conf import app_settings
from ..exceptions import BackupError, BackupFormatError, one_line
from ..validate import validate_backup
from .inventory import BACKUP, list_backups
from .units import format_duration, format_size, parse_duration, parse_size


@dataclass(frozen=True)
class Problem:
    database: str
    code: str  # no-backup, too-old, too-small, shrunk, damaged, differs, drill-failed
    message: str
    backup: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class HealthPolicy:
    max_age: datetime.timedelta | None
    min_size: int | None
    shrink_ratio: float | None

    @classmethod
    def from_settings(cls, **overrides: Any) -> HealthPolicy:
        settings = app_settings.HEALTH
        max_age = overrides.get("max_age") or settings["MAX_AGE"]
        min_size = overrides.get("min_size") or settings["MIN_SIZE"]
        return cls(
            max_age=parse_duration(max_age) if isinstance(max_age, str) else max_age,
            min_size=parse_size(min_size) if isinstance(min_size, str) else min_size,
            shrink_ratio=overrides.get("shrink_ratio", settings["SHRINK_RATIO"]),
        )


def check_database(
    database: str,
    policy: HealthPolicy,
    *,
    verify: bool = True,
    now: datetime.datetime | None = None,
) -> list[Problem]:
    """Return the problems of one database's backups (none: healthy)."""
    now = now or timezone.now()
    backups = [b for b in list_backups(database) if b.kind == BACKUP]
    if not backups:
        return [Problem(database, "no-backup", f"{database}: no backup in the storage")]
    newest, problems = backups[0], []

    def add(code: str, message: str) -> None:
        problems.append(Problem(database, code, f"{database}: {message}", newest.name))

    if policy.max_age is not None and newest.created is not None:
        age = now - newest.created
        if age > policy.max_age:
            add(
                "too-old",
                f"the newest backup is {format_duration(age)} old, more than "
                f"{format_duration(policy.max_age)}: {newest.name}",
            )
    if policy.min_size is not None and (newest.size or 0) < policy.min_size:
        add(
            "too-small",
            f"the newest backup has {format_size(newest.size)}, less than "
            f"{format_size(policy.min_size)}: {newest.name}",
        )
    if policy.shrink_ratio and len(backups) > 1:
        previous = backups[1]
        if previous.size and (newest.size or 0) < previous.size * policy.shrink_ratio:
            add(
                "shrunk",
                f"the newest backup has {format_size(newest.size)}, much less than the "
                f"{format_size(previous.size)} of the one before: {newest.name}",
            )
    damaged = newest.integrity == "damaged"
    problem = newest.problem
    if verify and not damaged:
        try:
            report = validate_backup(newest.name, file_only=True)
        except BackupFormatError as exc:
            damaged, problem = True, one_line(exc)
        else:
            # A backup with media: a blob missing or damaged cannot be restored.
            if report.blobs is not None and not report.blobs.ok:
                damaged, problem = True, report.summary_line()
    if damaged:
        add("damaged", f"the newest backup is damaged: {problem}")
    if newest.last_validation == "differ":
        add(
            "differs",
            f"the last validation of {newest.name} found differences",
        )
    drill = _last_drill(database)
    if drill is not None and not drill.ok:
        problems.append(
            Problem(
                database,
                "drill-failed",
                f"{database}: the last restore drill, of {drill.backup_name} into "
                f"{drill.scratch_database!r}, failed: {drill.summary}",
                drill.backup_name,
            )
        )
    return problems


def _last_drill(database: str) -> Any:
    from django.db import DatabaseError

    from ..models import DrillRun

    try:
        return DrillRun.objects.filter(source_database=database).first()
    except DatabaseError:  # the app's tables are not migrated on this database
        return None


def check_all(*, verify: bool = False) -> list[Problem]:
    """Return the problems of every database in ``BACKUPS['HEALTH']['DATABASES']``;
    a failure to look is itself a problem (the admin shows them, it never raises)."""
    databases = list(app_settings.HEALTH["DATABASES"])
    try:
        policy = HealthPolicy.from_settings()
        return [
            problem
            for database in databases
            for problem in check_database(database, policy, verify=verify)
        ]
    except (BackupError, ValueError) as exc:
        return [Problem("", "cannot-check", f"Cannot check the backups: {exc}")]
