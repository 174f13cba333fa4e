"""Signals the library sends around its operations (model signals are never sent).

- ``pre_backup(sender, using)`` / ``post_backup(sender, using, summary)``
- ``pre_restore(sender, using, plan)`` / ``post_restore(sender, using, summary)``
- ``post_validate(sender, using, report)``

``sender`` is the function that sends it (``create_backup`` and so on).
"""

from django.dispatch import Signal

pre_backup = Signal()
post_backup = Signal()
pre_restore = Signal()
post_restore = Signal()
post_validate = Signal()
