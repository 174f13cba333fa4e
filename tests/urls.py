from django.contrib import admin
from django.urls import path

from backups_app.admin.backups import BackupRecordAdmin
from backups_app.admin.operations import OperationAdmin
from backups_app.admin.runs import DrillRunAdmin, ValidationRunAdmin
from backups_app.models import BackupRecord, DrillRun, Operation, ValidationRun

# A site of the project's own, beside the default one (tests/test_admin.py).
ops_site = admin.AdminSite(name="ops")
ops_site.register(BackupRecord, BackupRecordAdmin)
ops_site.register(Operation, OperationAdmin)
ops_site.register(ValidationRun, ValidationRunAdmin)
ops_site.register(DrillRun, DrillRunAdmin)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ops/", ops_site.urls),
]
