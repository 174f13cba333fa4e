"""The admin of check records: validation runs and restore drills, read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import BackupRecord, DrillRun, Operation, ValidationRun
from .base import PERMISSION_VALIDATE, NumericIdAdmin
from .display import status_badge


class CheckRunAdmin(NumericIdAdmin):
    """Records of checks (validations, drills): read-only, and open to whoever may
    validate."""

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm(
            PERMISSION_VALIDATE
        ) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ValidationRun)
class ValidationRunAdmin(CheckRunAdmin):
    list_display = ("backup_name", "database", "started", "summary_display", "username")
    list_filter = ("ok", "database")
    search_fields = ("backup_name", "summary", "username")
    date_hierarchy = "started"
    report_template_name = "admin/backups_app/validation_report.html"

    @admin.display(description=gettext_lazy("result"), ordering="ok")
    def summary_display(self, obj: ValidationRun) -> str:
        return status_badge("match" if obj.ok else "differ", obj.summary)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self.check_object_id(object_id)
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ValidationRun, pk=object_id)
        differing = [t for t in run.tables if t.get("status") != "match"]
        matching = [t for t in run.tables if t.get("status") == "match"]
        return TemplateResponse(
            request,
            self.report_template_name,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Validation of %(name)s") % {"name": run.backup_name},
                "run": run,
                "tables": differing + matching,
                "differing": differing,
                "media": sorted(run.media, key=lambda m: m.get("status") == "match"),
                "record_opts": BackupRecord._meta,
            },
        )


@admin.register(DrillRun)
class DrillRunAdmin(CheckRunAdmin):
    """Restore drills (``drillbackup``): read-only, like every record here."""

    list_display = (
        "backup_name",
        "source_database",
        "scratch_database",
        "started",
        "result_display",
        "seconds",
    )
    list_filter = ("ok", "source_database", "scratch_database")
    search_fields = ("backup_name", "summary")
    date_hierarchy = "started"
    readonly_fields = (
        "backup_name",
        "source_database",
        "scratch_database",
        "started",
        "seconds",
        "result_display",
        "failed_step",
        "message",
    )
    fields = readonly_fields

    @admin.display(description=gettext_lazy("result"), ordering="ok")
    def result_display(self, obj: DrillRun) -> str:
        return status_badge(
            Operation.Status.SUCCEEDED if obj.ok else Operation.Status.FAILED,
            obj.summary,
        )
