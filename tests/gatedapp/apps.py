from django.apps import AppConfig


class GatedAppConfig(AppConfig):
    name = "tests.gatedapp"
    label = "gatedapp"
    verbose_name = "Models without a table on the test vendors"
