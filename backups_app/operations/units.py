"""Sizes, counts and durations: read as operators type them (``500M``, ``10GB``,
``90s``, ``7d``) and written as people read them (``45.0 KB``, ``1,234``,
``26 hours``), the same in commands, checks and the admin."""

from __future__ import annotations

import datetime
import re

SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SIZE_PATTERN = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", re.IGNORECASE)
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
DURATION_PATTERN = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Return a number of bytes from ``1048576``, ``512K``, ``10GB`` or ``1.5GiB``."""
    match = SIZE_PATTERN.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 500M, 10G, 1.5TB).")
    number, unit = match.groups()
    return int(float(number) * SIZE_UNITS[unit.upper()])


def parse_duration(text: str) -> datetime.timedelta:
    """Return a duration from ``90s``, ``45m``, ``26h``, ``7d`` or ``2w``."""
    match = DURATION_PATTERN.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not a duration (examples: 90s, 45m, 26h, 7d).")
    number, unit = match.groups()
    return datetime.timedelta(seconds=int(number) * DURATION_UNITS[unit.lower()])


def format_duration(value: datetime.timedelta) -> str:
    """Return a duration in the unit people would say: ``45 seconds``, ``26 hours``."""
    seconds = int(value.total_seconds())
    for unit, size, below in (
        ("second", 1, 120),
        ("minute", 60, 120 * 60),
        ("hour", 3600, 72 * 3600),
    ):
        if seconds < below:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    days = seconds // 86_400
    return f"{days} day{'' if days == 1 else 's'}"


SIZE_NAMES = ("B", "KB", "MB", "GB", "TB")


def format_size(size: int | None, missing: str = "–") -> str:
    """Return a number of bytes as ``512 B``, ``45.0 KB`` or ``1.2 GB`` (units of
    1024), or ``missing`` when it is unknown."""
    if size is None:
        return missing
    value = float(size)
    for unit in SIZE_NAMES:
        if value < 1024 or unit == SIZE_NAMES[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_count(value: int | None, missing: str = "–") -> str:
    """Return a count with comma thousands separators (``1,234``), or ``missing``."""
    return missing if value is None else f"{value:,}"
