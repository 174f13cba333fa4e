"""Values and primary key orders move between SQLite, PostgreSQL and MariaDB/MySQL.

Run with ``BACKUPS_CROSSVENDOR=1``; see tests/test_crossvendor.py.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connections
from django.test import TestCase

from backups_app.backup import create_backup
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.test_values import (
    KEY_ROWS,
    all_but_values,
    driver_column,
    file_keys,
    other_apps,
    read_file,
)
from tests.valuesapp.models import Value

ALIASES = ("xsqlite", "xpostgres", "xmysql")

pytestmark = [pytest.mark.crossvendor, pytest.mark.usefixtures("tmp_path_on_test_case")]


def fill_keys(alias: str) -> None:
    for model in KEY_ROWS:
        model._base_manager.using(alias).all().delete()
    for model, rows in KEY_ROWS.items():
        for values in rows:
            model(**values).save(using=alias, force_insert=True)


def json_values(alias: str) -> list:
    """The JSON column's documents on ``alias`` by meaning (numbers by value)."""
    stored = driver_column(alias, Value._meta.db_table, "document")
    return [
        None
        if stored[key] is None
        else json.loads(stored[key], parse_float=Decimal, parse_int=Decimal)
        for key in sorted(stored)
    ]


class KeyOrderAcrossVendorsTests(TestCase):
    databases = {"default", *ALIASES}
    tmp_path: Path

    def test_every_primary_key_type_gives_the_same_rows_on_every_vendor(self):
        files = {}
        for alias in ALIASES:
            fill_keys(alias)
            files[alias] = self.tmp_path / f"keys-{alias}.jsonl"
            create_backup(files[alias], using=alias, exclude=other_apps())
        sections = {alias: read_file(path)[1] for alias, path in files.items()}
        for model in KEY_ROWS:
            label = model._meta.label
            with self.subTest(model=label):
                keys = file_keys(files["xsqlite"], model)
                assert keys == sorted(keys)
                # Byte for byte the same rows, so the same table digests.
                first, *rest = (sections[alias][label] for alias in ALIASES)
                for other in rest:
                    assert other == first
        for source, target in itertools.permutations(ALIASES, 2):
            with self.subTest(source=source, target=target):
                restore_backup(files[source], using=target, safety_backup=False)
                assert validate_backup(files[source], using=target).ok


class JSONAcrossVendorsTests(TestCase):
    databases = {"default", *ALIASES}
    tmp_path: Path

    DOCUMENTS = (
        '{"type": "none", "title": "Public"}',
        '{"b":1,"a":[1e2, 100, 1.5, {"z": null, "y": true}]}',
        '{\n  "\\u00fc": "\\ud83d\\ude00",\n  "big": 123456789012345678901234567890\n}',
        "null",
        None,
    )

    def fill(self, alias: str) -> None:
        connection = connections[alias]
        quote = connection.ops.quote_name
        Value.objects.using(alias).all().delete()
        with connection.cursor() as cursor:
            for document in self.DOCUMENTS:
                cursor.execute(
                    f"INSERT INTO {quote(Value._meta.db_table)} ({quote('document')}) "
                    "VALUES (%s)",
                    [document],
                )

    def test_json_text_moves_by_meaning_and_stays_byte_exact_within_a_vendor(self):
        for source, target in itertools.permutations(ALIASES, 2):
            with self.subTest(source=source, target=target):
                self.fill(source)
                file = self.tmp_path / f"json-{source}.jsonl"
                create_backup(file, using=source, exclude=all_but_values())
                restore_backup(file, using=target, safety_backup=False)
                assert json_values(target) == json_values(source)
                assert validate_backup(file, using=target).ok
                # The target's own file, restored into the target, is byte exact.
                again = self.tmp_path / f"json-{target}.jsonl"
                create_backup(again, using=target, exclude=all_but_values())
                before = driver_column(target, Value._meta.db_table, "document")
                restore_backup(again, using=target, safety_backup=False)
                after = driver_column(target, Value._meta.db_table, "document")
                assert sorted(after.values(), key=repr) == sorted(
                    before.values(), key=repr
                )

    def test_a_changed_document_is_still_a_difference_across_vendors(self):
        self.fill("xsqlite")
        file = self.tmp_path / "json.jsonl"
        create_backup(file, using="xsqlite", exclude=all_but_values())
        restore_backup(file, using="xpostgres", safety_backup=False)
        Value.objects.using("xpostgres").filter(document__title="Public").update(
            document={"type": "none", "title": "Private"}
        )
        (report,) = validate_backup(file, using="xpostgres").tables
        assert (report.changed, report.missing, report.extra) == (1, 0, 0)


class IPAcrossVendorsTests(TestCase):
    databases = {"default", *ALIASES}
    tmp_path: Path

    def test_ip_text_postgresql_respells_moves_by_address(self):
        connection = connections["xsqlite"]
        quote = connection.ops.quote_name
        Value.objects.using("xsqlite").all().delete()
        with connection.cursor() as cursor:
            for address in ("2001:0db8:0000:0000:0000:0000:0000:0001", "10.0.0.1"):
                cursor.execute(
                    f"INSERT INTO {quote(Value._meta.db_table)} "
                    f"({quote('ip_address')}) VALUES (%s)",
                    [address],
                )
        file = self.tmp_path / "ip.jsonl"
        create_backup(file, using="xsqlite", exclude=all_but_values())
        restore_backup(file, using="xpostgres", safety_backup=False)
        stored = driver_column("xpostgres", Value._meta.db_table, "ip_address")
        assert sorted(stored.values()) == ["10.0.0.1", "2001:db8::1"]
        assert validate_backup(file, using="xpostgres").ok
        # A different address is still a difference.
        Value.objects.using("xpostgres").filter(ip_address="10.0.0.1").update(
            ip_address="10.0.0.2"
        )
        (report,) = validate_backup(file, using="xpostgres").tables
        assert (report.changed, report.missing, report.extra) == (1, 0, 0)
