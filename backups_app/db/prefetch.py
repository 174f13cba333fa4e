"""Rows fetched from a database server on a thread, while the caller works on the last.

Fetching a batch of rows from PostgreSQL is mostly waiting: for the server to
produce the rows and for the network. psycopg lets go of Python's lock while it
waits, so a thread can fetch the next batch while the caller encodes and compares
the one before (``prefetched``). (MySQL's fetching is mostly Python work: there the
two threads only took turns, and it is not used.) Only the thread touches the cursor,
from its first fetch to its close; the caller touches the connection again only once
the thread has ended (``prefetched`` waits for it on every way out).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator
from typing import Any, TypeVar

T = TypeVar("T")

# Batches fetched ahead at most: one being handed over, one being fetched.
AHEAD = 2
_END = object()


def prefetched(batches: Generator[T, None, None]) -> Generator[T, None, None]:
    """Yield what ``batches`` yields, fetched on a thread of its own.

    An exception of ``batches`` is raised here, in the caller's thread. Closing
    this generator stops the thread after its current fetch and closes
    ``batches`` there; nothing is left running when it returns."""
    handed: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(AHEAD)
    stop = threading.Event()

    def put(item: Any, error: BaseException | None = None) -> bool:
        while not stop.is_set():
            try:
                handed.put((item, error), timeout=0.05)
            except queue.Full:
                continue
            return True
        return False

    def fetch() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as exc:  # handed to the caller, raised there
            put(None, exc)
        finally:
            batches.close()

    thread = threading.Thread(target=fetch, name="backups_app-fetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = handed.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()
