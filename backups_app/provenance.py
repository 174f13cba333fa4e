"""Tell the backups this installation wrote from foreign ones, and what a foreign one
would do to the accounts.

The writer puts an HMAC-SHA256 (``mac``) into the trailer, over the whole-file digest
and the header's ``created`` and ``database``. The digest already covers every byte
before the trailer, so a valid mac vouches for the whole file. The key is
``BACKUPS["SIGNING_KEY"]`` (a string, or a list whose first key signs and whose
every key verifies), else ``SECRET_KEY`` with ``SECRET_KEY_FALLBACKS``, salted
through Django's ``salted_hmac``. Anyone can recompute the digests of a crafted
file; only a holder of the key can make its mac verify.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac

from .conf import app_settings
from .exceptions import BackupFormatError, one_line
from .fileformat.reader import BackupReader

OURS = "ours"
FOREIGN = "foreign"
# A plan made from the header alone: the trailer, and so its mac, is not read yet.
UNVERIFIED = "unverified"
MAC_SALT = "backups_app.provenance"
# The preview lists at most this many account changes, and reads at most this many
# rows of each account table of a foreign file (a crafted file may hold millions).
MAX_CHANGES_SHOWN = 50
MAX_AUTH_ROWS = 100_000


def signing_keys() -> list[str]:
    """Return the keys that verify a mac; the first one signs."""
    configured = app_settings.SIGNING_KEY
    if configured:
        keys = [configured] if isinstance(configured, str) else list(configured)
    else:
        keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())]
    return [str(key) for key in keys if key]


def _mac(key: str, digest: Any, header: dict[str, Any]) -> str:
    message = "\n".join(
        [
            "backups_app",
            str(digest),
            str(header.get("created")),
            str(header.get("database")),
        ]
    )
    return salted_hmac(MAC_SALT, message, secret=key, algorithm="sha256").hexdigest()


def sign(digest: str, header: dict[str, Any]) -> str:
    """Return the mac the trailer of a file with this digest and header carries."""
    return _mac(signing_keys()[0], digest, header)


def provenance_of(header: dict[str, Any], trailer: dict[str, Any] | None) -> str:
    """Return OURS when the (already verified) trailer's mac verifies, else FOREIGN."""
    trailer = trailer or {}
    mac = trailer.get("mac")
    if not isinstance(mac, str):
        return FOREIGN
    digest = trailer.get("digest")
    for key in signing_keys():
        if constant_time_compare(mac, _mac(key, digest, header)):
            return OURS
    return FOREIGN


# -- what a foreign file would do to the accounts ------------------------------------


@dataclass(frozen=True)
class AuthChange:
    text: str
    # A new or promoted superuser or staff member, a replaced password, a gained
    # permission or group: what an attacker would plant.
    alarming: bool


@dataclass(frozen=True)
class AuthChanges:
    """The account changes a restore of a file would make, the first few of them."""

    changes: tuple[AuthChange, ...]
    total: int
    alarming: int
    truncated_tables: tuple[str, ...] = ()

    @property
    def more(self) -> int:
        return self.total - len(self.changes)


@dataclass
class _Accounts:
    """Users, groups and permissions, by name, as a file or a database holds them."""

    users: dict[str, dict[str, Any]]
    user_permissions: set[tuple[str, str]]
    user_groups: set[tuple[str, str]]
    groups: set[str]
    group_permissions: set[tuple[str, str]]


def _user_fields(user_model: Any) -> dict[str, str]:
    """Map the flags compared here to the user model's columns, where it has them."""
    found = {"username": user_model._meta.get_field(user_model.USERNAME_FIELD).column}
    for name in ("is_superuser", "is_staff", "is_active", "password"):
        try:
            found[name] = user_model._meta.get_field(name).column
        except Exception:  # noqa: BLE001 (FieldDoesNotExist: a custom user model)
            continue
    return found


def _through(model: Any, field_name: str) -> Any:
    try:
        return model._meta.get_field(field_name).remote_field.through
    except Exception:  # noqa: BLE001 (FieldDoesNotExist: a user model without it)
        return None


def _auth_models() -> dict[str, Any]:
    from django.apps import apps
    from django.contrib.auth import get_user_model

    if not apps.is_installed("django.contrib.auth"):
        return {}
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    user_model = get_user_model()
    return {
        "user": user_model,
        "user_groups": _through(user_model, "groups"),
        "user_permissions": _through(user_model, "user_permissions"),
        "group": Group,
        "group_permissions": Group.permissions.through,
        "permission": Permission,
        "content_type": ContentType,
    }


def _file_accounts(source: Any, models: dict[str, Any]) -> tuple[_Accounts, list[str]]:
    """Stream the file's account tables (only those) into names."""
    user_model = models["user"]
    user_columns = _user_fields(user_model)
    wanted = {
        model._meta.label: key for key, model in models.items() if model is not None
    }
    pk_column = user_model._meta.pk.column
    # Only these columns are kept, to hold as little of each row as can be.
    needed = {
        "user": {pk_column, *user_columns.values()},
        "group": {"id", "name"},
        "permission": {"id", "content_type_id", "codename"},
        "content_type": {"id", "app_label"},
        **{
            key: set(_link_columns(models[key]))
            for key in ("user_groups", "user_permissions", "group_permissions")
            if models[key] is not None
        },
    }
    rows: dict[str, list[dict[str, Any]]] = {key: [] for key in models}
    truncated = []
    with source.open() as stream:
        reader = BackupReader(stream, source.name)
        for section in reader.tables():
            key = wanted.get(section.label)
            if key is None:
                continue
            positions = [
                (column, index)
                for index, column in enumerate(section.columns)
                if column in needed[key]
            ]
            kept = rows[key]
            for lines in section.batches(2000):
                for line in lines:
                    if len(kept) >= MAX_AUTH_ROWS:
                        if section.label not in truncated:
                            truncated.append(section.label)
                        break
                    values = orjson.loads(line)
                    kept.append({column: values[i] for column, i in positions})
    app_labels = {row.get("id"): row.get("app_label") for row in rows["content_type"]}
    permissions = {
        row.get("id"): f"{app_labels.get(row.get('content_type_id'), '?')}."
        f"{row.get('codename')}"
        for row in rows["permission"]
    }
    users = {}
    usernames = {}
    for row in rows["user"]:
        username = str(row.get(user_columns["username"]))
        usernames[row.get(pk_column)] = username
        users[username] = {
            name: row.get(column)
            for name, column in user_columns.items()
            if name != "username"
        }
    groups = {row.get("id"): str(row.get("name")) for row in rows["group"]}
    return (
        _Accounts(
            users=users,
            user_permissions=_pairs(
                rows["user_permissions"],
                models["user_permissions"],
                usernames,
                permissions,
            ),
            user_groups=_pairs(
                rows["user_groups"], models["user_groups"], usernames, groups
            ),
            groups=set(groups.values()),
            group_permissions=_pairs(
                rows["group_permissions"],
                models["group_permissions"],
                groups,
                permissions,
            ),
        ),
        truncated,
    )


def _link_columns(through: Any) -> tuple[str, str]:
    """The two foreign key columns of an auto-created many-to-many table, in order."""
    links = [f.column for f in through._meta.concrete_fields if f.is_relation]
    return links[0], links[1]


def _pairs(
    rows: Iterable[dict[str, Any]],
    through: Any,
    left: dict[Any, str],
    right: dict[Any, str],
) -> set[tuple[str, str]]:
    if through is None:
        return set()
    first, second = _link_columns(through)
    return {
        (
            str(left.get(row.get(first), row.get(first))),
            str(right.get(row.get(second), row.get(second))),
        )
        for row in rows
    }


def _database_accounts(using: str, models: dict[str, Any]) -> _Accounts:
    user_model = models["user"]
    columns = _user_fields(user_model)
    names = {
        name: user_model._meta.get_field(
            user_model.USERNAME_FIELD if name == "username" else name
        ).attname
        for name in columns
    }
    users = {}
    for values in user_model._base_manager.using(using).values(*names.values()):
        username = str(values[names["username"]])
        users[username] = {
            name: values[attname]
            for name, attname in names.items()
            if name != "username"
        }

    def permission_name(permission: Any) -> str:
        return f"{permission.content_type.app_label}.{permission.codename}"

    permission_names = {
        permission.pk: permission_name(permission)
        for permission in models["permission"]
        ._base_manager.using(using)
        .select_related("content_type")
    }
    usernames = dict(
        user_model._base_manager.using(using).values_list(
            "pk", user_model.USERNAME_FIELD
        )
    )
    group_names = dict(
        models["group"]._base_manager.using(using).values_list("pk", "name")
    )

    def pairs(
        through: Any, left: dict[Any, str], right: dict[Any, str]
    ) -> set[tuple[str, str]]:
        if through is None:
            return set()
        first, second = (
            f.attname for f in through._meta.concrete_fields if f.is_relation
        )
        return {
            (str(left.get(a, a)), str(right.get(b, b)))
            for a, b in through._base_manager.using(using).values_list(first, second)
        }

    return _Accounts(
        users=users,
        user_permissions=pairs(models["user_permissions"], usernames, permission_names),
        user_groups=pairs(models["user_groups"], usernames, group_names),
        groups=set(group_names.values()),
        group_permissions=pairs(
            models["group_permissions"], group_names, permission_names
        ),
    )


def _roles(flags: dict[str, Any]) -> list[str]:
    return [
        role
        for role, flag in (("superuser", "is_superuser"), ("staff", "is_staff"))
        if flags.get(flag)
    ]


def _compare(now: _Accounts, then: _Accounts) -> list[AuthChange]:
    changes: list[AuthChange] = []
    for username in sorted(set(then.users) - set(now.users)):
        roles = _roles(then.users[username])
        text = f"New user {username!r}"
        if roles:
            text += ": " + ", ".join(roles)
        changes.append(AuthChange(text, bool(roles)))
    for username in sorted(set(then.users) & set(now.users)):
        before, after = now.users[username], then.users[username]
        notes = [
            f"becomes {role}" for role in _roles(after) if role not in _roles(before)
        ]
        if "is_active" in after and after["is_active"] and not before.get("is_active"):
            notes.append("becomes active")
        if "password" in after and after["password"] != before.get("password"):
            notes.append("gets another password")
        if notes:
            changes.append(AuthChange(f"User {username!r} " + ", ".join(notes), True))
    for username, permission in sorted(then.user_permissions - now.user_permissions):
        changes.append(
            AuthChange(f"User {username!r} gains permission {permission}", True)
        )
    for username, group in sorted(then.user_groups - now.user_groups):
        changes.append(AuthChange(f"User {username!r} joins group {group!r}", True))
    for group in sorted(then.groups - now.groups):
        changes.append(AuthChange(f"New group {group!r}", False))
    for group, permission in sorted(then.group_permissions - now.group_permissions):
        changes.append(
            AuthChange(f"Group {group!r} gains permission {permission}", True)
        )
    for username in sorted(set(now.users) - set(then.users)):
        changes.append(AuthChange(f"User {username!r} is removed", False))
    return changes


def auth_changes(source: Any, using: str) -> AuthChanges | None:
    """Compare the file's users, groups and permissions with the database's.

    Reads only the account tables of the file (and of the database); returns None
    when django.contrib.auth is not installed. Alarming changes come first.
    """
    models = _auth_models()
    if not models:
        return None
    try:
        then, truncated = _file_accounts(source, models)
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        # Digests recomputed over rows that are not lists of the columns' values.
        raise BackupFormatError(
            f"{source.name}: its user, group and permission rows cannot be read "
            f"({type(exc).__name__}: {one_line(exc)})"
        ) from exc
    now = _database_accounts(using, models)
    changes = _compare(now, then)
    changes.sort(key=lambda change: not change.alarming)
    return AuthChanges(
        changes=tuple(changes[:MAX_CHANGES_SHOWN]),
        total=len(changes),
        alarming=sum(change.alarming for change in changes),
        truncated_tables=tuple(truncated),
    )
