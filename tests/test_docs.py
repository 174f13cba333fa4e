"""The examples in the docs run as written."""

from __future__ import annotations

import ast
import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import TestCase

from backups_app.backup import create_backup
from tests.factories import populate_zoo
from tests.utils import snapshot

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(), re.DOTALL)


pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class FormatPageTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_the_standalone_checker_reads_our_files_and_catches_damage(self):
        checker = next(
            block for block in python_blocks("format.md") if "def check(" in block
        )
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


class UsagePageTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_the_python_example_runs_as_written(self):
        example = next(
            block for block in python_blocks("usage.md") if "create_backup(" in block
        )
        populate_zoo()
        before = snapshot()
        code = example.replace("/var/backups", str(self.tmp_path))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "docs/usage.md", "exec"), {})  # noqa: S102
        lines = printed.getvalue().splitlines()
        rows, size, digest = lines[0].split()
        assert int(rows) == sum(map(len, before.values()))
        assert int(size) == (self.tmp_path / "shop.jsonl.gz").stat().st_size
        assert len(digest) == 64
        assert lines[1].endswith("match exactly, 0 differ")
        # Nothing changed since the backup: no table differs, no row is written.
        deleted, inserted, updated, safety = lines[2].split()
        assert (int(deleted), int(inserted), int(updated)) == (0, 0, 0)
        assert safety.startswith("safety-")
        assert snapshot() == before


class StoragePageTests(TestCase):
    """docs/storage.md: its settings are valid and its key generation works."""

    databases = {"default"}
    tmp_path: Path

    def test_the_settings_examples_pass_the_checks(self):
        from django.test import override_settings

        from backups_app.checks import check_settings

        for block in python_blocks("storage.md"):
            namespace: dict = {}
            exec(block, namespace)  # noqa: S102 (our own documentation)
            if "BACKUPS" in namespace:
                config = namespace["BACKUPS"]
                if "ENCRYPTION" in config:
                    # The page's identity is a path on the reader's server.
                    config["ENCRYPTION"]["IDENTITIES"] = []
                with override_settings(BACKUPS=config):
                    assert check_settings() == [], block

    def test_the_key_generation_line_makes_a_pair_that_works(self):
        page = (DOCS / "storage.md").read_text()
        line = next(
            line.strip()
            for line in page.splitlines()
            if line.strip().startswith('python -c "from pyrage')
        )
        code = line.removeprefix("python -c ").strip('"')
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        secret, public = result.stdout.split()
        assert secret.startswith("AGE-SECRET-KEY-1") and public.startswith("age1")
        from django.test import override_settings

        populate_zoo()
        keys = {"ENCRYPTION": {"RECIPIENTS": [public], "IDENTITIES": [secret]}}
        with override_settings(BACKUPS=keys):
            file = self.tmp_path / "zoo.jsonl.gz.age"
            create_backup(file)
            from backups_app.validate import validate_backup

            assert validate_backup(file).ok
