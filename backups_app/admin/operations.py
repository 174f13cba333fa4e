"""The admin of operations: the list, the status page and a restore's outcome."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from ..models import Operation
from .base import (
    PERMISSION_RESTORE,
    PERMISSION_RUN,
    PERMISSION_VALIDATE,
    NumericIdAdmin,
)
from .display import operation_outcome, status_badge, taken
from .mixins import RestoreOutcomeMixin


@admin.register(Operation)
class OperationAdmin(RestoreOutcomeMixin, NumericIdAdmin):
    # Compact, to fit 1280 px beside the filters: the kind is in the name
    # ("validation #14"); the database (a filter) and the finish time are on the
    # status page.
    list_display = (
        "__str__",
        "status_display",
        "backup_name",
        "username",
        "created_display",
    )
    list_filter = ("kind", "status", "database")
    list_select_related = ("backup",)
    search_fields = ("backup_name", "username", "message")
    actions = ["mark_failed"]

    @admin.display(description=gettext_lazy("status"), ordering="status")
    def status_display(self, obj: Operation) -> str:
        return status_badge(*operation_outcome(obj))

    @admin.display(description=gettext_lazy("queued"), ordering="created")
    def created_display(self, obj: Operation) -> str:
        return taken(obj.created)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        user = request.user
        return (
            user.has_perm(PERMISSION_RUN)
            or user.has_perm(PERMISSION_VALIDATE)
            or user.has_perm(PERMISSION_RESTORE)
            or super().has_view_permission(request, obj)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_restore_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION_RESTORE)

    @admin.action(
        permissions=["restore"],
        description=gettext_lazy(
            "Mark as failed (only when its worker died; it frees the restore lock)"
        ),
    )
    def mark_failed(self, request: HttpRequest, queryset: Any) -> None:
        if not request.user.has_perm(PERMISSION_RESTORE):
            raise PermissionDenied
        from ..tasks import mark_failed

        count = mark_failed(queryset, username=request.user.get_username())
        self.message_user(
            request,
            _("Marked %(count)s operations as failed.") % {"count": count},
            messages.SUCCESS,
        )
