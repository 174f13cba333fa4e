"""Tell people when backups fail: Django's mail_admins, and a webhook for chat tools.

Connected to the library's signals in ``AppConfig.ready()``. Notifiers run inside
``signals.announce``, which logs a receiver's error instead of raising it, so a mail
server or webhook that is down never turns a good backup into a failed one.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.core import mail
from django.utils import timezone

from .. import signals
from ..conf import app_settings
from ..exceptions import one_line

logger = logging.getLogger("backups_app")


class NotificationError(Exception):
    """A notifier could not deliver its message (logged, never raised to callers)."""


def webhook_host(url: str) -> str:
    """Return the part of a webhook URL that may be logged: chat webhooks carry
    their secret in the path or the query, so only the scheme and host are shown."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


def post_webhook(url: str, event: dict[str, Any], timeout: float) -> None:
    request = urllib.request.Request(
        url,
        data=orjson.dumps(event),
        headers={"Content-Type": "application/json", "User-Agent": "backups_app"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(1024)
    except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise NotificationError(
            f"Webhook {webhook_host(url)} did not take the notification: "
            f"{one_line(reason) if isinstance(reason, BaseException) else reason}"
        ) from None


def send_admin_mail(subject: str, body: str, mailer: str | None) -> None:
    """Mail ``ADMINS`` through ``mailer``, an alias of ``MAILERS`` (None: the default).

    Django 6.1 picks a mailer with ``using``. Before it there is only EMAIL_BACKEND,
    and the system checks refuse a ``MAILER``.
    """
    if hasattr(mail, "mailers"):
        mail.mail_admins(subject, body, using=mailer)
    else:
        mail.mail_admins(subject, body)


def notify(event: dict[str, Any]) -> None:
    """Send ``event`` to every configured notifier; log what fails."""
    settings = app_settings.NOTIFY
    subject = event["summary"]
    if settings["MAIL"]:
        try:
            send_admin_mail(subject, _mail_body(event), settings["MAILER"])
        except Exception as exc:  # SMTP errors come in many classes
            logger.error("Could not mail the admins about %r: %s", subject, exc)
    url = settings["WEBHOOK_URL"]
    if url:
        try:
            post_webhook(url, event, float(settings["TIMEOUT"]))
        except NotificationError as exc:
            logger.error("%s", exc)


def _mail_body(event: dict[str, Any]) -> str:
    lines = [event["summary"], ""]
    lines += [f"{key}: {value}" for key, value in event.items() if key != "summary"]
    return "\n".join(lines) + "\n"


def _event(name: str, summary: str, **details: Any) -> dict[str, Any]:
    return {
        "event": name,
        "summary": summary,
        "time": timezone.now().isoformat(),
        **{key: value for key, value in details.items() if value is not None},
    }


def on_failure(signal_name: str, what: str) -> Callable[..., None]:
    def receiver(
        sender: Any, using: str = "", exception: Any = None, **kwargs: Any
    ) -> None:
        where = kwargs.get("target") or kwargs.get("source")
        notify(
            _event(
                signal_name,
                f"{what} of database {using!r} failed: {one_line(exception)}",
                database=using,
                error=one_line(exception),
                error_type=type(exception).__name__,
                file=where,
            )
        )

    return receiver


def on_drill(sender: Any, result: Any = None, **kwargs: Any) -> None:
    if result.ok and not app_settings.NOTIFY["ON_SUCCESS"]:
        return
    notify(
        _event(
            "drill_finished",
            f"Restore drill of {result.backup_name} into {result.scratch_database!r}: "
            f"{'passed' if result.ok else 'FAILED'}: {result.summary}",
            ok=result.ok,
            database=result.scratch_database,
            file=result.backup_name,
        )
    )


def on_success(signal_name: str, what: str) -> Callable[..., None]:
    def receiver(
        sender: Any, using: str = "", summary: Any = None, **kwargs: Any
    ) -> None:
        if not app_settings.NOTIFY["ON_SUCCESS"]:
            return
        notify(
            _event(
                signal_name,
                f"{what} of database {using!r} done: {getattr(summary, 'name', '')}",
                database=using,
                file=getattr(summary, "name", None) or getattr(summary, "source", None),
            )
        )

    return receiver


RECEIVERS = (
    (signals.backup_failed, on_failure("backup_failed", "Backup")),
    (signals.restore_failed, on_failure("restore_failed", "Restore")),
    (signals.validation_failed, on_failure("validation_failed", "Validation")),
    (signals.drill_finished, on_drill),
    (signals.post_backup, on_success("backup_done", "Backup")),
    (signals.post_restore, on_success("restore_done", "Restore")),
)


def connect() -> None:
    for signal, receiver in RECEIVERS:
        signal.connect(receiver, dispatch_uid=f"backups_app.notify.{id(receiver)}")
