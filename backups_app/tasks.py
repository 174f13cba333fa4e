"""Run admin operations (backup, validate, restore) in a worker, or in the request.

Django's Tasks framework (``django.tasks`` on Django 6, the ``django-tasks`` backport
on 5.2) runs them when the default task backend is a real queue such as
``django_tasks_db.DatabaseBackend``. Without one, or with the Immediate or Dummy
backend, the operation runs in the request that started it. Either way its state
lives in an ``Operation`` row, which the status page reads.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, router, transaction
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from .exceptions import BackupError, OperationInProgressError
from .models import BackupRecord, Operation, Provenance
from .progress import Progress
from .records import (
    open_source,
    record_admin_backup,
    record_integrity,
    record_provenance,
    record_validation,
)

if TYPE_CHECKING:
    from .restore import RestoreSummary

logger = logging.getLogger(__name__)

# Progress is written at most this often, in seconds.
PROGRESS_INTERVAL = 1.0


def tasks_framework() -> ModuleType | None:
    """Return ``django.tasks`` or the ``django_tasks`` backport, whichever exists."""
    for name in ("django.tasks", "django_tasks"):
        try:
            return import_module(name)
        except ImportError:
            continue
    return None


def queue_backend() -> Any | None:
    """Return the default task backend if it runs tasks outside the request."""
    framework = tasks_framework()
    if framework is None:
        return None
    backend = framework.task_backends[framework.DEFAULT_TASK_BACKEND_ALIAS]
    in_process = []
    for module, name in (("immediate", "ImmediateBackend"), ("dummy", "DummyBackend")):
        try:
            backend_module = import_module(f"{framework.__name__}.backends.{module}")
        except ImportError:
            continue
        in_process.append(getattr(backend_module, name))
    if isinstance(backend, tuple(in_process)):
        return None
    return backend


def perform_operation(operation_id: int) -> str:
    """Run the operation with this id to its end, here; return its final status."""
    operation = Operation.objects.get(pk=operation_id)
    if operation.status != Operation.Status.QUEUED:
        return operation.status
    OperationRunner(operation).run()
    return operation.status


def run_operation(operation_id: int) -> str:
    """The task a worker runs: ``perform_operation``."""
    return perform_operation(operation_id)


# A worker finds a task by its function's dotted path, so the module attribute of
# that name must be the Task itself. This module is imported only when an operation
# starts or a worker runs one, never at startup, so reading TASKS here is safe.
_framework = tasks_framework()
if _framework is not None:
    run_operation = _framework.task()(run_operation)


# -- starting ------------------------------------------------------------------------


class OperationRefused(Exception):
    """The operation cannot start now; the message says why."""


def start_operation(
    kind: str,
    *,
    database: str,
    user: Any,
    backup: BackupRecord | None = None,
    allow_foreign: bool = False,
) -> Operation:
    """Create the Operation, then enqueue it or run it here; return it.

    Refuses (OperationRefused) while a restore is queued or running, and refuses a
    restore while any other operation is. A restore with ``allow_foreign`` false
    refuses (fails) a file not made by this installation.
    """
    fields = {
        "kind": kind,
        "database": database,
        "backup": backup,
        "backup_name": backup.name if backup else "",
        "username": user.get_username(),
        "user_id": str(user.pk),
        "exclusive": kind if kind == Operation.Kind.RESTORE else None,
        "allow_foreign": allow_foreign,
    }
    db = router.db_for_write(Operation)
    try:
        with transaction.atomic(using=db):
            active = Operation.objects.using(db).filter(status__in=Operation.ACTIVE)
            if active.filter(kind=Operation.Kind.RESTORE).exists():
                raise OperationRefused(
                    _(
                        "A restore is queued or running; wait until it has finished "
                        "before starting anything else."
                    )
                )
            if kind == Operation.Kind.RESTORE and active.exists():
                raise OperationRefused(
                    _(
                        "Another backup operation is queued or running; wait until "
                        "it has finished before restoring."
                    )
                )
            operation = Operation.objects.using(db).create(**fields)
    except IntegrityError as exc:
        # Another request created an active restore between the check and the insert.
        raise OperationRefused(
            _("A restore is queued or running; wait until it has finished.")
        ) from exc
    backend = queue_backend()
    if backend is None:
        perform_operation(operation.pk)
        operation.refresh_from_db()
        return operation
    try:
        # A Task here: decorated above when a task framework is installed.
        result = run_operation.enqueue(operation.pk)  # type: ignore[attr-defined]
    except Exception as exc:
        OperationRunner(operation).fail(
            _("Could not queue the operation: %(error)s") % {"error": exc}
        )
        raise
    Operation.objects.filter(pk=operation.pk).update(task_id=str(result.id)[:64])
    operation.task_id = str(result.id)[:64]
    return operation


def record_operation(
    kind: str, *, user: Any, backup: BackupRecord, message: str
) -> Operation:
    """Record a quick operation (download, upload) that is done as it starts."""
    now = timezone.now()
    return Operation.objects.create(
        kind=kind,
        status=Operation.Status.SUCCEEDED,
        database=backup.database,
        backup=backup,
        backup_name=backup.name,
        username=user.get_username(),
        user_id=str(user.pk),
        started=now,
        finished=now,
        message=message,
    )


def mark_failed(operations: Any, *, username: str) -> int:
    """Mark the active operations among ``operations`` as failed by ``username``
    (when their worker died), freeing the restore lock; return how many."""
    return operations.filter(status__in=Operation.ACTIVE).update(
        status=Operation.Status.FAILED,
        finished=timezone.now(),
        exclusive=None,
        message=_("Marked as failed by %(user)s.") % {"user": username},
    )


# -- running -------------------------------------------------------------------------


def grouped(count: int) -> str:
    """A count as the admin's tables show it (20,120)."""
    return number_format(count, force_grouping=True)


def restored_message(database: str, name: str, summary: RestoreSummary) -> str:
    """What a restore did, for its Operation, each row counted once."""
    rows = summary.rows_changed()
    counts = [
        ngettext("%(count)s row deleted", "%(count)s rows deleted", rows["deleted"])
        % {"count": grouped(rows["deleted"])},
        ngettext("%(count)s row inserted", "%(count)s rows inserted", rows["inserted"])
        % {"count": grouped(rows["inserted"])},
        ngettext("%(count)s row updated", "%(count)s rows updated", rows["updated"])
        % {"count": grouped(rows["updated"])},
    ]
    return _("Restored database %(database)s from %(name)s: %(counts)s.") % {
        "database": database,
        "name": name,
        "counts": ", ".join(counts),
    }


class OperationRunner:
    """Carry out one Operation and keep its row up to date."""

    def __init__(self, operation: Operation):
        self.operation = operation
        self.db = operation._state.db or DEFAULT_DB_ALIAS
        self._last_write = 0.0
        self._depth = len(connections[self.db].atomic_blocks)
        self._expected: dict[str, int | None] = {}
        self._stage = ""
        self._label = ""
        self._step_started = 0.0
        self._step_started_at = timezone.now()
        self._rows_before = 0
        self._rows_current = 0

    # Progress is written through the ORM only when the engine holds no transaction
    # open on the Operation's database: a backup's snapshot is read-only, and rows a
    # restore writes are invisible (and rolled back on failure) until it commits.
    def _engine_in_transaction(self) -> bool:
        return len(connections[self.db].atomic_blocks) > self._depth

    def _save(self, **fields: Any) -> None:
        for name, value in fields.items():
            setattr(self.operation, name, value)
        if self._engine_in_transaction():
            return
        Operation.objects.using(self.db).filter(pk=self.operation.pk).update(**fields)

    def expect(self, stage: str, rows: int | None) -> None:
        """Note how many rows a step will go through, when known beforehand."""
        self._expected[stage] = rows

    def progress(self, report: Progress) -> None:
        now = time.monotonic()
        if report.stage != self._stage:
            # A new step: its rows are counted, and its time measured, from zero.
            self._stage = report.stage
            self._step_started = now
            self._step_started_at = timezone.now()
            self._label = report.label
            self._rows_before = 0
            self._rows_current = 0
            self._last_write = 0.0
        elif report.label != self._label:
            self._rows_before += self._rows_current
            self._label = report.label
            self._rows_current = 0
        self._rows_current = report.done
        if now - self._last_write < PROGRESS_INTERVAL:
            return
        self._last_write = now
        done = self._rows_before + self._rows_current
        # What the engine knows (a backup counts its rows first) before the guess.
        total = report.stage_total
        if total is None:
            total = self._expected.get(report.stage)
        if total is not None and done > total:
            total = None  # the database grew meanwhile: no honest estimate
        estimated_end = None
        elapsed = now - self._step_started
        if total and done and elapsed > 0:
            estimated_end = timezone.now() + timedelta(
                seconds=elapsed * (total - done) / done
            )
        text = report.label
        if report.total:
            text = f"{report.label}: {report.done:,} / {report.total:,} rows"
        elif report.done:
            text = f"{report.label}: {report.done:,} rows"
        self._save(
            stage=report.stage[:40],
            progress=text[:255],
            rows_done=done,
            rows_total=total,
            step_started=self._step_started_at,
            estimated_end=estimated_end,
        )

    def fail(self, message: str) -> None:
        self._save(
            status=Operation.Status.FAILED,
            finished=timezone.now(),
            message=message,
            exclusive=None,
        )

    def run(self) -> None:
        self._depth = len(connections[self.db].atomic_blocks)
        self._save(status=Operation.Status.RUNNING, started=timezone.now())
        try:
            handler = getattr(self, f"run_{self.operation.kind}")
            message, result = handler()
        except OperationInProgressError as exc:
            self.fail(
                _("Refused: %(error)s Try again when it has finished.") % {"error": exc}
            )
        except BackupError as exc:
            self.fail(str(exc))
        except Exception as exc:
            logger.exception("Operation %s failed", self.operation.pk)
            self.fail(
                _("Unexpected error (%(type)s): %(error)s")
                % {"type": type(exc).__name__, "error": exc}
            )
        else:
            self._save(
                status=Operation.Status.SUCCEEDED,
                finished=timezone.now(),
                message=message,
                result=result,
                stage="",
                progress="",
                estimated_end=None,
                exclusive=None,
            )

    def _record(self) -> BackupRecord:
        record = self.operation.backup
        if record is None:
            raise BackupError(
                _("The backup %(name)s is no longer recorded.")
                % {"name": self.operation.backup_name}
            )
        return record

    def run_backup(self) -> tuple[str, dict[str, Any]]:
        from .backup import create_backup

        # The last backup of this database tells roughly how many rows to expect.
        last = (
            BackupRecord.objects.filter(database=self.operation.database)
            .exclude(rows=None)
            .order_by("-created", "-pk")
            .first()
        )
        self.expect("backup", last.rows if last else None)
        summary = create_backup(
            None, using=self.operation.database, origin="admin", progress=self.progress
        )
        record = record_admin_backup(
            summary, username=self.operation.username, user_id=self.operation.user_id
        )
        assert record is not None  # an admin backup goes to the backup storage
        self._save(backup=record, backup_name=record.name)
        message = _(
            "Backed up database %(database)s to %(name)s: %(tables)s tables, %(rows)s rows."
        ) % {
            "database": summary.database,
            "name": record.name,
            "tables": grouped(summary.table_count),
            "rows": grouped(summary.rows),
        }
        if summary.unmanaged_left_out:
            message += " " + ngettext(
                "The table of %(count)s unmanaged model is not in the backup: "
                "%(labels)s (BACKUPS['UNMANAGED'] names the ones to back up).",
                "The tables of %(count)s unmanaged models are not in the backup: "
                "%(labels)s (BACKUPS['UNMANAGED'] names the ones to back up).",
                len(summary.unmanaged_left_out),
            ) % {
                "count": len(summary.unmanaged_left_out),
                "labels": ", ".join(summary.unmanaged_left_out),
            }
        data = summary.to_dict()
        data.pop("path", None)
        data.pop("tables", None)
        return message, data

    def run_validate(self) -> tuple[str, dict[str, Any]]:
        from .exceptions import BackupFormatError
        from .validate import validate_backup

        record = self._record()
        self.expect("validate", record.rows)
        with open_source(record.name) as source:
            try:
                report = validate_backup(
                    source, using=self.operation.database, progress=self.progress
                )
            except BackupFormatError as exc:
                record_integrity(record, str(exc))
                raise
        record_integrity(record, None)
        run = record_validation(
            record,
            report,
            database=self.operation.database,
            username=self.operation.username,
        )
        self._save(validation=run)
        return run.summary, {"validation": run.pk, "ok": run.ok}

    def run_restore(self) -> tuple[str, dict[str, Any]]:
        from .restore import plan_restore, restore_backup

        record = self._record()
        using = self.operation.database
        with open_source(record.name) as source:
            plan = plan_restore(source, using=using, progress=self.progress)
            record_provenance(record, plan.provenance)
            # Checked again on the file as read now: it may have been replaced in
            # the storage since the preview.
            if plan.provenance != Provenance.OURS and not self.operation.allow_foreign:
                raise BackupError(
                    _(
                        "%(name)s was not made by this installation; restoring it "
                        "needs the permission to restore foreign backups. Nothing "
                        "was changed."
                    )
                    % {"name": record.name}
                )
            self.expect("compare", plan.rows_now)
            self.expect("safety", plan.rows_now)
            self.expect("restore", plan.rows_in_file)
            self.expect("verify-written", plan.rows_in_file)
            summary = restore_backup(plan, progress=self.progress)
        data = summary.to_dict()
        data["source"] = record.name
        # No admin log entry, here or for any operation: the admin log is one of the
        # tables a validation compares and a restore replaces. This Operation, in a
        # table restores never touch, is the record.
        message = restored_message(using, record.name, summary)
        return message, data
