"""Delete old backups by a retention policy, per database and kind.

Only files identified as this site's backups (a readable header, made by ``backup``
or the admin, or a safety backup) are ever candidates; uploads and files that are not
backups are listed as left alone. Within each database, backups and safety backups
are judged apart, each by its own policy, so the newest of each always stays.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from ..conf import app_settings
from ..exceptions import StorageError, one_line
from ..fileformat.streams import backup_storage
from ..media.collection import BlobCollection, collect, plan_collection
from .inventory import SAFETY, StoredBackup, list_backups, partial_files, stored_names
from .retention import Candidate, RetentionPolicy, apply_policy
from .units import parse_size

POLICY_KEYS = ("last", "daily", "weekly", "monthly", "yearly", "max_total_size")


@dataclass(frozen=True)
class PruneDecision:
    backup: StoredBackup
    keep: bool
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.backup.name,
            "kind": self.backup.kind,
            "database": self.backup.database,
            "created": self.backup.created.isoformat() if self.backup.created else None,
            "size": self.backup.size,
            "keep": self.keep,
            "reasons": list(self.reasons),
        }


def policy_from(values: Mapping[str, Any]) -> RetentionPolicy:
    """Return the policy a settings dict (or parsed options) describes."""
    unknown = set(values) - set(POLICY_KEYS)
    if unknown:
        raise ValueError(f"Unknown retention keys: {', '.join(sorted(unknown))}.")
    size = values.get("max_total_size")
    if isinstance(size, str):
        size = parse_size(size)
    return RetentionPolicy(
        **{key: values[key] for key in POLICY_KEYS[:-1] if key in values},
        max_total_size=size,
    )


def _local(when: datetime.datetime) -> datetime.datetime:
    # Days, weeks and months are the site's own, not UTC's.
    return timezone.localtime(when) if settings.USE_TZ else when


def plan_prune(
    *,
    database: str | None = None,
    policy: RetentionPolicy | None = None,
    safety_policy: RetentionPolicy | None = None,
) -> list[PruneDecision]:
    """Decide for every file in the backup storage whether it stays; delete nothing."""
    policy = policy or policy_from(app_settings.RETENTION)
    safety_policy = safety_policy or policy_from(app_settings.SAFETY_RETENTION)
    backups = list_backups(database)
    groups: dict[tuple[str, str], list[StoredBackup]] = {}
    decisions: list[PruneDecision] = []
    for backup in backups:
        if backup.ours and backup.created is not None:
            groups.setdefault((backup.database, backup.kind), []).append(backup)
        else:
            why = "not identified as a backup of this site"
            decisions.append(PruneDecision(backup, True, (why,)))
    for (_database, kind), members in groups.items():
        by_name = {b.name: b for b in members}
        candidates = [
            Candidate(
                b.name,
                _local(b.created),
                b.size or 0,
                {"intact": True, "damaged": False}.get(b.integrity),
            )
            for b in members
            if b.created is not None
        ]
        chosen = safety_policy if kind == SAFETY else policy
        decisions += [
            PruneDecision(by_name[d.candidate.name], d.keep, d.reasons)
            for d in apply_policy(candidates, chosen)
        ]
    decisions = _needed_by_undo_files(decisions)
    order = {b.name: index for index, b in enumerate(backups)}
    return sorted(decisions, key=lambda d: order[d.backup.name])


def _needed_by_undo_files(decisions: list[PruneDecision]) -> list[PruneDecision]:
    """Keep every backup that a kept undo file is laid over: without it, the
    undo file cannot undo its restore."""
    needed: dict[str, list[str]] = {}
    for decision in decisions:
        if decision.keep and decision.backup.undoes:
            needed.setdefault(decision.backup.undoes, []).append(decision.backup.name)
    return [
        PruneDecision(
            d.backup,
            True,
            (f"the undo file {', '.join(needed[d.backup.name])} needs it",),
        )
        if d.backup.name in needed and not d.keep
        else d
        for d in decisions
    ]


def prune(decisions: list[PruneDecision]) -> list[str]:
    """Delete the files the decisions do not keep; return their names.

    Stops at the first file that cannot be deleted, with the ones already deleted
    forgotten by the records too.
    """
    from ..records import forget_backup

    storage = backup_storage()
    deleted: list[str] = []
    for decision in decisions:
        if decision.keep:
            continue
        name = decision.backup.name
        try:
            storage.delete(name)
        except Exception as exc:  # storages raise anything from OSError to SDK errors
            raise StorageError(
                f"Cannot delete {name!r} from the backup storage: {one_line(exc)}; "
                f"{len(deleted)} files were deleted before it."
            ) from exc
        forget_backup(name)
        deleted.append(name)
    return deleted


def plan_blob_collection(
    *, leaving: set[str] | frozenset[str] = frozenset()
) -> BlobCollection:
    """Which media blobs no backup in the storage needs (the backups in ``leaving``
    counted as deleted); delete nothing (``media.collection``)."""
    writing = [p.name for p in partial_files() if p.integrity == "writing"]
    return plan_collection(stored_names(), writing=writing, leaving=leaving)


def collect_blobs(collection: BlobCollection) -> BlobCollection:
    """Delete the blobs of a collection that no backup needs, unless it was
    refused (a backup whose needs are not known)."""
    return collect(collection)
