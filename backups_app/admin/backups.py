"""The Backups section of the admin: list, back up, upload, download, validate, restore.

``admin_view`` only makes sure of an active staff user; every view here checks its
own permission. A backup is always chosen by record pk, never by a name or path
from the browser. Long operations go through ``tasks.start_operation``.
"""

from __future__ import annotations

import functools
from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core import signing
from django.core.exceptions import (
    PermissionDenied,
    SuspiciousFileOperation,
    ValidationError,
)
from django.db import OperationalError, router
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..conf import app_settings
from ..exceptions import BackupError, BackupFormatError, StorageError
from ..models import (
    BackupRecord,
    DrillRun,
    Integrity,
    Operation,
    Provenance,
    ValidationRun,
)
from ..operations.health import check_all
from ..operations.units import format_size
from ..records import (
    check_name,
    delete_backup,
    delete_backups,
    is_regular_file,
    open_source,
    open_stored_file,
    record_provenance,
    store_upload,
    sync_from_storage,
    who_survives,
)
from .forms import DatabaseForm, RestoreConfirmForm, UploadForm

PERMISSION_RUN = "backups_app.run_backup"
PERMISSION_UPLOAD = "backups_app.upload_backup"
PERMISSION_VALIDATE = "backups_app.validate_backup"
PERMISSION_RESTORE = "backups_app.restore_backup"
PERMISSION_RESTORE_FOREIGN = "backups_app.restore_foreign_backup"

STATUS_CLASSES = {
    # Colour and text always go together: the class only adds the colour, and each
    # colour means one thing everywhere (green: matches or succeeded, red: differs,
    # damaged or failed, blue: running, grey: queued or not known yet).
    "match": "status-ok",
    "differ": "status-bad",
    Integrity.INTACT: "status-ok",
    Integrity.DAMAGED: "status-bad",
    Integrity.UNCHECKED: "status-unknown",
    Operation.Status.SUCCEEDED: "status-ok",
    Operation.Status.FAILED: "status-bad",
    Operation.Status.QUEUED: "status-unknown",
    Operation.Status.RUNNING: "status-running",
    Provenance.OURS: "status-ok",
    Provenance.FOREIGN: "status-bad",
    Provenance.UNCHECKED: "status-unknown",
}

# After this long in the queue, a queued operation's page says that no worker seems
# to be running.
WORKER_PATIENCE = 10

# The signed cookie that lets the browser which started a restore see its outcome
# after the restore has logged it out.
RESTORE_COOKIE = "backups_restore"
RESTORE_COOKIE_SALT = "backups_app.restore-outcome"
RESTORE_COOKIE_AGE = 7 * 24 * 3600

# The steps of a long operation (Progress.stage), as the status page names them.
STEPS = {
    "backup": gettext_lazy("Writing the backup"),
    "validate": gettext_lazy("Comparing the backup with the database"),
    "verify": gettext_lazy("Checking the backup file"),
    "safety": gettext_lazy("Safety backup of the current contents"),
    "delete": gettext_lazy("Emptying the tables"),
    "restore": gettext_lazy("Writing the backup’s rows"),
    "check": gettext_lazy("Checking foreign keys"),
    "verify-written": gettext_lazy("Reading back what was written"),
}


def grouped(value: int | None) -> str:
    """Return a count with thousands separators, or a dash when it is unknown."""
    if value is None:
        return "–"
    return number_format(value, force_grouping=True)


def operation_outcome(operation: Operation) -> tuple[str, str]:
    """Return the status key and the words for an operation, the same everywhere.

    A validation that ran to its end found either a match or differences: it is
    never just "succeeded".
    """
    if operation.status == Operation.Status.SUCCEEDED:
        if operation.kind == Operation.Kind.VALIDATE:
            if operation.result.get("ok"):
                return "match", _("matches")
            return "differ", _("differs")
        return operation.status, operation.get_status_display()
    if (
        operation.status == Operation.Status.FAILED
        and operation.kind == Operation.Kind.VALIDATE
        and operation.backup_id
        and operation.backup.integrity == Integrity.DAMAGED
    ):
        return Integrity.DAMAGED, _("damaged")
    return operation.status, operation.get_status_display()


def human_size(size: int | None) -> str:
    return format_size(size)


def taken(when: Any) -> str:
    """Return a time with its age: "29 Nov 2026, 23:10 (11 minutes ago)"."""
    from django.utils.formats import date_format
    from django.utils.timesince import timesince

    if when is None:
        return "–"
    local = timezone.localtime(when) if settings.USE_TZ else when
    return _("%(when)s (%(age)s ago)") % {
        "when": date_format(local, "DATETIME_FORMAT"),
        "age": timesince(when, depth=1),
    }


def estimate(end: Any) -> str:
    """Return the time left until ``end`` in words, or "" when there is no estimate."""
    from django.utils.timesince import timeuntil

    if end is None:
        return ""
    if (end - timezone.now()).total_seconds() < 60:
        return _("less than a minute left in this step")
    return _("about %(left)s left in this step") % {"left": timeuntil(end, depth=1)}


def _parse_time(value: Any) -> Any:
    from django.utils.dateparse import parse_datetime

    try:
        parsed = parse_datetime(str(value)) if value else None
    except ValueError:
        return None
    if parsed is not None and settings.USE_TZ and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.get_fixed_timezone(0))
    return parsed


def status_badge(value: str, text: str) -> str:
    return format_html(
        '<span class="backup-status {}">{}</span>',
        STATUS_CLASSES.get(value, "status-unknown"),
        text,
    )


def account_databases() -> tuple[str | None, str | None]:
    """Return the aliases that hold the users and the sessions (None: no table)."""
    from django.contrib.auth import get_user_model

    user_db = router.db_for_read(get_user_model())
    session_db = None
    if settings.SESSION_ENGINE in (
        "django.contrib.sessions.backends.db",
        "django.contrib.sessions.backends.cached_db",
    ):
        from django.contrib.sessions.models import Session

        session_db = router.db_for_write(Session)
    return user_db, session_db


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

    def get_urls(self):
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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.check_object_id(object_id)
        return super().change_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        self.check_object_id(object_id)
        return super().delete_view(request, object_id, extra_context)

    def history_view(self, request, object_id, extra_context=None):
        self.check_object_id(object_id)
        return super().history_view(request, object_id, extra_context)

    # Nothing done to these records goes into the admin log: the admin log is user
    # data, which a validation compares with a backup and a restore replaces, so an
    # entry about a download or a deleted record would make an unchanged database
    # "differ". Our records keep their own history (Operation, ValidationRun).
    def log_addition(self, request, obj, message):
        return None

    def log_change(self, request, obj, message):
        return None

    def log_deletion(self, request, obj, object_repr):
        return None

    def log_deletions(self, request, queryset):
        return None


@admin.register(BackupRecord)
class BackupRecordAdmin(NumericIdAdmin):
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
        return _("%(tables)s tables, %(rows)s rows, %(size)s") % {
            "tables": grouped(obj.table_count),
            "rows": grouped(obj.rows),
            "size": human_size(obj.size),
        }

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

    # -- urls ----------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"

        def wrap(view: Any) -> Any:
            return busy_guard(self.admin_site.admin_view(view))

        return [
            path("backup/", wrap(self.backup_view), name=f"{prefix}_backup"),
            path("upload/", wrap(self.upload_view), name=f"{prefix}_upload"),
            path("sync/", wrap(self.sync_view), name=f"{prefix}_sync"),
            path(
                "<int:pk>/download/",
                wrap(self.download_view),
                name=f"{prefix}_download",
            ),
            path(
                "<int:pk>/validate/",
                wrap(self.validate_view),
                name=f"{prefix}_validate",
            ),
            path(
                "<int:pk>/restore/",
                wrap(self.restore_view),
                name=f"{prefix}_restore",
            ),
            *super().get_urls(),
        ]

    def changelist_url(self) -> str:
        return reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")

    def context(self, request: HttpRequest, title: str, **extra: Any) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "active_restore": Operation.objects.filter(
                kind=Operation.Kind.RESTORE, status__in=Operation.ACTIVE
            ).first(),
            **extra,
        }

    def changelist_view(self, request: HttpRequest, extra_context=None):
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
        }
        return super().changelist_view(request, extra_context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.check_object_id(object_id)  # before it goes into a query below
        user = request.user
        extra_context = {
            **(extra_context or {}),
            "can_run_backup": user.has_perm(PERMISSION_RUN),
            "can_validate": user.has_perm(PERMISSION_VALIDATE),
            "can_restore": user.has_perm(PERMISSION_RESTORE),
            "validations": ValidationRun.objects.filter(backup_id=object_id)[:10],
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def get_record(self, pk: int) -> BackupRecord:
        record = get_object_or_404(BackupRecord, pk=self.check_object_id(pk))
        try:
            check_name(record.name)
            regular = is_regular_file(record.name)
        except SuspiciousFileOperation:
            raise Http404(
                _("This record does not name a file in the backup storage.")
            ) from None
        if not regular:
            # A link (or folder, or device) put into the storage is never followed.
            raise Http404(_("This record does not name a regular file."))
        return record

    def start(
        self,
        request: HttpRequest,
        kind: str,
        database: str,
        record: BackupRecord | None = None,
        allow_foreign: bool = False,
        survivors: dict[str, bool | None] | None = None,
    ) -> HttpResponse | None:
        """Start an operation and redirect to its status page, or return None."""
        from ..tasks import OperationRefused, start_operation

        try:
            operation = start_operation(
                kind,
                database=database,
                user=request.user,
                backup=record,
                allow_foreign=allow_foreign,
            )
        except OperationRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        # A finished operation's page shows its outcome; a finished validation goes
        # straight to its results.
        if operation.status == Operation.Status.SUCCEEDED and operation.validation_id:
            self.message_user(
                request,
                operation.message,
                messages.SUCCESS if operation.result.get("ok") else messages.WARNING,
            )
            return HttpResponseRedirect(
                reverse(
                    "admin:backups_app_validationrun_change",
                    args=[operation.validation_id],
                )
            )
        if kind != Operation.Kind.RESTORE:
            return HttpResponseRedirect(
                reverse("admin:backups_app_operation_change", args=[operation.pk])
            )
        # A restore can log this browser out (its session, or its user, is not in the
        # backup): the outcome page, which this signed cookie opens without a login,
        # then says what happened and how to undo it.
        response = HttpResponseRedirect(
            reverse("admin:backups_app_operation_outcome", args=[operation.pk])
        )
        response.set_cookie(
            RESTORE_COOKIE,
            signing.dumps(
                {"op": operation.pk, **(survivors or {})}, salt=RESTORE_COOKIE_SALT
            ),
            max_age=RESTORE_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
        return response

    # -- views ---------------------------------------------------------------------

    def backup_view(self, request: HttpRequest) -> HttpResponse:
        require(request, PERMISSION_RUN)
        form = DatabaseForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            response = self.start(
                request, Operation.Kind.BACKUP, form.cleaned_data["database"]
            )
            if response is not None:
                return response
        return TemplateResponse(
            request,
            "admin/backups_app/backup_form.html",
            self.context(request, _("Back up now"), form=form),
        )

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        # Not run_backup: an upload brings in a file from elsewhere.
        require(request, PERMISSION_UPLOAD)
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            uploaded = form.cleaned_data["file"]
            try:
                record = store_upload(
                    uploaded,
                    username=request.user.get_username(),
                    user_id=str(request.user.pk),
                )
            except BackupFormatError as exc:
                form.add_error(
                    "file",
                    _("This file was refused and not kept: %(error)s") % {"error": exc},
                )
            except (StorageError, SuspiciousFileOperation) as exc:
                form.add_error("file", str(exc))
            else:
                duplicate = self.duplicate_of(request, record)
                if duplicate is not None:
                    return duplicate
                from ..tasks import record_operation

                record_operation(
                    Operation.Kind.UPLOAD,
                    user=request.user,
                    backup=record,
                    message=_("Uploaded %(name)s.") % {"name": record.name},
                )
                if record.provenance == Provenance.OURS:
                    message = _(
                        "Uploaded %(name)s: an intact backup of %(tables)s tables, "
                        "made by this installation."
                    )
                    level = messages.SUCCESS
                else:
                    message = _(
                        "Uploaded %(name)s: an intact backup of %(tables)s tables, "
                        "but not made by this installation (foreign); restoring it "
                        "needs the permission to restore foreign backups."
                    )
                    level = messages.WARNING
                self.message_user(
                    request,
                    message % {"name": record.name, "tables": record.table_count},
                    level,
                )
                return HttpResponseRedirect(self.changelist_url())
        return TemplateResponse(
            request,
            "admin/backups_app/upload_form.html",
            self.context(request, _("Upload a backup"), form=form),
        )

    def duplicate_of(
        self, request: HttpRequest, record: BackupRecord
    ) -> HttpResponse | None:
        """Drop a just-uploaded file that is already stored; redirect to the one kept.

        Equal whole-file digests (over the uncompressed lines) mean the same rows,
        whatever the compression of either file.
        """
        if not record.digest:
            return None
        kept = (
            BackupRecord.objects.filter(digest=record.digest)
            .exclude(pk=record.pk)
            .order_by("recorded", "pk")
            .first()
        )
        if kept is None:
            return None
        delete_backup(record)
        self.message_user(
            request,
            _(
                "This file has the same contents as %(name)s, which is already "
                "stored; the upload was not kept."
            )
            % {"name": kept.name},
            messages.WARNING,
        )
        return HttpResponseRedirect(
            reverse("admin:backups_app_backuprecord_change", args=[kept.pk])
        )

    def sync_view(self, request: HttpRequest) -> HttpResponse:
        return require_POST(self._sync)(request)

    def _sync(self, request: HttpRequest) -> HttpResponse:
        require(request, PERMISSION_RUN)
        try:
            added, gone = sync_from_storage()
        except (OSError, BackupError) as exc:
            self.message_user(
                request,
                _("Cannot list the backup storage: %(error)s") % {"error": exc},
                messages.ERROR,
            )
            return HttpResponseRedirect(self.changelist_url())
        self.message_user(
            request,
            _(
                "Recorded %(added)s new files from the backup storage; forgot "
                "%(gone)s records whose files are gone."
            )
            % {"added": len(added), "gone": len(gone)},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(self.changelist_url())

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        require(request, PERMISSION_RUN)
        record = self.get_record(pk)
        try:
            handle = open_stored_file(record.name)
        except StorageError:
            raise Http404(_("This record does not name a regular file.")) from None
        except (OSError, SuspiciousFileOperation):
            self.message_user(
                request,
                _("%(name)s is no longer in the backup storage.")
                % {"name": record.name},
                messages.ERROR,
            )
            return HttpResponseRedirect(self.changelist_url())
        from ..tasks import record_operation

        record_operation(
            Operation.Kind.DOWNLOAD,
            user=request.user,
            backup=record,
            message=_("Downloaded %(name)s.") % {"name": record.name},
        )
        return FileResponse(
            handle,
            as_attachment=True,
            filename=record.name,
            content_type="application/octet-stream",
        )

    def validate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        require(request, PERMISSION_VALIDATE)
        record = self.get_record(pk)
        form = DatabaseForm(request.POST or None, initial_database=record.database)
        if request.method == "POST" and form.is_valid():
            response = self.start(
                request, Operation.Kind.VALIDATE, form.cleaned_data["database"], record
            )
            if response is not None:
                return response
        return TemplateResponse(
            request,
            "admin/backups_app/validate_form.html",
            self.context(
                request,
                _("Validate %(name)s") % {"name": record.name},
                form=form,
                record=record,
                validations=record.validations.all()[:10],
            ),
        )

    def restore_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        require(request, PERMISSION_RESTORE)
        record = self.get_record(pk)
        data = request.POST if request.method == "POST" else request.GET
        database_form = DatabaseForm(
            data if "database" in data else None, initial_database=record.database
        )
        if database_form.is_bound and database_form.is_valid():
            database = database_form.cleaned_data["database"]
        else:
            database = database_form.fields["database"].initial
        confirm_form = RestoreConfirmForm(
            request.POST if request.method == "POST" else None, database=database
        )
        may_restore_foreign = request.user.has_perm(PERMISSION_RESTORE_FOREIGN)
        if (
            request.method == "POST"
            and not may_restore_foreign
            and self.provenance(record) != Provenance.OURS
        ):
            raise PermissionDenied
        if (
            request.method == "POST"
            and database_form.is_valid()
            and confirm_form.is_valid()
        ):
            response = self.start(
                request,
                Operation.Kind.RESTORE,
                database,
                record,
                allow_foreign=may_restore_foreign,
                survivors=self.survivors(request, record, database),
            )
            if response is not None:
                return response
        return TemplateResponse(
            request,
            "admin/backups_app/restore_preview.html",
            self.context(
                request,
                _("Restore %(name)s") % {"name": record.name},
                record=record,
                database=database,
                database_form=database_form,
                confirm_form=confirm_form,
                may_restore_foreign=may_restore_foreign,
                **self.preview(request, record, database),
            ),
        )

    def provenance(self, record: BackupRecord) -> str:
        """Return whether the record's file was made here, reading it if not known."""
        if record.provenance == Provenance.UNCHECKED:
            from ..fileformat.reader import verify_file
            from ..provenance import provenance_of

            try:
                with open_source(record.name) as source, source.open() as stream:
                    verified = verify_file(stream, record.name)
            except (BackupError, SuspiciousFileOperation):
                return Provenance.UNCHECKED
            record_provenance(record, provenance_of(verified.header, verified.trailer))
        return record.provenance

    def survivors(
        self, request: HttpRequest, record: BackupRecord, database: str
    ) -> dict[str, bool | None]:
        """Tell whether the user and their session are in the backup.

        None where the question does not arise: the user's account or session is
        not kept in ``database`` (a restore of a second database, or sessions kept
        in a cache or in cookies), or the backup does not carry that table.
        """
        user_db, session_db = account_databases()
        if database not in (user_db, session_db):
            return {"user": None, "session": None}
        try:
            with open_source(record.name) as source:
                found = who_survives(
                    source,
                    request.user,
                    request.session.session_key if database == session_db else None,
                )
        except (BackupError, SuspiciousFileOperation):
            return {"user": None, "session": None}
        return {
            "user": found["user"] if database == user_db else None,
            "session": found["session"] if database == session_db else None,
        }

    def preview(
        self, request: HttpRequest, record: BackupRecord, database: str
    ) -> dict:
        """Plan the restore (reads the whole file) and check who survives it."""
        from ..conf import app_settings
        from ..provenance import auth_changes
        from ..restore import plan_restore

        result: dict[str, Any] = {
            "plan": None,
            "error": "",
            "safety_backup": app_settings.SAFETY_BACKUP,
        }
        user_db, session_db = account_databases()
        with_session = request.session.session_key if database == session_db else None
        try:
            with open_source(record.name) as source:
                plan = plan_restore(source, using=database)
                survivors = (
                    who_survives(source, request.user, with_session)
                    if database in (user_db, session_db)
                    else {"user": None, "session": None}
                )
                # Only for a foreign file: what it would do to the accounts.
                changes = (
                    None
                    if plan.provenance == Provenance.OURS
                    else auth_changes(source, database)
                )
        except (BackupError, SuspiciousFileOperation) as exc:
            result["error"] = str(exc)
            return result
        record_provenance(record, plan.provenance)
        result["plan"] = plan
        result["foreign"] = plan.provenance != Provenance.OURS
        result["can_confirm"] = plan.can_restore and (
            not result["foreign"] or request.user.has_perm(PERMISSION_RESTORE_FOREIGN)
        )
        result["auth_changes"] = changes
        result["header"] = plan.header
        result["taken"] = taken(_parse_time(plan.header.get("created")))
        # Only a restore of the database that holds them can log anyone out.
        result["user_survives"] = survivors["user"] if database == user_db else None
        result["session_survives"] = survivors["session"]
        result["operations_db"] = router.db_for_write(Operation)
        return result


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

    @admin.display(description=gettext_lazy("result"), ordering="ok")
    def summary_display(self, obj: ValidationRun) -> str:
        return status_badge("match" if obj.ok else "differ", obj.summary)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.check_object_id(object_id)
        if not self.has_view_permission(request):
            raise PermissionDenied
        run = get_object_or_404(ValidationRun, pk=object_id)
        differing = [t for t in run.tables if t.get("status") != "match"]
        matching = [t for t in run.tables if t.get("status") == "match"]
        return TemplateResponse(
            request,
            "admin/backups_app/validation_report.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Validation of %(name)s") % {"name": run.backup_name},
                "run": run,
                "tables": differing + matching,
                "differing": differing,
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


@admin.register(Operation)
class OperationAdmin(NumericIdAdmin):
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

    def get_urls(self):
        return [
            path(
                "<int:pk>/outcome/",
                # Not admin_view: it must answer a browser the restore logged out.
                busy_guard(never_cache(self.outcome_view)),
                name="backups_app_operation_outcome",
            ),
            *super().get_urls(),
        ]

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

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.check_object_id(object_id)
        if not self.has_view_permission(request):
            raise PermissionDenied
        operation = get_object_or_404(Operation, pk=object_id)
        return TemplateResponse(
            request,
            "admin/backups_app/operation_status.html",
            self.status_context(request, operation),
        )

    def status_context(self, request: HttpRequest, operation: Operation) -> dict:
        from ..tasks import queue_backend

        key, words = operation_outcome(operation)
        safety = None
        if operation.kind == Operation.Kind.RESTORE and isinstance(
            operation.result, dict
        ):
            name = operation.result.get("safety_backup")
            if name:
                safety = BackupRecord.objects.filter(name=name).first()
        waiting = (timezone.now() - operation.created).total_seconds() > WORKER_PATIENCE
        no_worker = (
            operation.status == Operation.Status.QUEUED
            and waiting
            and queue_backend() is not None
        )
        percent = None
        if operation.rows_total:
            percent = min(100, int(100 * operation.rows_done / operation.rows_total))
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": capfirst(str(operation)),
            "operation": operation,
            "refresh": operation.is_active,
            # A restore's page refreshes through the outcome page, which still
            # answers once the restore has logged this browser out.
            "refresh_url": (
                reverse("admin:backups_app_operation_outcome", args=[operation.pk])
                if operation.kind == Operation.Kind.RESTORE
                else ""
            ),
            "record_opts": BackupRecord._meta,
            "status_badge": status_badge(key, capfirst(words)),
            "step": STEPS.get(operation.stage, operation.stage),
            "rows_done": grouped(operation.rows_done),
            "rows_total": grouped(operation.rows_total)
            if operation.rows_total is not None
            else "",
            "percent": percent,
            "no_worker": no_worker,
            "estimate": estimate(operation.estimated_end),
            "safety": safety,
            "undo_command": (
                f"python manage.py restore {safety.name} --database {operation.database}"
                if safety
                else ""
            ),
        }

    def outcome_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Show a restore's outcome, also to the browser it logged out.

        A staff user who may see operations is sent to the status page. Anyone else
        sees the outcome only with the signed cookie set when this browser started
        that restore; without it, the login page.
        """
        from django.contrib.auth.views import redirect_to_login

        operation = get_object_or_404(
            Operation, pk=self.check_object_id(pk), kind=Operation.Kind.RESTORE
        )
        status_url = reverse("admin:backups_app_operation_change", args=[pk])
        user = request.user
        if user.is_active and user.is_staff and self.has_view_permission(request):
            return HttpResponseRedirect(status_url)
        try:
            data = signing.loads(
                request.COOKIES[RESTORE_COOKIE],
                salt=RESTORE_COOKIE_SALT,
                max_age=RESTORE_COOKIE_AGE,
            )
        except (KeyError, signing.BadSignature):
            data = {}
        if not isinstance(data, dict) or data.get("op") != operation.pk:
            return redirect_to_login(status_url, reverse("admin:login"))
        context = self.status_context(request, operation)
        context.update(
            {
                "logged_out": True,
                "user_lost": data.get("user") is False,
                "session_lost": data.get("session") is False,
                "login_url": f"{reverse('admin:login')}?next={status_url}",
            }
        )
        return TemplateResponse(
            request, "admin/backups_app/operation_status.html", context
        )
