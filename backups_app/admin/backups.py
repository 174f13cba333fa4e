"""The admin of backup records: the list, each record's page, and the views of
``mixins`` (back up, upload, sync, download, validate, restore) composed on them."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..conf import app_settings
from ..exceptions import StorageError
from ..models import BackupRecord, Operation, ValidationRun
from ..operations.health import check_all
from ..operations.inventory import media_blob_totals
from ..records import delete_backup, delete_backups
from .base import (
    PERMISSION_RESTORE,
    PERMISSION_RUN,
    PERMISSION_UPLOAD,
    PERMISSION_VALIDATE,
    NumericIdAdmin,
)
from .display import grouped, human_size, operation_outcome, status_badge, taken
from .mixins import (
    DownloadMixin,
    RestoreMixin,
    RunBackupMixin,
    SyncMixin,
    UploadMixin,
    ValidateMixin,
)


@admin.register(BackupRecord)
class BackupRecordAdmin(
    RunBackupMixin,
    UploadMixin,
    SyncMixin,
    DownloadMixin,
    ValidateMixin,
    RestoreMixin,
    NumericIdAdmin,
):
    """The list of backups and each backup's page, with the pages of the mixins:
    back up now, upload, sync with the storage, download, validate and restore."""

    list_display = (
        "name",
        "taken_display",
        "database",
        "contents_display",
        "made_by",
        # Integrity, provenance and the last validation in one column: the list
        # fits a 1280 px screen beside the filters.
        "state_display",
    )
    list_display_links = ("name",)
    list_filter = (
        "origin",
        "integrity",
        "provenance",
        "database",
        "vendor",
        "last_validation_ok",
    )
    search_fields = ("name", "database", "username", "vendor")
    # Newest in this list first: an upload or a synced file shows at the top, however
    # old the backup inside it is (its age is in the "taken" column).
    ordering = ("-recorded", "-pk")
    readonly_fields = (
        "name",
        "database",
        "vendor",
        "created",
        "size_display",
        "table_count",
        "rows",
        "media_display",
        "digest",
        "made_by",
        "integrity_display",
        "integrity_checked",
        "problem",
        "provenance_display",
        "validation_display",
        "recorded",
    )
    fields = readonly_fields
    change_list_template = "admin/backups_app/backuprecord/change_list.html"
    change_form_template = "admin/backups_app/backuprecord/change_form.html"
    delete_confirmation_template = (
        "admin/backups_app/backuprecord/delete_confirmation.html"
    )
    delete_selected_confirmation_template = (
        "admin/backups_app/backuprecord/delete_selected_confirmation.html"
    )

    # -- list columns --------------------------------------------------------------

    @admin.display(description=gettext_lazy("size"), ordering="size")
    def size_display(self, obj: BackupRecord) -> str:
        return human_size(obj.size)

    @admin.display(description=gettext_lazy("taken"), ordering="created")
    def taken_display(self, obj: BackupRecord) -> str:
        return taken(obj.created)

    @admin.display(description=gettext_lazy("contents"), ordering="rows")
    def contents_display(self, obj: BackupRecord) -> str:
        contents = _("%(tables)s tables, %(rows)s rows, %(size)s") % {
            "tables": grouped(obj.table_count),
            "rows": grouped(obj.rows),
            "size": human_size(obj.size),
        }
        if obj.media_size is None:
            return contents
        return _("%(contents)s; media %(size)s") % {
            "contents": contents,
            "size": human_size(obj.media_size),
        }

    @admin.display(description=gettext_lazy("media"), ordering="media_size")
    def media_display(self, obj: BackupRecord) -> str:
        if obj.media_size is None:
            return _("none, or not known")
        return _(
            "%(files)s files, %(size)s (stored once per content, shared with other "
            "backups)"
        ) % {"files": grouped(obj.media_files), "size": human_size(obj.media_size)}

    @admin.display(description=gettext_lazy("made by"), ordering="origin")
    def made_by(self, obj: BackupRecord) -> str:
        origin = obj.get_origin_display()
        return f"{origin} ({obj.username})" if obj.username else origin

    @admin.display(description=gettext_lazy("integrity"), ordering="integrity")
    def integrity_display(self, obj: BackupRecord) -> str:
        return status_badge(obj.integrity, obj.get_integrity_display())

    @admin.display(description=gettext_lazy("provenance"), ordering="provenance")
    def provenance_display(self, obj: BackupRecord) -> str:
        return status_badge(obj.provenance, obj.get_provenance_display())

    @admin.display(description=gettext_lazy("state"), ordering="integrity")
    def state_display(self, obj: BackupRecord) -> str:
        validation = (
            status_badge(
                "match" if obj.last_validation_ok else "differ",
                _("validation matched")
                if obj.last_validation_ok
                else _("validation differed"),
            )
            if obj.last_validated is not None
            else ""
        )
        return format_html(
            '<span class="backup-states">{} {} {}</span>',
            status_badge(obj.integrity, obj.get_integrity_display()),
            status_badge(obj.provenance, obj.get_provenance_display()),
            validation,
        )

    @admin.display(
        description=gettext_lazy("last validation"), ordering="last_validated"
    )
    def validation_display(self, obj: BackupRecord) -> str:
        if obj.last_validated is None:
            return _("never")
        return status_badge(
            "match" if obj.last_validation_ok else "differ",
            obj.last_validation_summary,
        )

    # -- permissions: records are made by operations, never typed in ---------------

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: BackupRecord) -> None:
        delete_backup(obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        delete_backups(queryset)

    # -- pages ---------------------------------------------------------------------

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        user = request.user
        extra_context = {
            **(extra_context or {}),
            "can_run_backup": user.has_perm(PERMISSION_RUN),
            "can_upload": user.has_perm(PERMISSION_UPLOAD),
            "recent_operations": [
                (operation, status_badge(*operation_outcome(operation)))
                for operation in Operation.objects.select_related("backup")[:5]
            ],
            "health_problems": check_all(verify=False),
            "health_databases": app_settings.HEALTH["DATABASES"],
            "active_restore": Operation.objects.filter(
                kind=Operation.Kind.RESTORE, status__in=Operation.ACTIVE
            ).first(),
            "media_blobs": self.media_blobs(),
        }
        return super().changelist_view(request, extra_context)

    def media_blobs(self) -> dict[str, Any] | None:
        """The blobs of the backups with media: their number and shared size."""
        if not BackupRecord.objects.filter(media_size__isnull=False).exists():
            return None
        try:
            count, size = media_blob_totals()
        except StorageError:
            return None
        return {"count": count, "size": human_size(size)}

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        pk = self.check_object_id(object_id)  # before it goes into a query below
        user = request.user
        extra_context = {
            **(extra_context or {}),
            "can_run_backup": user.has_perm(PERMISSION_RUN),
            "can_validate": user.has_perm(PERMISSION_VALIDATE),
            "can_restore": user.has_perm(PERMISSION_RESTORE),
            "validations": ValidationRun.objects.filter(backup_id=pk)[:10],
        }
        return super().change_view(request, object_id, form_url, extra_context)
