"""Signals the library sends around its operations (model signals are never sent).

- ``pre_backup(sender, using)`` / ``post_backup(sender, using, summary)``
- ``pre_restore(sender, using, plan)`` / ``post_restore(sender, using, summary)``;
  ``plan`` is as it is before the restore's locks: made from the file's header
  alone (``plan.verified`` False) when the restore checks the file as it compares
  the tables.
- ``post_validate(sender, using, report)``
- ``backup_failed(sender, using, exception, target)``,
  ``restore_failed(sender, using, exception, source)``,
  ``validation_failed(sender, using, exception, source)``: the operation raised
  ``exception`` (nothing was written, or the restore rolled back); sent before the
  exception reaches the caller.
- ``drill_finished(sender, result)``: a restore drill ended, passed or not
  (``result.ok``).

``sender`` is the function that sends it (``create_backup`` and so on). A receiver of a
``pre_`` signal can stop the operation by raising; errors in ``post_`` receivers come
after the work is done and are logged to the ``backups_app`` logger instead.
"""

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from django.dispatch import Signal

logger = logging.getLogger("backups_app")

pre_backup = Signal()
post_backup = Signal()
pre_restore = Signal()
post_restore = Signal()
post_validate = Signal()
backup_failed = Signal()
restore_failed = Signal()
validation_failed = Signal()
drill_finished = Signal()

Function = TypeVar("Function", bound=Callable[..., Any])


def announce(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send a post_* signal: the work is done, so a failing receiver is logged, not raised."""
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            # One line where people read it (a locked SQLite database under the
            # admin's bookkeeping, say); the traceback only for those who ask.
            logger.error(
                "Receiver %s of a backups_app signal failed (%s): %s",
                getattr(receiver, "__qualname__", repr(receiver)),
                type(result).__name__,
                " ".join(str(result).split()),
            )
            logger.debug("Traceback of the failed receiver", exc_info=result)


def _described(value: Any) -> str | None:
    """Say what a backup source or target argument was, for receivers."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    value = getattr(value, "source", value)  # a restore plan names its file
    return str(getattr(value, "name", None) or type(value).__name__)


def announces_failure(signal: Signal, argument: str) -> Callable[[Function], Function]:
    """Send ``signal`` when the decorated entry point raises, then let the error go on.

    ``argument`` names what receivers get the first positional argument as
    (``target`` for a backup, ``source`` otherwise).
    """

    def decorate(function: Function) -> Function:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except Exception as exc:
                first = args[0] if args else kwargs.get(argument)
                announce(
                    signal,
                    wrapper,
                    using=kwargs.get("using", "default"),
                    exception=exc,
                    **{argument: _described(first)},
                )
                raise

        return wrapper  # type: ignore[return-value]

    return decorate
