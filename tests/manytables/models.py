"""MODEL_COUNT models made in code at import time: a schema of many small tables.

Each table has a few columns of common types and, but for the first, a foreign key
to an earlier table (a binary tree), so that a restore orders, checks and reads
back hundreds of tables. Used only by tests/settings_manytables.py.
``BACKUPS_MANYTABLES_MODELS`` changes the count, to measure other sizes by hand.
"""

from __future__ import annotations

import os

from django.db import models

MODEL_COUNT = int(os.environ.get("BACKUPS_MANYTABLES_MODELS", "320"))


def model_name(index: int) -> str:
    return f"Table{index:03d}"


def _make_model(index: int) -> type[models.Model]:
    attributes = {
        "__module__": __name__,
        "name": models.CharField(max_length=50),
        "amount": models.DecimalField(max_digits=10, decimal_places=2, default=0),
        "created": models.DateTimeField(),
        "flag": models.BooleanField(default=False),
    }
    if index:
        attributes["parent"] = models.ForeignKey(
            model_name((index - 1) // 2),
            null=True,
            on_delete=models.CASCADE,
            related_name="+",
        )
    return type(model_name(index), (models.Model,), attributes)


for _index in range(MODEL_COUNT):
    globals()[model_name(_index)] = _make_model(_index)
