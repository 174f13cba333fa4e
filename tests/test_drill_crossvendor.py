"""A restore drill of a SQLite-made backup into PostgreSQL (and every other pair)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.models import DrillRun
from backups_app.operations.drill import run_drill
from tests.factories import populate_zoo
from tests.test_crossvendor import ALIASES, as_sets, make_portable
from tests.test_operations import own_storage
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


@pytest.mark.crossvendor
class CrossVendorDrillTests(TestCase):
    databases = {"default", *ALIASES}
    tmp_path: Path

    def setUp(self):
        own_storage(self)

    def test_sqlite_backup_drilled_into_postgresql(self):
        populate_zoo("xsqlite")
        make_portable("xsqlite", "xpostgres")
        expected = as_sets(snapshot("xsqlite"))
        summary = create_backup(None, using="xsqlite")
        result = run_drill(
            scratch="xpostgres", source_database="xsqlite", migrate=False
        )
        assert result.ok, result
        assert result.backup_name == summary.name
        assert as_sets(snapshot("xpostgres")) == expected
        assert DrillRun.objects.get().source_database == "xsqlite"

    def test_every_pair(self):
        for alias in ALIASES:
            populate_zoo(alias)
        for source, target in itertools.permutations(ALIASES, 2):
            with self.subTest(source=source, target=target):
                make_portable(source, target)
                file = self.tmp_path / f"{source}-{target}.jsonl.gz"
                create_backup(file, using=source)
                result = run_drill(str(file), scratch=target, migrate=False)
                assert result.ok, result
