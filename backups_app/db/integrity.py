"""Foreign key checks after a restore's load: one anti-join per foreign key column.

Django's ``check_constraints`` introspects every table (several catalog queries per
table on MySQL/MariaDB, a PRAGMA per table on SQLite), which made a schema of a few
hundred tables take minutes to restore however little data it held. The app already
knows every foreign key from the models, so the check is one set-based query per
foreign key column: the rows whose non-null value has no parent row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.apps import apps
from django.db import models, router

from .tables import TableSpec, column_of, concrete_model


@dataclass(frozen=True)
class ForeignKey:
    """One foreign key column and the column it points at."""

    label: str  # the model label, or the table name of a table no model owns
    table: str
    column: str
    pk_columns: tuple[str, ...]  # empty for a table no model owns
    parent_label: str
    parent_table: str
    parent_column: str
    # Whether many rows may hold one value: a model's ForeignKey that is not
    # unique (a OneToOneField is). Unknown, so False, for a catalog's key.
    shared: bool = False


def _has_table(model: type[models.Model], using: str) -> bool:
    opts = model._meta
    return (
        opts.managed
        and not opts.proxy
        and not opts.swapped
        and router.allow_migrate_model(using, model)
    )


def model_foreign_keys(
    specs: list[TableSpec], using: str, existing: set[str]
) -> list[ForeignKey]:
    """Return the foreign keys a restore of ``specs`` can break, from model metadata.

    Those of the restored tables (their rows are new), and those of every other
    model's table that point into a restored table (its parent rows were replaced).
    Foreign keys declared with ``db_constraint=False`` are not constraints and are
    left out, as the database leaves them out; so are models whose table is not in
    ``existing`` (an excluded app that was never migrated here).
    """
    restored = {spec.table for spec in specs}
    found = []
    seen = set()
    for model in apps.get_models(include_auto_created=True):
        if not _has_table(model, using) or model._meta.db_table not in existing:
            continue
        opts = model._meta
        pk_fields = tuple(getattr(opts, "pk_fields", None) or (opts.pk,))
        for field in opts.local_concrete_fields:
            if not field.is_relation or field.related_model is None:
                continue
            if not getattr(field, "db_constraint", True):
                continue
            parent = concrete_model(field.related_model)
            # A concrete relation with a database constraint: a ForeignKey.
            target = cast("models.ForeignKey[Any, Any]", field).target_field
            if opts.db_table not in restored and parent._meta.db_table not in restored:
                continue
            key = (opts.db_table, column_of(field))
            if key in seen:
                continue
            seen.add(key)
            found.append(
                ForeignKey(
                    label=opts.label,
                    table=opts.db_table,
                    column=column_of(field),
                    pk_columns=tuple(column_of(f) for f in pk_fields),
                    parent_label=parent._meta.label,
                    parent_table=parent._meta.db_table,
                    parent_column=column_of(target),
                    shared=not field.unique,
                )
            )
    return found


def catalog_foreign_keys(
    rows: Iterable[tuple[str, str, str, str | None]],
    known: list[ForeignKey],
    specs: list[TableSpec],
) -> list[ForeignKey]:
    """Return the database's own foreign keys into restored tables that no model has.

    ``rows`` are ``(table, column, parent table, parent column)`` from one catalog
    query; tables that raw SQL made (a trigger's counter table, another program's
    table) are found this way.
    """
    restored = {spec.table: spec for spec in specs}
    covered = {(fk.table, fk.column) for fk in known}
    found = []
    for table, column, parent_table, parent_column in rows:
        if parent_table not in restored or (table, column) in covered:
            continue
        covered.add((table, column))
        parent = restored[parent_table]
        found.append(
            ForeignKey(
                label=table,
                table=table,
                column=column,
                pk_columns=(),
                parent_label=parent.label,
                parent_table=parent_table,
                parent_column=parent_column or parent.pk_columns[0],
            )
        )
    return found


def orphan_sql(fk: ForeignKey, quote: Callable[[str], str], values: int = 0) -> str:
    """Return a query for the first row of ``fk``'s table whose parent is missing.

    With ``values``, only the rows whose foreign key holds one of that many values
    (parameters) are looked at: after a restore that wrote a few rows, the values
    its new rows point at and those of the parent rows it removed.
    """
    child, parent = quote(fk.table), quote(fk.parent_table)
    column = f"c.{quote(fk.column)}"
    selected = [f"c.{quote(name)}" for name in fk.pk_columns] + [column]
    order = ", ".join(selected[:-1] or [column])
    where = f"{column} IS NOT NULL"
    if values:
        where = f"{column} IN ({', '.join(['%s'] * values)})"
    return (
        f"SELECT {', '.join(selected)} FROM {child} c "
        f"LEFT JOIN {parent} p ON p.{quote(fk.parent_column)} = {column} "
        f"WHERE {where} AND p.{quote(fk.parent_column)} IS NULL "
        f"ORDER BY {order} LIMIT 1"
    )


def orphan_value_sql(fk: ForeignKey, quote: Callable[[str], str]) -> str:
    """Return a query for any value of ``fk``'s column that no parent row holds,
    each distinct value probed once.

    Fast where many rows share each value and the column has an index to skip
    through (MariaDB reads one entry per value); ``orphan_sql`` probes the parent
    once per row, and is still needed to name the first row that has no parent.
    """
    column, parent_column = quote(fk.column), quote(fk.parent_column)
    return (
        f"SELECT c.v FROM (SELECT DISTINCT {column} AS v FROM {quote(fk.table)} "
        f"WHERE {column} IS NOT NULL) c "
        f"LEFT JOIN {quote(fk.parent_table)} p ON p.{parent_column} = c.v "
        f"WHERE p.{parent_column} IS NULL LIMIT 1"
    )


def parents_sql(fk: ForeignKey, quote: Callable[[str], str], values: int) -> str:
    """Return a query for the values, among that many (parameters), that rows of
    ``fk``'s parent table hold: one probe of the parent's unique index per value."""
    column = quote(fk.parent_column)
    return (
        f"SELECT {column} FROM {quote(fk.parent_table)} "
        f"WHERE {column} IN ({', '.join(['%s'] * values)})"
    )


def orphan_message(fk: ForeignKey, row: tuple[Any, ...]) -> str:
    """Say which row points at a missing parent, and at which value."""
    value = row[-1]
    if fk.pk_columns:
        pk = row[0] if len(fk.pk_columns) == 1 else list(row[:-1])
        where = f"{fk.label}.{fk.column}, pk {pk!r}"
    else:
        where = f"table {fk.table!r}, column {fk.column!r}"
    return (
        f"{where}: no {fk.parent_label} row has {fk.parent_column} = {value!r} "
        "(foreign key)"
    )
