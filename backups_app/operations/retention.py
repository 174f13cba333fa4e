"""Which backups a retention policy keeps: grandfather-father-son, newest first.

Pure functions over (name, created, size) items, so that the same rules serve the
``prunebackups`` command, the admin and property-based tests. The caller decides which
files are candidates at all: only backups identified as ours, of one database and one
kind, are ever passed in.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# Each period: the policy field that counts it, and the key that names one period.
PERIODS: tuple[tuple[str, Callable[[datetime.datetime], tuple[int, ...]]], ...] = (
    ("daily", lambda when: (when.year, when.month, when.day)),
    ("weekly", lambda when: tuple(when.isocalendar())[:2]),
    ("monthly", lambda when: (when.year, when.month)),
    ("yearly", lambda when: (when.year,)),
)


@dataclass(frozen=True)
class RetentionPolicy:
    """How many backups to keep: the newest ``last``, and the newest one of each of
    the most recent ``daily`` days, ``weekly`` ISO weeks, ``monthly`` months and
    ``yearly`` years that have a backup; then, if ``max_total_size`` is set, the
    oldest kept ones go until the rest fits (never the protected ones)."""

    last: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0
    yearly: int = 0
    max_total_size: int | None = None

    def __post_init__(self) -> None:
        for name in ("last", "daily", "weekly", "monthly", "yearly"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"keep {name} must be a whole number >= 0, not {value!r}."
                )
        size = self.max_total_size
        if size is not None and (
            isinstance(size, bool) or not isinstance(size, int) or size < 0
        ):
            raise ValueError(f"max_total_size must be a number of bytes, not {size!r}.")

    @property
    def keeps_nothing(self) -> bool:
        return not any((self.last, self.daily, self.weekly, self.monthly, self.yearly))


@dataclass(frozen=True)
class Candidate:
    """A backup that a policy may keep or delete."""

    name: str
    created: datetime.datetime
    size: int = 0
    intact: bool | None = None  # None: never checked


@dataclass(frozen=True)
class Decision:
    candidate: Candidate
    keep: bool
    reasons: tuple[str, ...] = field(default=())


def _newest_first(candidates: Iterable[Candidate]) -> list[Candidate]:
    # Ties on the time are broken by name, so the decision never depends on input order.
    return sorted(candidates, key=lambda c: (c.created, c.name), reverse=True)


def apply_policy(
    candidates: Sequence[Candidate], policy: RetentionPolicy
) -> list[Decision]:
    """Return a decision for every candidate, newest first.

    Always kept, whatever the policy says: the newest backup, and the newest one known
    to be intact. A policy that keeps nothing keeps only those.
    """
    ordered = _newest_first(candidates)
    reasons: dict[str, list[str]] = {c.name: [] for c in ordered}
    if not ordered:
        return []
    reasons[ordered[0].name].append("newest")
    intact = next((c for c in ordered if c.intact), None)
    if intact is not None:
        reasons[intact.name].append("newest intact")
    protected = {name for name, why in reasons.items() if why}
    for candidate in ordered[: policy.last]:
        reasons[candidate.name].append("last")
    for period, key in PERIODS:
        wanted = getattr(policy, period)
        seen: set[tuple[int, ...]] = set()
        for candidate in ordered:
            if len(seen) >= wanted:
                break
            period_key = key(candidate.created)
            if period_key in seen:
                continue
            seen.add(period_key)
            reasons[candidate.name].append(period)
    too_big: set[str] = set()
    if policy.max_total_size is not None:
        too_big = _fit_size(ordered, reasons, protected, policy.max_total_size)
    return [
        Decision(c, True, tuple(reasons[c.name]))
        if reasons[c.name]
        else Decision(c, False, ("over max total size",) if c.name in too_big else ())
        for c in ordered
    ]


def _fit_size(
    ordered: list[Candidate],
    reasons: dict[str, list[str]],
    protected: set[str],
    limit: int,
) -> set[str]:
    """Drop the oldest kept, unprotected backups until the kept ones fit ``limit``;
    return the names dropped."""
    total = sum(c.size for c in ordered if reasons[c.name])
    dropped: set[str] = set()
    for candidate in reversed(ordered):
        if total <= limit:
            break
        if reasons[candidate.name] and candidate.name not in protected:
            reasons[candidate.name].clear()
            dropped.add(candidate.name)
            total -= candidate.size
    return dropped
