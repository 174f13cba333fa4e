"""The media manifest of a backup file (format version 3): what it says and its rules.

A backup taken with media lists, after its tables and before its trailer, every file
the backed-up rows reference (and, with ``--media-storage``, every file of a whole
storage): which source (a model's file field, or a whole storage), which row, the
file's name, size and SHA-256. The files themselves are blobs in the backup storage,
named by that digest (``backups_app.media.blobs``). docs/format.md describes it.

This module holds only the rules of the file; where the files come from and go to is
``backups_app.media``.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

# The header key that declares the manifest, the label of its section, its columns.
MEDIA_KEY = "media"
MEDIA_LABEL = "media"
MEDIA_COLUMNS = ("source", "pk", "name", "size", "digest")
DIGEST_ALGORITHM = "sha256"
DIGEST = re.compile(r"[0-9a-f]{64}")

# The section's columns as the reader's value checks see them (docs/format.md,
# Values): ``source`` and ``name`` may not be null, ``pk`` may hold any JSON value.
MEDIA_TABLE: dict[str, Any] = {
    "label": MEDIA_LABEL,
    "table": MEDIA_LABEL,
    "columns": [
        {"name": "source", "type": "IntegerField"},
        {"name": "pk", "type": "pk"},
        {"name": "name", "type": "CharField"},
        {"name": "size", "type": "BigIntegerField"},
        {"name": "digest", "type": "CharField"},
    ],
    "pk": ["source", "name"],
}


def has_media(header: dict[str, Any]) -> bool:
    """Whether a (checked) header declares a media manifest: format version 3."""
    return MEDIA_KEY in header and header.get("version", 0) >= 3


def is_whole_storage(source: dict[str, Any]) -> bool:
    """A source without a model is a whole storage (``backup --media-storage``)."""
    return "label" not in source


def source_name(source: dict[str, Any]) -> str:
    """How people see a source: ``shop.Product.image``, or ``storage 'default'``."""
    if is_whole_storage(source):
        return f"storage {source['storage']!r}"
    return f"{source['label']}.{source['field']}"


def media_header_problem(media: Any) -> str | None:
    """Say what is wrong with a header's ``media`` object; None when nothing is."""
    if not isinstance(media, dict):
        return "has 'media' that is not an object"
    if media.get("digest") != DIGEST_ALGORITHM:
        return f"has 'media' whose digest is not {DIGEST_ALGORITHM!r}"
    sources = media.get("sources")
    if not isinstance(sources, list):
        return "has 'media' without a list of 'sources'"
    seen = set()
    for number, source in enumerate(sources, 1):
        if not isinstance(source, dict) or not _text(source.get("storage")):
            return f"describes media source {number} wrongly: no 'storage'"
        if not is_whole_storage(source) and not (
            _text(source.get("label")) and _text(source.get("field"))
        ):
            return f"describes media source {number} wrongly: no 'label' and 'field'"
        key = (source.get("label"), source.get("field"), source["storage"])
        if key in seen:
            return f"lists media source {source_name(source)} twice"
        seen.add(key)
    return None


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def name_problem(name: str) -> str | None:
    """Say why a file name may not be written to a storage; None when it may.

    The same rule as Django's ``validate_file_name`` for relative names, plus no
    NUL and no backslash (a path separator on Windows).
    """
    if not name or "\x00" in name or "\\" in name:
        return "not a file name"
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or path.name in {"", ".", ".."}:
        return "not a relative file name inside its storage"
    return None


def entry_problem(entry: list[Any], sources: list[dict[str, Any]]) -> str | None:
    """Say what is wrong with one manifest entry (its JSON types already checked)."""
    source, pk, name, size, digest = entry
    if type(source) is not int or not 0 <= source < len(sources):
        return "names no media source of the header"
    if (pk is None) != is_whole_storage(sources[source]):
        return "has a row's primary key where none belongs, or none where one does"
    if type(name) is not str or name_problem(name):
        return f"has a file name that cannot be written: {name!r}"
    if (size is None) != (digest is None):
        return "has a size without a digest, or a digest without a size"
    if size is not None and (type(size) is not int or size < 0):
        return "has a size that is not a number of bytes"
    if digest is not None and not DIGEST.fullmatch(digest):
        return "has a digest that is not a lower-case SHA-256"
    return None
