"""How one row differs from another with the same primary key: the changed fields.

Rows are compared as a backup file holds them: lists of encoded values
(fileformat.codec), one per field. A change names the field (its attribute name,
``customer_id`` for a foreign key) and its value before and after, long ones
shortened, for people to read: a validation shows how the database's rows changed
since the backup (backup → database), a restore preview how it would change them
(database → backup).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Field

from .fileformat.codec import TEXT_KINDS, kind

# Values longer than this many characters are cut, and end in "…".
SHOWN_LENGTH = 40
ELLIPSIS = "…"


def shortened(value: Any, length: int = SHOWN_LENGTH) -> Any:
    """Return ``value``, or a text longer than ``length`` cut to it, ending in "…"."""
    if isinstance(value, str) and len(value) > length:
        return value[: length - 1] + ELLIPSIS
    return value


ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def quoted(text: str) -> str:
    """Return text in double quotes, as JSON would write it, with every character a
    terminal would not show as itself (line breaks, a BOM, U+2028) escaped."""
    return (
        '"'
        + "".join(
            ESCAPES.get(c)
            or (c if c.isprintable() else c.encode("unicode_escape").decode())
            for c in text
        )
        + '"'
    )


@dataclass(frozen=True)
class FieldChange:
    """One field of a row and its two values."""

    field: str
    before: Any  # encoded as in a backup file, a long text shortened
    after: Any
    text: bool = False  # a text field: shown in quotes

    def shown(self, value: Any) -> str:
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            if self.text or not value.isprintable():
                return quoted(value)
            return value
        return str(value)

    @property
    def shown_before(self) -> str:
        return self.shown(self.before)

    @property
    def shown_after(self) -> str:
        return self.shown(self.after)

    def __str__(self) -> str:
        return f"{self.field} {self.shown_before} → {self.shown_after}"


def changed_fields(
    fields: Sequence[Field[Any, Any]], before_row: list[Any], after_row: list[Any]
) -> list[FieldChange]:
    """Return the fields whose values differ between two encoded rows, in field order.

    ``fields`` are the Django fields of both rows' columns, in their order.
    """
    return [
        FieldChange(
            field.attname,
            shortened(before),
            shortened(after),
            kind(field) in TEXT_KINDS,
        )
        for field, before, after in zip(fields, before_row, after_row, strict=True)
        if before != after or type(before) is not type(after)
    ]


def described(changes: list[FieldChange]) -> str:
    """Return the changes of one row as one line: ``price 9.99 → 12.50, …``."""
    return ", ".join(map(str, changes))
