from django.apps import AppConfig


class ManyTablesConfig(AppConfig):
    name = "tests.manytables"
    label = "manytables"
    verbose_name = "A schema of many small tables"
