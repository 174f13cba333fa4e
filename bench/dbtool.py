"""Small database chores for the benchmark, run as their own process (untimed).

    python bench/dbtool.py empty        # what flush does, without post_migrate
    python bench/dbtool.py empty-all    # also django_migrations: for the native tools
    python bench/dbtool.py empty-data   # as empty-all, keeping django_migrations
    python bench/dbtool.py count        # {"table": rows, ...} of every table, as JSON
    python bench/dbtool.py change FRACTION [SEED]  # change rows of every table (changes.py)

The database is the demo project's (DATABASE_URL).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402


def tables() -> list[str]:
    with connection.cursor() as cursor:
        return sorted(connection.introspection.table_names(cursor))


def empty_all(keep: tuple[str, ...] = ()) -> None:
    """Delete every row of every table but those in ``keep``, django_migrations
    included unless kept."""
    names = [name for name in tables() if name not in keep]
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"TRUNCATE {', '.join(map(quote, names))} CASCADE")
        elif connection.vendor == "mysql":
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for name in names:
                cursor.execute(f"DELETE FROM {quote(name)}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        else:
            for name in names:
                cursor.execute(f"DELETE FROM {quote(name)}")
            cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
            if cursor.fetchone():
                cursor.execute("DELETE FROM sqlite_sequence")


def count() -> dict[str, int]:
    quote = connection.ops.quote_name
    result = {}
    with connection.cursor() as cursor:
        for name in tables():
            cursor.execute(f"SELECT COUNT(*) FROM {quote(name)}")
            result[name] = cursor.fetchone()[0]
    return result


def main() -> None:
    command = sys.argv[1]
    if command == "empty":
        # The documented way to empty a database before loaddata, minus the
        # post_migrate signal that re-creates content types and permissions.
        call_command("flush", interactive=False, inhibit_post_migrate=True, verbosity=0)
    elif command == "empty-all":
        empty_all()
    elif command == "empty-data":
        # Our restore then starts where the native tools' restores start, and
        # still finds the migrations it compares the file's schema with.
        empty_all(keep=("django_migrations",))
    elif command == "count":
        print(json.dumps(count()))
    elif command == "change":
        from changes import change

        seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
        changed = change(float(sys.argv[2]), seed)
        print(json.dumps([vars(table) for table in changed]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main()
