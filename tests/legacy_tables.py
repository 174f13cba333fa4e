"""Tables of a vendor's own column types, made with raw SQL, and the models that
``inspectdb`` (or a custom field) puts over them: for tests/test_legacy_types.py.

The model is made while its test runs, in ``valuesapp``, so that backups cover
its table (a managed model's, or an unmanaged one's that ``BACKUPS["UNMANAGED"]``
names), and is taken out of the app registry again when its table is dropped.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db import connection, models

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup

APP_LABEL = "valuesapp"


@dataclass(frozen=True)
class Column:
    """A column type of a vendor, the field over it, and values that are hard to
    keep (SQL literals; a row of NULL is added)."""

    sql_type: str
    field: models.Field[Any, Any]
    values: Sequence[str]
    # Another value (an SQL literal), for the rows a test changes.
    changed: str
    # How a test reads the stored value with plain SQL ({} is the column); by
    # default its text (and, on MySQL, the hex of its bytes).
    shown: Sequence[str] = ()
    # Run before the table is made, and after it is dropped (CREATE TYPE ...).
    before: Sequence[str] = ()
    after: Sequence[str] = ()
    # The column is the table's primary key (and no row is NULL).
    primary_key: bool = False
    # MySQL: the session's sql_mode while the values are stored (what a lax
    # server let a legacy application store).
    sql_mode: str | None = None

    def shown_sql(self) -> list[str]:
        if self.shown:
            return list(self.shown)
        if connection.vendor == "postgresql":
            return ["{}::text"]
        if connection.vendor == "mysql":
            return ["CAST({} AS CHAR)", "HEX({})"]
        return ["typeof({})", "quote({})"]


def quote(name: str) -> str:
    return connection.ops.quote_name(name)


def execute(sql: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("%", "%%"))


@dataclass(frozen=True)
class LegacyTable:
    """A table of ``column`` (the primary key ``id`` besides, unless the column
    is the key), and its model."""

    name: str
    column: Column
    model: type[models.Model]

    @property
    def label(self) -> str:
        return str(self.model._meta.label)

    def stored(self) -> list[tuple[Any, ...]]:
        """Every row's values as plain SQL reads them (``Column.shown``)."""
        value = quote("value")
        shown = ", ".join(s.format(value) for s in self.column.shown_sql())
        key = "" if self.column.primary_key else f"{quote('id')}, "
        with connection.cursor() as cursor:
            # Sorted here: some types have no order (point), and a collation may
            # sort values that differ as equal.
            cursor.execute(f"SELECT {key}{shown} FROM {quote(self.name)}")
            return sorted(cursor.fetchall(), key=repr)

    def change(self) -> None:
        """Change, delete and add rows: a restore has something to put back."""
        table, value, changed = quote(self.name), quote("value"), self.column.changed
        if self.column.primary_key:
            first = self.column.values[0]
            execute(f"DELETE FROM {table} WHERE {value} IN ({first}, {changed})")
            execute(f"INSERT INTO {table} ({value}) VALUES ({changed})")
            return
        execute(f"UPDATE {table} SET {value} = {changed} WHERE id = 1")
        execute(f"UPDATE {table} SET {value} = NULL WHERE id = 2")
        execute(f"DELETE FROM {table} WHERE id = 3")
        execute(f"INSERT INTO {table} (id, {value}) VALUES (1000, {changed})")


@contextlib.contextmanager
def sql_mode(mode: str | None) -> Iterator[None]:
    """Run the block with MySQL's session ``sql_mode`` set to ``mode`` (None: as
    it is)."""
    if mode is None:
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode")
        (before,) = cursor.fetchone()
        cursor.execute("SET SESSION sql_mode = %s", [mode])
        try:
            yield
        finally:
            cursor.execute("SET SESSION sql_mode = %s", [before])


def _model(name: str, column: Column, managed: bool = True) -> type[models.Model]:
    value = column.field.clone()
    meta = {"app_label": APP_LABEL, "db_table": name, "managed": managed}
    attrs: dict[str, Any] = {
        "__module__": f"tests.{APP_LABEL}.models",
        "Meta": type("Meta", (), meta),
        "value": value,
    }
    if column.primary_key:
        value.primary_key = True
        value.null = False
    else:
        attrs["id"] = models.IntegerField(primary_key=True)
    model_name = "".join(part.title() for part in name.split("_"))
    return type(model_name, (models.Model,), attrs)


@contextlib.contextmanager
def legacy_table(
    name: str, column: Column, *, managed: bool = True
) -> Iterator[LegacyTable]:
    """Make the table ``legacy_<name>`` of ``column``, fill it, and give it to the
    block; drop it and its model afterwards. ``managed``: the model's
    ``Meta.managed`` (``inspectdb`` writes False)."""
    name = f"legacy_{name}"
    table, value = quote(name), quote("value")
    for sql in column.before:
        execute(sql)
    if column.primary_key:
        execute(f"CREATE TABLE {table} ({value} {column.sql_type} PRIMARY KEY)")
    else:
        execute(
            f"CREATE TABLE {table} (id integer PRIMARY KEY, "
            f"{value} {column.sql_type} NULL)"
        )
    model = _model(name, column, managed)
    try:
        with sql_mode(column.sql_mode):
            if column.primary_key:
                for literal in column.values:
                    execute(f"INSERT INTO {table} ({value}) VALUES ({literal})")
            else:
                rows = ", ".join(
                    f"({number}, {literal})"
                    for number, literal in enumerate([*column.values, "NULL"], 1)
                )
                execute(f"INSERT INTO {table} (id, {value}) VALUES {rows}")
        yield LegacyTable(name, column, model)
    finally:
        del apps.all_models[APP_LABEL][model._meta.model_name]
        apps.clear_cache()
        execute(f"DROP TABLE IF EXISTS {table}")
        for sql in column.after:
            execute(sql)


def round_trip(legacy: LegacyTable, directory: Path) -> None:
    """Back up and validate, then twice change the rows and restore (row by row,
    then whole); each time the stored values must be as they were."""
    before = legacy.stored()
    file = directory / f"{legacy.name}.jsonl.gz"
    create_backup(file)
    report = validate_backup(file)
    assert report.ok, report
    for full in (False, True):
        legacy.change()
        assert legacy.stored() != before
        restore_backup(file, safety_backup=False, full=full)
        after = legacy.stored()
        assert after == before, f"full={full}: {before} became {after}"
    assert validate_backup(file).ok
