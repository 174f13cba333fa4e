"""Back up, restore and validate a schema of hundreds of small tables; print timings.

    DJANGO_SETTINGS_MODULE=tests.settings_manytables python -m tests.manytables.measure

Creates the test database of tests/settings_manytables.py (and drops it at the
end), fills every table with ROWS_PER_TABLE rows, takes a backup, changes rows in
every table, restores the backup, checks that every table's stored rows are those
of backup time, validates, and prints one JSON object: seconds for each step and
per table. tests/test_manytables.py runs it; docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROWS_PER_TABLE = 3


def contents(connection, tables: list[str]) -> dict[str, list[tuple]]:
    quote = connection.ops.quote_name
    found = {}
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"SELECT * FROM {quote(table)} ORDER BY 1")
            found[table] = [tuple(row) for row in cursor.fetchall()]
    return found


def fill(models) -> None:
    stamp = datetime.datetime(2024, 2, 29, 13, 14, 15, 161718, tzinfo=datetime.UTC)
    for index, model in enumerate(models):
        rows = [
            model(
                name=f"{model.__name__} row {number}",
                amount=Decimal(f"{index}.{number:02d}"),
                created=stamp + datetime.timedelta(minutes=index, seconds=number),
                flag=bool(number % 2),
                **({"parent_id": 1 + number % ROWS_PER_TABLE} if index else {}),
            )
            for number in range(ROWS_PER_TABLE)
        ]
        model.objects.bulk_create(rows)


def mutate(models) -> None:
    """Change a row of every table, add one, and delete one of every leaf table."""
    for index, model in enumerate(models):
        model.objects.filter(pk=1).update(name="changed", amount=Decimal("-1.00"))
        model.objects.create(
            name="added", created=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
        )
        if index >= len(models) // 2:  # no table points at these
            model.objects.filter(pk=3).delete()


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings_manytables")
    import django

    django.setup()
    from django.apps import apps
    from django.db import connection

    from backups_app.backup import create_backup
    from backups_app.restore import restore_backup
    from backups_app.validate import validate_backup

    models = list(apps.get_app_config("manytables").get_models())
    tables = [m._meta.db_table for m in models]
    started = time.perf_counter()
    old_name = connection.creation.create_test_db(
        verbosity=0, autoclobber=True, serialize=False
    )
    figures: dict[str, object] = {
        "vendor": connection.vendor,
        "create_seconds": round(time.perf_counter() - started, 2),
    }
    try:
        fill(models)
        before = contents(connection, tables)
        with tempfile.TemporaryDirectory() as work:
            file = Path(work) / "many.jsonl.gz"
            started = time.perf_counter()
            backup = create_backup(file)
            figures["backup_seconds"] = round(time.perf_counter() - started, 3)
            mutate(models)
            changed = contents(connection, tables) != before
            started = time.perf_counter()
            restore = restore_backup(file, safety_backup=False)
            figures["restore_seconds"] = round(time.perf_counter() - started, 3)
            exact = contents(connection, tables) == before
            started = time.perf_counter()
            report = validate_backup(file)
            figures["validate_seconds"] = round(time.perf_counter() - started, 3)
        figures.update(
            tables=restore.tables,
            model_tables=len(models),
            rows=backup.rows,
            changed_before_restore=changed,
            exact=exact,
            validation_ok=report.ok,
        )
        for step in ("backup", "restore", "validate"):
            figures[f"{step}_ms_per_table"] = round(
                1000 * figures[f"{step}_seconds"] / restore.tables, 2
            )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    json.dump(figures, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
