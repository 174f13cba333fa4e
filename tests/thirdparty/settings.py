"""Settings for the third-party schema tests: tests/settings.py plus popular apps.

``make test-thirdparty`` runs ``tests/thirdparty`` with this module. The databases
(``BACKUPS_TEST_DB``, ``BACKUPS_DB_PREFIX``, the ``default`` and ``other`` aliases)
are those of tests/settings.py. The apps were chosen for schemas the engine was not
written around:

- Wagtail: pages in a django-treebeard materialised-path tree with multi-table
  inheritance, StreamField JSON, revisions and log entries with text object ids,
  django-taggit's generic tags, images, documents, workflows, about 60 tables, and a
  search index kept in step by triggers (an FTS5 virtual table on SQLite).
- django-mptt: nested-set trees (``tpapp.Category``) and tree many-to-many fields.
- django-reversion: revisions and versions that point at any model through a
  content type and a text object id.

An app whose package is missing (for example one that does not support the Django
under test yet) is left out and named loudly by tests/thirdparty/conftest.py; its
tests are skipped, the rest run.
"""

from __future__ import annotations

import importlib.util

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS as BASE_INSTALLED_APPS
from tests.settings import MIDDLEWARE as BASE_MIDDLEWARE

# Each third-party package with the apps it brings, in INSTALLED_APPS order.
THIRDPARTY_APPS = {
    "wagtail": [
        "wagtail.contrib.forms",
        "wagtail.contrib.redirects",
        "wagtail.contrib.search_promotions",
        "wagtail.embeds",
        "wagtail.sites",
        "wagtail.users",
        "wagtail.snippets",
        "wagtail.documents",
        "wagtail.images",
        "wagtail.search",
        "wagtail.admin",
        "wagtail",
        "modelcluster",
        "taggit",
    ],
    "mptt": ["mptt"],
    "reversion": ["reversion"],
}

THIRDPARTY_MISSING = [
    package for package in THIRDPARTY_APPS if importlib.util.find_spec(package) is None
]

INSTALLED_APPS = [
    *BASE_INSTALLED_APPS,
    *(
        app
        for package, apps in THIRDPARTY_APPS.items()
        if package not in THIRDPARTY_MISSING
        for app in apps
    ),
]
# The test app's models use every package; without one of them it is left out.
if not THIRDPARTY_MISSING:
    INSTALLED_APPS.append("tests.thirdparty.tpapp")

MIDDLEWARE = [*BASE_MIDDLEWARE]
if "wagtail" not in THIRDPARTY_MISSING:
    MIDDLEWARE.append("wagtail.contrib.redirects.middleware.RedirectMiddleware")

ROOT_URLCONF = "tests.urls"

WAGTAIL_SITE_NAME = "backups_app third-party schema"
WAGTAILADMIN_BASE_URL = "http://testserver"
# Wagtail's default search backend: on SQLite an FTS5 table filled by triggers, on
# PostgreSQL tsvector columns, on MariaDB a FULLTEXT index.
WAGTAILSEARCH_BACKENDS = {
    "default": {"BACKEND": "wagtail.search.backends.database"},
}
