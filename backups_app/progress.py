"""Progress reports from long operations, for a terminal bar or an admin status page."""

from __future__ import annotations

import time
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


class StageClock:
    """A callback that times the stages it passes on to ``progress``: a stage lasts
    from its first report to the first report of another stage, or to ``seconds()``.

    A stage that comes back later (a restore verifies, then writes, then verifies
    what it wrote) adds to its time; ``seconds()`` lists the stages in the order they
    first came.
    """

    def __init__(
        self,
        progress: ProgressCallback = ignore_progress,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self._progress = progress
        self._clock = clock
        self._times: dict[str, float] = {}
        self._stage: str | None = None
        self._since = 0.0
        self.wants_counts = wants_counts(progress)

    def __call__(self, progress: Progress) -> None:
        if progress.stage != self._stage:
            self._close()
            self._stage = progress.stage
        self._progress(progress)

    def _close(self) -> None:
        now = self._clock()
        if self._stage is not None:
            self._times[self._stage] = self._times.get(self._stage, 0.0) + (
                now - self._since
            )
        self._since = now

    def seconds(self) -> dict[str, float]:
        """The seconds of each stage so far, rounded to milliseconds."""
        self._close()
        return {stage: round(seconds, 3) for stage, seconds in self._times.items()}


# Stages shorter than this are left out where people read the times.
SHORT_STAGE = 0.05


def long_stages(stages: dict[str, float]) -> list[tuple[str, float]]:
    """The stages of ``StageClock.seconds()`` that took at least SHORT_STAGE."""
    return [
        (stage, seconds) for stage, seconds in stages.items() if seconds >= SHORT_STAGE
    ]
