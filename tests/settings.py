"""Settings for the test suite.

The backend under test comes from ``BACKUPS_TEST_DB``: ``sqlite`` (the default),
``postgres`` or ``mysql`` (MySQL or MariaDB). Every run has two aliases of that
vendor, ``default`` and ``other``, for multi-database tests. With
``BACKUPS_CROSSVENDOR=1`` it also gets ``xsqlite``, ``xpostgres`` and ``xmysql``,
each only when that vendor answers, for tests that move data between vendors.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import tempfile
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent

# One scratch directory per test session, shared with child processes through the
# environment so that a ``manage.py`` subprocess opens the same SQLite files and
# backup storage as the pytest process that started it.
if "BACKUPS_TEST_TMPDIR" in os.environ:
    TEST_TMPDIR = Path(os.environ["BACKUPS_TEST_TMPDIR"])
    TEST_TMPDIR.mkdir(parents=True, exist_ok=True)
else:
    TEST_TMPDIR = Path(tempfile.mkdtemp(prefix="backups-tests-"))
    os.environ["BACKUPS_TEST_TMPDIR"] = str(TEST_TMPDIR)
    atexit.register(shutil.rmtree, TEST_TMPDIR, ignore_errors=True)

VENDORS = ("sqlite", "postgres", "mysql")
VENDOR_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL", "mysql": "MySQL/MariaDB"}

TEST_DB = os.environ.get("BACKUPS_TEST_DB", "sqlite").strip().lower() or "sqlite"
if TEST_DB not in VENDORS:
    raise ValueError(
        "BACKUPS_TEST_DB=" + repr(TEST_DB) + " is not one of " + ", ".join(VENDORS)
    )

# Database names start with this prefix, so two checkouts can share one server.
DB_PREFIX = os.environ.get("BACKUPS_DB_PREFIX", "backups")

PG_HOST = os.environ.get("BACKUPS_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BACKUPS_PG_PORT", "5432"))
PG_USER = os.environ.get("BACKUPS_PG_USER", "postgres")
PG_PASSWORD = os.environ.get("BACKUPS_PG_PASSWORD", "")

MYSQL_HOST = os.environ.get("BACKUPS_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("BACKUPS_MYSQL_PORT", "3306"))
MYSQL_USER = os.environ.get("BACKUPS_MYSQL_USER", "root")
MYSQL_PASSWORD = os.environ.get("BACKUPS_MYSQL_PASSWORD", "")

# Set in the environment of a ``manage.py`` child process started by a test: it
# must talk to the test databases the pytest process created, not the real ones.
CHILD_OF_TEST_RUN = os.environ.get("BACKUPS_TEST_CHILD") == "1"


def vendor_unreachable_reason(vendor: str) -> str | None:
    """Return why ``vendor`` cannot be used here, or None when it can."""
    if vendor == "sqlite":
        return None
    driver = "psycopg" if vendor == "postgres" else "MySQLdb"
    try:
        __import__(driver)
    except ImportError:
        package = "psycopg" if vendor == "postgres" else "mysqlclient"
        return "the " + package + " driver for " + VENDOR_NAMES[vendor] + " is missing"
    if vendor == "postgres":
        host, port = PG_HOST, PG_PORT
    else:
        host, port = MYSQL_HOST, MYSQL_PORT
    try:
        with socket.create_connection((host, port), timeout=0.5):
            pass
    except OSError:
        address = f"{host}:{port}"
        return VENDOR_NAMES[vendor] + " at " + address + " is unreachable"
    return None


def database(vendor: str, name: str) -> dict:
    """Return a DATABASES entry for ``vendor``; ``name`` names its databases."""
    if vendor == "sqlite":
        # Files, not :memory:, so that a manage.py subprocess and every connection
        # of a TransactionTestCase see the same data.
        db_name = str(TEST_TMPDIR / f"{name}.sqlite3")
        test_name = str(TEST_TMPDIR / f"test_{name}.sqlite3")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": test_name if CHILD_OF_TEST_RUN else db_name,
            "TEST": {"NAME": test_name},
        }
    db_name = f"{DB_PREFIX}_{name}"
    test_name = f"test_{db_name}"
    if vendor == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": test_name if CHILD_OF_TEST_RUN else db_name,
            "USER": PG_USER,
            "PASSWORD": PG_PASSWORD,
            "HOST": PG_HOST,
            "PORT": PG_PORT,
            "TEST": {"NAME": test_name},
        }
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": test_name if CHILD_OF_TEST_RUN else db_name,
        "USER": MYSQL_USER,
        "PASSWORD": MYSQL_PASSWORD,
        "HOST": MYSQL_HOST,
        "PORT": MYSQL_PORT,
        "OPTIONS": {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
        },
        "TEST": {"NAME": test_name, "CHARSET": "utf8mb4"},
    }


DATABASES = {
    "default": database(TEST_DB, "default"),
    "other": database(TEST_DB, "other"),
}

# Cross-vendor aliases. A vendor that does not answer is left out here and reported
# by tests/conftest.py; tests that need it are skipped or, when BACKUPS_REQUIRE_DBS
# names it, the run fails.
CROSSVENDOR = os.environ.get("BACKUPS_CROSSVENDOR") == "1"
CROSSVENDOR_ALIASES = {f"x{vendor}": vendor for vendor in VENDORS}
CROSSVENDOR_MISSING: dict[str, str] = {}
if CROSSVENDOR:
    for _alias, _vendor in CROSSVENDOR_ALIASES.items():
        _reason = vendor_unreachable_reason(_vendor)
        if _reason is None:
            DATABASES[_alias] = database(_vendor, _alias)
        else:
            CROSSVENDOR_MISSING[_alias] = _reason

SECRET_KEY = "backups-app-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    # django-admin-interface and colorfield must come before django.contrib.admin.
    "admin_interface",
    "colorfield",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "backups_app",
    "tests.testapp",
    # Models that have no table on any vendor under test (Meta.required_db_*).
    "tests.gatedapp",
    "tests.valuesapp",
    # Tables that triggers write to (tests/test_triggers.py).
    "tests.triggerapp",
    # Rows that reference files in several storages (tests/test_media*.py).
    "tests.mediaapp",
    # The demo shop is a schema the engine was not written around: it is tested too.
    "project.shop",
]

# The fields of django.contrib.postgres (tests/test_postgres_values.py), in runs on
# PostgreSQL alone: a table that only one vendor can have would keep the
# cross-vendor tests' backups from fitting the other databases.
POSTGRES_FIELDS = TEST_DB == "postgres" and not CROSSVENDOR
if POSTGRES_FIELDS:
    INSTALLED_APPS += ["django.contrib.postgres", "tests.postgresapp"]

# The admin runs long operations through a task queue when one is configured;
# tests/test_admin_tasks.py switches TASKS to django-tasks-db's database backend.
if importlib.util.find_spec("django_tasks_db"):
    INSTALLED_APPS.append("django_tasks_db")
    if importlib.util.find_spec("django.tasks") is None:
        INSTALLED_APPS.append("django_tasks")  # the backport, on Django 5.2

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tests.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# django-admin-interface shows related-object popups in iframes.
X_FRAME_OPTIONS = "SAMEORIGIN"
SILENCED_SYSTEM_CHECKS = ["security.W019"]

# UTC, so that SQLite and MySQL, which store naive datetimes in the connection's
# time zone, hold the same wall-clock values as PostgreSQL's timestamptz; a value
# moved between vendors can then be compared as it is stored.
USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = True
LANGUAGE_CODE = "en-us"

# The zoo asks for BigAutoField where it wants one; the default stays a 32-bit
# AutoField so that integer sequences are covered too.
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

STATIC_URL = "/static/"
STATIC_ROOT = str(TEST_TMPDIR / "static")
MEDIA_URL = "/media/"
MEDIA_ROOT = str(TEST_TMPDIR / "media")
# A storage of its own for tests.mediaapp.models.PrivateStorage.
PRIVATE_MEDIA_ROOT = str(TEST_TMPDIR / "private")

STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT},
    },
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage",
    },
    "backups": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(TEST_TMPDIR / "backups")},
    },
    # Files of tests.mediaapp.models.Photo, through a callable.
    "memory": {"BACKEND": "tests.mediaapp.storage.SharedMemoryStorage"},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Django 6.1 configures mail with MAILERS (EMAIL_BACKEND is deprecated), and warns
# when mail is sent without it. The test runner swaps every alias for the locmem
# backend, as it does EMAIL_BACKEND on Django 5.2.
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
