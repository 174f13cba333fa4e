"""Import ``django.db.models`` before any other pytest plugin loads.

Loaded first through ``-p tests.import_order`` in pyproject.toml's ``addopts``.

pytest-randomly imports ``model_bakery.random_gen`` when it loads, to reseed it.
That module's first Django import is ``django.db.backends.base.operations``, which
on Django 5.2 ends in a circular ``ImportError`` unless ``django.db.models``
was imported before it. pytest-randomly swallows the error, but the failed import
leaves submodules such as ``django.db.models.expressions`` in ``sys.modules``
while their parent package is dropped and later imported afresh without them as
attributes, so a migration that spells out ``django.db.models.expressions...``
fails with an ``AttributeError``. Importing the package first keeps every import
after it whole.
"""

import django.db.models  # noqa: F401
