"""The migrations a database has applied, as a backup's header records them."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connections
from django.db.migrations.recorder import MigrationRecorder

from ..conf import ALWAYS_EXCLUDED_APPS


def applied_migrations(using: str) -> list[str]:
    """Return the applied migrations as sorted ``app.name`` strings."""
    recorder = MigrationRecorder(connections[using])
    if not recorder.has_table():
        return []
    return sorted(f"{app}.{name}" for app, name in recorder.applied_migrations())


def comparable_migrations(
    migrations: Iterable[str], excluded_apps: Iterable[str]
) -> set[str]:
    """Leave out the migrations of apps a backup never covers."""
    skip = set(ALWAYS_EXCLUDED_APPS) | set(excluded_apps)
    return {m for m in migrations if m.split(".", 1)[0] not in skip}
