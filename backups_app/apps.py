from django.apps import AppConfig


class BackupsAppConfig(AppConfig):
    name = "backups_app"
    verbose_name = "Backups"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
