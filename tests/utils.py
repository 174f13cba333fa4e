"""Helpers shared by the tests: database snapshots and command runs."""

from __future__ import annotations

from io import StringIO
from typing import Any

from django.apps import apps
from django.core.management import call_command
from django.db import connections, models

from backups_app.fileformat.streams import backup_storage


class ExactFloat(float):
    """A float equal to another float only when both have the same bits.

    Plain floats make ``-0.0 == 0.0`` true and ``nan == nan`` false; a snapshot must
    notice the first change and must not report the second as one.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, float):
            return NotImplemented
        return self.hex() == other.hex()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self) -> int:
        return hash(self.hex())

    def __repr__(self) -> str:
        return "ExactFloat(" + float.__repr__(self) + ")"


def snapshot_models(using: str = "default") -> list[type[models.Model]]:
    """Return every model whose table a backup carries, in registry order."""
    connection = connections[using]
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        # The test migrate itself uses: has the model a table on this database?
        if model._meta.can_migrate(connection)
        and (model._meta.auto_created or model)._meta.can_migrate(connection)
        and model._meta.app_label != "backups_app"
    ]


def snapshot_columns(model: type[models.Model]) -> list[str]:
    """Return the names of the values a snapshot row of ``model`` holds, in order."""
    fields = model._meta.local_concrete_fields
    return [field.attname for field in fields] + [
        _sql_null_alias(field) for field in fields if _is_nullable_json(field)
    ]


def snapshot(using: str = "default") -> dict[str, list[tuple]]:
    """Return the full contents of every backed-up table, keyed by model label.

    Rows hold the table's own columns (``local_concrete_fields``: a child of
    multi-table inheritance shows its own table, not the join with its parents)
    in primary key order, read through the base manager so that no custom default
    manager hides rows. Each nullable JSONField gets one more value at the end of
    the row telling SQL NULL (True) from a stored JSON null (False), which Python
    reads as the same ``None``.
    """
    contents = {}
    for model in snapshot_models(using):
        fields = model._meta.local_concrete_fields
        sql_nulls = {
            _sql_null_alias(field): models.Q(**{f"{field.name}__isnull": True})
            for field in fields
            if _is_nullable_json(field)
        }
        queryset = model._base_manager.using(using).order_by(
            *[field.attname for field in model._meta.pk_fields]
        )
        if sql_nulls:
            queryset = queryset.annotate(**sql_nulls)
        rows = queryset.values_list(*[field.attname for field in fields], *sql_nulls)
        contents[model._meta.label] = [
            tuple(_comparable(value) for value in row) for row in rows
        ]
    return contents


def _is_nullable_json(field: models.Field) -> bool:
    return isinstance(field, models.JSONField) and field.null


def _sql_null_alias(field: models.Field) -> str:
    return f"{field.attname}_is_sql_null"


def _comparable(value: Any) -> Any:
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, float):
        return ExactFloat(value)
    return value


def run_command(name: str, *args: Any, **kwargs: Any) -> tuple[str, str]:
    """Run a management command and return what it wrote to stdout and stderr."""
    stdout = StringIO()
    stderr = StringIO()
    call_command(name, *args, stdout=stdout, stderr=stderr, **kwargs)
    return stdout.getvalue(), stderr.getvalue()


def stored_files() -> list[str]:
    """The names of the files in the backup storage, sorted; none when its folder
    was never made (or a test removed it)."""
    try:
        return sorted(backup_storage().listdir("")[1])
    except FileNotFoundError:
        return []
