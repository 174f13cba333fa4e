"""Settings of the app, read lazily from ``settings.BACKUPS`` so override_settings works."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Alias in settings.STORAGES; when absent, a FileSystemStorage on DIRECTORY is used.
    "STORAGE": "backups",
    # Used only when STORAGES has no entry for STORAGE; default: BASE_DIR / "backups".
    "DIRECTORY": None,
    # Names of new backups in the storage. Without a backup suffix of its own, a name
    # gets the one COMPRESSION and ENCRYPTION ask for (.jsonl.gz, .jsonl.zst.age...).
    "FILENAME_TEMPLATE": "backup-{database}-{timestamp}",
    "SAFETY_FILENAME_TEMPLATE": "safety-{database}-{timestamp}",
    # Labels "app" or "app.Model" left out of every backup and restore.
    "EXCLUDE": (),
    # Labels "app" or "app.Model" of unmanaged models (Meta.managed = False) whose
    # tables backups cover; others are left out, as migrate leaves them.
    "UNMANAGED": (),
    # Take a backup of the current data before every restore.
    "SAFETY_BACKUP": True,
    # Make that backup, for a restore that changes tables row by row, an undo file:
    # only the rows it replaces, laid over the backup restored (which prunebackups
    # then keeps as long as the undo file). False: always a whole backup.
    "UNDO_FILES": True,
    # The codec of backups named by the app: "gzip", "zstd" or "none"; a path given
    # to a command says its own by its suffix. Level None: the codec's default
    # (gzip 1, zstd 1; docs/benchmarks.md has the figures they were chosen from).
    "COMPRESSION": "gzip",
    "COMPRESSION_LEVEL": None,
    # age encryption: RECIPIENTS (public keys, age1... or ssh-...) that new backups
    # are encrypted to; IDENTITIES (private keys AGE-SECRET-KEY-1..., or paths of
    # key files) that encrypted backups are read with. Several of each: rotation.
    "ENCRYPTION": {},
    # A multipart upload to S3 older than this (seconds, or a timedelta) is a killed
    # backup's: the next backup into the storage aborts it.
    "STALE_UPLOAD_AGE": 24 * 3600,
    # Rows a read or write batch holds at most; the writer lowers it to fit parameter limits.
    "BATCH_SIZE": 2000,
    # Use PostgreSQL COPY for restores.
    "POSTGRES_COPY": True,
    # What prunebackups keeps of each database's backups, and of its safety backups.
    "RETENTION": {"last": 3, "daily": 7, "weekly": 5, "monthly": 12, "yearly": 5},
    "SAFETY_RETENTION": {"last": 3, "daily": 7},
    # Who hears of failures: Django's mail_admins (nothing is sent while ADMINS is
    # empty), through MAILER, an alias of MAILERS on Django 6.1 and later (None: the
    # default mailer), and a webhook URL that gets a JSON POST; ON_SUCCESS adds good
    # news.
    "NOTIFY": {
        "MAIL": True,
        "MAILER": None,
        "WEBHOOK_URL": None,
        "ON_SUCCESS": False,
        "TIMEOUT": 10,
    },
    # What checkbackups calls unhealthy, and which aliases it looks at.
    "HEALTH": {
        "DATABASES": ["default"],
        "MAX_AGE": "26h",
        "MIN_SIZE": None,
        "SHRINK_RATIO": 0.5,
    },
    # Key (or list of keys, the first signs) of the trailer's mac; None: SECRET_KEY.
    "SIGNING_KEY": None,
    # Back up the files that FileField/ImageField rows reference with every backup
    # (backup --media), and every file of these STORAGES aliases (--media-storage).
    "MEDIA": False,
    "MEDIA_STORAGES": (),
    # Bounds on what a backup file may ask of the reader; past one the file is refused
    # as damaged. None: no bound.
    "MAX_LINE_BYTES": 64 << 20,
    # Decompressed bytes per compressed byte, over the whole file, once it has
    # expanded to more than 64 MB. gzip at level 1 reaches about 230 at most.
    "MAX_EXPANSION_RATIO": 250,
}

# Apps whose tables a restore must never touch: our own history, and task queues that
# may be running the restore itself.
ALWAYS_EXCLUDED_APPS = frozenset(
    {"backups_app", "django_tasks_database", "django_tasks_db"}
)


class AppSettings:
    """Typed accessors over ``settings.BACKUPS``; each read goes to the live settings."""

    def _get(self, key: str) -> Any:
        return getattr(settings, "BACKUPS", {}).get(key, DEFAULTS[key])

    @property
    def STORAGE(self) -> str:
        return self._get("STORAGE")

    @property
    def DIRECTORY(self) -> Path:
        directory = self._get("DIRECTORY")
        if directory is None:
            directory = Path(getattr(settings, "BASE_DIR", Path.cwd())) / "backups"
        return Path(directory)

    @property
    def FILENAME_TEMPLATE(self) -> str:
        return self._get("FILENAME_TEMPLATE")

    @property
    def SAFETY_FILENAME_TEMPLATE(self) -> str:
        return self._get("SAFETY_FILENAME_TEMPLATE")

    @property
    def EXCLUDE(self) -> tuple[str, ...]:
        return tuple(self._get("EXCLUDE"))

    @property
    def UNMANAGED(self) -> tuple[str, ...]:
        return tuple(self._get("UNMANAGED"))

    @property
    def SAFETY_BACKUP(self) -> bool:
        return bool(self._get("SAFETY_BACKUP"))

    @property
    def UNDO_FILES(self) -> bool:
        return bool(self._get("UNDO_FILES"))

    @property
    def COMPRESSION(self) -> str:
        return self._get("COMPRESSION")

    @property
    def COMPRESSION_LEVEL(self) -> int | None:
        level = self._get("COMPRESSION_LEVEL")
        return None if level is None else int(level)

    @property
    def ENCRYPTION(self) -> dict[str, Any]:
        return dict(self._get("ENCRYPTION") or {})

    @property
    def RECIPIENTS(self) -> list[str]:
        return list(self.ENCRYPTION.get("RECIPIENTS") or ())

    @property
    def IDENTITIES(self) -> list[str]:
        return [str(entry) for entry in self.ENCRYPTION.get("IDENTITIES") or ()]

    @property
    def STALE_UPLOAD_AGE(self) -> datetime.timedelta:
        value = self._get("STALE_UPLOAD_AGE")
        if isinstance(value, datetime.timedelta):
            return value
        return datetime.timedelta(seconds=value)

    @property
    def BATCH_SIZE(self) -> int:
        return int(self._get("BATCH_SIZE"))

    @property
    def POSTGRES_COPY(self) -> bool:
        return bool(self._get("POSTGRES_COPY"))

    @property
    def RETENTION(self) -> dict[str, Any]:
        return dict(self._get("RETENTION"))

    @property
    def SAFETY_RETENTION(self) -> dict[str, Any]:
        return dict(self._get("SAFETY_RETENTION"))

    @property
    def NOTIFY(self) -> dict[str, Any]:
        return {**DEFAULTS["NOTIFY"], **self._get("NOTIFY")}

    @property
    def HEALTH(self) -> dict[str, Any]:
        return {**DEFAULTS["HEALTH"], **self._get("HEALTH")}

    @property
    def MEDIA(self) -> bool:
        return bool(self._get("MEDIA"))

    @property
    def MEDIA_STORAGES(self) -> tuple[str, ...]:
        return tuple(self._get("MEDIA_STORAGES"))

    @property
    def SIGNING_KEY(self) -> str | list[str] | None:
        return self._get("SIGNING_KEY")

    @property
    def MAX_LINE_BYTES(self) -> int | None:
        return self._get("MAX_LINE_BYTES")

    @property
    def MAX_EXPANSION_RATIO(self) -> float | None:
        return self._get("MAX_EXPANSION_RATIO")


app_settings = AppSettings()
