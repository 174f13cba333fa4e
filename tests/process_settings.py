"""Settings for ``manage.py`` children that need more than tests/settings.py.

``BACKUPS_TEST_VARIANT`` picks the change:

- ``unreachable``: one more alias, ``unreachable``, whose database cannot be opened;
- ``misconfigured``: a ``BACKUPS`` setting the system checks refuse;
- ``pause``: the ``tests.pauses`` app, which stops the command at the point named by
  ``BACKUPS_TEST_PAUSE`` until it is interrupted (see tests/pauses/apps.py);
- ``s3``: the backup storage is the S3 storage described (as JSON) by
  ``BACKUPS_TEST_STORAGE``, and ``BACKUPS`` is ``BACKUPS_TEST_BACKUPS`` (JSON).

With any variant, ``BACKUPS_TEST_BACKUP_DIR`` is the backup storage's folder: a
test's own, which no other test's files reach.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, INSTALLED_APPS, STORAGES, TEST_TMPDIR

VARIANT = os.environ.get("BACKUPS_TEST_VARIANT", "")

if VARIANT == "unreachable":
    DATABASES = {
        **DATABASES,
        "unreachable": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(TEST_TMPDIR / "no-such-folder" / "db.sqlite3"),
        },
    }
elif VARIANT == "misconfigured":
    BACKUPS = {"COMPRESSION_LEVEL": 12}
elif VARIANT == "pause":
    INSTALLED_APPS = [*INSTALLED_APPS, "tests.pauses"]
elif VARIANT == "s3":
    STORAGES = {**STORAGES, "backups": json.loads(os.environ["BACKUPS_TEST_STORAGE"])}
    BACKUPS = json.loads(os.environ.get("BACKUPS_TEST_BACKUPS", "{}"))

if "BACKUPS_TEST_BACKUP_DIR" in os.environ:
    STORAGES = {
        **STORAGES,
        "backups": {
            **STORAGES["backups"],
            "OPTIONS": {"location": os.environ["BACKUPS_TEST_BACKUP_DIR"]},
        },
    }
