"""Unmanaged models (``Meta.managed = False``, as ``inspectdb`` writes them).

Backups leave their tables out, as ``migrate`` leaves them, but never silently:
the summary and the backup command name every unmanaged model whose table is in
the database. ``BACKUPS["UNMANAGED"]`` names the ones to back up; the file records
them, so that its restore (and the safety backup or undo file before it) covers
them whatever the restoring project's settings say. Rows are compared as plain
SQL reads them (tests/legacy_tables.py).
"""

from __future__ import annotations

import json

import orjson
import pytest
from django.core import checks
from django.db import connection, connections, models
from django.test import override_settings
from django.urls import reverse

from backups_app.backup import create_backup
from backups_app.exceptions import CannotRunError, IncompatibleBackupError
from backups_app.fileformat.streams import backup_storage
from backups_app.models import Operation
from backups_app.operations.drill import run_drill
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.backup_files import plain_lines
from tests.legacy_tables import Column, execute, legacy_table, quote, round_trip
from tests.utils import run_command

pytestmark = pytest.mark.django_db(transaction=connection.vendor == "mysql")

INVOICES = Column(
    "varchar(40)", models.CharField(max_length=40, null=True), ["'A-1'", "'B-2'"], "'C'"
)
LABEL = "valuesapp.LegacyInvoice"
ONLY_INVOICES = {"UNMANAGED": [LABEL]}


def file_header(file) -> dict:
    return orjson.loads(plain_lines(file)[0])


def file_labels(file) -> list[str]:
    return [table["label"] for table in file_header(file)["tables"]]


def test_a_backup_leaves_an_unmanaged_table_out_and_says_so(tmp_path):
    with legacy_table("invoice", INVOICES, managed=False) as legacy:
        file = tmp_path / "without.jsonl.gz"
        summary = create_backup(file)
        assert summary.unmanaged_left_out == (LABEL,)
        assert LABEL not in file_labels(file)
        assert file_header(file)["unmanaged"] == []
        # Its restore leaves the table as it is now.
        legacy.change()
        changed = legacy.stored()
        restore_backup(file, safety_backup=False)
        assert legacy.stored() == changed


def test_a_named_unmanaged_table_is_backed_up_and_restored_exactly(tmp_path):
    with (
        legacy_table("invoice", INVOICES, managed=False) as legacy,
        override_settings(BACKUPS=ONLY_INVOICES),
    ):
        # Backed up, validated, restored row by row and whole: as stored.
        round_trip(legacy, tmp_path)
        summary = create_backup(tmp_path / "again.jsonl.gz")
        assert summary.unmanaged_left_out == ()
        assert file_header(tmp_path / "again.jsonl.gz")["unmanaged"] == [LABEL]
        assert LABEL in [table.label for table in summary.tables]


def test_an_app_label_names_its_unmanaged_models(tmp_path):
    with (
        legacy_table("invoice", INVOICES, managed=False),
        override_settings(BACKUPS={"UNMANAGED": ["valuesapp"]}),
    ):
        summary = create_backup(tmp_path / "app.jsonl.gz")
        assert LABEL in [table.label for table in summary.tables]
        assert summary.unmanaged_left_out == ()


def test_the_file_decides_what_its_restore_covers(tmp_path):
    """Restored where the setting is gone, the table comes back, and the safety
    backup and undo file of that restore hold it too."""
    with legacy_table("invoice", INVOICES, managed=False) as legacy:
        before = legacy.stored()
        file = tmp_path / "with.jsonl.gz"
        with override_settings(BACKUPS=ONLY_INVOICES):
            create_backup(file)
        for full in (False, True):
            legacy.change()
            changed = legacy.stored()
            summary = restore_backup(file, safety_backup=True, full=full)
            assert legacy.stored() == before, f"full={full}"
            assert validate_backup(file).ok
            # The safety backup (an undo file for a restore row by row) puts the
            # changed rows back.
            restore_backup(summary.safety_backup, safety_backup=False)
            assert legacy.stored() == changed, f"full={full}"
            restore_backup(file, safety_backup=False)


def test_a_file_holding_an_unmanaged_model_not_installed_here_is_refused(tmp_path):
    file = tmp_path / "with.jsonl.gz"
    with (
        legacy_table("invoice", INVOICES, managed=False),
        override_settings(BACKUPS=ONLY_INVOICES),
    ):
        create_backup(file)
    # The model and its table are gone.
    difference = f"{LABEL}: in the backup, not installed here"
    with pytest.raises(IncompatibleBackupError) as excinfo:
        restore_backup(file, safety_backup=False)
    assert list(excinfo.value.differences) == [difference]
    report = validate_backup(file)
    assert not report.ok
    assert list(report.schema_differences) == [difference]


def test_views_and_tables_that_do_not_exist_are_not_named(tmp_path):
    with legacy_table("invoice", INVOICES) as legacy:
        view = quote("legacy_invoice_view")
        execute(f"CREATE VIEW {view} AS SELECT * FROM {quote(legacy.name)}")
        try:
            with (
                legacy_table("view", INVOICES, managed=False) as over_view,
                legacy_table("gone", INVOICES, managed=False) as gone,
            ):
                execute(f"DROP TABLE {quote(gone.name)}")
                # The model over the view points at the view, not its own table.
                over_view.model._meta.db_table = "legacy_invoice_view"
                try:
                    summary = create_backup(tmp_path / "views.jsonl.gz")
                finally:
                    over_view.model._meta.db_table = over_view.name
                assert summary.unmanaged_left_out == ()
                labels = [table.label for table in summary.tables]
                assert legacy.label in labels
                assert over_view.label not in labels
                assert gone.label not in labels
        finally:
            execute(f"DROP VIEW {view}")


def test_the_backup_command_warns_on_stderr_and_in_json(tmp_path):
    with legacy_table("invoice", INVOICES, managed=False):
        stdout, stderr = run_command("backup", output=str(tmp_path / "a.jsonl.gz"))
        assert stderr == (
            f"Warning: the table of 1 unmanaged model is not in the backup: {LABEL} "
            "(BACKUPS['UNMANAGED'] names the ones to back up).\n"
        )
        assert "Backed up database 'default'" in stdout
        stdout, _ = run_command(
            "backup", output=str(tmp_path / "b.jsonl.gz"), json=True
        )
        assert json.loads(stdout)["unmanaged_left_out"] == [LABEL]
        with override_settings(BACKUPS=ONLY_INVOICES):
            _, stderr = run_command("backup", output=str(tmp_path / "c.jsonl.gz"))
        assert stderr == ""


def test_an_unknown_label_is_one_clear_line(tmp_path):
    with pytest.raises(CannotRunError) as excinfo:
        create_backup(tmp_path / "x.jsonl.gz", unmanaged=["nosuchapp"])
    assert str(excinfo.value) == "Unknown app in unmanaged: 'nosuchapp'."
    assert not (tmp_path / "x.jsonl.gz").exists()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "legacy",
            checks.Error(
                "BACKUPS['UNMANAGED'] must be a list of labels.",
                hint="For example: BACKUPS = {'UNMANAGED': ['legacy']}.",
                id="backups_app.E004",
            ),
        ),
        (
            ["testapp", "nosuchapp"],
            checks.Error(
                "BACKUPS['UNMANAGED'] names 'nosuchapp', which is no installed app "
                "or model.",
                hint="Use 'app_label' or 'app_label.ModelName'.",
                id="backups_app.E003",
            ),
        ),
    ],
)
def test_the_setting_is_checked(value, expected):
    with override_settings(BACKUPS={"UNMANAGED": value}):
        found = [m for m in checks.run_checks() if m.id.startswith("backups_app")]
    assert found == [expected]


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
def test_a_drill_makes_the_tables_of_the_unmanaged_models_it_restores(tmp_path):
    """migrate makes no table for an unmanaged model: the drill makes it from the
    model, restores into it and validates."""
    other = connections["other"]
    with (
        legacy_table("invoice", INVOICES, managed=False) as legacy,
        override_settings(BACKUPS=ONLY_INVOICES),
    ):
        file = tmp_path / "drill.jsonl.gz"
        create_backup(file)
        with other.cursor() as cursor:
            assert legacy.name not in other.introspection.table_names(cursor)
        try:
            result = run_drill(str(file), scratch="other")
            assert result.ok, result.message
            with other.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, value FROM {quote(legacy.name)} ORDER BY id"
                )
                drilled = cursor.fetchall()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, value FROM {quote(legacy.name)} ORDER BY id"
                )
                assert drilled == cursor.fetchall()
        finally:
            with other.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {quote(legacy.name)}")


def test_the_admin_backup_names_them_too(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", "", "pw"))
    with legacy_table("invoice", INVOICES, managed=False):
        response = client.post(
            reverse("admin:backups_app_backuprecord_backup"), {"database": "default"}
        )
        assert response.status_code == 302
    operation = Operation.objects.get()
    assert operation.status == "succeeded", operation.message
    assert operation.message.endswith(
        f"rows. The table of 1 unmanaged model is not in the backup: {LABEL} "
        "(BACKUPS['UNMANAGED'] names the ones to back up)."
    ), operation.message
    backup_storage().delete(operation.backup.name)


def test_a_restore_where_the_unmanaged_table_is_missing_says_what_to_do(tmp_path):
    file = tmp_path / "with.jsonl.gz"
    with (
        legacy_table("invoice", INVOICES, managed=False) as legacy,
        override_settings(BACKUPS=ONLY_INVOICES),
    ):
        create_backup(file)
        execute(f"DROP TABLE {quote(legacy.name)}")
        with pytest.raises(IncompatibleBackupError) as excinfo:
            restore_backup(file, safety_backup=False)
    assert str(excinfo.value) == (
        f"{LABEL}: table 'legacy_invoice' does not exist in database 'default'; the "
        "model is unmanaged: make the table as migrate does not."
    )
