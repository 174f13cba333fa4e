"""Backups move between vendors: SQLite, PostgreSQL and MariaDB/MySQL, every pair.

Run with ``BACKUPS_CROSSVENDOR=1``; the aliases ``xsqlite``, ``xpostgres`` and
``xmysql`` point at one test database of each vendor.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.db import connections
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.exceptions import RestoreError
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.factories import populate_zoo, widest_decimal
from tests.testapp.models import AllFields
from tests.utils import snapshot

ALIASES = ("xsqlite", "xpostgres", "xmysql")
ONLY_SOME_VENDORS_HOLD = {"infinity", "-infinity", "nan", "negative zero"}


def make_portable(source: str, target: str) -> None:
    """Drop the values ``target`` cannot hold from the zoo on ``source``."""
    rows = AllFields._base_manager.using(source)
    if connections[target].vendor != connections[source].vendor:
        rows.filter(char__in=ONLY_SOME_VENDORS_HOLD).delete()
    for negative in (False, True):
        wide = widest_decimal(source, negative=negative)
        rows.filter(decimal_wide=wide).update(
            decimal_wide=min(wide, widest_decimal(target, negative=negative), key=abs)
        )


def without_json(tables):
    """Leave out the tables that have a JSON column."""
    json_tables = {
        model._meta.label
        for model in apps.get_models(include_auto_created=True)
        if any(f.get_internal_type() == "JSONField" for f in model._meta.fields)
    }
    return [table for table in tables if table.label not in json_tables]


def as_sets(contents: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """Forget row order: vendors sort text primary keys by their own collations."""
    return {label: sorted(rows, key=repr) for label, rows in contents.items()}


pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


@pytest.mark.crossvendor
class CrossVendorTests(TestCase):
    # "default" too: Django creates every other test database after it.
    databases = {"default", *ALIASES}
    tmp_path: Path

    def test_every_pair_round_trips_exactly(self):
        baselines = {}
        for alias in ALIASES:
            baselines[alias] = self.tmp_path / f"baseline-{alias}.jsonl.gz"
            create_backup(baselines[alias], using=alias)
        for source, target in itertools.permutations(ALIASES, 2):
            with self.subTest(source=source, target=target):
                populate_zoo(source)
                make_portable(source, target)
                expected = snapshot(source)
                file = self.tmp_path / f"{source}-to-{target}.jsonl.gz"
                taken = create_backup(file, using=source)
                restore_backup(file, using=target, safety_backup=False)
                assert as_sets(snapshot(target)) == as_sets(expected)
                report = validate_backup(file, using=target)
                assert report.ok, report.to_dict()
                again = create_backup(self.tmp_path / "again.jsonl.gz", using=target)
                # The same file, but for JSON columns: each vendor's file holds the
                # JSON text that vendor stores (compared by meaning above).
                assert without_json(again.tables) == without_json(taken.tables)
            for alias in (source, target):
                restore_backup(baselines[alias], using=alias, safety_backup=False)

    def test_values_changed_on_the_way_in_are_caught_before_commit(self):
        # SQLite keeps decimals as 64-bit floats: 21 digits go in, 15 come back. The
        # insert succeeds; only reading back and digesting the rows notices.
        populate_zoo("xpostgres")
        AllFields._base_manager.using("xpostgres").update(
            decimal_wide=Decimal("12345678901.2345678901")
        )
        file = self.tmp_path / "wide.jsonl.gz"
        create_backup(file, using="xpostgres")
        before = as_sets(snapshot("xsqlite"))
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, using="xsqlite", safety_backup=False)
        rows = AllFields._base_manager.using("xpostgres").order_by("pk")
        pks = list(rows.values_list("pk", flat=True))
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: testapp.AllFields: the "
            f"database does not hold the backup's values after writing ({len(pks)} "
            f"rows read back, {len(pks)} in the backup; first difference at pk "
            f"{pks[0]}). The target cannot store some values exactly."
        )
        assert as_sets(snapshot("xsqlite")) == before

    def test_values_too_wide_to_read_back_roll_the_restore_back(self):
        populate_zoo("xpostgres")
        file = self.tmp_path / "widest.jsonl.gz"
        create_backup(file, using="xpostgres")
        before = as_sets(snapshot("xsqlite"))
        with pytest.raises(RestoreError) as excinfo:
            restore_backup(file, using="xsqlite", safety_backup=False)
        # Read back as a float and put into decimal(30, 10): more than 20 whole
        # digits do not fit.
        rows = AllFields._base_manager.using("xpostgres").order_by("pk")
        widest = next(
            row.pk
            for row in rows
            if row.decimal_wide is not None and abs(row.decimal_wide) >= 10**20
        )
        assert str(excinfo.value) == (
            f"Restore of {file} failed and was rolled back: testapp.AllFields."
            f"decimal_wide, pk {widest}: the database does not give back the value "
            "written (InvalidOperation: [<class 'decimal.InvalidOperation'>])"
        )
        assert as_sets(snapshot("xsqlite")) == before

    def test_values_the_target_cannot_hold_roll_the_restore_back(self):
        populate_zoo("xpostgres")
        file = self.tmp_path / "nan.jsonl.gz"
        create_backup(file, using="xpostgres")
        populate_zoo("xmysql")
        before = snapshot("xmysql")
        with pytest.raises(RestoreError):
            restore_backup(file, using="xmysql", safety_backup=False)
        assert as_sets(snapshot("xmysql")) == as_sets(before)
