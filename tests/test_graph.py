"""Which tables a backup covers and in which order, from the app registry."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.test import SimpleTestCase, override_settings

from backups_app.conf import ALWAYS_EXCLUDED_APPS
from backups_app.db.tables import dependency_order, table_specs
from backups_app.exceptions import BackupError

pytestmark = pytest.mark.django_db


def labels(**kwargs) -> list[str]:
    return [spec.label for spec in table_specs(**kwargs)]


class ScopeTests(SimpleTestCase):
    databases = {"default"}

    def test_every_concrete_model_and_auto_created_m2m_table_is_covered(self):
        covered = set(labels())
        assert {
            "testapp.Person_friends",
            "testapp.Tagged_labels",
            "testapp.Membership",
            "testapp.Restaurant",
            "testapp.Pizzeria",
            "contenttypes.ContentType",
            "auth.Permission",
            "auth.User_groups",
            "sessions.Session",
            "admin.LogEntry",
        } <= covered

    def test_proxy_unmanaged_and_own_history_models_are_left_out(self):
        covered = set(labels())
        assert "testapp.ProxyPlace" not in covered
        assert "testapp.Legacy" not in covered
        assert not {
            label for label in covered if label.split(".")[0] in ALWAYS_EXCLUDED_APPS
        }

    def test_every_backed_up_model_is_listed_once(self):
        expected = {
            model._meta.label
            for model in apps.get_models(include_auto_created=True)
            if model._meta.managed
            and not model._meta.proxy
            and model._meta.app_label not in ALWAYS_EXCLUDED_APPS
            and model._meta.app_label != "gatedapp"
        }
        found = labels()
        assert len(found) == len(set(found))
        assert set(found) == expected

    def test_parents_come_before_children(self):
        order = labels()
        position = {label: index for index, label in enumerate(order)}
        for spec in table_specs():
            for parent in spec.parents:
                if parent == spec.label or parent not in position:
                    continue
                if {spec.label, parent} <= {"testapp.Author", "testapp.Book"}:
                    continue  # a cycle: one edge has to give
                if {spec.label, parent} <= {"testapp.CycleA", "testapp.CycleB"}:
                    continue
                assert position[parent] < position[spec.label], (parent, spec.label)

    def test_order_is_the_same_every_time(self):
        assert labels() == labels()

    def test_multi_table_children_hold_only_their_own_columns(self):
        pizzeria = next(s for s in table_specs() if s.label == "testapp.Pizzeria")
        assert pizzeria.columns == ("restaurant_ptr_id", "wood_fired")
        assert "testapp.Restaurant" in pizzeria.parents

    def test_exclude_by_app_and_by_model_takes_m2m_tables_along(self):
        without_app = set(labels(exclude=["testapp"]))
        assert not {label for label in without_app if label.startswith("testapp.")}
        without_person = set(labels(exclude=["testapp.Person"]))
        assert "testapp.Person" not in without_person
        assert "testapp.Person_friends" not in without_person
        assert "testapp.Club" in without_person

    @override_settings(BACKUPS={"EXCLUDE": ["sessions"]})
    def test_settings_exclude_applies_to_every_backup(self):
        assert "sessions.Session" not in labels()

    def test_unknown_labels_are_refused(self):
        with pytest.raises(
            BackupError, match="Unknown model in exclude: 'testapp.Nope'"
        ):
            table_specs(exclude=["testapp.Nope"])
        with pytest.raises(BackupError, match="Unknown app in exclude: 'nope'"):
            table_specs(exclude=["nope"])

    def test_router_that_refuses_a_model_leaves_it_out(self):
        class NoSessions:
            def allow_migrate(self, db, app_label, **hints):
                return app_label != "sessions"

        with override_settings(DATABASE_ROUTERS=[NoSessions()]):
            assert "sessions.Session" not in labels()


def test_cycle_order_keeps_every_table_and_breaks_ties_by_label():
    specs = {spec.label: spec for spec in table_specs()}
    cycle = [specs["testapp.CycleB"], specs["testapp.CycleA"], specs["testapp.Node"]]
    ordered = [spec.label for spec in dependency_order(cycle)]
    assert sorted(ordered) == ["testapp.CycleA", "testapp.CycleB", "testapp.Node"]
    assert ordered == [spec.label for spec in dependency_order(list(reversed(cycle)))]
