"""Run an iterator a few items ahead on a thread of its own."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class Prefetched(Iterator[T]):
    """Iterate over ``items`` on a background thread, at most ``depth`` items ahead.

    Worth it when producing an item mostly releases the GIL (decompressing, hashing,
    reading files), so that it overlaps with the consumer's work. An exception in the
    producer is raised to the consumer in order. ``close()`` stops the producer; the
    consumer must call it if it stops early.
    """

    def __init__(self, items: Iterable[T], depth: int = 4):
        self._items: queue.Queue = queue.Queue(depth)
        self._stopping = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._produce, args=(iter(items),), name="backups_app-prefetch"
        )
        self._thread.daemon = True
        self._thread.start()

    def _produce(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                if not self._put((item, None)):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put((None, exc))
            return
        self._put((_DONE, None))

    def _put(self, entry) -> bool:
        while not self._stopping.is_set():
            try:
                self._items.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item, error = self._items.get()
        if error is not None or item is _DONE:
            self._finished = True
            self._thread.join()
            if error is not None:
                raise error
            raise StopIteration
        return item

    def close(self) -> None:
        self._stopping.set()
        self._finished = True
        self._thread.join()
