"""Models that ``migrate`` skips on SQLite, PostgreSQL and MariaDB, so no backup has them.

Django creates a model's table only where ``Meta.can_migrate`` holds: these ask for
Oracle, or for a feature only Oracle has. Their auto-created many-to-many table goes
with them.
"""

from django.db import models


class OracleOnly(models.Model):
    name = models.CharField(max_length=50)
    # To a gated model only: Django deletes through a relation to a model of
    # another app (testapp) even where the relation's table does not exist.
    others = models.ManyToManyField("EmptyStringsAreNull", blank=True)

    class Meta:
        required_db_vendor = "oracle"

    def __str__(self) -> str:
        return self.name


class EmptyStringsAreNull(models.Model):
    name = models.CharField(max_length=50)

    class Meta:
        required_db_features = {"interprets_empty_strings_as_nulls"}

    def __str__(self) -> str:
        return self.name
