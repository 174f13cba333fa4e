"""What a restore would change, table by table: the preview of ``restore --dry-run``
and of the admin's restore page.

Every table of the file is merged with the database's rows (``merge``), in one
snapshot, counting the rows a restore would delete, insert and update, with the
first few primary keys of each and, for updates, the values that change. Whether
the restore would then change the table row by row or reload it whole follows the
same rule as the restore (``changes.reload_cheaper``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..db.backends import Backend
from ..db.schema import aligned
from ..db.tables import TableSpec
from ..fileformat.reader import BackupReader
from ..fileformat.streams import BackupSource
from ..progress import ProgressCallback, ignore_progress, passed_on
from ..validate import file_normaliser
from .apply import reload_cheaper
from .merge import Tally, merge_table


@dataclass(frozen=True)
class TablePreview:
    delete: int  # rows only the database has
    insert: int  # rows only the file has
    update: int  # rows in both, with other values
    reload: bool  # the restore would reload the table whole
    examples: dict[str, list[Any]] = field(default_factory=dict)
    # "delete", "insert": primary keys; "update": (primary key, the fields that
    # change, database → backup: backups_app.changes.FieldChange); each at most
    # MAX_EXAMPLES.


def preview_changes(
    source: BackupSource,
    header: dict[str, Any],
    digest: str,
    specs: list[TableSpec],
    backend: Backend,
    rows_now: dict[str, int],
    rows_in_file: dict[str, int],
    progress: ProgressCallback = ignore_progress,
) -> dict[str, TablePreview]:
    """Compare every table of ``source`` (checked before: ``header``, ``digest`` and
    each table's ``rows_in_file``) with the database, in one snapshot; return a
    preview per model label."""
    by_label = {spec.label: spec for spec in specs}
    previews = {}
    progress = passed_on(progress, stage_total=sum(rows_now.values()))
    with backend.snapshot(), source.open() as stream:
        reader = BackupReader(stream, source.name)
        reader.expect(header, digest)
        for section in reader.tables():
            spec = by_label.get(section.label)
            now = rows_now.get(section.label) or 0
            if spec is None:
                section.skip()
                continue
            in_file = rows_in_file[section.label]
            if not now and in_file:
                # Every row of the file is new: no need to look at them one by one.
                section.skip()
                previews[section.label] = TablePreview(0, in_file, 0, True)
                continue
            spec = aligned(spec, section.columns)
            tally = Tally.of(spec, before="database")
            merge_table(
                spec,
                section,
                backend,
                tally,
                normalise=file_normaliser(spec, header, backend.connection),
                progress=progress,
                stage="compare",
            )
            previews[section.label] = _preview(tally, now, in_file, backend)
    return previews


def _preview(tally: Tally, now: int, in_file: int, backend: Backend) -> TablePreview:
    writes = tally.extra + tally.missing + 2 * tally.changed
    return TablePreview(
        delete=tally.extra,
        insert=tally.missing,
        update=tally.changed,
        reload=not in_file
        or reload_cheaper(writes, now, in_file, backend.row_change_cost),
        examples={
            "delete": tally.extra_examples,
            "insert": tally.missing_examples,
            "update": tally.changed_rows,
        },
    )
