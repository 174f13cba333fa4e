from django.apps import AppConfig


class TriggerAppConfig(AppConfig):
    name = "tests.triggerapp"
    label = "triggerapp"
    verbose_name = "Tables the database writes to"
