"""Restore drills: prove that a backup restores, into a scratch database, and say so.

The drill migrates the scratch database (and makes the tables of the unmanaged models
the file holds, which migrate does not), restores the backup there (no safety backup:
the scratch data is not worth keeping), validates the result against the file, and
records the outcome where ``checkbackups`` and the admin find it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from django.core.management import call_command
from django.db import DatabaseError, connections

from .. import signals
from ..db.tables import file_unmanaged, missing_tables, table_specs
from ..exceptions import BackupError, one_line
from ..fileformat.reader import BackupReader
from ..fileformat.streams import BackupSource
from ..progress import ProgressCallback, ignore_progress
from ..restore import plan_restore, restore_backup
from ..validate import validate_backup
from .inventory import BACKUP, list_backups


class DrillRefused(BackupError):
    """The drill was not run: nothing to drill, or a target that must not be used."""


@dataclass(frozen=True)
class DrillResult:
    backup_name: str
    source_database: str
    scratch_database: str
    ok: bool
    failed_step: str  # migrate, restore or validate; "" when the drill passed
    summary: str
    message: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def newest_backup(database: str) -> str:
    """Return the storage name of the newest backup of alias ``database``."""
    for backup in list_backups(database):
        if backup.kind == BACKUP:
            return backup.name
    raise DrillRefused(f"No backup of database {database!r} in the backup storage.")


def same_database(first: str, second: str) -> bool:
    """Tell whether two aliases reach the same database (same vendor, host and name)."""
    if first == second:
        return True
    if first not in connections or second not in connections:
        return False

    def identity(alias: str) -> tuple:
        settings = connections[alias].settings_dict
        return (
            connections[alias].vendor,
            settings.get("HOST") or "",
            str(settings.get("PORT") or ""),
            str(settings.get("NAME") or ""),
        )

    return identity(first) == identity(second)


def run_drill(
    file: str | None = None,
    *,
    scratch: str,
    source_database: str = "default",
    allow_source_database: bool = False,
    migrate: bool = True,
    progress: ProgressCallback = ignore_progress,
) -> DrillResult:
    """Restore ``file`` (default: the newest backup of ``source_database``) into
    ``scratch``, validate it there, record and announce the result.

    Raises DrillRefused (nothing was changed) when there is nothing to drill or the
    scratch alias is the backup's own database and ``allow_source_database`` is not
    set; every failure of the drill itself is a result with ``ok`` False.
    """
    if scratch not in connections:
        raise DrillRefused(
            f"Unknown database {scratch!r}; the aliases are: "
            f"{', '.join(sorted(connections.settings))}."
        )
    name = file or newest_backup(source_database)
    source = BackupSource(name)
    started = time.perf_counter()
    try:
        with source.open() as stream:
            header = BackupReader(stream, source.name).header
    except BackupError as exc:
        return _finish(name, source_database, scratch, "restore", exc, started)
    backed_up = str(header.get("database") or source_database)
    if not allow_source_database and same_database(backed_up, scratch):
        raise DrillRefused(
            f"Database {scratch!r} is the one {name} was taken from; a drill "
            "replaces its data. Pass --allow-source-database to drill there anyway."
        )
    if migrate:
        try:
            call_command("migrate", database=scratch, interactive=False, verbosity=0)
            _create_unmanaged_tables(header, scratch)
        except DatabaseError as exc:
            return _finish(name, backed_up, scratch, "migrate", exc, started)
    # The rows only: the files of a backup with media belong to the storages the
    # site itself uses, which a drill into a scratch database must not touch.
    try:
        plan = plan_restore(source, using=scratch, progress=progress, media=False)
        restore_backup(
            plan, using=scratch, safety_backup=False, progress=progress, media=False
        )
    except BackupError as exc:
        return _finish(name, backed_up, scratch, "restore", exc, started)
    try:
        report = validate_backup(source, using=scratch, progress=progress, media=False)
    except BackupError as exc:
        return _finish(name, backed_up, scratch, "validate", exc, started)
    if not report.ok:
        return _finish(
            name, backed_up, scratch, "validate", report.summary_line(), started
        )
    return _finish(name, backed_up, scratch, "", report.summary_line(), started)


def _create_unmanaged_tables(header: dict[str, Any], using: str) -> None:
    """Make, from their models, the tables of the unmanaged models the file holds
    that the scratch database lacks: ``migrate`` makes none."""
    try:
        specs = table_specs(using, unmanaged=file_unmanaged(header))
    except BackupError:
        return  # a model not installed here: the restore says so
    unmanaged = [
        spec.model
        for spec in missing_tables(specs, using)
        if not spec.model._meta.managed and not spec.model._meta.auto_created
    ]
    if unmanaged:
        with connections[using].schema_editor() as editor:
            for model in unmanaged:
                editor.create_model(model)


def _finish(
    name: str,
    source_database: str,
    scratch: str,
    failed_step: str,
    outcome: BaseException | str,
    started: float,
) -> DrillResult:
    from ..records import record_drill

    message = outcome if isinstance(outcome, str) else one_line(outcome)
    verdict = f"{failed_step} failed" if failed_step else "restored exactly"
    summary = f"{verdict}: {message}"
    result = DrillResult(
        backup_name=name,
        source_database=source_database,
        scratch_database=scratch,
        ok=not failed_step,
        failed_step=failed_step,
        summary=summary[:255],
        message=message,
        seconds=round(time.perf_counter() - started, 3),
    )
    record_drill(result)
    signals.announce(signals.drill_finished, run_drill, result=result)
    return result
