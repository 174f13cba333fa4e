"""The media manifest's rules (format version 3), each broken in a resealed file.

Every file here has digests that fit its bytes (tests.backup_files.reseal), so only
the manifest's own rules can refuse it: one line naming the file and where.
"""

from __future__ import annotations

import ast
import io
import subprocess
import sys
from pathlib import Path
from unittest import mock

import orjson
import pytest
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.exceptions import BackupFormatError
from backups_app.fileformat import reader as reader_module
from backups_app.fileformat.reader import verify_file
from tests.backup_files import plain_lines, reseal
from tests.media_utils import clear_media, populate_media
from tests.test_docs import python_blocks

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class ManifestRuleTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    @classmethod
    def setUpTestData(cls):
        clear_media()
        populate_media()

    def setUp(self):
        good = self.tmp_path / "good.jsonl.gz"
        create_backup(good, media=True)
        self.lines = plain_lines(good)
        self.media = next(
            i
            for i, line in enumerate(self.lines)
            if line.startswith(b'{"kind":"media"')
        )
        self.entry = self.media + 1

    def refused(self, lines: list[bytes], *, reseal_it: bool = True) -> str:
        data = reseal(lines) if reseal_it else b"".join(lines)
        with pytest.raises(BackupFormatError) as excinfo:
            verify_file(io.BytesIO(data), "crafted")
        message = str(excinfo.value)
        assert "\n" not in message
        return message

    def with_entry(self, change) -> list[bytes]:
        lines = list(self.lines)
        entry = orjson.loads(lines[self.entry])
        lines[self.entry] = orjson.dumps(change(entry)) + b"\n"
        return lines

    def with_header(self, change) -> list[bytes]:
        lines = list(self.lines)
        header = orjson.loads(lines[0])
        lines[0] = orjson.dumps(change(header)) + b"\n"
        return lines

    def test_the_file_as_written_verifies(self):
        verified = verify_file(io.BytesIO(reseal(self.lines)), "good")
        assert verified.media.rows == len(self.lines) - self.entry - 2

    def test_a_reader_of_versions_1_and_2_refuses_it_by_its_version(self):
        with mock.patch.object(reader_module, "SUPPORTED_VERSIONS", frozenset({1, 2})):
            message = self.refused(self.lines)
        assert message == (
            "crafted: has format version 3; this version of backups_app reads [1, 2]"
        )

    def test_a_manifest_left_out(self):
        end = next(
            i
            for i in range(self.entry, len(self.lines))
            if self.lines[i].startswith(b"{")
        )
        lines = self.lines[: self.media] + self.lines[end + 1 :]
        assert self.refused(lines) == (
            f"crafted: line {self.media + 1}: expected its media manifest, which its "
            "header declares, found its trailer"
        )

    def test_a_version_3_header_without_media(self):
        lines = self.with_header(lambda h: {k: v for k, v in h.items() if k != "media"})
        assert self.refused(lines) == "crafted: is damaged: its header has no 'media'"

    def test_a_manifest_in_a_version_2_file(self):
        lines = self.with_header(lambda h: {**h, "version": 2})
        assert self.refused(lines) == (
            f"crafted: line {self.media + 1}: expected its trailer, found 'media'"
        )

    def test_other_columns(self):
        lines = list(self.lines)
        lines[self.media] = b'{"kind":"media","columns":["source","name"]}\n'
        assert self.refused(lines) == (
            f"crafted: line {self.media + 1}: the media manifest does not have the "
            "columns of its format version"
        )

    def test_a_digest_that_is_no_sha256(self):
        lines = self.with_entry(lambda e: [*e[:4], "../../etc/passwd"])
        assert self.refused(lines) == (
            f"crafted: line {self.entry + 1}: a media entry has a digest that is not "
            "a lower-case SHA-256"
        )

    def test_a_name_outside_the_storage(self):
        for name in ("../outside", "/etc/passwd", "a/../../b", "nul\x00byte", ""):
            lines = self.with_entry(lambda e, name=name: [e[0], e[1], name, *e[3:]])
            assert self.refused(lines) == (
                f"crafted: line {self.entry + 1}: a media entry has a file name that "
                f"cannot be written: {name!r}"
            )

    def test_a_source_the_header_does_not_list(self):
        lines = self.with_entry(lambda e: [999, *e[1:]])
        assert self.refused(lines) == (
            f"crafted: line {self.entry + 1}: a media entry names no media source of "
            "the header"
        )

    def test_a_size_without_a_digest(self):
        lines = self.with_entry(lambda e: [*e[:4], None])
        assert self.refused(lines) == (
            f"crafted: line {self.entry + 1}: a media entry has a size without a "
            "digest, or a digest without a size"
        )

    def test_a_row_without_a_primary_key(self):
        lines = self.with_entry(lambda e: [e[0], None, *e[2:]])
        assert self.refused(lines) == (
            f"crafted: line {self.entry + 1}: a media entry has a row's primary key "
            "where none belongs, or none where one does"
        )

    def test_an_entry_of_other_types(self):
        lines = self.with_entry(lambda e: [e[0], e[1], e[2], "12", e[4]])
        assert self.refused(lines) == (
            f"crafted: line {self.entry + 1}: an entry of the media manifest has a "
            "string in column 'size'"
        )

    def test_a_damaged_entry_without_resealing(self):
        lines = self.with_entry(lambda e: [*e[:3], e[3] + 1, e[4]])
        assert self.refused(lines, reseal_it=False) == (
            "crafted: the media manifest is damaged: its rows do not match its digest"
        )

    def test_sources_listed_twice(self):
        lines = self.with_header(
            lambda h: {
                **h,
                "media": {
                    **h["media"],
                    "sources": h["media"]["sources"] + h["media"]["sources"][:1],
                },
            }
        )
        assert "lists media source" in self.refused(lines)


class StandaloneCheckerTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_the_checker_of_the_format_page_reads_a_file_with_media(self):
        clear_media()
        populate_media()
        checker = next(b for b in python_blocks("format.md") if "def check(" in b)
        script = self.tmp_path / "check.py"
        script.write_text(checker)
        file = self.tmp_path / "media.jsonl.gz"
        summary = create_backup(file, media=True)
        result = subprocess.run(
            [sys.executable, str(script), str(file)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        counts = ast.literal_eval(result.stdout)
        assert counts == {
            **{t.label: t.rows for t in summary.tables},
            "media": summary.media.references,
        }
