"""Every structural rule of docs/format.md, broken in a file whose digests all fit.

Each file here is resealed (tests.backup_files.reseal): its end records and trailer
match its bytes, so only the structural rules can refuse it. Every refusal is one
line naming the file and where, the same from a check, a validation and a restore,
and leaves the database as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings

from backups_app.backup import create_backup
from backups_app.exceptions import BackupError, BackupFormatError
from backups_app.fileformat.streams import BackupSource
from backups_app.restore import plan_restore, restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import plain_lines, reseal
from tests.factories import populate_zoo
from tests.testapp.models import Comment, Node
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")

NODE = "testapp.Node"


class CraftedFileTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.good = self.tmp_path / "good.jsonl.gz"
        create_backup(self.good)
        self.lines = plain_lines(self.good)
        self.header = orjson.loads(self.lines[0])
        Node.objects.create(name="after the backup")
        self.before = snapshot()

    # -- helpers -----------------------------------------------------------------------

    def section(self, label: str = NODE) -> tuple[int, int]:
        """Indexes of the table record and the end record of ``label``'s section."""
        start = next(
            i
            for i, line in enumerate(self.lines)
            if line.startswith(b'{"kind":"table","label":"' + label.encode() + b'"')
        )
        end = next(
            i
            for i in range(start, len(self.lines))
            if self.lines[i].startswith(b"{") and i > start
        )
        return start, end

    def crafted(self, lines: list[bytes], name: str = "crafted.jsonl") -> Path:
        file = self.tmp_path / name
        file.write_bytes(reseal(lines))
        return file

    def with_header(self, change: Callable[[dict], object]) -> Path:
        header = orjson.loads(self.lines[0])
        change(header)
        return self.crafted([orjson.dumps(header) + b"\n", *self.lines[1:]])

    def assert_refused(self, file: Path, message: str) -> None:
        """Refused with exactly ``file: message`` by every reader; nothing changed."""
        expected = f"{file}: {message}"
        for action in (
            lambda: validate_backup(file, file_only=True),
            lambda: validate_backup(file),
            lambda: restore_backup(file, safety_backup=False),
        ):
            with pytest.raises(BackupFormatError) as excinfo:
                action()
            assert str(excinfo.value) == expected
        assert snapshot() == self.before

    # -- the header --------------------------------------------------------------------

    def test_the_resealed_original_is_accepted(self):
        file = self.crafted(self.lines)
        assert validate_backup(file, file_only=True).ok
        restore_backup(file, safety_backup=False)
        assert validate_backup(file).ok

    def test_version_must_be_a_known_integer(self):
        cases = ((True, "True"), (2.0, "2.0"), ("2", "'2'"), (4, "4"), (0, "0"))
        for version, shown in cases:
            with self.subTest(version=version):
                file = self.with_header(lambda h, v=version: h.update(version=v))
                self.assert_refused(
                    file,
                    f"has format version {shown}; this version of backups_app "
                    "reads [1, 2, 3]",
                )

    def test_header_must_say_it_is_the_header(self):
        file = self.with_header(lambda h: h.update(kind="table"))
        self.assert_refused(file, "is not a backups_app backup (no header)")

    def test_every_header_key_must_be_there_with_its_type(self):
        cases = [
            (lambda h: h.pop("tables"), "has no 'tables'"),
            (lambda h: h.pop("migrations"), "has no 'migrations'"),
            (lambda h: h.update(use_tz="yes"), "has 'use_tz' of the wrong type"),
            (lambda h: h.update(tables={}), "has 'tables' of the wrong type"),
            (
                lambda h: h.update(exclude=[1]),
                "has 'exclude' that is not a list of strings",
            ),
            (
                lambda h: h.update(unmanaged=[1]),
                "has 'unmanaged' that is not a list of strings",
            ),
            (
                lambda h: h.update(unmanaged="legacy"),
                "has 'unmanaged' that is not a list of strings",
            ),
        ]
        for change, problem in cases:
            with self.subTest(problem=problem):
                self.assert_refused(
                    self.with_header(change), f"is damaged: its header {problem}"
                )

    def test_a_header_without_unmanaged_is_read_as_holding_none(self):
        """Files written before the key have none."""
        file = self.with_header(lambda h: h.pop("unmanaged"))
        self.assertTrue(validate_backup(file, file_only=True).ok)
        restore_backup(file, safety_backup=False)
        self.assertTrue(validate_backup(file).ok)

    def test_header_tables_must_be_well_formed(self):
        def node(h):
            return next(t for t in h["tables"] if t["label"] == NODE)

        number = 1 + [t["label"] for t in self.header["tables"]].index(NODE)
        cases = [
            (lambda h: node(h).pop("table"), "no 'table'"),
            (lambda h: node(h).update(columns=[]), f"{NODE} has no 'columns'"),
            (
                lambda h: node(h)["columns"].append({"name": 3}),
                f"{NODE} has a column without a name and a type",
            ),
            (
                lambda h: node(h).update(pk=["nope"]),
                f"{NODE} has a 'pk' that is not among its columns",
            ),
        ]
        for change, problem in cases:
            with self.subTest(problem=problem):
                self.assert_refused(
                    self.with_header(change),
                    f"is damaged: its header describes table {number} wrongly: "
                    f"{problem}",
                )

    # -- sections ----------------------------------------------------------------------

    def test_a_table_of_the_header_without_a_section_is_damage_not_empty(self):
        start, end = self.section()
        lines = self.lines[:start] + self.lines[end + 1 :]
        after = orjson.loads(lines[start])["label"]
        self.assert_refused(
            self.crafted(lines),
            f"line {start + 1}: expected the section of {NODE}, "
            f"found a section of {after!r}",
        )

    def test_the_last_table_without_a_section(self):
        last = self.header["tables"][-1]["label"]
        start, end = self.section(last)
        lines = self.lines[:start] + self.lines[end + 1 :]
        self.assert_refused(
            self.crafted(lines),
            f"is damaged: it has no section for {last}, which its header lists",
        )

    def test_a_section_twice(self):
        start, end = self.section()
        lines = self.lines[: end + 1] + self.lines[start : end + 1]
        lines += self.lines[end + 1 :]
        self.assert_refused(
            self.crafted(lines),
            f"line {end + 2}: expected the section of "
            f"{orjson.loads(self.lines[end + 1])['label']}, found a section of "
            f"{NODE!r}",
        )

    def test_a_section_with_other_columns(self):
        start, _ = self.section()
        record = orjson.loads(self.lines[start])
        record["columns"] = list(reversed(record["columns"]))
        lines = list(self.lines)
        lines[start] = orjson.dumps(record) + b"\n"
        self.assert_refused(
            self.crafted(lines),
            f"line {start + 1}: the section of {NODE} does not have the table and "
            "columns its header lists",
        )

    def test_a_record_of_an_unknown_kind_between_sections(self):
        start, _ = self.section()
        lines = list(self.lines)
        lines.insert(start, b'{"kind":"note"}\n')
        self.assert_refused(
            self.crafted(lines),
            f"line {start + 1}: expected the section of {NODE}, found 'note'",
        )

    def test_an_end_record_whose_count_is_not_an_integer(self):
        _, end = self.section()
        lines = list(self.lines)
        record = orjson.loads(lines[end])
        lines[end] = orjson.dumps({**record, "rows": float(record["rows"])}) + b"\n"
        # Not resealed: a float count that equals the rows.
        file = self.tmp_path / "float-count.jsonl"
        file.write_bytes(b"".join(lines))
        self.assert_refused(
            file, f"table {NODE} is damaged: its rows do not match its digest"
        )

    def test_data_after_the_trailer(self):
        file = self.crafted([*self.lines, self.lines[-1]])
        self.assert_refused(file, "has data after its trailer")

    # -- rows --------------------------------------------------------------------------

    def test_rows_must_have_one_value_per_column(self):
        start, _ = self.section()
        row = orjson.loads(self.lines[start + 1])
        for values, count in ((row[:-1], len(row) - 1), ([*row, None], len(row) + 1)):
            with self.subTest(values=count):
                lines = list(self.lines)
                lines[start + 1] = orjson.dumps(values) + b"\n"
                self.assert_refused(
                    self.crafted(lines),
                    f"line {start + 2}: a row of {NODE} has {count} values for "
                    f"{len(row)} columns",
                )

    def test_rows_hold_values_of_their_columns_json_types(self):
        start, _ = self.section()
        row = orjson.loads(self.lines[start + 1])
        columns = orjson.loads(self.lines[start])["columns"]
        cases = [
            (1, [1], "an array"),
            (1, {"a": 1}, "an object"),
            (1, 5, "a number"),
            (0, "1", "a string"),
            (0, True, "a boolean"),
            # No primary key is null.
            (0, None, "null"),
        ]
        for position, value, what in cases:
            with self.subTest(value=value):
                lines = list(self.lines)
                changed = list(row)
                changed[position] = value
                lines[start + 1] = orjson.dumps(changed) + b"\n"
                self.assert_refused(
                    self.crafted(lines),
                    f"line {start + 2}: a row of {NODE} has {what} in column "
                    f"{columns[position]!r}",
                )

    def test_a_row_that_is_not_one_array_on_one_line(self):
        start, _ = self.section()
        lines = list(self.lines)
        lines[start + 1] = lines[start + 1][:-2] + b"\n"
        self.assert_refused(
            self.crafted(lines),
            f"line {start + 2}: a row of {NODE} is not one JSON array on one line",
        )

    def test_a_row_that_is_not_json(self):
        start, _ = self.section()
        lines = list(self.lines)
        lines[start + 1] = b"[1,2,,]\n"
        self.assert_refused(self.crafted(lines), f"line {start + 2} is not valid JSON")

    # -- sizes -------------------------------------------------------------------------

    def test_a_row_longer_than_max_line_bytes(self):
        start, _ = self.section()
        row = orjson.loads(self.lines[start + 1])
        lines = list(self.lines)
        lines[start + 1] = orjson.dumps([row[0], "x" * 300_000, *row[2:]]) + b"\n"
        file = self.crafted(lines)
        assert len(lines[0]) < 200_000  # the header fits; the row does not
        with override_settings(BACKUPS={"MAX_LINE_BYTES": 200_000}):
            self.assert_refused(
                file,
                f"line {start + 2} is longer than 200,000 bytes "
                "(BACKUPS['MAX_LINE_BYTES']); refused as damaged",
            )
        with override_settings(BACKUPS={"MAX_LINE_BYTES": None}):
            assert validate_backup(file, file_only=True).ok

    def test_a_header_longer_than_max_line_bytes(self):
        with override_settings(BACKUPS={"MAX_LINE_BYTES": 1000}):
            self.assert_refused(
                self.crafted(self.lines),
                "line 1 is longer than 1,000 bytes (BACKUPS['MAX_LINE_BYTES']); "
                "refused as damaged",
            )


class ChangedFileTests(TestCase):
    """A restore's check and load, and a validation's check and comparison, read the
    same file: one replaced or rewritten in between is refused before commit."""

    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(self.file)
        Node.objects.create(name="second state")
        self.other = self.tmp_path / "other.jsonl.gz"
        create_backup(self.other)
        Node.objects.create(name="third state")
        self.before = snapshot()

    def test_a_path_replaced_after_the_check_is_still_the_checked_file(self):
        # The check keeps the file open; the load reads what was checked.
        checked = self.tmp_path / "checked.jsonl.gz"
        checked.write_bytes(self.file.read_bytes())
        plan = plan_restore(self.file)
        self.other.replace(self.file)
        restore_backup(plan, safety_backup=False)
        plan.source.close()
        assert validate_backup(checked).ok

    def test_a_file_rewritten_in_place_after_the_check_is_refused(self):
        plan = plan_restore(self.file)
        # Same inode, other bytes: same header (same schema), other rows.
        self.file.write_bytes(self.other.read_bytes())
        with pytest.raises(BackupFormatError) as excinfo:
            restore_backup(plan, safety_backup=False)
        assert str(excinfo.value) == (
            f"{self.file}: changed since it was checked: it is not the file that "
            "was read before"
        )
        assert snapshot() == self.before
        plan.source.close()

    def test_a_source_whose_second_read_differs_is_refused(self):
        source = BackupSource(self.file)
        plan = plan_restore(source)
        # As a storage that hands out another file the second time would.
        source._handle.close()
        source._handle = open(self.other, "rb")  # noqa: SIM115 (closed by close())
        with pytest.raises(BackupFormatError) as excinfo:
            restore_backup(plan, safety_backup=False)
        assert "changed since it was checked" in str(excinfo.value)
        assert snapshot() == self.before
        source.close()


class WriterBoundTests(TestCase):
    """A backup never writes what restores would refuse."""

    databases = {"default"}
    tmp_path: Path

    def test_a_row_longer_than_max_line_bytes_stops_the_backup(self):
        user = get_user_model().objects.create(username="commenter")
        Comment.objects.create(
            content_type=ContentType.objects.get_for_model(user),
            object_id=str(user.pk),
            body="x" * 300_000,
        )
        target = self.tmp_path / "long.jsonl.gz"
        with (
            override_settings(BACKUPS={"MAX_LINE_BYTES": 200_000}),
            pytest.raises(BackupError) as excinfo,
        ):
            create_backup(target)
        assert str(excinfo.value).startswith("testapp.Comment: a row is 300,0")
        assert str(excinfo.value).endswith(
            " bytes long, longer than 200,000 (BACKUPS['MAX_LINE_BYTES']), which "
            "restores refuse; raise that setting."
        )
        assert list(self.tmp_path.iterdir()) == []

    def test_a_header_longer_than_max_line_bytes_stops_the_backup(self):
        with (
            override_settings(BACKUPS={"MAX_LINE_BYTES": 1000}),
            pytest.raises(BackupError) as excinfo,
        ):
            create_backup(self.tmp_path / "b.jsonl")
        assert str(excinfo.value) == (
            "A record of the backup would be longer than 1,000 bytes "
            "(BACKUPS['MAX_LINE_BYTES']), which restores refuse; raise that "
            "setting."
        )
        assert list(self.tmp_path.iterdir()) == []
