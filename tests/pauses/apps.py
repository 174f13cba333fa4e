"""Stop a command at a known point until a test interrupts it (Ctrl-C).

``BACKUPS_TEST_PAUSE`` names the point; on reaching it the process writes the
point's name to the file ``BACKUPS_TEST_PAUSE_MARKER`` and sleeps, so the test
knows when to send SIGINT.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.apps import AppConfig

PAUSED_TABLE = "testapp_node"


def pause(point: str) -> None:
    Path(os.environ["BACKUPS_TEST_PAUSE_MARKER"]).write_text(point)
    time.sleep(120)


def pausing_factory(module, name: str, point: str) -> None:
    """Pause when ``module.name`` is asked for the encoder or decoder of one table."""
    original = getattr(module, name)

    def factory(*args, **kwargs):
        if PAUSED_TABLE in args or kwargs.get("table") == PAUSED_TABLE:
            pause(point)
        return original(*args, **kwargs)

    setattr(module, name, factory)


class PausesConfig(AppConfig):
    name = "tests.pauses"
    label = "pauses"

    def ready(self) -> None:
        from backups_app import backup, restore, signals, validate

        point = os.environ.get("BACKUPS_TEST_PAUSE", "")
        if point == "backup-table":
            # After the header and the tables before testapp.Node are written.
            pausing_factory(backup, "block_encoder", point)
        elif point == "validate-table":
            pausing_factory(validate, "block_encoder", point)
        elif point == "restore-load":
            # Inside the restore's transaction, the tables already emptied.
            original = restore.row_decoder

            def row_decoder(fields, insert_fields, connection):
                if fields and fields[0].model._meta.db_table == PAUSED_TABLE:
                    pause(point)
                return original(fields, insert_fields, connection)

            restore.row_decoder = row_decoder
        elif point == "restore-after-safety":
            signals.pre_restore.connect(
                lambda **kwargs: pause(point), weak=False, dispatch_uid=point
            )
        elif point == "restore-committed":
            # Connected once the restore starts, so that the command's own
            # receivers of post_restore have run when the pause begins.
            def connect_pause(**kwargs):
                signals.post_restore.connect(
                    lambda **kwargs: pause(point), weak=False, dispatch_uid=point
                )

            signals.pre_restore.connect(connect_pause, weak=False)
