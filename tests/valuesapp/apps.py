from django.apps import AppConfig


class ValuesAppConfig(AppConfig):
    name = "tests.valuesapp"
    label = "valuesapp"
    verbose_name = "Values and primary keys"
