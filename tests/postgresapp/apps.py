from django.apps import AppConfig


class PostgresAppConfig(AppConfig):
    name = "tests.postgresapp"
    label = "postgresapp"
    verbose_name = "django.contrib.postgres fields"
