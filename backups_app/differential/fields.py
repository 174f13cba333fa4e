"""Which values of a row differ between the file and the database, said shortly.

The one place where a changed row becomes ``price 9.99 → 12.50``: the restore's
preview and the validation's report both show it. Rows are compared as the file has
them (decoded JSON lines), so the values shown are the file's spellings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

# The longest value shown, in characters; longer ones end in "…".
SHOWN_LENGTH = 40
# The most changed fields listed for one row; the rest are counted.
MAX_FIELDS = 8


@dataclass(frozen=True)
class FieldChange:
    """One column of a row whose value differs: the database's value and the file's."""

    field: str
    old: str  # in the database now, shortened
    new: str  # in the backup, shortened

    def __str__(self) -> str:
        return f"{self.field} {self.old} → {self.new}"

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "old": self.old, "new": self.new}


def shown(value: Any, length: int = SHOWN_LENGTH) -> str:
    """Return a value of a row as people read it, at most ``length`` characters.

    Text is shown as it is when it reads unambiguously (not empty, no surrounding
    spaces or line breaks, not a word JSON would read as another type); everything
    else as JSON: ``null``, ``true``, ``12``, ``""``, ``" padded "``.
    """
    plain = isinstance(value, str) and _plain(value)
    text = value if plain else orjson.dumps(value).decode()
    if len(text) > length:
        return text[: length - 1] + "…"
    return text


def _plain(text: str) -> bool:
    if not text or text != text.strip() or not text.isprintable():
        return False
    if text in ("null", "true", "false"):
        return False
    try:
        float(text)
    except ValueError:
        return True
    # Numbers in text columns are shown as JSON strings, but decimals (which the
    # file writes as strings) read better bare: "12.50" is not mistaken for 12.5.
    return "." in text


def changed_fields(
    columns: Sequence[str], old: Sequence[Any], new: Sequence[Any]
) -> list[FieldChange]:
    """Return the columns whose values differ between two rows of one table, in
    column order, ``old`` being the database's row and ``new`` the file's."""
    return [
        FieldChange(column, shown(before), shown(after))
        for column, before, after in zip(columns, old, new, strict=True)
        if not _same(before, after)
    ]


def _same(a: Any, b: Any) -> bool:
    # 1 == 1.0 == True and 0.0 == -0.0 in Python; the file tells them apart.
    if type(a) is not type(b) or a != b:
        return False
    return type(a) is not float or a.hex() == b.hex()


def summary(changes: Sequence[FieldChange], limit: int = MAX_FIELDS) -> str:
    """Return ``price 9.99 → 12.50, status paid → shipped`` (and ``+3 more``)."""
    text = ", ".join(map(str, changes[:limit]))
    if len(changes) > limit:
        text += f", +{len(changes) - limit} more"
    return text
