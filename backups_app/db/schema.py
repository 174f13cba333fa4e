"""Compare the tables and migrations a backup describes with the current database."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..fileformat.codec import kind
from .migrations import applied_migrations, comparable_migrations
from .tables import TableSpec, column_of, is_model_label

MAX_LISTED_MIGRATIONS = 10


def _columns(spec: TableSpec) -> dict[str, str]:
    return {column_of(f): kind(f) for f in spec.fields}


def _column_differences(
    label: str, described: dict[str, Any], spec: TableSpec
) -> list[str]:
    in_file = {c["name"]: c["type"] for c in described["columns"]}
    current = _columns(spec)
    differences = []
    for name in sorted(in_file.keys() - current.keys()):
        differences.append(
            f"{label}: column {name!r} is in the backup but not in the database"
        )
    for name in sorted(current.keys() - in_file.keys()):
        differences.append(
            f"{label}: column {name!r} is in the database but not in the backup"
        )
    for name in sorted(in_file.keys() & current.keys()):
        if in_file[name] != current[name]:
            differences.append(
                f"{label}: column {name!r} is {in_file[name]} in the backup "
                f"but {current[name]} in the database"
            )
    return differences


def compare_schema(
    header: dict[str, Any], specs: list[TableSpec], using: str
) -> list[str]:
    """Return readable differences between the backup's schema and the database's."""
    described = {table["label"]: table for table in header["tables"]}
    current = {spec.label: spec for spec in specs}
    differences = [
        f"{label}: in the backup but not a table of this database"
        for label in sorted(described.keys() - current.keys())
    ]
    differences += [
        f"{label}: a table of this database but not in the backup"
        for label in sorted(current.keys() - described.keys())
    ]
    for label in sorted(described.keys() & current.keys()):
        differences += _column_differences(label, described[label], current[label])
    excluded_apps = [
        label for label in header.get("exclude", ()) if not is_model_label(label)
    ]
    in_file = comparable_migrations(header.get("migrations", ()), excluded_apps)
    in_database = comparable_migrations(applied_migrations(using), excluded_apps)
    differences += _migration_differences(
        in_file - in_database, "the backup", "the database"
    )
    differences += _migration_differences(
        in_database - in_file, "the database", "the backup"
    )
    return differences


def _migration_differences(names: set[str], where: str, elsewhere: str) -> list[str]:
    listed = sorted(names)[:MAX_LISTED_MIGRATIONS]
    lines = [
        f"migration {name} is applied in {where} but not in {elsewhere}"
        for name in listed
    ]
    if len(names) > len(listed):
        lines.append(
            f"... and {len(names) - len(listed)} more migrations only in {where}"
        )
    return lines


def aligned(spec: TableSpec, columns: list[str]) -> TableSpec:
    """Return the spec with its fields in the order of the backup's columns."""
    if list(spec.columns) == list(columns):
        return spec
    by_column = {column_of(f): f for f in spec.fields}
    return dataclasses.replace(spec, fields=tuple(by_column[c] for c in columns))
