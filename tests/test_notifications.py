"""Failure signals and notifications: mail to the admins, a JSON webhook, no harm done."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import django
import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.test import TestCase, override_settings

from backups_app import signals
from backups_app.backup import create_backup
from backups_app.exceptions import BackupError, StorageError
from backups_app.restore import restore_backup
from backups_app.validate import validate_backup
from tests.factories import populate_zoo

pytestmark = [
    pytest.mark.usefixtures("tmp_path_on_test_case"),
    # Django announces the end of the old ways to send mail (ADMINS as pairs from 6.0;
    # EMAIL_BACKEND, and sending without MAILERS, from 6.1) with
    # PendingDeprecationWarnings: in the tests that send mail, they are errors.
    pytest.mark.filterwarnings("error::PendingDeprecationWarning"),
]

# Django 6.1 configures mail with MAILERS, whose aliases are picked with ``using``.
HAS_MAILERS = hasattr(mail, "mailers")

# Django 6.0 takes ADMINS as addresses and deprecates (name, address) pairs, the only
# form Django 5.2 takes.
ADMINS = (
    ["ops@example.com"] if django.VERSION >= (6, 0) else [("Ops", "ops@example.com")]
)


class Hook:
    """A local HTTP server that records the JSON POSTed to it."""

    def __init__(self, delay: float = 0.0, status: int = 204):
        self.received: list[dict] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(json.loads(body))
                time.sleep(delay)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/SECRET"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class BrokenMail(BaseEmailBackend):
    def send_messages(self, messages):
        raise ConnectionRefusedError("no mail server")


def mail_backend(path: str) -> override_settings:
    """Send Django's mail with the backend at ``path``: the default mailer of MAILERS
    on Django 6.1 and later, EMAIL_BACKEND before."""
    if HAS_MAILERS:
        return override_settings(MAILERS={"default": {"BACKEND": path}})
    return override_settings(EMAIL_BACKEND=path)


def a_failing_backup(tmp_path: Path) -> BackupError:
    (tmp_path / "a-file").write_text("not a folder")
    with pytest.raises(BackupError) as excinfo:
        create_backup(tmp_path / "a-file" / "x.jsonl.gz")
    return excinfo.value


class NotificationTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        populate_zoo()
        self.hook = Hook()
        self.addCleanup(self.hook.close)

    @override_settings(ADMINS=ADMINS)
    def test_a_failed_backup_mails_the_admins(self):
        error = a_failing_backup(self.tmp_path)
        [message] = mail.outbox
        summary = f"Backup of database 'default' failed: {error}"
        assert message.to == ["ops@example.com"]
        assert message.subject == "[Django] " + summary
        lines = message.body.splitlines()
        assert lines[:3] == [summary, "", "event: backup_failed"]
        assert "database: default" in lines
        assert f"error: {error}" in lines
        assert "error_type: StorageError" in lines

    def test_no_admins_no_mail(self):
        a_failing_backup(self.tmp_path)
        assert mail.outbox == []

    def test_a_failed_backup_posts_to_the_webhook(self):
        with override_settings(BACKUPS={"NOTIFY": {"WEBHOOK_URL": self.hook.url}}):
            error = a_failing_backup(self.tmp_path)
        [event] = self.hook.received
        assert event["event"] == "backup_failed"
        assert event["database"] == "default"
        assert event["error"] == str(error)
        assert event["file"].endswith("a-file/x.jsonl.gz")

    def test_success_is_quiet_unless_asked(self):
        settings = {"NOTIFY": {"WEBHOOK_URL": self.hook.url}}
        with override_settings(BACKUPS=settings):
            create_backup(self.tmp_path / "a.jsonl.gz")
        assert self.hook.received == []
        settings["NOTIFY"]["ON_SUCCESS"] = True
        with override_settings(BACKUPS=settings):
            summary = create_backup(self.tmp_path / "b.jsonl.gz")
        [event] = self.hook.received
        assert (event["event"], event["file"]) == ("backup_done", summary.name)

    def test_restore_and_validation_failures_are_announced(self):
        heard = []

        def receiver(signal_name):
            return lambda sender, **kwargs: heard.append((signal_name, kwargs))

        for name in ("restore_failed", "validation_failed"):
            getattr(signals, name).connect(receiver(name), weak=False)
            self.addCleanup(getattr(signals, name).receivers.clear)
        missing = str(self.tmp_path / "nothing.jsonl.gz")
        with pytest.raises(StorageError):
            restore_backup(missing)
        with pytest.raises(StorageError):
            validate_backup(missing)
        assert [(name, kw["source"], kw["using"]) for name, kw in heard] == [
            ("restore_failed", missing, "default"),
            ("validation_failed", missing, "default"),
        ]
        assert all(isinstance(kw["exception"], StorageError) for _, kw in heard)

    def test_a_slow_webhook_never_fails_a_backup_and_its_secret_is_not_logged(self):
        slow = Hook(delay=3)
        self.addCleanup(slow.close)
        settings = {
            "NOTIFY": {"WEBHOOK_URL": slow.url, "ON_SUCCESS": True, "TIMEOUT": 0.5}
        }
        with (
            override_settings(BACKUPS=settings),
            self.assertLogs("backups_app", "ERROR") as logs,
        ):
            started = time.monotonic()
            summary = create_backup(self.tmp_path / "a.jsonl.gz")
        assert summary.rows > 0
        assert time.monotonic() - started < 2.5
        [line] = logs.output
        assert line.startswith(
            "ERROR:backups_app:Webhook http://127.0.0.1 did not take the notification: "
        )
        assert "SECRET" not in line

    @override_settings(ADMINS=ADMINS)
    @mail_backend("tests.test_notifications.BrokenMail")
    def test_a_broken_mail_server_is_logged_and_the_error_stays_the_backups(self):
        with self.assertLogs("backups_app", "ERROR") as logs:
            error = a_failing_backup(self.tmp_path)
        assert isinstance(error, StorageError)
        assert "no mail server" in logs.output[0]

    @pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
    @override_settings(
        ADMINS=ADMINS,
        MAILERS={
            "default": {"BACKEND": "tests.test_notifications.BrokenMail"},
            "ops": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"},
        },
        BACKUPS={"NOTIFY": {"MAILER": "ops"}},
    )
    def test_the_mail_goes_through_the_mailer_notify_names(self):
        with self.assertNoLogs("backups_app", "ERROR"):
            error = a_failing_backup(self.tmp_path)
        [message] = mail.outbox
        assert message.to == ["ops@example.com"]
        assert message.subject.endswith(f"'default' failed: {error}")

    @pytest.mark.skipif(not HAS_MAILERS, reason="MAILERS is new in Django 6.1")
    @override_settings(ADMINS=ADMINS, BACKUPS={"NOTIFY": {"MAILER": "gone"}})
    def test_a_mailer_missing_from_mailers_is_logged(self):
        with self.assertLogs("backups_app", "ERROR") as logs:
            error = a_failing_backup(self.tmp_path)
        assert isinstance(error, StorageError)
        assert mail.outbox == []
        [line] = logs.output
        assert line.startswith("ERROR:backups_app:Could not mail the admins about ")
        assert "The mailer 'gone' is not configured." in line

    def test_a_raising_receiver_does_not_hide_the_failure(self):
        def broken(sender, **kwargs):
            raise RuntimeError("receiver bug")

        signals.backup_failed.connect(broken, weak=False)
        self.addCleanup(signals.backup_failed.disconnect, broken)
        with self.assertLogs("backups_app", "ERROR") as logs:
            error = a_failing_backup(self.tmp_path)
        assert isinstance(error, StorageError)
        assert "receiver bug" in "\n".join(logs.output)


class BookkeepingFailureTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def test_a_failing_receiver_after_a_backup_is_one_line_not_a_traceback(self):
        from django.db import OperationalError

        def locked(sender, **kwargs):
            raise OperationalError("database is locked")

        signals.post_backup.connect(locked, weak=False)
        self.addCleanup(signals.post_backup.disconnect, locked)
        populate_zoo()
        with self.assertLogs("backups_app", "ERROR") as logs:
            summary = create_backup(self.tmp_path / "a.jsonl.gz")
        assert summary.rows > 0
        [record] = [r for r in logs.records if r.levelname == "ERROR"]
        assert record.exc_info is None
        assert record.getMessage().endswith(
            "locked of a backups_app signal failed (OperationalError): database is "
            "locked"
        )
