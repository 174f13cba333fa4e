"""Exact round trips of third-party schemas: Wagtail, django-mptt, django-reversion.

The apps' tables are filled through their APIs and with model_bakery for every
model, the raw contents of every table in the database are captured with SQL, and
``backup``, a mix of ORM and raw SQL changes, and ``restore`` must bring back the
same raw contents, table by table. Run with ``make test-thirdparty``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError
from django.db import connection
from django.test import SimpleTestCase, TestCase

from tests.thirdparty import conftest, populate, rawdb
from tests.utils import run_command

pytestmark = [
    pytest.mark.usefixtures("tmp_path_on_test_case"),
    pytest.mark.skipif(
        bool(settings.THIRDPARTY_MISSING),
        reason="third-party packages missing: "
        + ", ".join(settings.THIRDPARTY_MISSING),
    ),
]

# Tables the apps' content changes through the ORM and raw SQL in populate.mutate.
MUTATED_TABLES = {
    "wagtailcore_page",
    "tpapp_articlepage",
    "tpapp_category",
    "wagtailcore_revision",
    "wagtailimages_image",
    "wagtailsearch_indexentry",
    "taggit_tag",
    "taggit_taggeditem",
    "reversion_revision",
    "reversion_version",
}
# On SQLite, rows the FTS5 table's triggers wrote, and the FTS5 tables themselves.
FTS_TABLES = {
    "wagtailsearch_indexentry_fts",
    "wagtailsearch_indexentry_fts_content",
    "wagtailsearch_indexentry_fts_docsize",
}


class ThirdPartyRoundTripTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    @classmethod
    def setUpTestData(cls):
        populate.random_seed(20261130)
        started = time.perf_counter()
        populate.populate_content()
        cls.made = populate.populate_generic()
        cls.populate_seconds = time.perf_counter() - started

    def backup(self, name: str) -> tuple[Path, dict, float]:
        file = self.tmp_path / name
        started = time.perf_counter()
        out, _err = run_command("backup", "--output", str(file), "--json")
        return file, json.loads(out), time.perf_counter() - started

    def restore(self, file: Path) -> float:
        started = time.perf_counter()
        run_command("restore", str(file), "--noinput", "--no-safety-backup")
        return time.perf_counter() - started

    def assert_same_contents(self, before, after):
        diff = rawdb.differences(before, after)
        if diff:
            self.fail("raw contents differ after restore:\n" + "\n".join(diff))

    def test_every_model_of_the_apps_has_rows(self):
        models = populate.thirdparty_models()
        labels = {model._meta.label for model in models}
        apps = {model._meta.app_config.name for model in models}
        # django-mptt has no models of its own: tpapp.Category is its tree.
        assert {"wagtail", "taggit", "reversion", "tests.thirdparty.tpapp"} <= apps
        assert {"tpapp.Category", "tpapp.Note_topics", "wagtailcore.Page"} <= labels
        assert len(models) >= 50
        assert set(self.made) == labels
        empty = [
            model._meta.label for model in models if not model._base_manager.exists()
        ]
        assert empty == []

    def test_search_index_triggers_filled_the_fts_table_on_sqlite(self):
        if connection.vendor != "sqlite":
            pytest.skip("FTS5 tables kept by triggers are SQLite's (Wagtail search)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM wagtailsearch_indexentry")
            (entries,) = cursor.fetchone()
            cursor.execute("SELECT COUNT(*) FROM wagtailsearch_indexentry_fts")
            (fts_rows,) = cursor.fetchone()
        assert entries > 10
        assert fts_rows >= entries

    def test_restore_brings_back_every_tables_raw_contents(self):
        before = rawdb.raw_contents()
        seconds = {"populate": self.populate_seconds}
        self.addCleanup(self.record_figures, len(before), seconds)
        file, summary, seconds["backup"] = self.backup("site.jsonl.gz")
        seconds["rows"] = summary["rows"]
        seconds["tables backed up"] = summary["table_count"]
        populate.mutate()
        mutated = rawdb.raw_contents()
        expected = MUTATED_TABLES | (
            FTS_TABLES if connection.vendor == "sqlite" else set()
        )
        assert expected <= rawdb.changed_tables(before, mutated)
        seconds["restore"] = self.restore(file)
        after = rawdb.raw_contents()
        started = time.perf_counter()
        out, _err = run_command("validatebackup", str(file))
        seconds["validatebackup"] = time.perf_counter() - started
        self.assert_same_contents(before, after)
        assert out.splitlines()[-1] == (
            f"{summary['table_count']} tables match exactly, 0 differ"
        )

    @staticmethod
    def record_figures(compared: int, seconds: dict) -> None:
        """Keep this run's sizes and wall times for the end of the report."""

        def took(step: str) -> str:
            return f"{seconds[step]:.2f} s" if step in seconds else "failed"

        conftest.FIGURES.append(
            f"{connection.vendor}: {len(populate.thirdparty_models())} third-party"
            f" models; {compared} of {len(connection.introspection.table_names())}"
            f" tables compared raw; {seconds.get('tables backed up', '?')} tables"
            f" and {seconds.get('rows', 0):,} rows backed up; populate"
            f" {took('populate')}, backup {took('backup')}, restore"
            f" {took('restore')}, validatebackup {took('validatebackup')}"
        )

    def test_validatebackup_finds_the_changes_then_none_after_restore(self):
        file, summary, _seconds = self.backup("site.jsonl.gz")
        populate.mutate()
        with pytest.raises(CommandError) as excinfo:
            run_command("validatebackup", str(file))
        # Exit status 1 means "the database differs" and nothing else; the verdict
        # is printed as the report's last line, without a CommandError message.
        assert excinfo.value.returncode == 1
        assert excinfo.value.args[0] == ""
        self.restore(file)
        out, _err = run_command("validatebackup", str(file))
        assert out.splitlines()[-1] == (
            f"{summary['table_count']} tables match exactly, 0 differ"
        )

    def test_backup_of_the_restored_database_has_the_same_digests(self):
        file, summary, _seconds = self.backup("site.jsonl.gz")
        populate.mutate()
        self.restore(file)
        _again, summary_again, _seconds = self.backup("again.jsonl.gz")
        digests = {table["label"]: table["digest"] for table in summary["tables"]}
        again = {table["label"]: table["digest"] for table in summary_again["tables"]}
        assert again == digests
        assert summary_again["rows"] == summary["rows"]

    def test_search_index_answers_the_same_after_restore_on_sqlite(self):
        if connection.vendor != "sqlite":
            pytest.skip("FTS5 tables kept by triggers are SQLite's (Wagtail search)")
        query = (
            "SELECT rowid FROM wagtailsearch_indexentry_fts"
            " WHERE wagtailsearch_indexentry_fts MATCH %s ORDER BY rowid"
        )
        terms = ["sunset", "paragraph", "article", "report"]

        def answers():
            with connection.cursor() as cursor:
                found = {}
                for term in terms:
                    cursor.execute(query, [term])
                    found[term] = [row[0] for row in cursor.fetchall()]
                return found

        before = answers()
        assert all(before.values()), before
        file, _summary, _seconds = self.backup("site.jsonl.gz")
        populate.mutate()
        assert answers() != before
        self.restore(file)
        assert answers() == before
        with connection.cursor() as cursor:
            # Raises when the index does not match the FTS table's contents.
            cursor.execute(
                "INSERT INTO wagtailsearch_indexentry_fts(wagtailsearch_indexentry_fts)"
                " VALUES ('integrity-check')"
            )


class RawDiffTests(SimpleTestCase):
    def test_differences_name_the_table_and_the_rows_on_each_side(self):
        before = {"t": [(1, "a"), (2, "b")], "same": [(1,)], "gone": []}
        after = {"t": [(1, "a"), (2, "B"), (3, "c")], "same": [(1,)], "new": []}
        assert rawdb.differences(before, after) == [
            "gone: table gone",
            "new: new table",
            "t: 2 rows before, 3 after; 1 only before, 2 only after",
            "  - (2, 'b')",
            "  + (2, 'B')",
            "  + (3, 'c')",
        ]
        assert rawdb.changed_tables(before, after) == {"t", "gone", "new"}

    def test_a_duplicated_row_is_a_difference(self):
        assert rawdb.differences({"t": [(1,)]}, {"t": [(1,), (1,)]}) == [
            "t: 1 rows before, 2 after; 0 only before, 1 only after",
            "  + (1,)",
        ]
