"""The undo file's layout: what a reader checks in its header (docs/format.md).

An undo file is a backup of a database's tables as they were before a differential
restore, written as the difference from the backup that restore wrote. Its header
is a backup's header (``format`` ``"backups_app-undo"``) with an ``undo`` object:

- ``backup``: the name, in the backup storage, of the backup the restore wrote, and
  ``digest``, that file's whole-file digest;
- ``tables``: per table written as a patch, the row count and digest the table had
  before the restore (``rows``, ``digest``).

A table in ``undo.tables`` has two sections: its own, holding the rows the restore
removed or replaced (as they were), and the section of ``<label>#drop``, holding
the primary keys of the rows the restore wrote (the backup's rows the table did not
hold as such). Every other table has its whole contents, as in a backup.
"""

from __future__ import annotations

import re
from typing import Any

UNDO_KEY = "undo"
DROP_SUFFIX = "#drop"
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def drop_label(label: str) -> str:
    return label + DROP_SUFFIX


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0


def _is_digest(value: Any) -> bool:
    return isinstance(value, str) and HEX_DIGEST.fullmatch(value) is not None


def undo_header_problem(header: dict[str, Any]) -> str | None:
    """Say what is wrong with an undo file's ``undo`` object; None when nothing is.
    The rest of the header is checked as a backup's."""
    undo = header.get(UNDO_KEY)
    if not isinstance(undo, dict):
        return f"has no {UNDO_KEY!r}"
    if not isinstance(undo.get("backup"), str) or not undo["backup"]:
        return "names no backup that it undoes"
    if not _is_digest(undo.get("digest")):
        return "has no digest of the backup that it undoes"
    patched = undo.get("tables")
    if not isinstance(patched, dict):
        return "has no 'tables' in its 'undo'"
    described = header["tables"]
    positions = {table["label"]: n for n, table in enumerate(described)}
    for label, before in patched.items():
        if not isinstance(before, dict) or not (
            _is_count(before.get("rows")) and _is_digest(before.get("digest"))
        ):
            return f"has no row count and digest of {label} before the restore"
        position = positions.get(label)
        if position is None:
            return f"undoes {label}, which it does not list"
        drop = described[position + 1] if position + 1 < len(described) else None
        table = described[position]
        if (
            drop is None
            or drop["label"] != drop_label(label)
            or [c["name"] for c in drop["columns"]] != table["pk"]
            or drop["pk"] != table["pk"]
        ):
            return f"lists no {drop_label(label)} of {label}'s primary key after it"
    for table in described:
        label = table["label"]
        if label.endswith(DROP_SUFFIX) and label[: -len(DROP_SUFFIX)] not in patched:
            return f"lists {label}, which undoes no table"
    return None


def database_tables(header: dict[str, Any]) -> list[dict[str, Any]]:
    """The tables a header lists, without an undo file's ``#drop`` tables."""
    return [t for t in header.get("tables", ()) if not t["label"].endswith(DROP_SUFFIX)]


def restored_header(header: dict[str, Any]) -> dict[str, Any]:
    """The header of the backup an undo file stands for: its own, without the
    ``#drop`` tables and the ``undo`` object."""
    backup = {
        k: v
        for k, v in header.items()
        if k not in (UNDO_KEY, "kind", "format", "version")
    }
    backup["tables"] = database_tables(header)
    return backup
