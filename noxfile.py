"""The test matrix: Python 3.11-3.13 x Django 5.2, 6.0 and 6.1 x SQLite, PostgreSQL, MariaDB.

``nox -l`` lists the sessions; ``nox -s tests-3.12-django6.1-postgres``
runs one; ``nox -t ci`` runs the ones CI runs besides ``make test``: Django 6.1 on
every database (Python 3.12 on SQLite, 3.13 on PostgreSQL and MariaDB), and the
cross-vendor tests on Python 3.13. PostgreSQL and MariaDB must
be running (see README, Tests). Each session installs requirements.txt, the MySQL
driver and the Django version it names into its own virtualenv.
"""

from __future__ import annotations

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHONS = ("3.11", "3.12", "3.13")
DJANGOS = {
    "5.2": "django>=5.2,<5.3",
    "6.0": "django>=6.0,<6.1",
    "6.1": "django>=6.1,<6.2",
}
DATABASES = ("sqlite", "postgres", "mysql")
# Django 6 needs Python 3.12 or newer.
COMBINATIONS = [
    (python, django, db)
    for python in PYTHONS
    for django in DJANGOS
    for db in DATABASES
    if not (django.startswith("6") and python == "3.11")
]


def in_ci(python: str, django: str, db: str) -> bool:
    """What CI runs with nox besides ``make test`` (3.11 x Django 5.2 x every db):
    the newest Django on every database, on Python 3.12 for SQLite and on 3.13 for
    PostgreSQL and MariaDB, so that each supported Python runs the whole suite once.
    The whole matrix is ``nox`` (``make matrix``), too long for one CI run."""
    return (python, django, db) in {
        ("3.12", "6.1", "sqlite"),
        ("3.13", "6.1", "postgres"),
        ("3.13", "6.1", "mysql"),
    }


def install(session: nox.Session, django: str) -> None:
    session.install("-r", "requirements.txt", "-r", "requirements-mysql.txt")
    session.install(DJANGOS[django])


def _tests_session(python: str, django: str, db: str) -> None:
    """Define the session ``tests-PYTHON-djangoDJANGO-DB``."""

    def tests(session: nox.Session) -> None:
        install(session, django)
        # The commands run as processes (the terminal, exit codes) check what does
        # not depend on the database; they run with SQLite here, and on every
        # database in make test.
        markers = "not crossvendor and not browser and not slow" + (
            "" if db == "sqlite" else " and not process"
        )
        session.run(
            "python",
            "-m",
            "pytest",
            "-m",
            markers,
            *session.posargs,
            env={"BACKUPS_TEST_DB": db, "BACKUPS_DB_PREFIX": _prefix(session)},
        )

    tags = ["tests", db, f"django{django}"] + (
        ["ci"] if in_ci(python, django, db) else []
    )
    nox.session(
        tests, name=f"tests-{python}-django{django}-{db}", python=python, tags=tags
    )


for _combination in COMBINATIONS:
    _tests_session(*_combination)


@nox.session(python=["3.13"], tags=["ci"])
def crossvendor(session: nox.Session) -> None:
    install(session, "6.1")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "crossvendor",
        *session.posargs,
        env={"BACKUPS_CROSSVENDOR": "1", "BACKUPS_DB_PREFIX": _prefix(session)},
    )


@nox.session(python=["3.11"])
def lint(session: nox.Session) -> None:
    """What ``make lint`` runs: ruff, the layer contracts, mypy."""
    session.install("-r", "requirements.txt")
    session.install("-e", ".")
    session.run("ruff", "check", ".")
    session.run(
        "ruff",
        "format",
        "--check",
        "backups_app",
        "tests",
        "project",
        "bench",
        "noxfile.py",
    )
    session.run("lint-imports")
    session.run("mypy")


def _prefix(session: nox.Session) -> str:
    """Database names of their own, so sessions can share one server."""
    base = os.environ.get("BACKUPS_DB_PREFIX", "backups")
    return f"{base}_{session.name.replace('.', '').replace('-', '_')}"[:40]
