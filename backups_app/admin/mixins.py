"""The views of the Backups admin, as mixins of a ModelAdmin of BackupRecord.

Each mixin adds one page (its URL, its view, its template) with small hooks to
override, the way django-import-export's admin mixins do: a ``*_template_name``
attribute, a ``*_form_class``, a ``get_*_form`` and a ``get_*_context``.
``BackupRecordAdmin`` (``admin/backups.py``) composes them; a project can compose
its own admin from the ones it wants.

A backup is always chosen by record pk, never by a name or path from the browser.
Long operations go through ``tasks.start_operation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.urls import URLPattern

from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation
from django.db import router
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from ..exceptions import BackupError, BackupFormatError, StorageError
from ..models import BackupRecord, Operation, Provenance
from ..progress import long_stages
from ..records import (
    check_name,
    check_provenance,
    delete_backup,
    is_regular_file,
    open_restorable,
    open_source,
    open_stored_file,
    record_provenance,
    store_upload,
    sync_from_storage,
    who_survives,
)
from .base import (
    PERMISSION_RESTORE,
    PERMISSION_RESTORE_FOREIGN,
    PERMISSION_RUN,
    PERMISSION_UPLOAD,
    PERMISSION_VALIDATE,
    admin_url,
    busy_guard,
    require,
)
from .display import (
    STEPS,
    estimate,
    grouped,
    operation_outcome,
    parse_time,
    status_badge,
    taken,
)
from .forms import DatabaseForm, RestoreConfirmForm, UploadForm

# The mixins go on NumericIdAdmin subclasses (of BackupRecord, or of Operation for
# the status and outcome pages); type checkers see them as such.
if TYPE_CHECKING:
    from .base import NumericIdAdmin as _ModelAdmin
else:
    _ModelAdmin = object

# After this long in the queue, a queued operation's page says that no worker seems
# to be running.
WORKER_PATIENCE = 10

# The signed cookie that lets the browser which started a restore see its outcome
# after the restore has logged it out.
RESTORE_COOKIE = "backups_restore"
RESTORE_COOKIE_SALT = "backups_app.restore-outcome"
RESTORE_COOKIE_AGE = 7 * 24 * 3600


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


class BackupViewsMixin(_ModelAdmin):
    """What the views of backup records share: their URLs, context, record, start."""

    def view_url(self, route: str, view: Any, name: str) -> Any:
        """Return the URL pattern of one of these views, named as the admin names
        its own (``backups_app_backuprecord_<name>``)."""
        return path(
            route,
            busy_guard(self.admin_site.admin_view(view)),
            name=f"{self.opts.app_label}_{self.opts.model_name}_{name}",
        )

    def changelist_url(self) -> str:
        return admin_url(
            self, f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        )

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
                admin_url(
                    self, "backups_app_validationrun_change", operation.validation_id
                )
            )
        if kind == Operation.Kind.RESTORE:
            return self.restore_started(request, operation, survivors or {})
        return HttpResponseRedirect(
            admin_url(self, "backups_app_operation_change", operation.pk)
        )

    def restore_started(
        self,
        request: HttpRequest,
        operation: Operation,
        survivors: dict[str, bool | None],
    ) -> HttpResponse:
        """Return the answer to a restore just started: its status page here;
        RestoreMixin sends the browser to the outcome page, with a signed cookie."""
        return HttpResponseRedirect(
            admin_url(self, "backups_app_operation_change", operation.pk)
        )


class RunBackupMixin(BackupViewsMixin):
    """Back up now: pick a database, start a backup."""

    backup_template_name = "admin/backups_app/backup_form.html"
    backup_form_class = DatabaseForm

    def get_urls(self) -> list[URLPattern]:
        return [
            self.view_url("backup/", self.backup_view, "backup"),
            *super().get_urls(),
        ]

    def get_backup_form(self, request: HttpRequest) -> DatabaseForm:
        return self.backup_form_class(request.POST or None)

    def get_backup_context(self, request: HttpRequest, **context: Any) -> dict:
        return self.context(request, _("Back up now"), **context)

    def backup_view(self, request: HttpRequest) -> HttpResponse:
        require(request, PERMISSION_RUN)
        form = self.get_backup_form(request)
        if request.method == "POST" and form.is_valid():
            response = self.start(
                request, Operation.Kind.BACKUP, form.cleaned_data["database"]
            )
            if response is not None:
                return response
        return TemplateResponse(
            request,
            self.backup_template_name,
            self.get_backup_context(request, form=form),
        )


class UploadMixin(BackupViewsMixin):
    """Upload a backup file: checked whole, recorded, kept once."""

    upload_template_name = "admin/backups_app/upload_form.html"
    upload_form_class = UploadForm

    def get_urls(self) -> list[URLPattern]:
        return [
            self.view_url("upload/", self.upload_view, "upload"),
            *super().get_urls(),
        ]

    def get_upload_form(self, request: HttpRequest) -> UploadForm:
        return self.upload_form_class(request.POST or None, request.FILES or None)

    def get_upload_context(self, request: HttpRequest, **context: Any) -> dict:
        return self.context(request, _("Upload a backup"), **context)

    def upload_message(self, record: BackupRecord) -> tuple[str, int]:
        """Return the message and its level for a file just uploaded and kept."""
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
        return message % {"name": record.name, "tables": record.table_count}, level

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        # Not run_backup: an upload brings in a file from elsewhere.
        require(request, PERMISSION_UPLOAD)
        form = self.get_upload_form(request)
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
                self.message_user(request, *self.upload_message(record))
                return HttpResponseRedirect(self.changelist_url())
        return TemplateResponse(
            request,
            self.upload_template_name,
            self.get_upload_context(request, form=form),
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
            admin_url(self, "backups_app_backuprecord_change", kept.pk)
        )


class SyncMixin(BackupViewsMixin):
    """Record the files in the backup storage that have no record, forget the
    records whose file is gone (POST only)."""

    def get_urls(self) -> list[URLPattern]:
        return [self.view_url("sync/", self.sync_view, "sync"), *super().get_urls()]

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
        recorded = ngettext(
            "Recorded %(count)s new file from the backup storage",
            "Recorded %(count)s new files from the backup storage",
            len(added),
        ) % {"count": len(added)}
        forgot = ngettext(
            "forgot %(count)s record whose file is gone",
            "forgot %(count)s records whose files are gone",
            len(gone),
        ) % {"count": len(gone)}
        self.message_user(request, f"{recorded}; {forgot}.", messages.SUCCESS)
        return HttpResponseRedirect(self.changelist_url())


class DownloadMixin(BackupViewsMixin):
    """Download a backup file as it is stored (still encrypted, if it is)."""

    # Sent this much at a time (FileResponse's own default is 4 KiB); from an object
    # storage each block is a ranged read, never the whole object at once.
    download_block_size = 1 << 20

    def get_urls(self) -> list[URLPattern]:
        return [
            self.view_url("<int:pk>/download/", self.download_view, "download"),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, pk: int) -> HttpResponseBase:
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
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=record.name,
            content_type="application/octet-stream",
        )
        response.block_size = self.download_block_size
        return response


class ValidateMixin(BackupViewsMixin):
    """Validate a backup: compare it with a database, table by table."""

    validate_template_name = "admin/backups_app/validate_form.html"
    validate_form_class = DatabaseForm

    def get_urls(self) -> list[URLPattern]:
        return [
            self.view_url("<int:pk>/validate/", self.validate_view, "validate"),
            *super().get_urls(),
        ]

    def get_validate_form(
        self, request: HttpRequest, record: BackupRecord
    ) -> DatabaseForm:
        return self.validate_form_class(
            request.POST or None, initial_database=record.database
        )

    def get_validate_context(
        self, request: HttpRequest, record: BackupRecord, **context: Any
    ) -> dict:
        return self.context(
            request,
            _("Validate %(name)s") % {"name": record.name},
            record=record,
            validations=record.validations.all()[:10],
            **context,
        )

    def validate_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        require(request, PERMISSION_VALIDATE)
        record = self.get_record(pk)
        form = self.get_validate_form(request, record)
        if request.method == "POST" and form.is_valid():
            response = self.start(
                request, Operation.Kind.VALIDATE, form.cleaned_data["database"], record
            )
            if response is not None:
                return response
        return TemplateResponse(
            request,
            self.validate_template_name,
            self.get_validate_context(request, record, form=form),
        )


class RestoreMixin(BackupViewsMixin):
    """Restore a backup: a preview of what it will do (the plan, who is logged out,
    what changes in the accounts), then the confirmation on the same page."""

    restore_template_name = "admin/backups_app/restore_preview.html"
    restore_database_form_class = DatabaseForm
    restore_confirm_form_class = RestoreConfirmForm

    def get_urls(self) -> list[URLPattern]:
        return [
            self.view_url("<int:pk>/restore/", self.restore_view, "restore"),
            *super().get_urls(),
        ]

    def get_restore_context(
        self, request: HttpRequest, record: BackupRecord, database: str, **context: Any
    ) -> dict:
        return self.context(
            request,
            _("Restore %(name)s") % {"name": record.name},
            record=record,
            database=database,
            **context,
            **self.preview(request, record, database),
        )

    def restore_started(
        self,
        request: HttpRequest,
        operation: Operation,
        survivors: dict[str, bool | None],
    ) -> HttpResponse:
        # A restore can log this browser out (its session, or its user, is not in the
        # backup): the outcome page, which this signed cookie opens without a login,
        # then says what happened and how to undo it.
        response = HttpResponseRedirect(
            admin_url(self, "backups_app_operation_outcome", operation.pk)
        )
        response.set_cookie(
            RESTORE_COOKIE,
            signing.dumps({"op": operation.pk, **survivors}, salt=RESTORE_COOKIE_SALT),
            max_age=RESTORE_COOKIE_AGE,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )
        return response

    def restore_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        require(request, PERMISSION_RESTORE)
        record = self.get_record(pk)
        data = request.POST if request.method == "POST" else request.GET
        database_form = self.restore_database_form_class(
            data if "database" in data else None, initial_database=record.database
        )
        if database_form.is_bound and database_form.is_valid():
            database = database_form.cleaned_data["database"]
        else:
            database = database_form.fields["database"].initial
        confirm_form = self.restore_confirm_form_class(
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
            self.restore_template_name,
            self.get_restore_context(
                request,
                record,
                database,
                database_form=database_form,
                confirm_form=confirm_form,
                may_restore_foreign=may_restore_foreign,
            ),
        )

    def provenance(self, record: BackupRecord) -> str:
        """Return whether the record's file was made here, reading it if not known."""
        return check_provenance(record)

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
            # An undo file is read as the backup it stands for, not built (the
            # restore that follows builds it once).
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
            "undo_files": app_settings.UNDO_FILES,
        }
        user_db, session_db = account_databases()
        with_session = request.session.session_key if database == session_db else None
        try:
            with open_restorable(record.name) as source:
                plan = plan_restore(source, using=database, compare=True)
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
        result["changing"] = [t for t in plan.tables if not t.unchanged]
        result["unchanged"] = [t.label for t in plan.tables if t.unchanged]
        result["changes"] = plan.changes()
        result["foreign"] = plan.provenance != Provenance.OURS
        result["can_confirm"] = plan.can_restore and (
            not result["foreign"] or request.user.has_perm(PERMISSION_RESTORE_FOREIGN)
        )
        result["auth_changes"] = changes
        result["header"] = plan.header
        result["taken"] = taken(parse_time(plan.header.get("created")))
        # Only a restore of the database that holds them can log anyone out.
        result["user_survives"] = survivors["user"] if database == user_db else None
        result["session_survives"] = survivors["session"]
        result["operations_db"] = router.db_for_write(Operation)
        return result


class OperationStatusMixin(_ModelAdmin):
    """The status page of an Operation: its step, progress and outcome, and for a
    restore the safety backup and the command that undoes it."""

    status_template_name = "admin/backups_app/operation_status.html"

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
        operation = get_object_or_404(Operation, pk=object_id)
        return TemplateResponse(
            request,
            self.status_template_name,
            self.status_context(request, operation),
        )

    def undo_command(self, operation: Operation, safety: BackupRecord | None) -> str:
        """Return the command that undoes a restore (from its safety backup), or ""."""
        if safety is None:
            return ""
        return f"python manage.py restore {safety.name} --database {operation.database}"

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
                admin_url(self, "backups_app_operation_outcome", operation.pk)
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
            "undo_command": self.undo_command(operation, safety),
            "rows_changed": rows_changed(operation.result),
            "stage_times": stage_times(operation.result),
        }


def rows_changed(result: Any) -> dict[str, int] | None:
    """A restore's rows deleted, inserted and updated, each row counted once, as the
    command and the operation's message count them (its result counts an updated
    row as deleted and inserted too)."""
    from ..restore import rows_counted_once

    if not isinstance(result, dict) or "rows_deleted" not in result:
        return None
    return rows_counted_once(
        result["rows_deleted"], result["rows_inserted"], result.get("rows_updated") or 0
    )


def stage_times(result: Any) -> list[tuple[str, float]]:
    """Where a restore's time went: the stages that took time, by their names."""
    stages = result.get("stages") if isinstance(result, dict) else None
    return [
        (str(STEPS.get(stage, stage)), seconds)
        for stage, seconds in long_stages(stages or {})
    ]


class RestoreOutcomeMixin(OperationStatusMixin):
    """The outcome of a restore, also for the browser the restore logged out: the
    signed cookie set when it started the restore opens it without a login."""

    outcome_template_name = "admin/backups_app/operation_status.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "<int:pk>/outcome/",
                # Not admin_view: it must answer a browser the restore logged out.
                busy_guard(never_cache(self.outcome_view)),
                name="backups_app_operation_outcome",
            ),
            *super().get_urls(),
        ]

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
        status_url = admin_url(self, "backups_app_operation_change", pk)
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
            return redirect_to_login(status_url, admin_url(self, "login"))
        context = self.status_context(request, operation)
        context.update(
            {
                "logged_out": True,
                "user_lost": data.get("user") is False,
                "session_lost": data.get("session") is False,
                "login_url": f"{admin_url(self, 'login')}?next={status_url}",
                # Nothing in it to navigate to: for this browser, the admin's
                # sidebar would only say it may see nothing.
                "is_nav_sidebar_enabled": False,
            }
        )
        return TemplateResponse(request, self.outcome_template_name, context)
