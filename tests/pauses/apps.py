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


def pause(point: str, seconds: float = 120) -> None:
    Path(os.environ["BACKUPS_TEST_PAUSE_MARKER"]).write_text(point)
    time.sleep(seconds)


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
        from backups_app import backup, restore, signals
        from backups_app.differential import apply, merge

        point = os.environ.get("BACKUPS_TEST_PAUSE", "")
        if point == "backup-table":
            # After the header and the tables before testapp.Node are written.
            pausing_factory(backup, "block_encoder", point)
        elif point in ("validate-table", "restore-compare"):
            # validate_backup compares through differential.merge, as a restore
            # does inside its transaction (where it checks the file, unless a plan
            # checked it before).
            pausing_factory(merge, "block_encoder", point)
        elif point == "restore-verify":
            # While the restore checks the file, before its transaction (a plan
            # that checks the whole file first: --full, or a preview).
            original_verify = restore.verified_read

            def verified_read(*args, **kwargs):
                pause(point)
                return original_verify(*args, **kwargs)

            restore.verified_read = verified_read
        elif point == "restore-commit":
            # Just after the restore's COMMIT, before the restore has heard that it
            # is done: a Ctrl-C here must not be reported as "left unchanged". A
            # short pause: the command holds the interruption back until then.
            def pause_after_commit(using, **kwargs):
                from django.db import connections

                connection = connections[using]
                commit = connection.commit

                def committed():
                    commit()
                    pause(point, 3)

                connection.commit = committed

            signals.pre_restore.connect(pause_after_commit, weak=False)
        elif point == "restore-load":
            # Inside the restore's transaction, the tables already emptied.
            original = restore.row_decoder

            def row_decoder(fields, *args, **kwargs):
                if fields and fields[0].model._meta.db_table == PAUSED_TABLE:
                    pause(point)
                return original(fields, *args, **kwargs)

            # A table written row by row decodes its rows in differential.apply.
            restore.row_decoder = apply.row_decoder = row_decoder
        elif point == "restore-media":
            # Inside the restore's transaction, once the media files are written.
            original_put_back = restore.put_back

            def put_back(*args, **kwargs):
                original_put_back(*args, **kwargs)
                pause(point)

            restore.put_back = put_back
        elif point == "restore-after-safety":
            # The safety backup is written inside the restore's transaction, after
            # pre_restore; the pause comes once it is in the storage and the
            # command's own receivers of post_backup have learnt its name.
            def pause_after_safety(summary=None, **kwargs):
                if summary is not None and summary.origin == "safety":
                    pause(point)

            def connect_after_safety(**kwargs):
                signals.post_backup.connect(
                    pause_after_safety, weak=False, dispatch_uid=point
                )

            signals.pre_restore.connect(connect_after_safety, weak=False)
        elif point == "restore-committed":
            # Connected once the restore starts, so that the command's own
            # receivers of post_restore have run when the pause begins.
            def connect_pause(**kwargs):
                signals.post_restore.connect(
                    lambda **kwargs: pause(point), weak=False, dispatch_uid=point
                )

            signals.pre_restore.connect(connect_pause, weak=False)
