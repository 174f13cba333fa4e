"""Progress reports from long operations, for a terminal bar or an admin status page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    # "backup", "verify", "validate"; a restore: "lock", "safety", "delete", "restore",
    # "check", "verify-written", "sequences", "commit", "settle" (PostgreSQL, after it)
    stage: str
    label: str  # the model label being worked on, or "" between tables
    done: int  # rows done in this table
    total: int | None  # rows expected in this table, when known


ProgressCallback = Callable[[Progress], None]


def ignore_progress(progress: Progress) -> None:
    """The default callback: report nothing."""
