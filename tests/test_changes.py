"""The changed fields of a row: what a validation shows of its example rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import TransactionTestCase

from backups_app.backup import create_backup
from backups_app.changes import FieldChange, changed_fields, described, quoted
from backups_app.validate import validate_backup
from tests.factories import populate_zoo
from tests.testapp.models import AllFields, Book, Node

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


def test_only_the_fields_that_differ_in_field_order():
    fields = [
        AllFields._meta.get_field(name) for name in ("id", "char", "decimal_money")
    ]
    changes = changed_fields(fields, [1, "a", "9.99"], [1, "b", "12.50"])
    assert described(changes) == 'char "a" → "b", decimal_money 9.99 → 12.50'
    # A value and the same value of another JSON type differ (1 and true, 1 and 1.0).
    flag = [AllFields._meta.get_field("integer")]
    assert changed_fields(flag, [1], [True]) == [FieldChange("integer", 1, True)]
    assert changed_fields(flag, [1], [1]) == []


def test_long_values_are_shortened_and_null_and_booleans_spelt_as_in_json():
    fields = [AllFields._meta.get_field(name) for name in ("text", "null_boolean")]
    (text, flag) = changed_fields(fields, ["x" * 100, None], ["y", True])
    assert text.before == "x" * 39 + "…" and len(text.before) == 40
    assert str(flag) == "null_boolean null → true"


def test_what_a_terminal_would_not_show_is_escaped():
    assert quoted('say "hi"\\\n\t\r') == '"say \\"hi\\"\\\\\\n\\t\\r"'
    assert quoted("a\u2028b\ufeffc😀") == '"a\\u2028b\\ufeffc😀"'
    # Not a text field, but a value with a line break (JSON kept as text).
    change = FieldChange("json", '{\n"a": 1}', "{}")
    assert str(change) == 'json "{\\n\\"a\\": 1}" → {}'


def test_a_foreign_key_is_named_by_its_column_attribute():
    fields = [Book._meta.get_field("author")]
    assert [c.field for c in changed_fields(fields, [1], [2])] == ["author_id"]


class ValidationExampleTests(TransactionTestCase):
    databases = {"default"}
    tmp_path: Path

    def test_changed_examples_carry_their_changed_fields(self):
        populate_zoo()
        file = self.tmp_path / "zoo.jsonl.gz"
        create_backup(file)
        node = Node.objects.order_by("pk").first()
        old_name = node.name
        Node.objects.filter(pk=node.pk).update(name="renamed")
        report = validate_backup(file)
        table = next(t for t in report.tables if t.label == "testapp.Node")
        assert table.changed == 1 and table.changed_examples == [node.pk]
        assert table.changed_rows == [
            (node.pk, [FieldChange("name", old_name, "renamed", text=True)])
        ]
        assert table.to_dict()["changed_rows"] == [
            {
                "pk": node.pk,
                "changes": [
                    {"field": "name", "backup": old_name, "database": "renamed"}
                ],
            }
        ]
