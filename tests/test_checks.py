"""The system checks on the BACKUPS setting."""

from __future__ import annotations

import pytest
from django.core.checks import Error
from django.core.management.base import SystemCheckError
from django.test import SimpleTestCase, TestCase, override_settings

from backups_app.checks import check_settings
from backups_app.conf import DEFAULTS
from tests.utils import run_command

KNOWN_KEYS_HINT = "Known keys: " + ", ".join(sorted(DEFAULTS)) + "."


class CheckSettingsTests(SimpleTestCase):
    def test_no_backups_setting_is_valid(self):
        assert check_settings() == []

    @override_settings(BACKUPS={"EXCLUDE": ["testapp", "testapp.Node", "auth.user"]})
    def test_known_keys_and_resolvable_labels_are_valid(self):
        assert check_settings() == []

    @override_settings(BACKUPS=["STORAGE"])
    def test_e001_backups_is_not_a_dict(self):
        assert check_settings() == [
            Error(
                "BACKUPS must be a dict.",
                hint="Set BACKUPS = {...} with keys from the documentation.",
                id="backups_app.E001",
            )
        ]

    @override_settings(BACKUPS={"STORGE": "backups", "BATCHSIZE": 10})
    def test_e002_unknown_keys_one_error_each_in_sorted_order(self):
        assert check_settings() == [
            Error(
                "Unknown key 'BATCHSIZE' in BACKUPS.",
                hint=KNOWN_KEYS_HINT,
                id="backups_app.E002",
            ),
            Error(
                "Unknown key 'STORGE' in BACKUPS.",
                hint=KNOWN_KEYS_HINT,
                id="backups_app.E002",
            ),
        ]

    @override_settings(
        BACKUPS={"EXCLUDE": ["nosuchapp", "testapp.NoSuchModel", "a.b.c", "testapp"]}
    )
    def test_e003_exclude_labels_that_do_not_resolve(self):
        hint = "Use 'app_label' or 'app_label.ModelName'."
        assert check_settings() == [
            Error(
                "BACKUPS['EXCLUDE'] names "
                + repr(label)
                + ", which is no installed app or model.",
                hint=hint,
                id="backups_app.E003",
            )
            for label in ("nosuchapp", "testapp.NoSuchModel", "a.b.c")
        ]


@override_settings(BACKUPS={"EXCLUDE": "testapp"})
def test_e004_exclude_given_as_one_string():
    assert check_settings() == [
        Error(
            "BACKUPS['EXCLUDE'] must be a list of labels.",
            hint="For example: BACKUPS = {'EXCLUDE': ['sessions', 'shop.Cart']}.",
            id="backups_app.E004",
        )
    ]


class CheckCommandTests(TestCase):
    # Since Django 6.0 the check command runs database checks on every alias.
    databases = "__all__"

    def test_check_command_passes_with_valid_settings(self):
        stdout, stderr = run_command("check")
        assert stdout.startswith("System check identified no issues")
        assert stderr == ""

    @override_settings(BACKUPS={"STORGE": "backups"})
    def test_checks_are_registered_with_the_check_command(self):
        with pytest.raises(SystemCheckError) as excinfo:
            run_command("check")
        assert "(backups_app.E002) Unknown key 'STORGE' in BACKUPS." in str(
            excinfo.value
        )
