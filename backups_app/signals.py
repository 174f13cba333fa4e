"""Signals the library sends around its operations (model signals are never sent).

- ``pre_backup(sender, using)`` / ``post_backup(sender, using, summary)``
- ``pre_restore(sender, using, plan)`` / ``post_restore(sender, using, summary)``
- ``post_validate(sender, using, report)``

``sender`` is the function that sends it (``create_backup`` and so on). A receiver of a
``pre_`` signal can stop the operation by raising; errors in ``post_`` receivers come
after the work is done and are logged to the ``backups_app`` logger instead.
"""

import logging

from django.dispatch import Signal

logger = logging.getLogger("backups_app")

pre_backup = Signal()
post_backup = Signal()
pre_restore = Signal()
post_restore = Signal()
post_validate = Signal()


def announce(signal: Signal, sender, **kwargs) -> None:
    """Send a post_* signal: the work is done, so a failing receiver is logged, not raised."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            logger.error(
                "Receiver %r of a backups_app signal failed: %s",
                receiver,
                result,
                exc_info=result,
            )
