"""An in-memory storage whose instances share one tree of files.

``override_settings(STORAGES=...)`` makes Django build new storage objects, while a
field keeps the one it was given; with this class every instance of the ``memory``
alias sees the same files, whichever test changed the settings before.
"""

from __future__ import annotations

from typing import Any

from django.core.files.storage import InMemoryStorage
from django.core.files.storage.memory import InMemoryDirNode


class SharedMemoryStorage(InMemoryStorage):
    _shared_root: InMemoryDirNode | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if SharedMemoryStorage._shared_root is None:
            SharedMemoryStorage._shared_root = self._root
        self._root = SharedMemoryStorage._shared_root
