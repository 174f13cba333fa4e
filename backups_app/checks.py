"""System checks for the BACKUPS setting."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, register

from .conf import DEFAULTS


@register(Tags.compatibility)
def check_settings(app_configs=None, **kwargs) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    config = getattr(settings, "BACKUPS", {})
    if not isinstance(config, dict):
        return [
            Error(
                "BACKUPS must be a dict.",
                hint="Set BACKUPS = {...} with keys from the documentation.",
                id="backups_app.E001",
            )
        ]
    for key in sorted(set(config) - set(DEFAULTS)):
        messages.append(
            Error(
                f"Unknown key {key!r} in BACKUPS.",
                hint="Known keys: " + ", ".join(sorted(DEFAULTS)) + ".",
                id="backups_app.E002",
            )
        )
    exclude = config.get("EXCLUDE", ())
    if isinstance(exclude, str) or not all(isinstance(label, str) for label in exclude):
        messages.append(
            Error(
                "BACKUPS['EXCLUDE'] must be a list of labels.",
                hint="For example: BACKUPS = {'EXCLUDE': ['sessions', 'shop.Cart']}.",
                id="backups_app.E004",
            )
        )
        exclude = ()
    for label in exclude:
        if not _label_resolves(label):
            messages.append(
                Error(
                    f"BACKUPS['EXCLUDE'] names {label!r}, which is no installed app or model.",
                    hint="Use 'app_label' or 'app_label.ModelName'.",
                    id="backups_app.E003",
                )
            )
    return messages


def _label_resolves(label: str) -> bool:
    try:
        if "." in label:
            apps.get_model(label)
        else:
            apps.get_app_config(label)
    except (LookupError, ValueError):
        return False
    return True
