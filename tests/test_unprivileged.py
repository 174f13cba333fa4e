"""Production-like: the demo project run by a database user that only owns its tables."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests import settings as test_settings

ROOT = Path(__file__).resolve().parent.parent


def admin_connection():
    """A privileged connection of our own, outside Django and its test transaction."""
    if test_settings.TEST_DB == "postgres":
        import psycopg

        return psycopg.connect(
            host=test_settings.PG_HOST,
            port=test_settings.PG_PORT,
            user=test_settings.PG_USER,
            password=test_settings.PG_PASSWORD,
            dbname="postgres",
            autocommit=True,
        )
    import MySQLdb

    return MySQLdb.connect(
        host=test_settings.MYSQL_HOST,
        port=test_settings.MYSQL_PORT,
        user=test_settings.MYSQL_USER,
        password=test_settings.MYSQL_PASSWORD,
        autocommit=True,
    )


def execute(admin, *statements: str) -> None:
    cursor = admin.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


@pytest.fixture
def owner_database():
    """Create a user without special privileges and a database it owns; yield its URL."""
    if test_settings.TEST_DB == "sqlite":
        pytest.skip("SQLite has no database users")
    suffix = uuid.uuid4().hex[:8]
    user = f"backups_owner_{suffix}"
    name = f"{test_settings.DB_PREFIX}_owned_{suffix}"
    admin = admin_connection()
    try:
        if test_settings.TEST_DB == "postgres":
            execute(
                admin,
                f'CREATE ROLE "{user}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE',
                f'CREATE DATABASE "{name}" OWNER "{user}"',
            )
            yield f"postgres://{user}@{test_settings.PG_HOST}:{test_settings.PG_PORT}/{name}"
            execute(
                admin,
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
                f'DROP ROLE IF EXISTS "{user}"',
            )
        else:
            hosts = ("%", "localhost")
            execute(
                admin,
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4",
                *[
                    f"CREATE USER '{user}'@'{h}' IDENTIFIED BY 'owner-pw'"
                    for h in hosts
                ],
                *[
                    f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{h}'"
                    for h in hosts
                ],
            )
            yield (
                f"mysql://{user}:owner-pw@{test_settings.MYSQL_HOST}:"
                f"{test_settings.MYSQL_PORT}/{name}"
            )
            execute(
                admin,
                f"DROP DATABASE IF EXISTS `{name}`",
                *[f"DROP USER IF EXISTS '{user}'@'{h}'" for h in hosts],
            )
    finally:
        admin.close()


def demo(url: str, *args: str) -> subprocess.CompletedProcess:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("BACKUPS_TEST") and key != "DJANGO_SETTINGS_MODULE"
    }
    environment.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="project.settings",
        PYTHONPATH=str(ROOT),
    )
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_backup_restore_validate_as_the_owner_of_the_tables(owner_database, tmp_path):
    def run(*args, expect=0):
        result = demo(owner_database, *args)
        assert result.returncode == expect, (args, result.stdout, result.stderr)
        return result

    run("migrate", "--noinput", "-v", "0")
    run("seeddemo", "--rows", "3000")
    file = tmp_path / "owned.jsonl.gz"
    run("backup", "--output", str(file))
    run("seeddemo", "--mutate")
    run("validatebackup", str(file), expect=1)
    run("restore", str(file), "--noinput", "--no-safety-backup")
    assert "0 differ" in run("validatebackup", str(file)).stdout
