"""The model zoo, its factories and the snapshot helper the exactness tests rely on."""

from __future__ import annotations

import math

import pytest
from django.db import models
from django.test import TestCase

from tests.factories import (
    JSON_NULL,
    all_fields_rows,
    mutate_zoo,
    populate_zoo,
    stores_nan,
    vendor,
)
from tests.settings import CROSSVENDOR_ALIASES
from tests.testapp.models import AllFields, Secretive
from tests.utils import ExactFloat, snapshot, snapshot_columns, snapshot_models

ZOO_MODELS = [
    model for model in snapshot_models() if model._meta.app_label == "testapp"
]


def rows_by_pk(model: type[models.Model], rows: list[tuple]) -> dict[tuple, tuple]:
    columns = snapshot_columns(model)
    positions = [columns.index(field.attname) for field in model._meta.pk_fields]
    return {tuple(row[position] for position in positions): row for row in rows}


def changes(model: type[models.Model], before: list[tuple], after: list[tuple]) -> set:
    old = rows_by_pk(model, before)
    new = rows_by_pk(model, after)
    found = set()
    if new.keys() - old.keys():
        found.add("insert")
    if old.keys() - new.keys():
        found.add("delete")
    if any(old[pk] != new[pk] for pk in old.keys() & new.keys()):
        found.add("update")
    return found


class ZooTests(TestCase):
    databases = {"default", "other"}

    def test_zoo_covers_the_table_shapes(self):
        labels = {model._meta.label for model in ZOO_MODELS}
        assert {"testapp.Person_friends", "testapp.Tagged_labels"} <= labels
        assert "testapp.ProxyPlace" not in labels
        assert "testapp.Legacy" not in labels

    def test_populate_fills_every_zoo_table(self):
        populate_zoo()
        contents = snapshot()
        assert [m._meta.label for m in ZOO_MODELS if not contents[m._meta.label]] == []

    def test_mutate_inserts_deletes_and_updates_in_every_zoo_table(self):
        populate_zoo()
        before = snapshot()
        mutate_zoo()
        after = snapshot()
        expected = {"insert", "delete", "update"}
        missing = {
            model._meta.label: expected
            - changes(model, before[model._meta.label], after[model._meta.label])
            for model in ZOO_MODELS
        }
        assert {label: ops for label, ops in missing.items() if ops} == {}

    def test_edge_values_are_stored_exactly(self):
        populate_zoo()
        rows = AllFields.objects.order_by()
        for fields in all_fields_rows():
            stored = rows.values(*fields).get(char=fields["char"])
            expected = {
                name: None if value is JSON_NULL else value
                for name, value in fields.items()
            }
            if isinstance(stored.get("binary"), memoryview):
                stored["binary"] = stored["binary"].tobytes()
            assert {
                name: ExactFloat(v) if isinstance(v, float) else v
                for name, v in stored.items()
            } == expected, fields["char"]

    def test_auto_now_fields_keep_the_written_values(self):
        populate_zoo()
        row = AllFields.objects.get(char="")
        assert row.modified.year == 1
        assert row.created.year == 9999

    def test_db_defaults_and_generated_column_are_filled_by_the_database(self):
        populate_zoo()
        row = AllFields.objects.get(char="nulls")
        assert row.db_counter == 42
        assert row.db_stamp is not None
        assert AllFields.objects.get(char="typical").gen_total == 3

    def test_nan_only_where_the_backend_keeps_it(self):
        populate_zoo()
        nan_rows = AllFields.objects.filter(char="nan")
        if stores_nan():
            assert math.isnan(nan_rows.get().floating)
        else:
            assert not nan_rows.exists()

    def test_populate_on_the_other_database(self):
        populate_zoo(using="other")
        assert snapshot("other")["testapp.Node"] != []
        assert snapshot("default")["testapp.Node"] == []


class SnapshotTests(TestCase):
    def test_snapshot_tells_sql_null_from_json_null(self):
        sql_null = AllFields.objects.create(json=None)
        json_null = AllFields.objects.create(json=JSON_NULL)
        rows = rows_by_pk(AllFields, snapshot()["testapp.AllFields"])
        columns = snapshot_columns(AllFields)
        json_at = columns.index("json")
        flag_at = columns.index("json_is_sql_null")
        assert rows[(sql_null.pk,)][json_at] is None
        assert rows[(json_null.pk,)][json_at] is None
        assert rows[(sql_null.pk,)][flag_at] is True
        assert rows[(json_null.pk,)][flag_at] is False

    def test_snapshot_includes_rows_the_default_manager_hides(self):
        Secretive.objects.create(name="hidden", hidden=True)
        assert Secretive.objects.count() == 0
        assert len(snapshot()["testapp.Secretive"]) == 1

    def test_snapshot_binary_is_bytes(self):
        AllFields.objects.create(binary=b"\x00\xff")
        columns = snapshot_columns(AllFields)
        (row,) = snapshot()["testapp.AllFields"]
        assert row[columns.index("binary")] == b"\x00\xff"

    def test_exact_float_compares_bits(self):
        assert ExactFloat(-0.0) != 0.0
        assert ExactFloat(0.0) == 0.0
        assert ExactFloat(math.nan) == math.nan
        assert (ExactFloat(-0.0),) != (ExactFloat(0.0),)

    def test_negative_zero_is_stored_on_postgresql(self):
        populate_zoo()
        zeros = AllFields.objects.filter(char="negative zero")
        if vendor() == "postgresql":
            assert math.copysign(1.0, zeros.get().floating) == -1.0
        else:
            assert not zeros.exists()


@pytest.mark.crossvendor
class CrossVendorZooTests(TestCase):
    databases = {"default", *CROSSVENDOR_ALIASES}

    def test_zoo_populates_and_mutates_on_every_vendor(self):
        for alias in sorted(CROSSVENDOR_ALIASES):
            populate_zoo(alias)
            mutate_zoo(alias)
            contents = snapshot(alias)
            empty = [m._meta.label for m in ZOO_MODELS if not contents[m._meta.label]]
            assert empty == [], alias
