"""The admin shows what checkbackups says, and the restore drills."""

from __future__ import annotations

import pytest
from django.test import override_settings

from backups_app.backup import create_backup
from backups_app.models import DrillRun
from tests.factories import populate_zoo
from tests.test_admin import AdminTestCase, url

pytestmark = pytest.mark.usefixtures("tmp_path_on_test_case")


class HealthPanelTests(AdminTestCase):
    def test_no_backup_is_a_problem_on_the_list(self):
        content = self.client.get(url("backuprecord_changelist")).content.decode()
        assert '<div class="errornote" id="backup-health">' in content
        assert "<li>default: no backup in the storage</li>" in content

    def test_a_recent_backup_is_healthy(self):
        populate_zoo()
        create_backup()
        content = self.client.get(url("backuprecord_changelist")).content.decode()
        assert 'id="backup-health"><span class="backup-status status-ok">healthy' in (
            content
        )
        # Nothing claims a validation or a drill that never ran.
        assert (
            "Backups of default: the newest is recent and not shrunk, none is known "
            "to be damaged, and no validation or restore drill has failed."
        ) in content

    @override_settings(BACKUPS={"HEALTH": {"MAX_AGE": "soon"}})
    def test_a_bad_setting_is_shown_not_raised(self):
        content = self.client.get(url("backuprecord_changelist")).content.decode()
        assert "<li>Cannot check the backups: &#x27;soon&#x27; is not a duration" in (
            content
        )

    def test_a_failed_drill_is_listed_and_makes_the_backups_unhealthy(self):
        populate_zoo()
        create_backup()
        DrillRun.objects.create(
            backup_name="backup-x.jsonl.gz",
            source_database="default",
            scratch_database="other",
            ok=False,
            failed_step="restore",
            summary="restore failed: shop.Order, pk 3: value too long",
        )
        content = self.client.get(url("backuprecord_changelist")).content.decode()
        assert (
            "<li>default: the last restore drill, of backup-x.jsonl.gz into "
            "&#x27;other&#x27;, failed: restore failed: shop.Order, pk 3: value too "
            "long</li>"
        ) in content
        drills = self.client.get(url("drillrun_changelist")).content.decode()
        assert '<span class="backup-status status-bad">restore failed: ' in drills
