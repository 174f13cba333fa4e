"""The Backups section of the Django admin.

- ``backups``: BackupRecordAdmin, the list of backups composed with the views of
  ``mixins`` (back up, upload, sync, download, validate, restore);
- ``runs``: validation runs and restore drills; ``operations``: the operations,
  their status pages and a restore's outcome;
- ``base``: permissions and what every ModelAdmin here shares; ``display``: badges,
  counts, sizes and ages; ``forms``: the forms of the pages.
"""

from . import backups, operations, runs  # noqa: F401  (register the ModelAdmins)
