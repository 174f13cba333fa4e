from django.apps import AppConfig


class BackupsAppConfig(AppConfig):
    name = "backups_app"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from .operations import notifications
        from .records import on_post_backup
        from .signals import post_backup

        # Backups written to the storage by any caller (commands, safety backups
        # before a restore) get a BackupRecord for the admin.
        post_backup.connect(on_post_backup, dispatch_uid="backups_app.record_backup")
        notifications.connect()
