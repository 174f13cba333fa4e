"""Undo files: the safety backup of a differential restore, as small as its changes.

A restore that changes a few rows of a table need not copy the whole table to be
undone. Its undo file (docs/format.md, "Undo files") holds, for each table changed
row by row, the rows the restore removes or replaces, as the database held them,
and the primary keys of the rows it writes; every table reloaded whole is in it
whole, as in a backup. A restore that puts files back gives it the media
manifest a whole safety backup would have (the files the rows referenced before the
restore; their blobs are shared). Laid over the backup the restore wrote, which
stays in the backup storage, it gives back a backup of the database as it was
before the restore, table digests, media manifest and all.

``write_undo`` writes it inside the restore's transaction, from what the comparison
found (``Changes(undo=True)``). ``undone`` turns an undo file into that backup, in a
temporary file, checking each table's rows against the count and digest the undo
file recorded before anything is restored: restoring it is then a restore like any
other (compared with the database, exact, and undoable in its turn).
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from bisect import bisect_left
from collections.abc import Collection, Iterator
from itertools import chain, islice
from typing import IO, TYPE_CHECKING, Any

from ..backup import (
    BackupSummary,
    TableSummary,
    backup_header,
    describe_table,
    write_rows,
)
from ..conf import app_settings
from ..db.backends import Backend
from ..db.tables import TableSpec
from ..exceptions import BackupFormatError, StorageError, one_line
from ..fileformat.codec import key_function, lines_normaliser, loads_block
from ..fileformat.encryption import ScratchKey, scratch_key, sealed
from ..fileformat.reader import BackupReader, TableSection, row_lines
from ..fileformat.streams import BackupSource, BackupTarget
from ..fileformat.undo import UNDO_KEY, drop_label, restored_header
from ..fileformat.writer import UNDO_FORMAT_NAME, BackupWriter
from ..media.collect import media_collector
from ..progress import Progress, ProgressCallback, ignore_progress, passed_on
from ..provenance import provenance_of
from .store import Spool

if TYPE_CHECKING:
    from ..media.restore import MediaPlan
    from ..restore import RestorePlan
    from .apply import Changes

WRITE_ROWS = 1000


def _batched(lines: Iterator[bytes]) -> Iterator[list[bytes]]:
    while batch := list(islice(lines, WRITE_ROWS)):
        yield batch


def undo_possible(plan: RestorePlan, specs: list[TableSpec], backend: Backend) -> bool:
    """Whether a restore of ``plan`` can be undone with an undo file: the backup
    is in the backup storage (where the undo file will find it) and holds every
    value as this database spells it (same vendor and format version), so that its
    unchanged rows are the database's very bytes."""
    return (
        app_settings.UNDO_FILES
        and plan.source.storage_name is not None
        and all(
            lines_normaliser(
                spec.fields,
                version=plan.header["version"],
                same_vendor=plan.header["vendor"] == backend.connection.vendor,
            )
            is None
            for spec in specs
        )
    )


def write_undo(
    plan: RestorePlan,
    specs: list[TableSpec],
    backend: Backend,
    changes: Changes,
    exclude: tuple[str, ...],
    media_plan: MediaPlan | None = None,
    progress: ProgressCallback = ignore_progress,
) -> BackupSummary:
    """Write the undo file of a restore into the backup storage; return what was
    written. Inside the restore's transaction, before anything is changed.

    With ``media_plan`` (a restore that puts files back) it has the media manifest
    of the files the restore may replace, as a whole safety backup would."""
    using = plan.database
    started = time.perf_counter()
    header = backup_header(using, specs, exclude, "safety")
    collector = (
        media_collector(
            specs,
            media_plan.has_fields,
            media_plan.whole_storages,
            progress=passed_on(progress, stage="safety"),
        )
        if media_plan is not None
        else None
    )
    if collector is not None:
        header["media"] = collector.header()
    described = []
    for spec in specs:
        table = changes.tables.get(spec.label)
        if table is None:
            described.append(describe_table(spec))
            continue
        own = describe_table(table.spec)
        columns = {column["name"]: column for column in own["columns"]}
        drop = {
            "label": drop_label(spec.label),
            "table": spec.table,
            "columns": [columns[name] for name in own["pk"]],
            "pk": own["pk"],
        }
        described += [own, drop]
    header["tables"] = described
    header[UNDO_KEY] = {
        "backup": plan.source.storage_name,
        "digest": plan.digest,
        "tables": {
            label: {"rows": table.rows_before, "digest": table.digest_before}
            for label, table in changes.tables.items()
        },
    }
    rows_now = {table.label: table.rows_now or 0 for table in plan.tables}
    # The rows it will hold: the progress display's total.
    stage_total = sum(
        rows_now.get(spec.label, 0)
        if spec.label not in changes.tables
        else changes.tables[spec.label].writes
        for spec in specs
    )
    progress(Progress("safety", "", 0, None, stage_total))
    destination = BackupTarget(None, using, app_settings.SAFETY_FILENAME_TEMPLATE)
    tables: list[TableSummary] = []
    try:
        with (
            destination.open() as stream,
            BackupWriter(stream, background=True) as writer,
        ):
            writer.write_header(header, UNDO_FORMAT_NAME)
            for spec in specs:
                table = changes.tables.get(spec.label)
                if table is None:
                    writer.begin_table(spec.label, spec.table, spec.columns)
                    write_rows(
                        writer,
                        spec,
                        backend,
                        rows_now.get(spec.label),
                        stage_total,
                        progress,
                        stage="safety",
                    )
                    tables.append(
                        TableSummary(spec.label, spec.table, *writer.end_table())
                    )
                    continue
                old, dropped = changes.undo_lines(spec.label)
                writer.begin_table(spec.label, spec.table, table.spec.columns)
                for lines in _batched(old):
                    writer.write_rows(lines)
                tables.append(TableSummary(spec.label, spec.table, *writer.end_table()))
                writer.begin_table(
                    drop_label(spec.label), spec.table, table.spec.pk_columns
                )
                for keys in _batched(dropped):
                    writer.write_rows(keys)
                writer.end_table()
                progress(
                    Progress(
                        "safety", spec.label, table.writes, table.writes, stage_total
                    )
                )
            if collector is not None:
                collector.read_references(backend)
                collector.store()
                writer.write_media(collector.blocks())
            digest = writer.write_trailer()
    except OSError as exc:
        raise StorageError(
            f"Cannot write {destination.name}: {exc.strerror or one_line(exc)}."
        ) from exc
    finally:
        if collector is not None:
            collector.close()
    return BackupSummary(
        name=destination.final_name,
        storage_name=destination.storage_name,
        path=str(destination.path) if destination.path else None,
        database=using,
        vendor=backend.connection.vendor,
        created=header["created"],
        origin="safety",
        rows=writer.rows,
        size=destination.size,
        seconds=round(time.perf_counter() - started, 3),
        digest=digest,
        tables=tuple(tables),
        media=collector.summary if collector is not None else None,
    )


# -- applying an undo file ---------------------------------------------------------------


def undone(source: BackupSource) -> BackupSource:
    """Return ``source``, or, when it is an undo file, the backup it stands for:
    built in a temporary file (the size of the uncompressed backup) from the undo
    file and the backup it names, every table checked against the count and digest
    the undo file recorded. Raises BackupFormatError or StorageError, naming the
    file and table, when the two do not make that backup."""
    with source.open() as stream:
        try:
            header = BackupReader(stream, source.name, undo=True).header
        except BackupFormatError:
            return source  # refused, with its reason, by the caller's own read
    if header["format"] != UNDO_FORMAT_NAME:
        return source
    backup_name = header[UNDO_KEY]["backup"]
    try:
        backup = BackupSource.from_storage(backup_name)
    except StorageError as exc:
        raise StorageError(
            f"{source.name} undoes a restore of {backup_name}, which it needs and "
            f"cannot read: {one_line(exc)}"
        ) from exc
    # The backup's rows reach this machine's disk encrypted (to a key of this
    # process) when either file is encrypted, or backups are to be.
    key = scratch_key(source.is_encrypted() or backup.is_encrypted())
    try:
        handle = tempfile.TemporaryFile(prefix="backups_app-undo-")  # noqa: SIM115
        try:
            with contextlib.closing(backup):
                _rebuild(source, backup, handle, key)
            handle.flush()
        except BaseException:
            handle.close()
            raise
    except OSError as exc:
        raise StorageError(
            f"Cannot build the backup that {source.name} stands for in a temporary "
            f"file ({tempfile.gettempdir()}): {exc.strerror or one_line(exc)}."
        ) from exc
    return BackupSource.adopt(handle, source.name, [key.identity] if key else None)


def table_rows(
    source: BackupSource, labels: Collection[str]
) -> Iterator[tuple[str, list[str], Iterator[list[Any]]]]:
    """Yield ``(label, columns, rows)`` for each table of ``labels`` that the backup
    ``source`` stands for holds, in file order, rows as lists of values.

    For an undo file, the rows of the backup ``undone`` would build, found without
    building it: a table written as a patch has its rows before the restore and
    the rows of the backup it names that the restore did not write. Unlike
    ``undone``, nothing is checked against the digests the undo file recorded:
    this is for a look at a few small tables (who survives a restore) that the
    restore itself then reads and checks whole."""
    wanted = set(labels)
    with source.open() as stream:
        reader = BackupReader(stream, source.name, undo=True)
        patched = reader.header[UNDO_KEY]["tables"] if reader.is_undo else {}
        sections = reader.tables()
        for section in sections:
            if section.label not in wanted:
                continue
            wanted.discard(section.label)
            rows: Iterator[list[Any]] = _parsed(section)
            if section.label in patched:
                rows = chain(rows, _kept(source.name, reader.header, section, sections))
            yield section.label, section.columns, rows
            if not wanted:
                return


def _parsed(section: TableSection) -> Iterator[list[Any]]:
    for block in section.blocks():
        yield from section.parse(block)


def _drop_section(
    name: str, label: str, sections: Iterator[TableSection]
) -> TableSection:
    """The ``#drop`` section that follows patched table ``label``'s in undo file
    ``name``. The reader already refuses a header that lists none after it and a
    file that ends early; this does not depend on that."""
    dropped = next(sections, None)
    if dropped is None or dropped.label != drop_label(label):
        raise BackupFormatError(
            f"{name}: table {label} is not followed by its {drop_label(label)} section"
        )
    return dropped


def _kept(
    name: str,
    header: dict[str, Any],
    section: TableSection,
    sections: Iterator[TableSection],
) -> Iterator[list[Any]]:
    """The rows of the backup an undo file names, in table ``section``, that the
    restore did not write (their keys are not in the ``#drop`` section after it)."""
    dropped = _drop_section(name, section.label, sections)
    positions, _kinds = _pk_kinds(header, section.label)
    written = {tuple(values) for values in _parsed(dropped)}
    with contextlib.closing(
        BackupSource.from_storage(header[UNDO_KEY]["backup"])
    ) as backup:
        base = _Sections(backup)
        try:
            for row in _parsed(base.section(section.label, section.columns)):
                if tuple(row[i] for i in positions) not in written:
                    yield row
        finally:
            base.close()


def _rebuild(
    source: BackupSource,
    backup: BackupSource,
    handle: IO[bytes],
    key: ScratchKey | None,
) -> None:
    with (
        source.open() as stream,
        sealed(handle, key) as out,
        BackupWriter(out) as writer,
    ):
        reader = BackupReader(stream, source.name, undo=True)
        undo = reader.header[UNDO_KEY]
        writer.write_header(restored_header(reader.header))
        base = _Sections(backup)
        sections = reader.tables(media=True)
        for section in sections:
            if section is reader.media:
                # The files before the restore: the undo file's own manifest.
                writer.write_media(
                    (block, len(section.parse(block))) for block in section.blocks()
                )
                continue
            label = section.label
            before = undo["tables"].get(label)
            writer.begin_table(label, section.table, section.columns)
            if before is None:
                for block in section.blocks():
                    writer.write_block(block, block.count(b"\n"))
                writer.end_table()
                continue
            old = Spool(key)
            try:
                stretch = old.begin()
                for block in section.blocks():
                    section.parse(block)
                    for line in row_lines(block):
                        old.add(line)
                old.end()
                dropped = _drop_section(source.name, label, sections)
                _merge(
                    source.name,
                    base.section(label, section.columns),
                    old.chunks(stretch),
                    dropped,
                    _pk_kinds(reader.header, label),
                    writer,
                )
            finally:
                old.close()
            rows, digest = writer.end_table()
            if (rows, digest) != (before["rows"], before["digest"]):
                raise BackupFormatError(
                    f"{source.name}: laid over {backup.name}, table {label} does not "
                    f"come out as it was before the restore ({rows} rows where "
                    f"{before['rows']} were, or another digest): one of the two "
                    "files is not the one the restore wrote"
                )
        base.finish(undo["digest"], source.name)
        assert reader.trailer is not None  # checked at the end of tables()
        if provenance_of(reader.header, reader.trailer) != "ours":
            raise BackupFormatError(
                f"{source.name}: this installation did not write this undo file (its "
                "trailer's mac does not verify with the signing key), and applies "
                "only undo files it wrote"
            )
        writer.write_trailer()


def _pk_kinds(header: dict[str, Any], label: str) -> tuple[list[int], list[str]]:
    """Where a table's primary key columns are, and their field types."""
    table = next(t for t in header["tables"] if t["label"] == label)
    names = [column["name"] for column in table["columns"]]
    kinds = {column["name"]: column["type"] for column in table["columns"]}
    return [names.index(n) for n in table["pk"]], [kinds[n] for n in table["pk"]]


def _merge(
    name: str,
    base: TableSection,
    old_chunks: Iterator[list[bytes]],
    dropped: TableSection,
    pk: tuple[list[int], list[str]],
    writer: BackupWriter,
) -> None:
    """Write the backup's rows of a table without the dropped ones, and the old
    rows among them, all in primary key order."""
    label = base.label
    positions, kinds = pk
    key = key_function(positions, kinds)
    drop_key = key_function(range(len(positions)), kinds)

    def olds() -> Iterator[tuple[tuple[Any, ...], bytes]]:
        for lines in old_chunks:
            for line, row in zip(
                lines, loads_block(b"\n".join(lines) + b"\n"), strict=True
            ):
                yield key(row), line

    def drops() -> Iterator[tuple[Any, ...]]:
        for block in dropped.blocks():
            for values in dropped.parse(block):
                yield drop_key(values)

    old_rows, drop_keys = olds(), drops()
    next_old = next(old_rows, None)
    next_drop = next(drop_keys, None)

    def problem(what: str) -> BackupFormatError:
        return BackupFormatError(f"{name}: table {label}: {what}")

    try:
        for block in base.blocks():
            rows = base.parse(block)
            if next_old is None and next_drop is None:
                writer.write_block(block, len(rows))
                continue
            lines = row_lines(block)
            out: list[bytes] = []
            start, count = 0, len(rows)
            # From one change to the next by bisection: a few keys per change,
            # not one per row.
            while next_old is not None or next_drop is not None:
                target = min(
                    k for k in (next_drop, next_old and next_old[0]) if k is not None
                )
                position = bisect_left(rows, target, start, count, key=key)
                out += lines[start:position]
                start = position
                if position == count:
                    break  # in a later block, or after the last row
                at = key(rows[position])
                if target == next_drop:
                    if at != target:
                        raise problem(
                            f"removes the row with primary key {list(target)}, "
                            "which the backup does not hold"
                        )
                    start += 1
                    next_drop = next(drop_keys, None)
                    continue
                if at == target:
                    raise problem(
                        f"puts back the row with primary key {list(target)}, which "
                        "the backup holds too"
                    )
                assert next_old is not None  # target is its key
                out.append(next_old[1])
                next_old = next(old_rows, None)
            out += lines[start:]
            writer.write_rows(out)
        rest = []
        while next_old is not None:
            rest.append(next_old[1])
            next_old = next(old_rows, None)
        writer.write_rows(rest)
    except TypeError:
        raise problem("primary keys of different types cannot be ordered") from None
    if next_drop is not None:
        raise problem(
            f"removes the row with primary key {list(next_drop)}, which the backup "
            "does not hold"
        )


class _Sections:
    """The sections of a backup, read in order, from the start again when a
    section is asked for after it went by."""

    def __init__(self, source: BackupSource):
        self.source = source
        self._stack = contextlib.ExitStack()
        self._open()

    def _open(self) -> None:
        self._stack.close()
        stream = self._stack.enter_context(self.source.open())
        self.reader = BackupReader(stream, self.source.name)
        self._sections = self.reader.tables()

    def section(self, label: str, columns: list[str]) -> TableSection:
        for attempt in range(2):
            for section in self._sections:
                if section.label == label:
                    if section.columns != columns:
                        raise BackupFormatError(
                            f"{self.source.name}: table {label} has other columns "
                            "than the undo file that names this backup"
                        )
                    return section
            if attempt == 0:
                self._open()
        raise BackupFormatError(
            f"{self.source.name} has no table {label}, which the undo file that "
            "names this backup changes"
        )

    def close(self) -> None:
        self._stack.close()

    def finish(self, digest: str, undo_name: str) -> None:
        """Read the backup to its end; it must be the file the undo file names."""
        for _ in self._sections:
            pass
        self.close()
        assert self.reader.trailer is not None
        if self.reader.trailer["digest"] != digest:
            raise BackupFormatError(
                f"{undo_name} undoes a restore of {self.source.name}, but that file "
                "has changed since (its digest is not the one the undo file recorded)"
            )
