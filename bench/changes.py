"""Change a given fraction of every table's rows, for the differential restore bench.

    python bench/dbtool.py change FRACTION [SEED]

In every table with rows (the demo project's database, DATABASE_URL), about
FRACTION of the rows are touched, spread evenly over the table: of those, about
three in ten are deleted (rows nothing points at) and inserted again as copies with
new primary keys (new rows, the same count), and the others are updated in one
column. FRACTION 1.0 touches every row. Tables are taken parents first, so a copy
never points at a deleted row; unique values are freed by the delete before the
copy takes them again. Which rows are touched depends on SEED.

Only tables whose primary key is one integer column are changed (every table of the
demo except sessions, which the bench leaves empty).
"""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps
from django.db import connection, models, transaction

from backups_app.db.tables import table_specs

CHUNK = 500


@dataclass
class Changed:
    table: str
    rows: int
    deleted: int
    updated: int
    inserted: int


def _integer_pk(model: type[models.Model]) -> models.Field | None:
    pk_fields = getattr(model._meta, "pk_fields", None) or [model._meta.pk]
    if len(pk_fields) != 1:
        return None
    field = pk_fields[0]
    if field.get_internal_type() in (
        "AutoField",
        "BigAutoField",
        "SmallAutoField",
        "IntegerField",
        "BigIntegerField",
    ):
        return field
    return None


def _unique_columns(model: type[models.Model]) -> set[str]:
    opts = model._meta
    columns = {f.column for f in opts.local_concrete_fields if f.unique}
    for together in opts.unique_together:
        columns.update(opts.get_field(name).column for name in together)
    for constraint in opts.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            columns.update(opts.get_field(name).column for name in constraint.fields)
    return columns


def _update_column(model: type[models.Model]) -> models.Field | None:
    """The column an update changes: not a key, not unique, not generated; numbers
    and booleans first (changed in SQL), then text, dates and UUIDs (in Python)."""
    unique = _unique_columns(model)
    candidates = [
        f
        for f in model._meta.local_concrete_fields
        if not f.primary_key
        and not f.is_relation
        and not f.generated
        and f.column not in unique
        and not f.choices
    ]
    order = [
        (
            "IntegerField",
            "BigIntegerField",
            "PositiveIntegerField",
            "SmallIntegerField",
        ),
        ("PositiveSmallIntegerField", "PositiveBigIntegerField"),
        ("DecimalField",),
        ("BooleanField",),
        ("TextField", "CharField", "EmailField", "SlugField", "URLField"),
        ("UUIDField",),
    ]
    for kinds in order:
        for field in candidates:
            if field.get_internal_type() in kinds:
                return field
    return None


def _referenced_by(model: type[models.Model]) -> list[tuple[str, str, str]]:
    """(child table, child column, parent column) of every foreign key into model."""
    found = []
    for other in apps.get_models(include_auto_created=True):
        for field in other._meta.local_concrete_fields:
            if (
                field.is_relation
                and field.related_model is not None
                and field.related_model._meta.concrete_model._meta.db_table
                == model._meta.db_table
            ):
                found.append(
                    (other._meta.db_table, field.column, field.target_field.column)
                )
    return found


def _changed_value(field: models.Field, value):
    if value is None:
        return None
    if isinstance(value, str):
        if field.get_internal_type() == "UUIDField":
            return uuid.uuid4().hex
        limit = field.max_length or len(value) + 1
        return (value[: limit - 1] + "~") if value else "~"
    if isinstance(value, uuid.UUID):
        return uuid.uuid4()
    if isinstance(value, decimal.Decimal | int | float):
        return value + 1
    return value


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def change(fraction: float, seed: int = 0) -> list[Changed]:
    """Change about ``fraction`` of the rows of every table (see the module)."""
    if not 0 < fraction <= 1:
        raise ValueError("the fraction is more than 0 and at most 1")
    step = max(1, round(1 / fraction))
    quote = connection.ops.quote_name
    done = []
    with transaction.atomic(), connection.cursor() as cursor:
        for spec in table_specs():
            model = spec.model
            pk = _integer_pk(model)
            if pk is None:
                continue
            table, key = quote(spec.table), quote(pk.column)
            cursor.execute(f"SELECT COUNT(*), MIN({key}), MAX({key}) FROM {table}")
            rows, smallest, largest = cursor.fetchone()
            if not rows:
                continue
            # Spread evenly, and at least one row of every table.
            touched = f"({key} % {step} = {seed % step} OR {key} = {smallest})"
            divide = "DIV" if connection.vendor == "mysql" else "/"
            # Three in ten of the touched rows go, if nothing points at them.
            unreferenced = " ".join(
                f"AND NOT EXISTS (SELECT 1 FROM {quote(child)} c "
                f"WHERE c.{quote(column)} = {table}.{quote(parent)})"
                for child, column, parent in _referenced_by(model)
            )
            columns = [quote(f.column) for f in spec.insert_fields]
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM {table} WHERE {touched} "
                f"AND ({key} {divide} {step}) % 10 < 3 {unreferenced}"
            )
            doomed = cursor.fetchall()
            position = [f.column for f in spec.insert_fields].index(pk.column)
            for chunk in _chunks(doomed):
                cursor.execute(
                    f"DELETE FROM {table} WHERE {key} IN "
                    f"({', '.join(['%s'] * len(chunk))})",
                    [row[position] for row in chunk],
                )
            updated = _update(cursor, model, table, key, touched)
            # The deleted rows again, as new rows: other primary keys, same values.
            copies = [
                tuple(
                    value + largest if index == position else value
                    for index, value in enumerate(row)
                )
                for row in doomed
            ]
            for chunk in _chunks(copies):
                cursor.executemany(
                    f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                    f"({', '.join(['%s'] * len(columns))})",
                    chunk,
                )
            done.append(Changed(spec.label, rows, len(doomed), updated, len(copies)))
        _reset_sequences(cursor)
    return done


def _update(cursor, model, table: str, key: str, touched: str) -> int:
    field = _update_column(model)
    if field is None:
        return 0
    column = connection.ops.quote_name(field.column)
    kind = field.get_internal_type()
    if kind.endswith("IntegerField") or kind == "DecimalField":
        cursor.execute(
            f"UPDATE {table} SET {column} = COALESCE({column}, 0) + 1 WHERE {touched}"
        )
        return cursor.rowcount
    if kind == "BooleanField":
        cursor.execute(f"UPDATE {table} SET {column} = NOT {column} WHERE {touched}")
        return cursor.rowcount
    cursor.execute(f"SELECT {key}, {column} FROM {table} WHERE {touched}")
    rows = cursor.fetchall()
    for chunk in _chunks(rows):
        cursor.executemany(
            f"UPDATE {table} SET {column} = %s WHERE {key} = %s",
            [(_changed_value(field, value), pk) for pk, value in chunk],
        )
    return len(rows)


def _reset_sequences(cursor) -> None:
    from django.core.management.color import no_style

    for sql in connection.ops.sequence_reset_sql(
        no_style(), [spec.model for spec in table_specs()]
    ):
        cursor.execute(sql)
