"""The django-health-check integration reports what checkbackups reports."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import TestCase
from health_check.base import HealthCheck
from health_check.exceptions import ServiceUnavailable

from backups_app.backup import create_backup
from backups_app.contrib.health_check import Backups
from tests.factories import populate_zoo
from tests.test_operations import own_storage

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class HealthCheckIntegrationTests(TestCase):
    databases = {"default"}
    tmp_path: Path

    def setUp(self):
        own_storage(self)

    def test_is_a_health_check(self):
        assert isinstance(Backups(), HealthCheck)

    def test_unhealthy_without_a_backup_then_healthy(self):
        with pytest.raises(ServiceUnavailable) as excinfo:
            Backups().run()
        assert str(excinfo.value) == "Unavailable: default: no backup in the storage"
        populate_zoo()
        create_backup(None)
        Backups().run()

    def test_names_the_databases_it_checks(self):
        with pytest.raises(ServiceUnavailable) as excinfo:
            Backups(databases=("other",)).run()
        assert str(excinfo.value) == "Unavailable: other: no backup in the storage"
