"""The test settings plus tests.manytables, a schema of hundreds of generated models.

Its own database (``manytables``), so that it can run beside a test session.
Tables are made from the models directly (no migrations).
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS, TEST_DB, database

INSTALLED_APPS = [*INSTALLED_APPS, "tests.manytables"]
DATABASES = {"default": database(TEST_DB, "manytables")}
MIGRATION_MODULES = {"manytables": None}
