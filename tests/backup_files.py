"""Make backup files that are damaged, or intact but wrong, for error-path tests."""

from __future__ import annotations

import copy
import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from backups_app.fileformat.reader import BackupReader
from backups_app.fileformat.writer import BackupWriter


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
        new_header = dict(header(copy.deepcopy(reader.header)))
        for key in ("kind", "format", "version"):
            new_header.pop(key, None)
        writer.write_header(new_header)
        # Sections name the columns the (new) header lists for their table.
        columns = {
            table["label"]: [column["name"] for column in table["columns"]]
            for table in new_header["tables"]
        }
        for section in reader.tables():
            if not keep_table(section.label):
                section.skip()
                continue
            writer.begin_table(
                section.label,
                section.table,
                columns.get(section.label, section.columns),
            )
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


def section_values(source: Path, label: str, columns: list[str]) -> list[list[Any]]:
    """The values of ``columns`` in each row of the table ``label`` of a backup."""
    rows: list[list[Any]] = []
    with gzip.open(source, "rb") as stream:
        for section in BackupReader(stream, str(source)).tables():
            if section.label != label:
                section.skip()
                continue
            where = [section.columns.index(c) for c in columns]
            for batch in section.batches(1000):
                rows += [[row[i] for i in where] for row in map(orjson.loads, batch)]
    return rows


def plain_lines(source: Path) -> list[bytes]:
    """The lines of a backup, decompressed, each with its newline."""
    with gzip.open(source, "rb") as compressed:
        return compressed.read().splitlines(keepends=True)


def reseal(lines: list[bytes]) -> bytes:
    """Join lines into a file whose end records and trailer fit what precedes them.

    Each ``end`` record gets the row count and digest of the rows before it (since
    the last ``table`` record), the trailer the counts and digest of everything
    before it: a crafted file that only the structural rules can refuse. Lines
    that are not JSON objects with a ``kind`` are kept as they are.
    """
    out: list[bytes] = []
    whole = hashlib.sha256()
    table = hashlib.sha256()
    rows = tables = total = 0
    media = False  # in the media manifest, whose entries are not counted as rows
    for line in lines:
        record = None
        if line.startswith(b"{"):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                record = None
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind in ("table", "media"):
            table, rows = hashlib.sha256(), 0
            media = kind == "media"
        elif kind == "end":
            record.update(rows=rows, digest=table.hexdigest())
            if not media:
                tables += 1
                total += rows
            line = orjson.dumps(record) + b"\n"
        elif kind == "trailer":
            record.update(tables=tables, rows=total, digest=whole.hexdigest())
            line = orjson.dumps(record) + b"\n"
        elif line.startswith(b"["):
            table.update(line)
            rows += 1
        out.append(line)
        whole.update(line)
    return b"".join(out)
