"""Raw contents of every table in a database, and a readable diff of two of them.

Read with plain SQL, not through models: tables no model describes (the FTS5 table
and its shadow tables on SQLite, tables kept by triggers) are compared too, and a
value is compared as the database stores it, not as a field converts it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db import connections

from tests.utils import ExactFloat

# SQLite FTS5 keeps its inverted index as b-tree segments in <table>_data, with
# <table>_idx pointing into them. Their bytes depend on the order and batching of
# the writes that built the index, not only on its contents: reinserting the same
# rows writes other segments. They are left out of the byte comparison; what they
# index is compared through the FTS table itself, its _content and _docsize tables,
# SQLite's own integrity-check of the index against them, and search results.
FTS5_SEGMENT_SUFFIXES = ("_fts_data", "_fts_idx")


def compared_tables(using: str = "default") -> list[str]:
    """Return the tables whose raw rows the round trip compares."""
    connection = connections[using]
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    return sorted(
        table
        for table in tables
        if not (connection.vendor == "sqlite" and table.endswith(FTS5_SEGMENT_SUFFIXES))
    )


def _value(value: Any) -> Any:
    if isinstance(value, memoryview):
        return value.tobytes()
    if isinstance(value, float):
        return ExactFloat(value)
    return value


def raw_contents(using: str = "default") -> dict[str, list[tuple]]:
    """Return every compared table's rows, ``SELECT *`` ordered by every column.

    The rows are sorted again in Python by their repr: a case-insensitive collation
    (MariaDB's) lets 'a' and 'A' tie in ORDER BY, and two reads could then return
    equal contents in different orders.
    """
    connection = connections[using]
    quote = connection.ops.quote_name
    contents = {}
    with connection.cursor() as cursor:
        for table in compared_tables(using):
            cursor.execute(f"SELECT * FROM {quote(table)} WHERE 1 = 0")
            columns = len(cursor.description)
            order = ", ".join(str(position) for position in range(1, columns + 1))
            cursor.execute(f"SELECT * FROM {quote(table)} ORDER BY {order}")
            rows = [tuple(_value(value) for value in row) for row in cursor.fetchall()]
            contents[table] = sorted(rows, key=repr)
    return contents


def differences(
    before: dict[str, list[tuple]], after: dict[str, list[tuple]], examples: int = 3
) -> list[str]:
    """Describe, table by table, the rows only one of two captures holds."""
    lines = []
    for table in sorted(before.keys() | after.keys()):
        if table not in after:
            lines.append(f"{table}: table gone")
            continue
        if table not in before:
            lines.append(f"{table}: new table")
            continue
        old, new = Counter(before[table]), Counter(after[table])
        if old == new:
            continue
        gone = list((old - new).elements())
        added = list((new - old).elements())
        lines.append(
            f"{table}: {len(before[table])} rows before, {len(after[table])} after;"
            f" {len(gone)} only before, {len(added)} only after"
        )
        lines.extend(f"  - {row!r:.300}" for row in gone[:examples])
        lines.extend(f"  + {row!r:.300}" for row in added[:examples])
    return lines


def changed_tables(
    before: dict[str, list[tuple]], after: dict[str, list[tuple]]
) -> set[str]:
    """Return the tables that are in one capture only or hold other rows."""
    return (before.keys() ^ after.keys()) | {
        table
        for table in before.keys() & after.keys()
        if Counter(before[table]) != Counter(after[table])
    }
