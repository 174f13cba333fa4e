"""The cyclic garbage collector is off during bulk work and as it was afterwards."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from django.test import TestCase

from backups_app import signals
from backups_app.backup import create_backup
from backups_app.collector import collector_paused
from backups_app.exceptions import StorageError
from backups_app.restore import restore_backup
from tests.factories import populate_zoo

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class CollectorTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.seen: list[bool] = []
        for signal in (signals.pre_backup, signals.pre_restore):
            signal.connect(self.record)
            self.addCleanup(signal.disconnect, self.record)

    def record(self, **kwargs):
        self.seen.append(gc.isenabled())

    def test_off_during_backup_and_restore_and_on_again_after(self):
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        restore_backup(file, safety_backup=False)
        assert self.seen == [False, False]
        assert gc.isenabled()

    def test_on_again_after_a_failure(self):
        not_a_folder = self.tmp_path / "file"
        not_a_folder.write_text("")
        with pytest.raises(StorageError):
            create_backup(not_a_folder / "x.jsonl.gz")
        assert gc.isenabled()

    def test_left_off_when_it_was_off(self):
        gc.disable()
        try:
            with collector_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()
        finally:
            gc.enable()
