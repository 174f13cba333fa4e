"""System checks for the BACKUPS setting: every key's value, before any command runs.

IDs are listed in docs/usage.md and never reused.
"""

from __future__ import annotations

import difflib
import os
import string
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .conf import DEFAULTS
from .db.tables import unknown_labels

# The placeholders a file name template may use (streams.new_backup_name).
TEMPLATE_PLACEHOLDERS = ("database", "timestamp")
TEMPLATE_KEYS = ("FILENAME_TEMPLATE", "SAFETY_FILENAME_TEMPLATE")
# Settings that list app or model labels, and an example of each.
LABEL_KEYS = ("EXCLUDE", "UNMANAGED")
LABEL_EXAMPLES = {"EXCLUDE": ["sessions", "shop.Cart"], "UNMANAGED": ["legacy"]}
BOOLEAN_KEYS = ("POSTGRES_COPY", "SAFETY_BACKUP", "MEDIA")
# What a rendered name is checked with: the longest timestamp new_backup_name makes.
SAMPLE_NAME_VALUES = {"database": "default", "timestamp": "20260101T000000000000Z"}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    config = getattr(settings, "BACKUPS", {})
    if not isinstance(config, dict):
        return [
            Error(
                "BACKUPS must be a dict.",
                hint="Set BACKUPS = {...} with keys from the documentation.",
                id="backups_app.E001",
            )
        ]
    messages: list[CheckMessage] = []
    for key in sorted(set(config) - set(DEFAULTS), key=str):
        messages.append(_unknown_key(key))
    for key in LABEL_KEYS:
        messages += _check_labels(key, config.get(key, ()))
    if "STORAGE" in config:
        messages += _check_storage(config["STORAGE"])
    if "DIRECTORY" in config:
        messages += _check_directory(config["DIRECTORY"])
    for key in TEMPLATE_KEYS:
        if key in config:
            messages += _check_template(key, config[key])
    if "COMPRESSION" in config:
        messages += _check_compression(config["COMPRESSION"])
    if config.get("COMPRESSION_LEVEL") is not None:
        messages += _check_level(config)
    if "ENCRYPTION" in config:
        messages += _check_encryption(config["ENCRYPTION"])
    messages += _check_template_suffixes(config)
    if "STALE_UPLOAD_AGE" in config:
        messages += _check_stale_upload_age(config["STALE_UPLOAD_AGE"])
    if "BATCH_SIZE" in config:
        messages += _check_integer("BATCH_SIZE", config, 1, None)
    for key in ("RETENTION", "SAFETY_RETENTION"):
        if key in config:
            messages += _check_retention(key, config[key])
    if "HEALTH" in config:
        messages += _check_health(config["HEALTH"])
    if "NOTIFY" in config:
        messages += _check_notify(config["NOTIFY"])
    if "SIGNING_KEY" in config:
        messages += _check_signing_key(config["SIGNING_KEY"])
    for key in ("MAX_LINE_BYTES", "MAX_EXPANSION_RATIO"):
        if key in config:
            messages += _check_bound(key, config[key])
    if "MEDIA_STORAGES" in config:
        messages += _check_media_storages(config["MEDIA_STORAGES"], config)
    for key in BOOLEAN_KEYS:
        if key in config and not isinstance(config[key], bool):
            messages.append(
                Error(
                    f"BACKUPS[{key!r}] must be True or False, not {config[key]!r}.",
                    id="backups_app.E010",
                )
            )
    return messages


def _unknown_key(key: Any) -> CheckMessage:
    close = difflib.get_close_matches(str(key), DEFAULTS, n=1)
    hint = (
        f"Did you mean {close[0]!r}?"
        if close
        else "Known keys: " + ", ".join(sorted(DEFAULTS)) + "."
    )
    # A warning, not an error: the key is ignored, and the app still works.
    return Warning(f"Unknown key {key!r} in BACKUPS.", hint=hint, id="backups_app.W001")


def _check_labels(key: str, labels: Any) -> list[CheckMessage]:
    if not isinstance(labels, (list, tuple, set)) or not all(
        isinstance(label, str) for label in labels
    ):
        return [
            Error(
                f"BACKUPS[{key!r}] must be a list of labels.",
                hint=f"For example: BACKUPS = {{{key!r}: {LABEL_EXAMPLES[key]!r}}}.",
                id="backups_app.E004",
            )
        ]
    return [
        Error(
            f"BACKUPS[{key!r}] names {label!r}, which is no installed app or model.",
            hint="Use 'app_label' or 'app_label.ModelName'.",
            id="backups_app.E003",
        )
        for label in unknown_labels(labels)
    ]


def _check_storage(alias: Any) -> list[CheckMessage]:
    # Left at its default, a missing "backups" entry means BACKUPS['DIRECTORY'];
    # named on purpose, it must exist, or backups would land somewhere else.
    if not isinstance(alias, str):
        return [
            Error(
                f"BACKUPS['STORAGE'] must be the name of a storage, not {alias!r}.",
                id="backups_app.E005",
            )
        ]
    if alias not in getattr(settings, "STORAGES", {}):
        return [
            Error(
                f"BACKUPS['STORAGE'] names {alias!r}, which is not in STORAGES.",
                hint="Add it to STORAGES, or leave STORAGE out to use "
                "BACKUPS['DIRECTORY'].",
                id="backups_app.E005",
            )
        ]
    return []


def _check_directory(directory: Any) -> list[CheckMessage]:
    if directory is None or isinstance(directory, (str, os.PathLike)):
        return []
    return [
        Error(
            f"BACKUPS['DIRECTORY'] must be a path or None, not {directory!r}.",
            id="backups_app.E006",
        )
    ]


def _check_template(key: str, template: Any) -> list[CheckMessage]:
    allowed = ", ".join("{" + name + "}" for name in TEMPLATE_PLACEHOLDERS)
    if not isinstance(template, str) or not template:
        return [
            Error(
                f"BACKUPS[{key!r}] must be a file name template, not {template!r}.",
                hint=f"Placeholders: {allowed}.",
                id="backups_app.E007",
            )
        ]
    try:
        fields = [
            name
            for _, name, _, _ in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError as exc:
        return [
            Error(
                f"BACKUPS[{key!r}] is not a valid template: {exc}.",
                hint="Write a literal brace as {{ or }}.",
                id="backups_app.E007",
            )
        ]
    unknown = [name for name in fields if name not in TEMPLATE_PLACEHOLDERS]
    if unknown:
        return [
            Error(
                f"BACKUPS[{key!r}] uses unknown placeholder "
                + ", ".join("{" + name + "}" for name in dict.fromkeys(unknown))
                + ".",
                hint=f"Placeholders: {allowed}.",
                id="backups_app.E008",
            )
        ]
    name = template.format(**SAMPLE_NAME_VALUES)
    if "/" in name or "\\" in name or name in (".", ".."):
        return [
            Error(
                f"BACKUPS[{key!r}] makes names such as {name!r}, which are not plain "
                "file names.",
                hint="Leave out / and \\; to put backups in a folder, set the "
                "storage's location.",
                id="backups_app.E009",
            )
        ]
    return []


def _check_integer(
    key: str, config: dict[str, Any], low: int, high: int | None
) -> list[CheckMessage]:
    value = config[key]
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if is_integer and value >= low and (high is None or value <= high):
        return []
    wanted = f"from {low} to {high}" if high is not None else f"of at least {low}"
    return [
        Error(
            f"BACKUPS[{key!r}] must be an integer {wanted}, not {value!r}.",
            id="backups_app.E011",
        )
    ]


def _check_retention(key: str, value: Any) -> list[CheckMessage]:
    from .operations.prune import policy_from

    try:
        if not isinstance(value, dict):
            raise ValueError("it must be a dict")
        policy_from(value)
    except ValueError as exc:
        return [
            Error(
                f"BACKUPS[{key!r}] is not a retention policy: {exc}",
                hint="For example: {'last': 3, 'daily': 7, 'weekly': 5, "
                "'max_total_size': '50G'}.",
                id="backups_app.E012",
            )
        ]
    return []


def _check_health(value: Any) -> list[CheckMessage]:
    from .operations.units import parse_duration, parse_size

    def error(message: str) -> list[CheckMessage]:
        return [
            Error(
                f"BACKUPS['HEALTH'] {message}",
                hint="Keys: DATABASES (aliases), MAX_AGE ('26h'), MIN_SIZE ('10M' or "
                "None), SHRINK_RATIO (0 to 1, or None).",
                id="backups_app.E013",
            )
        ]

    if not isinstance(value, dict):
        return error("must be a dict.")
    unknown = set(value) - {"DATABASES", "MAX_AGE", "MIN_SIZE", "SHRINK_RATIO"}
    if unknown:
        return error(f"has unknown keys: {', '.join(sorted(map(str, unknown)))}.")
    databases = value.get("DATABASES", ["default"])
    if not isinstance(databases, (list, tuple)) or not all(
        alias in settings.DATABASES for alias in databases
    ):
        return error(
            f"['DATABASES'] must list aliases of DATABASES, not {databases!r}."
        )
    try:
        for key, parse in (("MAX_AGE", parse_duration), ("MIN_SIZE", parse_size)):
            if value.get(key) is not None and not isinstance(value[key], int):
                parse(value[key])
    except ValueError as exc:
        return error(f"has a bad value: {exc}")
    ratio = value.get("SHRINK_RATIO")
    if ratio is not None and (
        isinstance(ratio, bool)
        or not isinstance(ratio, (int, float))
        or not 0 < ratio <= 1
    ):
        return error(f"['SHRINK_RATIO'] must be a number from 0 to 1, not {ratio!r}.")
    return []


def _check_notify(value: Any) -> list[CheckMessage]:
    def error(message: str) -> list[CheckMessage]:
        return [
            Error(
                f"BACKUPS['NOTIFY'] {message}",
                hint="Keys: MAIL (bool), MAILER (an alias of MAILERS, Django 6.1 or "
                "later, or None), WEBHOOK_URL (an http(s) URL or None), ON_SUCCESS "
                "(bool), TIMEOUT (seconds).",
                id="backups_app.E014",
            )
        ]

    if not isinstance(value, dict):
        return error("must be a dict.")
    unknown = set(value) - {"MAIL", "MAILER", "WEBHOOK_URL", "ON_SUCCESS", "TIMEOUT"}
    if unknown:
        return error(f"has unknown keys: {', '.join(sorted(map(str, unknown)))}.")
    for key in ("MAIL", "ON_SUCCESS"):
        if key in value and not isinstance(value[key], bool):
            return error(f"[{key!r}] must be True or False, not {value[key]!r}.")
    mailer = value.get("MAILER")
    if mailer is not None:
        if not hasattr(mail, "mailers"):
            return error("['MAILER'] needs Django 6.1 or later (MAILERS).")
        if not isinstance(mailer, str) or mailer not in mail.mailers:
            return error(f"['MAILER'] must be an alias of MAILERS, not {mailer!r}.")
    url = value.get("WEBHOOK_URL")
    if url is not None and (
        not isinstance(url, str) or not url.startswith(("http://", "https://"))
    ):
        # Never echo the URL: chat webhooks carry their secret in it.
        return error("['WEBHOOK_URL'] must be an http:// or https:// URL, or None.")
    timeout = value.get("TIMEOUT", 10)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or timeout <= 0
    ):
        return error(f"['TIMEOUT'] must be a number of seconds, not {timeout!r}.")
    return []


def _check_signing_key(value: Any) -> list[CheckMessage]:
    keys = value if isinstance(value, (list, tuple)) else [value]
    if value is None or (keys and all(isinstance(k, str) and k for k in keys)):
        return []
    return [
        Error(
            "BACKUPS['SIGNING_KEY'] must be None, a key, or a list of keys (text); "
            "the first one signs.",
            id="backups_app.E015",
        )
    ]


def _check_bound(key: str, value: Any) -> list[CheckMessage]:
    # A bound too small would refuse every backup; None switches it off.
    smallest = 2 if key == "MAX_EXPANSION_RATIO" else 1024
    if value is None or (
        not isinstance(value, bool)
        and isinstance(value, (int, float) if key == "MAX_EXPANSION_RATIO" else int)
        and value >= smallest
    ):
        return []
    return [
        Error(
            f"BACKUPS[{key!r}] must be None or a number of at least {smallest}, "
            f"not {value!r}.",
            hint="It bounds what a backup file may ask of the reader (docs/usage.md).",
            id="backups_app.E016",
        )
    ]


def _configured_codec(config: dict[str, Any]) -> Any:
    from .exceptions import StorageError
    from .fileformat.compression import GZIP, codec_named

    try:
        return codec_named(config.get("COMPRESSION", DEFAULTS["COMPRESSION"]))
    except (StorageError, TypeError):
        return GZIP  # reported by _check_compression


def _check_compression(value: Any) -> list[CheckMessage]:
    from .exceptions import StorageError
    from .fileformat.compression import CODECS, _zstd

    names = [codec.name for codec in CODECS]
    if value not in names:
        return [
            Error(
                "BACKUPS['COMPRESSION'] must be one of "
                + ", ".join(repr(name) for name in names)
                + f", not {value!r}.",
                hint="gzip is the default; zstd is faster at the same size "
                "(docs/storage.md).",
                id="backups_app.E017",
            )
        ]
    if value == "zstd":
        try:
            _zstd()
        except StorageError:
            return [
                Error(
                    "BACKUPS['COMPRESSION'] is 'zstd', which needs the backports.zstd "
                    "package before Python 3.14.",
                    hint="pip install 'django-backups-app[zstd]'",
                    id="backups_app.E017",
                )
            ]
    return []


def _check_level(config: dict[str, Any]) -> list[CheckMessage]:
    codec = _configured_codec(config)
    value = config["COMPRESSION_LEVEL"]
    low, high = codec.levels[0], codec.levels[-1]
    is_integer = isinstance(value, int) and not isinstance(value, bool)
    if is_integer and low <= value <= high:
        return []
    return [
        Error(
            f"BACKUPS['COMPRESSION_LEVEL'] must be None or an integer from {low} to "
            f"{high} for {codec.name}, not {value!r}.",
            hint=f"None: {codec.name}'s default, {codec.default_level}.",
            id="backups_app.E011",
        )
    ]


def _check_encryption(value: Any) -> list[CheckMessage]:
    from .exceptions import StorageError
    from .fileformat import encryption

    def error(message: str) -> list[CheckMessage]:
        return [
            Error(
                f"BACKUPS['ENCRYPTION'] {message}",
                hint="Keys: RECIPIENTS (age public keys, age1... or ssh-...), "
                "IDENTITIES (age private keys or paths of key files); "
                "docs/storage.md.",
                id="backups_app.E018",
            )
        ]

    if not isinstance(value, dict):
        return error("must be a dict.")
    unknown = set(value) - {"RECIPIENTS", "IDENTITIES"}
    if unknown:
        return error(f"has unknown keys: {', '.join(sorted(map(str, unknown)))}.")
    for key in ("RECIPIENTS", "IDENTITIES"):
        entries = value.get(key, [])
        if not isinstance(entries, (list, tuple)) or not all(
            isinstance(entry, (str, os.PathLike)) and str(entry) for entry in entries
        ):
            # Never echo the value: IDENTITIES holds private keys.
            return error(f"[{key!r}] must be a list of keys (text).")
    recipients = [str(entry) for entry in value.get("RECIPIENTS", [])]
    identities = [str(entry) for entry in value.get("IDENTITIES", [])]
    if not recipients and not identities:
        return []
    try:
        parsed_recipients = [encryption.parse_recipient(r) for r in recipients]
        parsed_identities = encryption.parse_identities(identities)
    except StorageError as exc:
        return error(f"is not usable: {exc}")
    readable = {str(identity.to_public()) for identity in parsed_identities}
    written = {str(recipient) for recipient in parsed_recipients}
    if readable and written and not readable & written:
        x25519 = [r for r in recipients if r.strip().startswith("age1")]
        if len(x25519) == len(recipients):
            return [
                Warning(
                    "None of BACKUPS['ENCRYPTION']['IDENTITIES'] can read what is "
                    "encrypted to BACKUPS['ENCRYPTION']['RECIPIENTS']: new backups "
                    "cannot be restored or validated here.",
                    hint="List the identity of one of the recipients, or leave "
                    "IDENTITIES empty on a server that should only write backups.",
                    id="backups_app.W002",
                )
            ]
    return []


def _check_template_suffixes(config: dict[str, Any]) -> list[CheckMessage]:
    """A template that names its own suffix must say what the settings ask for."""
    from .exceptions import StorageError
    from .fileformat.compression import AGE_SUFFIX, split_name

    codec = _configured_codec(config)
    encryption = config.get("ENCRYPTION")
    encrypted = isinstance(encryption, dict) and bool(encryption.get("RECIPIENTS"))
    wanted = f".jsonl{codec.suffix}" + (AGE_SUFFIX if encrypted else "")
    messages: list[CheckMessage] = []
    for key in TEMPLATE_KEYS:
        template = config.get(key)
        if not isinstance(template, str):
            continue
        try:
            name = template.format(**SAMPLE_NAME_VALUES)
            named_codec, named_encrypted = split_name(name)
        except (StorageError, ValueError, KeyError, IndexError):
            continue  # no suffix of its own (or reported by _check_template)
        if named_codec is codec and named_encrypted == encrypted:
            continue
        ending = f".jsonl{named_codec.suffix}" + (AGE_SUFFIX if named_encrypted else "")
        messages.append(
            Error(
                f"BACKUPS[{key!r}] makes names ending in {ending!r}, but COMPRESSION "
                f"and ENCRYPTION ask for {wanted!r}.",
                hint="Leave the suffix out of the template: the app adds the one "
                "the settings ask for.",
                id="backups_app.E019",
            )
        )
    return messages


def _check_stale_upload_age(value: Any) -> list[CheckMessage]:
    import datetime

    if isinstance(value, datetime.timedelta) and value.total_seconds() > 0:
        return []
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return []
    return [
        Error(
            "BACKUPS['STALE_UPLOAD_AGE'] must be a number of seconds or a timedelta, "
            f"not {value!r}.",
            hint="It must be longer than your longest backup takes to write.",
            id="backups_app.E020",
        )
    ]


def _check_media_storages(value: Any, config: dict) -> list[CheckMessage]:
    aliases = getattr(settings, "STORAGES", {})
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(alias, str) for alias in value
    ):
        problem = "must be a list of STORAGES aliases"
    else:
        unknown = [alias for alias in value if alias not in aliases]
        backups = config.get("STORAGE", DEFAULTS["STORAGE"])
        if unknown:
            problem = f"names {unknown[0]!r}, which is no alias in STORAGES"
        elif backups in value:
            problem = (
                f"names {backups!r}, the backup storage itself, which holds the "
                "blobs and backups"
            )
        else:
            return []
    return [
        Error(
            f"BACKUPS['MEDIA_STORAGES'] {problem}.",
            hint="For example: BACKUPS = {'MEDIA_STORAGES': ['default']}.",
            id="backups_app.E021",
        )
    ]
