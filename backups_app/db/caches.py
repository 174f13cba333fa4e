"""Caches that a restore makes stale, cleared after it commits."""

from __future__ import annotations

from django.apps import apps


def clear_stale_caches(using: str) -> None:
    """Forget cached rows that the restore may have replaced."""
    if apps.is_installed("django.contrib.contenttypes"):
        from django.contrib.contenttypes.models import ContentType

        ContentType.objects.clear_cache()
    if apps.is_installed("django.contrib.sites"):
        from django.contrib.sites.models import Site

        Site.objects.clear_cache()
    if apps.is_installed("admin_interface"):
        # The active theme is cached and only invalidated by Theme's model signals,
        # which a restore does not send.
        from admin_interface.cache import del_cached_active_theme

        del_cached_active_theme()
