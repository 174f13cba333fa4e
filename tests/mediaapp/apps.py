from django.apps import AppConfig


class MediaAppConfig(AppConfig):
    name = "tests.mediaapp"
    label = "mediaapp"
    verbose_name = "Files that rows reference"
