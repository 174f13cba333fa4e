"""What differs between database vendors: one module per vendor over ``base``.

Everything goes through Django's connection; no client binaries are involved.
``backend_for(alias)`` gives the vendor's ``Backend`` for a connection.
"""

from __future__ import annotations

from django.db import connections

from .base import LOCK_WAIT, Backend, SequenceSettlement
from .mysql import MySQLBackend
from .postgresql import PostgreSQLBackend
from .sqlite import SQLiteBackend

__all__ = ["LOCK_WAIT", "Backend", "SequenceSettlement", "backend_for"]


BACKENDS: dict[str, type[Backend]] = {
    "sqlite": SQLiteBackend,
    "postgresql": PostgreSQLBackend,
    "mysql": MySQLBackend,
}


def backend_for(using: str) -> Backend:
    vendor = connections[using].vendor
    return BACKENDS.get(vendor, Backend)(using)
