"""Turn a database URL such as ``postgres://user:pass@host:5432/name`` into settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "mysql": "django.db.backends.mysql",
    "mariadb": "django.db.backends.mysql",
    "sqlite": "django.db.backends.sqlite3",
}
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mariadb": 3306}


def parse_database_url(url: str) -> dict[str, Any]:
    """Return a ``DATABASES`` entry for ``url``; query parameters become OPTIONS."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ENGINES:
        known = ", ".join(sorted(ENGINES))
        raise ValueError(
            f"Unsupported database URL scheme {scheme!r}; use one of {known}."
        )
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    if scheme == "sqlite":
        # sqlite:///abs/path and sqlite:////abs/path both mean /abs/path.
        return {
            "ENGINE": ENGINES[scheme],
            "NAME": "/" + unquote(parts.path).lstrip("/"),
        }
    config: dict[str, Any] = {
        "ENGINE": ENGINES[scheme],
        "NAME": unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        # Unquoted so that a socket directory can be given as %2Fvar%2Frun%2Fpostgresql.
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(parts.port or DEFAULT_PORTS[scheme]),
    }
    if config["ENGINE"] == ENGINES["mysql"]:
        # utf8mb4 stores every Unicode character; strict mode makes MySQL reject
        # values it would otherwise truncate or coerce, so data cannot change silently.
        options = {
            "charset": "utf8mb4",
            "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
            **options,
        }
        config["TEST"] = {"CHARSET": "utf8mb4"}
    if options:
        config["OPTIONS"] = options
    return config
