"""How the Backups admin shows values: status badges, counts, sizes, times and ages.

Sizes come from ``operations.units`` (the same text as in the commands); counts are
grouped the way the site's locale groups them.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Integrity, Operation, Provenance
from ..operations.units import format_size

STATUS_CLASSES = {
    # Colour and text always go together: the class only adds the colour, and each
    # colour means one thing everywhere (green: matches or succeeded, red: differs,
    # damaged or failed, blue: running, grey: queued or not known yet).
    "match": "status-ok",
    "differ": "status-bad",
    Integrity.INTACT: "status-ok",
    Integrity.DAMAGED: "status-bad",
    Integrity.UNCHECKED: "status-unknown",
    Operation.Status.SUCCEEDED: "status-ok",
    Operation.Status.FAILED: "status-bad",
    Operation.Status.QUEUED: "status-unknown",
    Operation.Status.RUNNING: "status-running",
    Provenance.OURS: "status-ok",
    Provenance.FOREIGN: "status-bad",
    Provenance.UNCHECKED: "status-unknown",
    "healthy": "status-ok",
}


# The steps of a long operation (Progress.stage), as the status page names them.
STEPS = {
    "backup": gettext_lazy("Writing the backup"),
    "validate": gettext_lazy("Comparing the backup with the database"),
    "verify": gettext_lazy("Checking the backup file"),
    "compare": gettext_lazy("Comparing the database with the backup"),
    "safety": gettext_lazy("Safety backup of the current contents"),
    "delete": gettext_lazy("Deleting the rows that go"),
    "restore": gettext_lazy("Writing the backup’s rows"),
    "check": gettext_lazy("Checking foreign keys"),
    "verify-written": gettext_lazy("Reading back what was written"),
    "lock": gettext_lazy("Locking the tables against writers"),
    "reload": gettext_lazy("Loading again the tables triggers changed"),
    "sequences": gettext_lazy("Setting sequences"),
    "commit": gettext_lazy("Committing"),
    "committed": gettext_lazy("Committed; finishing"),
    "settle": gettext_lazy("Setting sequences"),
    "media-rows": gettext_lazy("Reading the rows’ file references"),
    "media": gettext_lazy("Backing up the media files"),
    "media-compare": gettext_lazy("Comparing the media files with their storages"),
    "media-blobs": gettext_lazy("Checking the media blobs"),
    "media-write": gettext_lazy("Putting the media files back"),
    "media-prune": gettext_lazy("Deleting files no row references"),
    "media-validate": gettext_lazy("Comparing the media files"),
}


def status_badge(value: str, text: str) -> str:
    """Return ``text`` in the badge of status ``value`` (a key of STATUS_CLASSES)."""
    return format_html(
        '<span class="backup-status {}">{}</span>',
        STATUS_CLASSES.get(value, "status-unknown"),
        text,
    )


def grouped(value: int | None) -> str:
    """Return a count with thousands separators, or a dash when it is unknown."""
    if value is None:
        return "–"
    return number_format(value, force_grouping=True)


def human_size(size: int | None) -> str:
    """Return a size as the commands write it (``45.0 KB``), or a dash."""
    return format_size(size)


def taken(when: Any) -> str:
    """Return a time with its age: "29 Nov 2026, 23:10 (11 minutes ago)"."""
    from django.utils.formats import date_format
    from django.utils.timesince import timesince

    if when is None:
        return "–"
    local = timezone.localtime(when) if settings.USE_TZ else when
    return _("%(when)s (%(age)s ago)") % {
        "when": date_format(local, "DATETIME_FORMAT"),
        "age": timesince(when, depth=1),
    }


def estimate(end: Any) -> str:
    """Return the time left until ``end`` in words, or "" when there is no estimate."""
    from django.utils.timesince import timeuntil

    if end is None:
        return ""
    if (end - timezone.now()).total_seconds() < 60:
        return _("less than a minute left in this step")
    return _("about %(left)s left in this step") % {"left": timeuntil(end, depth=1)}


def parse_time(value: Any) -> Any:
    """Return an ISO 8601 text (a backup header's ``created``) as a datetime, or None."""
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(str(value)) if value else None
    except ValueError:
        return None
    if parsed is not None and settings.USE_TZ and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
    return parsed


def operation_outcome(operation: Operation) -> tuple[str, str]:
    """Return the status key and the words for an operation, the same everywhere.

    A validation that ran to its end found either a match or differences: it is
    never just "succeeded".
    """
    if operation.status == Operation.Status.SUCCEEDED:
        if operation.kind == Operation.Kind.VALIDATE:
            if operation.result.get("ok"):
                return "match", _("matches")
            return "differ", _("differs")
        return operation.status, operation.get_status_display()
    if (
        operation.status == Operation.Status.FAILED
        and operation.kind == Operation.Kind.VALIDATE
        and operation.backup_id
        and operation.backup is not None
        and operation.backup.integrity == Integrity.DAMAGED
    ):
        return Integrity.DAMAGED, _("damaged")
    return operation.status, operation.get_status_display()
