"""The examples in the docs run as written."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import TestCase

from backups_app.backup import create_backup
from tests.factories import populate_zoo

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)


@pytest.fixture(autouse=True)
def _tmp(request, tmp_path):
    if request.instance is not None:
        request.instance.tmp_path = tmp_path


class FormatPageTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_the_standalone_checker_reads_our_files_and_catches_damage(self):
        (checker,) = python_blocks("format.md")
        script = self.tmp_path / "check.py"
        script.write_text(checker)
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        summary = create_backup(file)
        result = subprocess.run(
            [sys.executable, str(script), str(file)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        counts = ast.literal_eval(result.stdout)
        assert counts == {t.label: t.rows for t in summary.tables}
        cut = self.tmp_path / "cut.jsonl.gz"
        cut.write_bytes(file.read_bytes()[:-30])
        result = subprocess.run(
            [sys.executable, str(script), str(cut)], capture_output=True, text=True
        )
        assert result.returncode != 0
