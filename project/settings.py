"""Settings of the demo project.

SQLite (``db.sqlite3`` next to ``manage.py``) unless ``DATABASE_URL`` names another
database, for example ``postgres://user:pass@localhost:5432/shop_demo`` or
``mysql://root@127.0.0.1:3306/shop_demo``. ``BACKUPS_SECOND_DATABASE_URL`` adds a
second alias, ``other``, to try ``--database other``.
"""

import os
from pathlib import Path

from project.database_url import parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent

# The default key is for local demos only; set DJANGO_SECRET_KEY anywhere else.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-backups-app-demo-key-do-not-deploy"
)
DEBUG = os.environ.get("DJANGO_DEBUG", "1").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = os.environ.get(
    "DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]"
).split(",")

INSTALLED_APPS = [
    # django-admin-interface and its colorfield dependency must come before the admin,
    # so that their templates win.
    "admin_interface",
    "colorfield",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "backups_app",
    "project.shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

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

WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

DATABASES = {
    "default": parse_database_url(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    ),
}
if os.environ.get("BACKUPS_SECOND_DATABASE_URL"):
    DATABASES["other"] = parse_database_url(os.environ["BACKUPS_SECOND_DATABASE_URL"])

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_VALIDATORS = "django.contrib.auth.password_validation."
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": _VALIDATORS + "UserAttributeSimilarityValidator"},
    {"NAME": _VALIDATORS + "MinimumLengthValidator"},
    {"NAME": _VALIDATORS + "CommonPasswordValidator"},
    {"NAME": _VALIDATORS + "NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = os.environ.get("DJANGO_MEDIA_ROOT") or BASE_DIR / "media"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "backups": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": BASE_DIR / "backups"},
    },
}

# Every key is optional; they are documented in backups_app/conf.py.
BACKUPS = {}

# The file pipeline from the environment (docs/storage.md), for trying it out and for
# bench/pipeline.py: compression, age keys, and S3 (SeaweedFS locally:
# BACKUPS_S3_ENDPOINT_URL=http://127.0.0.1:8333 BACKUPS_S3_BUCKET=backups).
if os.environ.get("BACKUPS_COMPRESSION"):
    BACKUPS["COMPRESSION"] = os.environ["BACKUPS_COMPRESSION"]
if os.environ.get("BACKUPS_COMPRESSION_LEVEL"):
    BACKUPS["COMPRESSION_LEVEL"] = int(os.environ["BACKUPS_COMPRESSION_LEVEL"])
if os.environ.get("BACKUPS_AGE_RECIPIENTS") or os.environ.get("BACKUPS_AGE_IDENTITIES"):
    BACKUPS["ENCRYPTION"] = {
        # Public keys (age1...), separated by commas.
        "RECIPIENTS": [
            key
            for key in os.environ.get("BACKUPS_AGE_RECIPIENTS", "").split(",")
            if key
        ],
        # Paths of key files written by age-keygen (or the keys themselves).
        "IDENTITIES": [
            key
            for key in os.environ.get("BACKUPS_AGE_IDENTITIES", "").split(",")
            if key
        ],
    }
if os.environ.get("BACKUPS_UNDO_FILES") == "0":
    # Whole safety backups, also before restores that change rows one by one.
    BACKUPS["UNDO_FILES"] = False
if os.environ.get("BACKUPS_STORAGE_DIR"):
    STORAGES["backups"]["OPTIONS"]["location"] = os.environ["BACKUPS_STORAGE_DIR"]
if os.environ.get("BACKUPS_S3_BUCKET"):
    STORAGES["backups"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["BACKUPS_S3_BUCKET"],
            "endpoint_url": os.environ.get("BACKUPS_S3_ENDPOINT_URL"),
            "access_key": os.environ.get("AWS_ACCESS_KEY_ID"),
            "secret_key": os.environ.get("AWS_SECRET_ACCESS_KEY"),
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "location": os.environ.get("BACKUPS_S3_LOCATION", ""),
            # Never replace a backup of the same name (the app checks it as well).
            "file_overwrite": False,
        },
    }

# django-admin-interface shows its previews in same-origin frames.
X_FRAME_OPTIONS = "SAMEORIGIN"
SILENCED_SYSTEM_CHECKS = ["security.W019"]

# The demo shop's photos and invoices go into every backup with the rows
# (backup --no-media leaves them out); docs/media.md.
BACKUPS.setdefault("MEDIA", True)
