"""The Backups section of the Django admin.

``backups`` registers the ModelAdmins of backups, validation runs, drills and
operations; ``forms`` holds the forms of their pages.
"""

from . import backups  # noqa: F401  (registers the ModelAdmins)
