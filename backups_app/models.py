"""History the admin keeps: stored backups, validation runs and long operations.

A restore never touches these tables (``backups_app`` is in ALWAYS_EXCLUDED_APPS),
so the history survives the restores it records. For the same reason nothing here
has a foreign key to a table a restore replaces (users, content types): the user
is kept as a plain id and name.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Origin(models.TextChoices):
    COMMAND = "command", _("command")
    ADMIN = "admin", _("admin")
    SAFETY = "safety", _("safety backup")
    UPLOAD = "upload", _("upload")
    STORAGE = "storage", _("found in storage")


class Integrity(models.TextChoices):
    UNCHECKED = "unchecked", _("unchecked")
    INTACT = "intact", _("intact")
    DAMAGED = "damaged", _("damaged")


class Provenance(models.TextChoices):
    UNCHECKED = "unchecked", _("unchecked")
    OURS = "ours", _("made here")
    FOREIGN = "foreign", _("foreign")


class BackupRecord(models.Model):
    """A backup file in the backup storage, by its storage name."""

    name = models.CharField(_("name"), max_length=255, unique=True)
    database = models.CharField(_("database"), max_length=100, blank=True)
    vendor = models.CharField(_("vendor"), max_length=30, blank=True)
    created = models.DateTimeField(_("created"), null=True, blank=True)
    size = models.BigIntegerField(_("size"), null=True, blank=True)
    table_count = models.IntegerField(_("tables"), null=True, blank=True)
    rows = models.BigIntegerField(_("rows"), null=True, blank=True)
    # A backup with media: the files it has and their bytes (the blobs they are
    # stored in are shared with other backups); None without media or not known.
    media_files = models.BigIntegerField(_("media files"), null=True, blank=True)
    media_size = models.BigIntegerField(_("media size"), null=True, blank=True)
    digest = models.CharField(_("digest"), max_length=64, blank=True)
    origin = models.CharField(
        _("made by"), max_length=20, choices=Origin, default=Origin.COMMAND
    )
    username = models.CharField(_("user"), max_length=150, blank=True)
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    integrity = models.CharField(
        _("integrity"),
        max_length=20,
        choices=Integrity,
        default=Integrity.UNCHECKED,
    )
    integrity_checked = models.DateTimeField(
        _("integrity checked"), null=True, blank=True
    )
    problem = models.TextField(_("problem"), blank=True)
    # Whether the trailer's mac verifies with this installation's key: known once
    # the whole file has been read (written here, uploaded, previewed for restore).
    provenance = models.CharField(
        _("provenance"),
        max_length=20,
        choices=Provenance,
        default=Provenance.UNCHECKED,
    )
    recorded = models.DateTimeField(_("recorded"), auto_now_add=True)
    last_validated = models.DateTimeField(_("last validated"), null=True, blank=True)
    last_validation_ok = models.BooleanField(
        _("last validation matched"), null=True, blank=True
    )
    last_validation_summary = models.CharField(
        _("last validation"), max_length=255, blank=True
    )

    class Meta:
        verbose_name = _("backup")
        verbose_name_plural = _("backups")
        ordering = ["-created", "-pk"]
        permissions = [
            ("run_backup", _("Can take and download backups")),
            ("upload_backup", _("Can upload backup files")),
            ("validate_backup", _("Can validate backups against the database")),
            ("restore_backup", _("Can restore backups over the database")),
            (
                "restore_foreign_backup",
                _("Can restore backups not made by this installation"),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ValidationRun(models.Model):
    """One comparison of a backup with a live database.

    The per-table results are one JSON document (``TableReport.to_dict()`` per
    table): they are written once, always read whole with their run and never
    queried across runs, and the same shape is what ``validatebackup --json``
    prints.
    """

    backup = models.ForeignKey(
        BackupRecord,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="validations",
        verbose_name=_("backup"),
    )
    backup_name = models.CharField(_("backup name"), max_length=255)
    database = models.CharField(_("database"), max_length=100)
    started = models.DateTimeField(_("started"), auto_now_add=True)
    seconds = models.FloatField(_("seconds"), default=0)
    username = models.CharField(_("user"), max_length=150, blank=True)
    ok = models.BooleanField(_("matches"), default=False)
    matching = models.IntegerField(_("tables matching"), default=0)
    differing = models.IntegerField(_("tables differing"), default=0)
    summary = models.CharField(_("summary"), max_length=255, blank=True)
    schema_differences = models.JSONField(_("schema differences"), default=list)
    tables = models.JSONField(_("tables"), default=list)
    # Per source of a backup with media: ``MediaReport.to_dict()``.
    media = models.JSONField(_("media"), default=list, blank=True)

    class Meta:
        verbose_name = _("validation run")
        verbose_name_plural = _("validation runs")
        ordering = ["-started", "-pk"]

    def __str__(self) -> str:
        return f"{self.backup_name} / {self.database}: {self.summary}"


class DrillRun(models.Model):
    """One restore drill: a backup restored into a scratch database and validated."""

    backup_name = models.CharField(_("backup name"), max_length=255)
    source_database = models.CharField(_("backed-up database"), max_length=100)
    scratch_database = models.CharField(_("scratch database"), max_length=100)
    started = models.DateTimeField(_("started"), auto_now_add=True)
    seconds = models.FloatField(_("seconds"), default=0)
    ok = models.BooleanField(_("restored exactly"), default=False)
    # The step that failed (migrate, restore, validate), or "" when it passed.
    failed_step = models.CharField(_("failed step"), max_length=20, blank=True)
    summary = models.CharField(_("summary"), max_length=255, blank=True)
    message = models.TextField(_("message"), blank=True)

    class Meta:
        verbose_name = _("restore drill")
        verbose_name_plural = _("restore drills")
        ordering = ["-started", "-pk"]

    def __str__(self) -> str:
        return f"{self.backup_name} -> {self.scratch_database}: {self.summary}"


class Operation(models.Model):
    """A backup, validation or restore started from the admin, and how it went."""

    class Kind(models.TextChoices):
        BACKUP = "backup", _("backup")
        VALIDATE = "validate", _("validation")
        RESTORE = "restore", _("restore")
        # Recorded here, not in the admin log: the admin log is user data that a
        # validation compares and a restore replaces.
        DOWNLOAD = "download", _("download")
        UPLOAD = "upload", _("upload")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    kind = models.CharField(_("kind"), max_length=20, choices=Kind)
    status = models.CharField(
        _("status"), max_length=20, choices=Status, default=Status.QUEUED
    )
    database = models.CharField(_("database"), max_length=100)
    backup = models.ForeignKey(
        BackupRecord,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="operations",
        verbose_name=_("backup"),
    )
    backup_name = models.CharField(_("backup name"), max_length=255, blank=True)
    validation = models.ForeignKey(
        ValidationRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("validation run"),
    )
    username = models.CharField(_("user"), max_length=150, blank=True)
    user_id = models.CharField(_("user id"), max_length=64, blank=True)
    created = models.DateTimeField(_("created"), auto_now_add=True)
    started = models.DateTimeField(_("started"), null=True, blank=True)
    finished = models.DateTimeField(_("finished"), null=True, blank=True)
    stage = models.CharField(_("stage"), max_length=40, blank=True)
    progress = models.CharField(_("progress"), max_length=255, blank=True)
    # Rows done and expected in the current step, for the status page's bar and
    # estimate; the total is None when it is not known in advance.
    rows_done = models.BigIntegerField(_("rows done"), default=0)
    rows_total = models.BigIntegerField(_("rows expected"), null=True, blank=True)
    step_started = models.DateTimeField(_("step started"), null=True, blank=True)
    estimated_end = models.DateTimeField(_("estimated end"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    result = models.JSONField(_("result"), default=dict, blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    # Set when the user who started a restore may restore a foreign file; the worker
    # checks the file's provenance again, as it reads it.
    allow_foreign = models.BooleanField(_("foreign file allowed"), default=False)
    # "restore" while a restore is queued or running, else NULL: the unique index
    # lets only one restore be active at a time, whatever races between requests.
    exclusive = models.CharField(max_length=20, null=True, blank=True, unique=True)

    class Meta:
        verbose_name = _("operation")
        verbose_name_plural = _("operations")
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        # Without the status: "succeeded" would be the wrong word for a validation
        # that found differences; the lists show the outcome in a column of its own.
        return f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE
