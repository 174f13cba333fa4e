"""Template tags of the Backups admin: ``{% status_badge key text %}``, the same
badge the ModelAdmins put in their columns (``admin.display.status_badge``)."""

from __future__ import annotations

from django import template

from ..admin.display import status_badge as _status_badge

register = template.Library()


@register.simple_tag
def status_badge(key: str, text: str) -> str:
    """Return ``text`` in the badge of status ``key`` (``match``, ``differ``,
    ``healthy``, an integrity, provenance or operation status)."""
    return _status_badge(key, text)
