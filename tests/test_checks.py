"""The system checks on the BACKUPS setting."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.checks import Error, Warning
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

    @override_settings(BACKUPS={"STORGE": "backups", "ZZZ": 10})
    def test_w001_unknown_keys_one_warning_each_in_sorted_order(self):
        assert check_settings() == [
            Warning(
                "Unknown key 'STORGE' in BACKUPS.",
                hint="Did you mean 'STORAGE'?",
                id="backups_app.W001",
            ),
            Warning(
                "Unknown key 'ZZZ' in BACKUPS.",
                hint=KNOWN_KEYS_HINT,
                id="backups_app.W001",
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


class SettingValueTests(SimpleTestCase):
    """One misconfiguration each, compared as whole check messages."""

    def assert_errors(self, *expected: Error) -> None:
        assert check_settings() == list(expected)

    @override_settings(BACKUPS={"EXCLUDE": ["testapp", 3]})
    def test_e004_exclude_labels_that_are_not_strings(self):
        self.assert_errors(
            Error(
                "BACKUPS['EXCLUDE'] must be a list of labels.",
                hint="For example: BACKUPS = {'EXCLUDE': ['sessions', 'shop.Cart']}.",
                id="backups_app.E004",
            )
        )

    @override_settings(BACKUPS={"STORAGE": "s3-backups"})
    def test_e005_storage_alias_that_is_not_in_storages(self):
        self.assert_errors(
            Error(
                "BACKUPS['STORAGE'] names 's3-backups', which is not in STORAGES.",
                hint="Add it to STORAGES, or leave STORAGE out to use "
                "BACKUPS['DIRECTORY'].",
                id="backups_app.E005",
            )
        )

    @override_settings(BACKUPS={"STORAGE": ["backups"]})
    def test_e005_storage_that_is_not_a_name(self):
        self.assert_errors(
            Error(
                "BACKUPS['STORAGE'] must be the name of a storage, not ['backups'].",
                id="backups_app.E005",
            )
        )

    @override_settings(BACKUPS={"STORAGE": "staticfiles", "DIRECTORY": "/srv/b"})
    def test_storage_in_storages_and_a_directory_are_valid(self):
        self.assert_errors()

    @override_settings(BACKUPS={"DIRECTORY": 42})
    def test_e006_directory_that_is_not_a_path(self):
        self.assert_errors(
            Error(
                "BACKUPS['DIRECTORY'] must be a path or None, not 42.",
                id="backups_app.E006",
            )
        )

    @override_settings(BACKUPS={"FILENAME_TEMPLATE": None})
    def test_e007_template_that_is_not_text(self):
        self.assert_errors(
            Error(
                "BACKUPS['FILENAME_TEMPLATE'] must be a file name template, not None.",
                hint="Placeholders: {database}, {timestamp}.",
                id="backups_app.E007",
            )
        )

    @override_settings(BACKUPS={"SAFETY_FILENAME_TEMPLATE": "safety-{database.jsonl"})
    def test_e007_template_with_an_unbalanced_brace(self):
        self.assert_errors(
            Error(
                "BACKUPS['SAFETY_FILENAME_TEMPLATE'] is not a valid template: "
                "expected '}' before end of string.",
                hint="Write a literal brace as {{ or }}.",
                id="backups_app.E007",
            )
        )

    @override_settings(
        BACKUPS={"FILENAME_TEMPLATE": "{project}-{database}-{date}-{project}.jsonl"}
    )
    def test_e008_unknown_placeholders(self):
        self.assert_errors(
            Error(
                "BACKUPS['FILENAME_TEMPLATE'] uses unknown placeholder {project}, "
                "{date}.",
                hint="Placeholders: {database}, {timestamp}.",
                id="backups_app.E008",
            )
        )

    @override_settings(BACKUPS={"SAFETY_FILENAME_TEMPLATE": "{database}.upper.gz"})
    def test_placeholders_with_literal_text_are_valid(self):
        self.assert_errors()

    @override_settings(
        BACKUPS={"SAFETY_FILENAME_TEMPLATE": "safety/{database}-{timestamp}.jsonl.gz"}
    )
    def test_e009_template_that_makes_a_path(self):
        self.assert_errors(
            Error(
                "BACKUPS['SAFETY_FILENAME_TEMPLATE'] makes names such as "
                "'safety/default-20260101T000000000000Z.jsonl.gz', which are not "
                "plain file names.",
                hint="Leave out / and \\; to put backups in a folder, set the "
                "storage's location.",
                id="backups_app.E009",
            )
        )

    @override_settings(BACKUPS={"SAFETY_BACKUP": "no", "POSTGRES_COPY": 1})
    def test_e010_flags_that_are_not_booleans(self):
        self.assert_errors(
            Error(
                "BACKUPS['POSTGRES_COPY'] must be True or False, not 1.",
                id="backups_app.E010",
            ),
            Error(
                "BACKUPS['SAFETY_BACKUP'] must be True or False, not 'no'.",
                id="backups_app.E010",
            ),
        )

    @override_settings(BACKUPS={"COMPRESSION_LEVEL": 10})
    def test_e011_compression_level_out_of_range(self):
        self.assert_errors(
            Error(
                "BACKUPS['COMPRESSION_LEVEL'] must be None or an integer from 0 to 9 "
                "for gzip, not 10.",
                hint="None: gzip's default, 1.",
                id="backups_app.E011",
            )
        )

    @override_settings(BACKUPS={"COMPRESSION_LEVEL": True})
    def test_e011_compression_level_that_is_a_boolean(self):
        self.assert_errors(
            Error(
                "BACKUPS['COMPRESSION_LEVEL'] must be None or an integer from 0 to 9 "
                "for gzip, not True.",
                hint="None: gzip's default, 1.",
                id="backups_app.E011",
            )
        )

    @override_settings(BACKUPS={"BATCH_SIZE": 0})
    def test_e011_batch_size_that_is_not_positive(self):
        self.assert_errors(
            Error(
                "BACKUPS['BATCH_SIZE'] must be an integer of at least 1, not 0.",
                id="backups_app.E011",
            )
        )

    @override_settings(BACKUPS={"BATCH_SIZE": "2000"})
    def test_e011_batch_size_given_as_text(self):
        self.assert_errors(
            Error(
                "BACKUPS['BATCH_SIZE'] must be an integer of at least 1, not '2000'.",
                id="backups_app.E011",
            )
        )

    @override_settings(
        BACKUPS={
            "COMPRESSION_LEVEL": 0,
            "BATCH_SIZE": 1,
            "SAFETY_BACKUP": False,
            "POSTGRES_COPY": False,
            "DIRECTORY": None,
            "EXCLUDE": ("sessions",),
        }
    )
    def test_boundary_values_are_valid(self):
        self.assert_errors()


class PipelineCheckTests(SimpleTestCase):
    """COMPRESSION, COMPRESSION_LEVEL, ENCRYPTION, templates, STALE_UPLOAD_AGE."""

    identity = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from pyrage import x25519

        cls.identity = x25519.Identity.generate()
        cls.other = x25519.Identity.generate()

    def keys(self, recipients, identities):
        return {
            "RECIPIENTS": [str(i.to_public()) for i in recipients],
            "IDENTITIES": [str(i) for i in identities],
        }

    @override_settings(BACKUPS={"COMPRESSION": "xz"})
    def test_e017_unknown_compression(self):
        assert check_settings() == [
            Error(
                "BACKUPS['COMPRESSION'] must be one of 'gzip', 'zstd', 'none', not "
                "'xz'.",
                hint="gzip is the default; zstd is faster at the same size "
                "(docs/storage.md).",
                id="backups_app.E017",
            )
        ]

    @override_settings(BACKUPS={"COMPRESSION": "zstd", "COMPRESSION_LEVEL": 23})
    def test_e011_the_level_is_checked_against_the_chosen_codec(self):
        assert check_settings() == [
            Error(
                "BACKUPS['COMPRESSION_LEVEL'] must be None or an integer from -7 to "
                "22 for zstd, not 23.",
                hint="None: zstd's default, 1.",
                id="backups_app.E011",
            )
        ]

    def test_levels_valid_for_each_codec(self):
        for config in (
            {"COMPRESSION": "zstd", "COMPRESSION_LEVEL": 19},
            {"COMPRESSION": "zstd", "COMPRESSION_LEVEL": -7},
            {"COMPRESSION": "gzip", "COMPRESSION_LEVEL": 9},
            {"COMPRESSION": "none", "COMPRESSION_LEVEL": None},
        ):
            with self.subTest(config), override_settings(BACKUPS=config):
                assert check_settings() == []

    def encryption_error(self, message):
        return Error(
            f"BACKUPS['ENCRYPTION'] {message}",
            hint="Keys: RECIPIENTS (age public keys, age1... or ssh-...), "
            "IDENTITIES (age private keys or paths of key files); docs/storage.md.",
            id="backups_app.E018",
        )

    def test_e018_encryption_values_one_by_one(self):
        secret = "AGE-SECRET-KEY-1" + "Q" * 58
        cases = [
            ("age1...", "must be a dict."),
            ({"RECIPIENT": []}, "has unknown keys: RECIPIENT."),
            ({"RECIPIENTS": "age1x"}, "['RECIPIENTS'] must be a list of keys (text)."),
            ({"IDENTITIES": [None]}, "['IDENTITIES'] must be a list of keys (text)."),
            (
                {"RECIPIENTS": ["age1nonsensenonsense"]},
                "is not usable: Not an age recipient: 'age1nonsense…' (invalid "
                "Bech32 encoding).",
            ),
            (
                {"IDENTITIES": [secret]},
                "is not usable: An entry of BACKUPS['ENCRYPTION']['IDENTITIES'] is "
                "not an age identity (AGE-SECRET-KEY-1…).",
            ),
            (
                {"IDENTITIES": ["/nonexistent/key.txt"]},
                "is not usable: Cannot read the age identity file "
                "'/nonexistent/key.txt': No such file or directory.",
            ),
        ]
        for value, message in cases:
            with (
                self.subTest(message),
                override_settings(BACKUPS={"ENCRYPTION": value}),
            ):
                messages = check_settings()
                assert messages == [self.encryption_error(message)]
                assert "QQQQ" not in str(messages)

    def test_w002_identities_that_cannot_read_what_is_written(self):
        config = {"ENCRYPTION": self.keys([self.identity], [self.other])}
        with override_settings(BACKUPS=config):
            assert check_settings() == [
                Warning(
                    "None of BACKUPS['ENCRYPTION']['IDENTITIES'] can read what is "
                    "encrypted to BACKUPS['ENCRYPTION']['RECIPIENTS']: new backups "
                    "cannot be restored or validated here.",
                    hint="List the identity of one of the recipients, or leave "
                    "IDENTITIES empty on a server that should only write backups.",
                    id="backups_app.W002",
                )
            ]

    def test_valid_encryption_settings(self):
        for value in (
            self.keys([self.identity], [self.other, self.identity]),
            self.keys([self.identity], []),  # a server that only writes backups
            self.keys([], [self.identity]),  # one that only reads them
            {},
        ):
            with self.subTest(value), override_settings(BACKUPS={"ENCRYPTION": value}):
                assert check_settings() == []

    def test_e019_a_template_whose_suffix_the_settings_deny(self):
        config = {
            "COMPRESSION": "zstd",
            "ENCRYPTION": self.keys([self.identity], [self.identity]),
            "FILENAME_TEMPLATE": "b-{database}-{timestamp}.jsonl.gz",
            "SAFETY_FILENAME_TEMPLATE": "s-{database}-{timestamp}.jsonl.zst.age",
        }
        with override_settings(BACKUPS=config):
            assert check_settings() == [
                Error(
                    "BACKUPS['FILENAME_TEMPLATE'] makes names ending in '.jsonl.gz', "
                    "but COMPRESSION and ENCRYPTION ask for '.jsonl.zst.age'.",
                    hint="Leave the suffix out of the template: the app adds the "
                    "one the settings ask for.",
                    id="backups_app.E019",
                )
            ]

    def test_e020_stale_upload_age(self):
        import datetime

        for value in ("24h", 0, True, datetime.timedelta(0), None):
            with (
                self.subTest(value),
                override_settings(BACKUPS={"STALE_UPLOAD_AGE": value}),
            ):
                assert check_settings() == [
                    Error(
                        "BACKUPS['STALE_UPLOAD_AGE'] must be a number of seconds or a "
                        f"timedelta, not {value!r}.",
                        hint="It must be longer than your longest backup takes to "
                        "write.",
                        id="backups_app.E020",
                    )
                ]
        for value in (6 * 3600, 0.5, datetime.timedelta(days=2)):
            with (
                self.subTest(value),
                override_settings(BACKUPS={"STALE_UPLOAD_AGE": value}),
            ):
                assert check_settings() == []


class CheckCommandTests(TestCase):
    # Since Django 6.0 the check command runs database checks on every alias.
    databases = "__all__"

    def test_check_command_passes_with_valid_settings(self):
        stdout, stderr = run_command("check")
        assert stdout.startswith("System check identified no issues")
        assert stderr == ""

    @override_settings(BACKUPS={"BATCH_SIZE": -1})
    def test_checks_are_registered_with_the_check_command(self):
        with pytest.raises(SystemCheckError) as excinfo:
            run_command("check")
        assert (
            "?: (backups_app.E011) BACKUPS['BATCH_SIZE'] must be an integer of at "
            "least 1, not -1." in str(excinfo.value)
        )

    @override_settings(BACKUPS={"STORGE": "backups"})
    def test_an_unknown_key_is_reported_but_does_not_stop_commands(self):
        _, stderr = run_command("check")
        assert "(backups_app.W001) Unknown key 'STORGE' in BACKUPS." in stderr


def test_every_check_id_is_documented():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    source = (root / "backups_app" / "checks.py").read_text()
    used = set(re.findall(r'id="(backups_app\.[EW]\d{3})"', source))
    documented = (root / "docs" / "usage.md").read_text()
    assert len(used) == 22
    assert {check_id for check_id in used if f"`{check_id}`" not in documented} == set()


RETENTION_HINT = (
    "For example: {'last': 3, 'daily': 7, 'weekly': 5, 'max_total_size': '50G'}."
)
HEALTH_HINT = (
    "Keys: DATABASES (aliases), MAX_AGE ('26h'), MIN_SIZE ('10M' or None), "
    "SHRINK_RATIO (0 to 1, or None)."
)
NOTIFY_HINT = (
    "Keys: MAIL (bool), MAILER (an alias of MAILERS, Django 6.1 or later, or None), "
    "WEBHOOK_URL (an http(s) URL or None), ON_SUCCESS (bool), TIMEOUT (seconds)."
)
HAS_MAILERS = hasattr(mail, "mailers")


class OperationsSettingsTests(SimpleTestCase):
    @override_settings(
        BACKUPS={
            "RETENTION": {"daily": 7, "max_total_size": "50G"},
            "SAFETY_RETENTION": {"last": 1},
            "HEALTH": {"DATABASES": ["default", "other"], "MAX_AGE": "2d"},
            "NOTIFY": {"WEBHOOK_URL": "https://chat.example/hook", "TIMEOUT": 2.5},
            "SIGNING_KEY": ["new", "old"],
        }
    )
    def test_good_values(self):
        assert check_settings() == []

    @override_settings(
        BACKUPS={"RETENTION": {"dayly": 7}, "SAFETY_RETENTION": {"last": -1}}
    )
    def test_e012_retention(self):
        assert check_settings() == [
            Error(
                "BACKUPS['RETENTION'] is not a retention policy: Unknown retention "
                "keys: dayly.",
                hint=RETENTION_HINT,
                id="backups_app.E012",
            ),
            Error(
                "BACKUPS['SAFETY_RETENTION'] is not a retention policy: keep last must "
                "be a whole number >= 0, not -1.",
                hint=RETENTION_HINT,
                id="backups_app.E012",
            ),
        ]

    @override_settings(BACKUPS={"HEALTH": {"DATABASES": ["nope"]}})
    def test_e013_health_aliases(self):
        assert check_settings() == [
            Error(
                "BACKUPS['HEALTH'] ['DATABASES'] must list aliases of DATABASES, not "
                "['nope'].",
                hint=HEALTH_HINT,
                id="backups_app.E013",
            )
        ]

    @override_settings(BACKUPS={"HEALTH": {"MAX_AGE": "a day"}})
    def test_e013_health_duration(self):
        [error] = check_settings()
        assert error.id == "backups_app.E013"
        assert error.msg == (
            "BACKUPS['HEALTH'] has a bad value: 'a day' is not a duration (examples: "
            "90s, 45m, 26h, 7d)."
        )

    @override_settings(BACKUPS={"HEALTH": {"SHRINK_RATIO": 2}})
    def test_e013_health_ratio(self):
        [error] = check_settings()
        assert error.msg == (
            "BACKUPS['HEALTH'] ['SHRINK_RATIO'] must be a number from 0 to 1, not 2."
        )

    @override_settings(
        BACKUPS={"NOTIFY": {"WEBHOOK_URL": "ftp://user:secret@host/hook"}}
    )
    def test_e014_webhook_url_is_refused_without_showing_it(self):
        assert check_settings() == [
            Error(
                "BACKUPS['NOTIFY'] ['WEBHOOK_URL'] must be an http:// or https:// URL, "
                "or None.",
                hint=NOTIFY_HINT,
                id="backups_app.E014",
            )
        ]

    @override_settings(BACKUPS={"NOTIFY": {"TIMEOUT": 0, "MAIL": "yes"}})
    def test_e014_notify_values(self):
        [error] = check_settings()
        assert (
            error.msg == "BACKUPS['NOTIFY'] ['MAIL'] must be True or False, not 'yes'."
        )

    @pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
    @override_settings(
        MAILERS={"default": {}, "ops": {}}, BACKUPS={"NOTIFY": {"MAILER": "ops"}}
    )
    def test_e014_mailer_names_an_alias_of_mailers(self):
        assert check_settings() == []
        for mailer in ("opps", ["ops"]):
            with override_settings(BACKUPS={"NOTIFY": {"MAILER": mailer}}):
                assert check_settings() == [
                    Error(
                        "BACKUPS['NOTIFY'] ['MAILER'] must be an alias of MAILERS, "
                        f"not {mailer!r}.",
                        hint=NOTIFY_HINT,
                        id="backups_app.E014",
                    )
                ]

    @pytest.mark.skipif(HAS_MAILERS, reason="Django 6.1 has MAILERS")
    @override_settings(BACKUPS={"NOTIFY": {"MAILER": "ops"}})
    def test_e014_mailer_needs_mailers(self):
        [error] = check_settings()
        assert (error.id, error.msg) == (
            "backups_app.E014",
            "BACKUPS['NOTIFY'] ['MAILER'] needs Django 6.1 or later (MAILERS).",
        )

    @override_settings(BACKUPS={"SIGNING_KEY": ["", 3]})
    def test_e015_signing_key(self):
        [error] = check_settings()
        assert error.id == "backups_app.E015"


class ReaderBoundSettingsTests(SimpleTestCase):
    @override_settings(BACKUPS={"MAX_LINE_BYTES": 4096, "MAX_EXPANSION_RATIO": 2.5})
    def test_good_bounds(self):
        assert check_settings() == []

    @override_settings(BACKUPS={"MAX_LINE_BYTES": "64M", "MAX_EXPANSION_RATIO": 1})
    def test_e016_bounds(self):
        assert [(e.id, e.msg) for e in check_settings()] == [
            (
                "backups_app.E016",
                "BACKUPS['MAX_LINE_BYTES'] must be None or a number of at least 1024, "
                "not '64M'.",
            ),
            (
                "backups_app.E016",
                "BACKUPS['MAX_EXPANSION_RATIO'] must be None or a number of at least 2, "
                "not 1.",
            ),
        ]


class MediaSettingsTests(SimpleTestCase):
    @override_settings(BACKUPS={"MEDIA": True, "MEDIA_STORAGES": ["memory"]})
    def test_good_media_settings(self):
        assert check_settings() == []

    @override_settings(BACKUPS={"MEDIA": "yes"})
    def test_e010_media_is_a_boolean(self):
        assert [(e.id, e.msg) for e in check_settings()] == [
            ("backups_app.E010", "BACKUPS['MEDIA'] must be True or False, not 'yes'.")
        ]

    def test_e021_media_storages(self):
        cases = [
            ("memory", "must be a list of STORAGES aliases"),
            (["nowhere"], "names 'nowhere', which is no alias in STORAGES"),
            (
                ["memory", "backups"],
                "names 'backups', the backup storage itself, which holds the blobs "
                "and backups",
            ),
        ]
        for value, problem in cases:
            with (
                self.subTest(value=value),
                override_settings(BACKUPS={"MEDIA_STORAGES": value}),
            ):
                assert [(e.id, e.msg) for e in check_settings()] == [
                    ("backups_app.E021", f"BACKUPS['MEDIA_STORAGES'] {problem}.")
                ]
