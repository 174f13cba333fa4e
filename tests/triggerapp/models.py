"""Tables that triggers write to while a restore loads other tables.

The triggers themselves are made by the tests (tests/test_triggers.py), in raw SQL
for each vendor; these are only the tables.
"""

from __future__ import annotations

from django.db import models


class Post(models.Model):
    """The table whose triggers write into the others."""

    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return self.title


class AuditEntry(models.Model):
    """Filled by triggers on Post: one row per insert and per delete."""

    post_id = models.IntegerField()
    action = models.CharField(max_length=10)

    def __str__(self) -> str:
        return f"{self.action} {self.post_id}"


class Counter(models.Model):
    """A denormalised count that triggers on Post keep up to date."""

    name = models.CharField(max_length=50, primary_key=True)
    value = models.IntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}={self.value}"


class PostIndex(models.Model):
    """A full-text index of Post, fed by triggers on Post.

    On SQLite an FTS5 virtual table, as Wagtail's search index is there (the
    migration makes it); elsewhere an ordinary table with the same columns.
    """

    id = models.IntegerField(primary_key=True, db_column="rowid")
    title = models.TextField()
    body = models.TextField()

    def __str__(self) -> str:
        return self.title
