"""What every ModelAdmin of the Backups section shares: permissions, ids, the busy page.

``admin_view`` only makes sure of an active staff user; every view here checks its
own permission.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.urls import URLPattern

import functools
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _

PERMISSION_RUN = "backups_app.run_backup"
PERMISSION_UPLOAD = "backups_app.upload_backup"
PERMISSION_VALIDATE = "backups_app.validate_backup"
PERMISSION_RESTORE = "backups_app.restore_backup"
PERMISSION_RESTORE_FOREIGN = "backups_app.restore_foreign_backup"


def admin_url(model_admin: admin.ModelAdmin, name: str, *args: Any) -> str:
    """The URL of the admin page ``name`` (as ``admin:<name>`` names it) on the site
    ``model_admin`` is registered with. A project may register these ModelAdmins on
    an admin site of its own, whose URLs have another instance namespace."""
    return reverse(
        f"admin:{name}", args=args or None, current_app=model_admin.admin_site.name
    )


def require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied


def busy_guard(view: Any) -> Any:
    """Answer "a restore is running" (503), not a 500, when the database is locked.

    On SQLite a restore holds the database's only write lock, and once its cache
    spills, every reader too; a page that needs the database waits for the
    connection's timeout and then fails with "database is locked". The response is
    rendered here, inside the guard, because a TemplateResponse queries as it renders.
    """

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        except OperationalError as exc:
            if "locked" not in str(exc).lower():
                raise
            return busy_response(request)
        return response

    return guarded


def busy_response(request: HttpRequest) -> HttpResponse:
    # A page that needs nothing from the database: no user, no theme, no menu.
    from django.template.loader import render_to_string

    response = HttpResponse(
        render_to_string("admin/backups_app/busy.html", {"request": request}),
        status=503,
    )
    response["Retry-After"] = "10"
    return response


class NumericIdAdmin(admin.ModelAdmin):
    """Answer 404, not 500 (or a redirect), for an id that is not one of ours."""

    def get_urls(self) -> list[URLPattern]:
        urls = super().get_urls()
        for pattern in urls:
            pattern.callback = busy_guard(pattern.callback)
        return urls

    class Media:
        # The status colours, on every list and page of the section.
        css = {"all": ("backups_app/backups.css",)}

    def check_object_id(self, object_id: Any) -> Any:
        """Return the id as the primary key's value; raise Http404 if it cannot be."""
        try:
            value = self.opts.pk.to_python(object_id)
        except ValidationError:
            value = None
        # Beyond 64 bits, drivers raise OverflowError (SQLite) or DataError.
        if value is None or (isinstance(value, int) and not 0 < value < 2**63):
            raise Http404(
                _("No %(name)s with id %(id)r.")
                % {"name": self.opts.verbose_name, "id": str(object_id)[:40]}
            )
        return value

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self.check_object_id(object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(
        self,
        request: HttpRequest,
        object_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self.check_object_id(object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(
        self,
        request: HttpRequest,
        object_id: str,
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        self.check_object_id(object_id)
        return super().history_view(request, object_id, extra_context)

    # Nothing done to these records goes into the admin log: the admin log is user
    # data, which a validation compares with a backup and a restore replaces, so an
    # entry about a download or a deleted record would make an unchanged database
    # "differ". Our records keep their own history (Operation, ValidationRun).
    def log_addition(  # type: ignore[override]
        self, request: HttpRequest, obj: Any, message: Any
    ) -> None:
        return None

    def log_change(  # type: ignore[override]
        self, request: HttpRequest, obj: Any, message: Any
    ) -> None:
        return None

    def log_deletion(self, request: HttpRequest, obj: Any, object_repr: str) -> None:
        return None

    def log_deletions(  # type: ignore[override]
        self, request: HttpRequest, queryset: Any
    ) -> None:
        return None
