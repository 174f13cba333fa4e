"""Admin operations through a real task queue (django-tasks-db) and its worker."""

from __future__ import annotations

import importlib.util

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import TestCase, TransactionTestCase, override_settings
from django.urls import reverse

from backups_app.conf import ALWAYS_EXCLUDED_APPS
from backups_app.models import BackupRecord, Operation
from backups_app.tasks import queue_backend
from tests.test_admin import clear_storage

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("django_tasks_db") is None,
    reason="django-tasks-db is not installed",
)

DATABASE_QUEUE = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}

User = get_user_model()


def url(name: str, *args) -> str:
    return reverse(f"admin:backups_app_{name}", args=args)


class QueueChoiceTests(TestCase):
    def test_without_tasks_setting_operations_run_in_the_request(self):
        assert queue_backend() is None

    @override_settings(
        TASKS={
            "default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}
        }
        if importlib.util.find_spec("django.tasks")
        else {
            "default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}
        }
    )
    def test_the_immediate_backend_counts_as_none(self):
        assert queue_backend() is None

    @override_settings(TASKS=DATABASE_QUEUE)
    def test_the_database_backend_is_a_queue(self):
        assert queue_backend() is not None

    def test_the_queue_tables_are_never_restored(self):
        from django.apps import apps

        label = apps.get_app_config("django_tasks_database").label
        assert label in ALWAYS_EXCLUDED_APPS


@override_settings(TASKS=DATABASE_QUEUE)
class WorkerTests(TransactionTestCase):
    """Committed rows, because the worker (like a real one) works outside the test."""

    def setUp(self):
        clear_storage()
        self.addCleanup(clear_storage)
        self.user = User.objects.create_superuser("root", password="pw")
        self.client.force_login(self.user)

    def work(self):
        call_command(
            "db_worker", batch=True, startup_delay=False, reload=False, verbosity=0
        )

    def test_backup_is_queued_then_run_by_the_worker(self):
        from django_tasks_db.models import DBTaskResult

        response = self.client.post(url("backuprecord_backup"), {"database": "default"})
        operation = Operation.objects.get()
        self.assertRedirects(
            response,
            url("operation_change", operation.pk),
            fetch_redirect_response=False,
        )
        assert operation.status == "queued"
        assert operation.task_id
        assert DBTaskResult.objects.filter(id=operation.task_id).exists()
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert '<meta http-equiv="refresh" content="2">' in page
        assert "Queued" in page

        self.work()

        operation.refresh_from_db()
        assert operation.status == "succeeded", operation.message
        assert BackupRecord.objects.get().username == "root"
        page = self.client.get(url("operation_change", operation.pk)).content.decode()
        assert 'http-equiv="refresh"' not in page
        assert "Succeeded" in page

    def test_restore_through_the_worker_keeps_the_queue_and_history(self):
        from django_tasks_db.models import DBTaskResult

        self.client.post(url("backuprecord_backup"), {"database": "default"})
        self.work()
        record = BackupRecord.objects.get()
        User.objects.create_user("later")
        self.client.post(
            url("backuprecord_restore", record.pk),
            {"database": "default", "confirm": "default"},
        )
        restore = Operation.objects.get(kind="restore")
        assert restore.status == "queued"
        assert restore.exclusive == "restore"
        # While it waits, nothing else may start.
        self.client.post(url("backuprecord_backup"), {"database": "default"})
        assert Operation.objects.filter(kind="backup").count() == 1

        self.work()

        restore.refresh_from_db()
        assert restore.status == "succeeded", restore.message
        assert restore.exclusive is None
        assert not User.objects.filter(username="later").exists()
        # The queue's own rows, and our history, were left alone by the restore.
        assert DBTaskResult.objects.count() == 2
        assert Operation.objects.count() == 2
        assert restore.result["safety_backup"]
        assert BackupRecord.objects.filter(origin="safety").count() == 1
