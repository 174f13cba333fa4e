"""Make backup files that are damaged, or intact but wrong, for error-path tests."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from backups_app.format import BackupWriter
from backups_app.reader import BackupReader


def plain_copy(source: Path, target: Path) -> Path:
    """Write the decompressed content of ``source`` to ``target``."""
    with gzip.open(source, "rb") as compressed:
        target.write_bytes(compressed.read())
    return target


def rewrite(
    source: Path,
    target: Path,
    *,
    header: Callable[[dict[str, Any]], dict[str, Any]] = lambda header: header,
    keep_table: Callable[[str], bool] = lambda label: True,
    row: Callable[[str, list[Any]], list[Any]] = lambda label, row: row,
) -> Path:
    """Copy a backup through a transformation, with fresh, valid digests.

    The result is an intact file (every digest matches) whose content differs as
    the callables say: useful to test what a restore does with a well-formed file
    that does not fit, or breaks a constraint.
    """
    with gzip.open(source, "rb") as stream, open(target, "wb") as out:
        reader = BackupReader(stream, str(source))
        writer = BackupWriter(out)
        new_header = dict(header(dict(reader.header)))
        for key in ("kind", "format", "version"):
            new_header.pop(key, None)
        writer.write_header(new_header)
        for section in reader.tables():
            if not keep_table(section.label):
                section.skip()
                continue
            writer.begin_table(section.label, section.table, section.columns)
            for batch in section.batches(1000):
                writer.write_rows(
                    [
                        orjson.dumps(row(section.label, orjson.loads(line)))
                        for line in batch
                    ]
                )
            writer.end_table()
        writer.write_trailer()
    return target
