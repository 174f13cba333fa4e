"""The django-health-check integration reports what checkbackups reports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from django.test import TransactionTestCase
from health_check.exceptions import ServiceUnavailable

from backups_app.backup import create_backup
from backups_app.contrib.health_check import Backups
from tests.factories import populate_zoo
from tests.test_operations import own_storage

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class HealthCheckIntegrationTests(TransactionTestCase):
    # The check runs on a worker thread, with its own connection.
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)

    def test_unhealthy_without_a_backup_then_healthy(self):
        result = asyncio.run(Backups().get_result())
        assert isinstance(result.error, ServiceUnavailable)
        assert str(result.error) == "Unavailable: default: no backup in the storage"
        populate_zoo()
        create_backup(None)
        assert asyncio.run(Backups().get_result()).error is None

    def test_names_the_databases_it_checks(self):
        result = asyncio.run(Backups(databases=("other",)).get_result())
        assert str(result.error) == "Unavailable: other: no backup in the storage"
