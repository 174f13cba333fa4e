"""Which tables a backup covers, and in which order, computed from the app registry."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, cast

from django.apps import apps
from django.db import DatabaseError, connections, models, router

from ..conf import ALWAYS_EXCLUDED_APPS, app_settings
from ..exceptions import (
    BackupError,
    CannotRunError,
    IncompatibleBackupError,
    one_line,
)


def column_of(field: models.Field[Any, Any]) -> str:
    """Return a concrete field's column.

    django-stubs types ``Field.column`` as optional: it is None only until the field
    is added to its model class.
    """
    return cast(str, field.column)


def concrete_model(model: type[models.Model]) -> type[models.Model]:
    """Return the model whose table holds ``model``'s rows.

    django-stubs types ``Options.concrete_model`` as optional: it is set for every
    model class.
    """
    return cast("type[models.Model]", model._meta.concrete_model)


# App labels and lower-cased model labels (parse_labels).
Labels = tuple[AbstractSet[str], AbstractSet[str]]


@dataclass(frozen=True)
class TableSpec:
    """One database table: the model that owns it and its columns in file order."""

    model: type[models.Model]
    label: str
    table: str
    fields: tuple[models.Field[Any, Any], ...]
    pk_fields: tuple[models.Field[Any, Any], ...]
    # Labels of the tables this one points at with a foreign key (its parents).
    parents: frozenset[str] = field(default=frozenset())

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column_of(f) for f in self.fields)

    @property
    def pk_columns(self) -> tuple[str, ...]:
        return tuple(column_of(f) for f in self.pk_fields)

    @property
    def insert_fields(self) -> tuple[models.Field[Any, Any], ...]:
        """Fields a restore writes: generated columns are computed by the database."""
        return tuple(f for f in self.fields if not f.generated)


def is_model_label(label: str) -> bool:
    """Tell a model label (``app_label.ModelName``) from an app label."""
    return "." in label


def resolve_label(label: str) -> str:
    """Return what ``label`` names: an app label as it is, a model label lower-cased.

    Raises LookupError when it names no installed app or model.
    """
    if not is_model_label(label):
        return apps.get_app_config(label).label
    try:
        return str(apps.get_model(label)._meta.label_lower)
    except ValueError as exc:  # more than one dot
        raise LookupError(str(exc)) from None


def parse_labels(
    labels: Iterable[str], where: str = "exclude"
) -> tuple[frozenset[str], frozenset[str]]:
    """Split labels into app labels and lower-cased model labels; raise on unknown ones."""
    app_labels: set[str] = set()
    model_labels: set[str] = set()
    for label in labels:
        is_model = is_model_label(label)
        try:
            resolved = resolve_label(label)
        except LookupError:
            what = "model" if is_model else "app"
            raise CannotRunError(f"Unknown {what} in {where}: {label!r}.") from None
        (model_labels if is_model else app_labels).add(resolved)
    return frozenset(app_labels), frozenset(model_labels)


def require_database(using: str) -> None:
    """Fail with CannotRunError unless ``using`` is a configured alias that answers."""
    if using not in connections:
        raise CannotRunError(
            f"Unknown database {using!r}; the aliases in DATABASES are: "
            + ", ".join(repr(alias) for alias in connections)
            + "."
        )
    try:
        connections[using].ensure_connection()
    except DatabaseError as exc:
        raise CannotRunError(
            f"Cannot connect to database {using!r}: {one_line(exc)}"
        ) from exc


def _is_backed_up(
    model: type[models.Model],
    using: str,
    unmanaged: Labels = (frozenset(), frozenset()),
) -> bool:
    """Tell whether ``migrate`` creates the model's table on database ``using``, or
    the model is an unmanaged one that ``unmanaged`` (app and model labels) names.

    The same test as Django's migration operations: ``Meta.can_migrate`` (managed,
    not proxy or swapped, ``required_db_vendor`` and ``required_db_features``), then
    the routers. An auto-created many-to-many table is created with the model that
    declares the field, so that model's Meta decides.
    """
    opts = model._meta
    owner = opts.auto_created if isinstance(opts.auto_created, type) else model
    connection = connections[using]
    return (
        _migrates(opts, connection, unmanaged, model)
        and _migrates(owner._meta, connection, unmanaged, owner)
        and router.allow_migrate_model(using, model)
    )


def _migrates(
    opts: Any, connection: Any, unmanaged: Labels, model: type[models.Model]
) -> bool:
    if opts.managed or not _named(model, *unmanaged):
        return bool(opts.can_migrate(connection))
    # Meta.can_migrate, as if the model were managed.
    if opts.proxy or opts.swapped:
        return False
    if opts.required_db_vendor:
        return bool(opts.required_db_vendor == connection.vendor)
    return all(
        getattr(connection.features, f, False) for f in opts.required_db_features
    )


def unmanaged_left_out(using: str, unmanaged: Iterable[str] | None = None) -> list[str]:
    """Return the labels of the unmanaged models whose table is in the database (a
    table, not a view) and that backups leave out: ``BACKUPS["UNMANAGED"]`` (or
    ``unmanaged``) does not name them."""
    named = parse_labels(
        app_settings.UNMANAGED if unmanaged is None else unmanaged, "unmanaged"
    )
    excluded = parse_labels(app_settings.EXCLUDE)
    exists = _table_exists(using)
    left_out = []
    for model in apps.get_models():
        opts = model._meta
        if (
            not opts.managed
            and exists(opts.db_table)
            and not _excluded(model, *excluded)
            and not _is_backed_up(model, using, named)
            and _is_backed_up(model, using, (frozenset(), {opts.label_lower}))
        ):
            left_out.append(opts.label)
    return sorted(left_out)


def require_tables(
    specs: Iterable[TableSpec], using: str, error: type[BackupError] = BackupError
) -> None:
    """Raise ``error`` naming the first model whose table the database lacks."""
    for spec in missing_tables(specs, using):
        remedy = (
            "run migrate, or exclude the model"
            if spec.model._meta.managed
            else "the model is unmanaged: make the table as migrate does not"
        )
        raise error(
            f"{spec.label}: table {spec.table!r} does not exist in database "
            f"{using!r}; {remedy}."
        )


def missing_tables(specs: Iterable[TableSpec], using: str) -> list[TableSpec]:
    """Return the specs whose table the database lacks (a view is no table)."""
    exists = _table_exists(using)
    return [spec for spec in specs if not exists(spec.table)]


def _table_exists(using: str) -> Callable[[str], bool]:
    """Return a test of whether the database has a table (not a view) of a name,
    as the database compares names."""
    connection = connections[using]
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
    if connection.features.ignores_table_name_case:
        existing = {name.lower() for name in existing}
        return lambda table: table.lower() in existing
    return existing.__contains__


def _excluded(
    model: type[models.Model],
    app_labels: frozenset[str],
    model_labels: frozenset[str],
) -> bool:
    return model._meta.app_label in ALWAYS_EXCLUDED_APPS or _named(
        model, app_labels, model_labels
    )


def _named(
    model: type[models.Model],
    app_labels: AbstractSet[str],
    model_labels: AbstractSet[str],
) -> bool:
    """Tell whether the labels name the model, or its app."""
    opts = model._meta
    if opts.app_label in app_labels or opts.label_lower in model_labels:
        return True
    # An auto-created M2M table goes with the model that declares the field;
    # Django stores that model in Meta.auto_created.
    if isinstance(opts.auto_created, type):
        return _named(opts.auto_created, app_labels, model_labels)
    return False


def _spec(model: type[models.Model]) -> TableSpec:
    opts = model._meta
    fields = tuple(opts.local_concrete_fields)
    pk_fields = tuple(getattr(opts, "pk_fields", None) or (opts.pk,))
    parents = frozenset(
        concrete_model(f.related_model)._meta.label
        for f in fields
        if f.is_relation and f.related_model is not None
    )
    return TableSpec(
        model=model,
        label=opts.label,
        table=opts.db_table,
        fields=fields,
        pk_fields=pk_fields,
        parents=parents,
    )


def table_specs(
    using: str = "default",
    exclude: Iterable[str] = (),
    unmanaged: Iterable[str] | None = None,
) -> list[TableSpec]:
    """Return the tables of every installed model, parents before children.

    ``unmanaged``: labels of the unmanaged models (or their apps) to include;
    ``BACKUPS["UNMANAGED"]`` when None.
    """
    app_labels, model_labels = parse_labels([*app_settings.EXCLUDE, *exclude])
    named = parse_labels(
        app_settings.UNMANAGED if unmanaged is None else unmanaged, "unmanaged"
    )
    specs = [
        _spec(model)
        for model in apps.get_models(include_auto_created=True)
        if _is_backed_up(model, using, named)
        and not _excluded(model, app_labels, model_labels)
    ]
    return dependency_order(specs)


def unmanaged_labels(specs: Iterable[TableSpec]) -> list[str]:
    """Return the labels of the unmanaged models among ``specs``: what a backup of
    them records in its header (``unmanaged``), for its restore to include them."""
    return sorted(
        spec.label
        for spec in specs
        if not spec.model._meta.managed and not spec.model._meta.auto_created
    )


def all_table_specs(using: str = "default") -> list[TableSpec]:
    """Return the tables of every installed model that has one in ``using``,
    excluded or not: what the database holds, in no particular order."""
    named = parse_labels(app_settings.UNMANAGED, "unmanaged")
    return [
        _spec(model)
        for model in apps.get_models(include_auto_created=True)
        if _is_backed_up(model, using, named)
    ]


def unknown_labels(labels: Iterable[str]) -> list[str]:
    """Return the labels that name no installed app or model."""
    unknown = []
    for label in labels:
        try:
            resolve_label(label)
        except LookupError:
            unknown.append(label)
    return unknown


def file_table_specs(using: str, header: dict[str, Any]) -> list[TableSpec]:
    """Return the tables of a backup's scope (its header's ``exclude``) here.

    A label the file leaves out that names nothing installed here means the file
    comes from another project: IncompatibleBackupError, not a usage error.
    """
    exclude = tuple(header.get("exclude", ()))
    unknown = unknown_labels(exclude)
    if unknown:
        raise IncompatibleBackupError(
            f"The backup leaves out {unknown[0]!r}, which is no installed app or "
            "model here: it comes from another project.",
            [
                f"{label}: left out by the backup, not installed here"
                for label in unknown
            ],
        )
    unmanaged = file_unmanaged(header)
    unknown = unknown_labels(unmanaged)
    if unknown:
        raise IncompatibleBackupError(
            f"The backup holds the unmanaged model {unknown[0]!r}, which is not "
            "installed here.",
            [f"{label}: in the backup, not installed here" for label in unknown],
        )
    return table_specs(using, exclude, unmanaged)


def file_unmanaged(header: dict[str, Any]) -> tuple[str, ...]:
    """The unmanaged models a backup holds (none in files older than the key)."""
    return tuple(header.get("unmanaged", ()))


def dependency_order(specs: list[TableSpec]) -> list[TableSpec]:
    """Order tables so that every table comes after the tables it points at.

    Ties are broken by label, so the order is the same on every run. Edges that close
    a cycle (including self references) cannot be honoured; they are dropped, which is
    safe because restores run with constraint checks deferred or disabled.
    """
    by_label = {spec.label: spec for spec in specs}
    parents = {
        spec.label: {p for p in spec.parents if p in by_label and p != spec.label}
        for spec in specs
    }
    children: dict[str, set[str]] = {label: set() for label in by_label}
    for label, its_parents in parents.items():
        for parent in its_parents:
            children[parent].add(label)
    waiting = {label: len(its_parents) for label, its_parents in parents.items()}
    ready = [label for label, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while len(ordered) < len(by_label):
        if not ready:
            # A cycle: release the waiting table with the fewest unmet parents.
            stuck = min(
                (label for label in waiting if label not in ordered and waiting[label]),
                key=lambda label: (waiting[label], label),
            )
            waiting[stuck] = 0
            heapq.heappush(ready, stuck)
        label = heapq.heappop(ready)
        if label in ordered:
            continue
        ordered.append(label)
        for child in sorted(children[label]):
            if waiting[child] > 0:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)
    return [by_label[label] for label in ordered]
