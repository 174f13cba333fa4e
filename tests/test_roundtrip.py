"""Exactness: after a restore the database holds exactly the backup's rows."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db.models.signals import post_save, pre_save
from django.test import TestCase

from backups_app import signals
from backups_app.backup import create_backup
from backups_app.restore import plan_restore, restore_backup
from backups_app.validate import validate_backup
from tests.factories import mutate_zoo, populate_zoo
from tests.testapp.models import AllFields, Label, Node
from tests.utils import snapshot

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class RoundTripTests(TestCase):
    databases = {"default", "other"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.before = snapshot()
        self.file = self.tmp_path / "zoo.jsonl.gz"
        self.summary = create_backup(self.file)

    def test_restore_undoes_every_insert_delete_and_update(self):
        mutate_zoo()
        changed = snapshot()
        assert changed != self.before
        restore_backup(self.file, safety_backup=False)
        after = snapshot()
        for label, rows in self.before.items():
            assert after[label] == rows, label
        assert after == self.before

    def test_tables_empty_in_the_backup_are_empty_after_restore(self):
        Node.objects.all().delete()
        empty = self.tmp_path / "no-nodes.jsonl.gz"
        create_backup(empty)
        Node.objects.create(name="late")
        restore_backup(empty, safety_backup=False)
        assert not Node.objects.exists()

    def test_backup_of_restored_database_has_the_same_rows_and_digests(self):
        mutate_zoo()
        restore_backup(self.file, safety_backup=False)
        again = create_backup(self.tmp_path / "again.jsonl.gz")
        assert again.tables == self.summary.tables

    def test_validation_after_restore_finds_no_difference(self):
        mutate_zoo()
        assert not validate_backup(self.file).ok
        restore_backup(self.file, safety_backup=False)
        report = validate_backup(self.file)
        assert report.ok, report.to_dict()
        assert (
            report.summary_line()
            == f"{len(report.tables)} tables match exactly, 0 differ"
        )

    def test_automatic_field_values_come_from_the_file(self):
        row = AllFields.objects.order_by("pk").first()
        restore_backup(self.file, safety_backup=False)
        restored = AllFields.objects.get(pk=row.pk)
        assert (restored.modified, restored.created) == (row.modified, row.created)

    def test_next_insert_after_restore_gets_a_fresh_primary_key(self):
        highest = Label.objects.order_by("-pk").first().pk
        mutate_zoo()
        restore_backup(self.file, safety_backup=False)
        label = Label.objects.create(name="after-restore")
        assert label.pk > highest

    def test_model_signals_are_not_sent_but_ours_are(self):
        received = []

        def model_signal(sender, **kwargs):
            received.append(("model", sender))

        def restore_signal(sender, **kwargs):
            received.append(("ours", kwargs.get("summary") or kwargs.get("plan")))

        for signal in (pre_save, post_save):
            signal.connect(model_signal)
        signals.pre_restore.connect(restore_signal)
        signals.post_restore.connect(restore_signal)
        try:
            restore_backup(self.file, safety_backup=False)
        finally:
            for signal in (
                pre_save,
                post_save,
                signals.pre_restore,
                signals.post_restore,
            ):
                signal.disconnect(model_signal)
                signal.disconnect(restore_signal)
        assert [kind for kind, _ in received] == ["ours", "ours"]

    def test_a_failing_post_signal_receiver_is_logged_not_raised(self):
        def broken(sender, **kwargs):
            raise RuntimeError("receiver bug")

        signals.post_backup.connect(broken)
        try:
            with self.assertLogs("backups_app", level="ERROR") as logs:
                summary = create_backup(self.tmp_path / "again.jsonl.gz")
        finally:
            signals.post_backup.disconnect(broken)
        assert summary.rows == self.summary.rows
        assert "receiver bug" in logs.output[0]

    def test_safety_backup_holds_the_data_the_restore_replaced(self):
        mutate_zoo()
        changed = snapshot()
        summary = restore_backup(self.file, safety_backup=True)
        assert summary.safety_backup
        restore_backup(summary.safety_backup, safety_backup=False)
        assert snapshot() == changed

    def test_caches_of_replaced_rows_are_cleared(self):
        from admin_interface.cache import (
            get_cached_active_theme,
            set_cached_active_theme,
        )
        from admin_interface.models import Theme
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.get_for_model(Node)
        set_cached_active_theme(Theme(name="stale"))
        assert ContentType.objects._cache and get_cached_active_theme() is not None
        restore_backup(self.file, safety_backup=False)
        assert not ContentType.objects._cache
        assert get_cached_active_theme() is None

    def test_restore_into_another_database(self):
        restore_backup(self.file, using="other", safety_backup=False)
        assert snapshot("other") == self.before

    def test_dry_run_plan_counts_rows_now_and_in_file(self):
        Node.objects.create(name="extra")
        plan = plan_restore(self.file)
        by_label = {t.label: t for t in plan.tables}
        nodes = by_label["testapp.Node"]
        assert nodes.rows_now == nodes.rows_in_file + 1
        assert plan.can_restore


class SeedScenarioTests(TestCase):
    """The bug this project exists for: 9 businesses now, 5 in the backup."""

    databases = {"default"}
    tmp_path: Path

    def test_restore_leaves_exactly_the_backups_businesses(self):
        from project.shop.models import Business

        for number in range(5):
            Business.objects.create(name=f"Shop {number}", slug=f"shop-{number}")
        file = self.tmp_path / "five.jsonl.gz"
        create_backup(file)
        for number in range(5, 9):
            Business.objects.create(name=f"Shop {number}", slug=f"shop-{number}")
        assert Business.objects.count() == 9
        restore_backup(file, safety_backup=False)
        assert sorted(Business.objects.values_list("slug", flat=True)) == [
            f"shop-{number}" for number in range(5)
        ]


class ValidationDetailTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_reports_missing_extra_and_changed_rows_with_examples(self):
        nodes = [Node.objects.create(name=f"n{i}") for i in range(4)]
        file = self.tmp_path / "nodes.jsonl.gz"
        create_backup(file)
        deleted_pk = nodes[0].pk
        nodes[0].delete()
        Node.objects.filter(pk=nodes[1].pk).update(name="renamed")
        extra = Node.objects.create(name="new")
        report = validate_backup(file)
        node = next(t for t in report.tables if t.label == "testapp.Node")
        assert (node.missing, node.extra, node.changed) == (1, 1, 1)
        assert node.missing_examples == [deleted_pk]
        assert node.changed_examples == [nodes[1].pk]
        assert node.extra_examples == [extra.pk]
        assert (node.file_rows, node.db_rows) == (4, 4)
        assert report.differing == 1
        assert not report.ok
