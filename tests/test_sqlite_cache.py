"""SQLite restores write with a larger page cache, and give the connection back as it was."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest
from django.db import connection
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.db.backends.sqlite import RESTORE_CACHE_KIB, SQLiteBackend
from backups_app.restore import restore_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.utils import snapshot

pytestmark = [
    pytest.mark.usefixtures("tmp_path_on_test_case"),
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="the page cache is SQLite's"
    ),
]


def cache_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        return cursor.fetchone()[0]


class PageCacheTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def restore_watching_the_cache(self) -> list[int]:
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        before = snapshot()
        mutate_zoo()
        seen = []
        insert_rows = SQLiteBackend.insert_rows

        def watch(backend, spec, batches):
            seen.append(cache_size())
            return insert_rows(backend, spec, batches)

        with mock.patch.object(SQLiteBackend, "insert_rows", watch):
            restore_backup(file, safety_backup=False)
        assert snapshot() == before
        return seen

    def test_restore_writes_with_the_larger_cache_then_restores_the_setting(self):
        before = cache_size()
        assert before > -RESTORE_CACHE_KIB  # the default, 2 MB
        assert set(self.restore_watching_the_cache()) == {-RESTORE_CACHE_KIB}
        assert cache_size() == before

    def test_a_larger_cache_of_the_connection_is_kept(self):
        before = cache_size()
        larger = -2 * RESTORE_CACHE_KIB
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {larger}")
        try:
            assert set(self.restore_watching_the_cache()) == {larger}
            assert cache_size() == larger
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"PRAGMA cache_size = {before}")
