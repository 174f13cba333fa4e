"""Progress reports from long operations, for a terminal bar or an admin status page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    # "backup", "verify", "validate"; a restore: "verify", "lock", "safety" (its
    # safety backup, reported table by table like a backup), "delete", "restore",
    # "check", "verify-written", "reload", "sequences", "commit" (just before it),
    # "committed" (just after it), "settle" (PostgreSQL, after the commit)
    stage: str
    label: str  # the model label being worked on, or "" between tables
    done: int  # rows done in this table
    total: int | None  # rows expected in this table, when known
    # Rows the whole stage goes through, over all its tables, when known beforehand
    # (a backup counts them first; a restore knows them from the file).
    stage_total: int | None = None


ProgressCallback = Callable[[Progress], None]


def ignore_progress(progress: Progress) -> None:
    """The default callback: report nothing."""


def wants_counts(progress: ProgressCallback) -> bool:
    """Whether ``progress`` shows rows against totals, which a backup then counts
    first. A callback that only watches the stages says no with an attribute,
    ``wants_counts = False``; ``ignore_progress`` wants nothing."""
    return getattr(progress, "wants_counts", progress is not ignore_progress)


def passed_on(
    progress: ProgressCallback,
    *,
    stage: str | None = None,
    stage_total: int | None = None,
) -> ProgressCallback:
    """Return a callback that passes reports on to ``progress``, as stage ``stage``
    and with ``stage_total`` when given.

    A restore's safety backup is a backup: its reports reach the restore's callback
    as the "safety" stage, so that the restore's stages keep their order.
    """
    if progress is ignore_progress:
        return ignore_progress

    def report(reported: Progress) -> None:
        progress(
            Progress(
                stage or reported.stage,
                reported.label,
                reported.done,
                reported.total,
                reported.stage_total if stage_total is None else stage_total,
            )
        )

    report.wants_counts = wants_counts(progress)  # type: ignore[attr-defined]
    return report
