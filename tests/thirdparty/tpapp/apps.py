from django.apps import AppConfig


class TpappConfig(AppConfig):
    name = "tests.thirdparty.tpapp"
    label = "tpapp"
    default_auto_field = "django.db.models.BigAutoField"
