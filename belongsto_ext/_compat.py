"""Every use of Django's private API, in one place.

Each item names the Django versions it was checked on (5.2, 6.0, 6.1). The rest
of the package uses public API only; a test greps it for what belongs here.
"""

from __future__ import annotations

import operator
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from django.core import exceptions
from django.core.exceptions import EmptyResultSet
from django.db import connections, models
from django.db.models.fields.related import (  # type: ignore[attr-defined, unused-ignore]
    lazy_related_operation,
)
from django.db.models.fields.related_descriptors import (
    ForeignKeyDeferredAttribute,
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
)
from django.db.models.query import ModelIterable

__all__ = [
    "FETCH_ONE",
    "FieldFetchBlocked",
    "ForeignKeyDeferredAttribute",
    "ForwardManyToOneDescriptor",
    "ForwardOneToOneDescriptor",
    "adding",
    "admin_registry",
    "called_by_refresh_from_db",
    "collector_cascade",
    "collector_restrict",
    "collector_update",
    "committed",
    "compiled_sql",
    "db",
    "explicit_alias",
    "fetch_mode",
    "fields_cache",
    "gfk_descriptor_class",
    "is_combined",
    "is_sliced",
    "iterable_class",
    "joins_related",
    "lazy_related_operation",
    "managers_map",
    "max_query_params",
    "peers",
    "set_adding",
    "set_db",
    "set_fields_cache",
    "set_peers",
    "where_nodes",
    "yields_instances",
]

# ForeignKeyDeferredAttribute (the <name>_id attribute), ForwardManyToOneDescriptor and
# ForwardOneToOneDescriptor (<name>), from django.db.models.fields.related_descriptors:
# subclassed as ForeignKey's descriptor_class / forward_related_accessor_class.
# lazy_related_operation (django.db.models.fields.related): runs a function once the
# models it names are loaded, as RelatedField schedules its own work.

# Django 6.1's public fetch mode (None before 6.1, which has no fetch modes).
FETCH_ONE: Any = getattr(models, "FETCH_ONE", None)

if hasattr(exceptions, "FieldFetchBlocked"):  # Django 6.1+
    FieldFetchBlocked = exceptions.FieldFetchBlocked
else:

    class FieldFetchBlocked(exceptions.FieldError):  # type: ignore[no-redef]
        """Fetching a field was blocked (Django 6.1's own class, before 6.1)."""


# ------------------------------------------------------------ the instance

_REFRESH_FROM_DB = models.Model.refresh_from_db.__code__
_getframe = sys._getframe


def called_by_refresh_from_db(depth: int = 2) -> bool:
    """Whether the function ``depth`` frames up from the caller is
    ``Model.refresh_from_db()``.

    It assigns each field with ``setattr()`` and has no hook: a key
    descriptor's ``__set__()`` asks this to tell a refresh from an assignment
    (on a model that defines ``refresh_from_db()`` itself, where this package
    does not wrap it). ``tests/test_tracking.py`` fails if ``refresh_from_db()``
    stops assigning the fields itself.
    """
    return _getframe(depth).f_code is _REFRESH_FROM_DB


#: ``fields_cache(instance)``: the per-instance dict Django keeps related objects
#: in, ``instance._state.fields_cache``. An attrgetter, not a function: it is read
#: for every owner in a batch, where a Python call shows.
fields_cache: Callable[[models.Model], dict[Any, Any]] = operator.attrgetter("_state.fields_cache")

#: ``adding(instance)``: whether the instance was never saved or loaded (``_state.adding``).
adding: Callable[[models.Model], bool] = operator.attrgetter("_state.adding")

#: ``db(instance)``: the database the instance was loaded from or saved to (``_state.db``).
db: Callable[[models.Model], str | None] = operator.attrgetter("_state.db")


def set_fields_cache(instance: models.Model, fields_cache: dict[Any, Any]) -> None:
    """Put back a copy of :func:`fields_cache` taken earlier."""
    instance._state.fields_cache = fields_cache


def set_adding(instance: models.Model, adding: bool) -> None:
    instance._state.adding = adding


def set_db(instance: models.Model, alias: str | None) -> None:
    """Set the instance's database, as Django's descriptors do on assignment."""
    instance._state.db = alias


def peers(instance: models.Model) -> Any:
    """The group of instances loaded with ``instance`` (``peers.py``), kept on its
    ``_state`` as Django 6.1 keeps its own peers there."""
    return getattr(instance._state, "belongsto_peers", None)


def set_peers(instance: models.Model, group: Any) -> None:
    instance._state.belongsto_peers = group  # type: ignore[attr-defined]


def committed(connection: Any) -> bool:
    """Whether the connection's last COMMIT succeeded and its commit callbacks did
    not all run (one raised): ``run_commit_hooks_on_set_autocommit_on``, which
    ``commit()`` sets once the COMMIT is done and ``set_autocommit(True)`` clears
    once the callbacks ran. A COMMIT that fails right after a callback raised in
    an earlier transaction of the same connection is taken as done (the flag is
    left set then)."""
    return bool(connection.run_commit_hooks_on_set_autocommit_on)


def fetch_mode(instance: models.Model) -> Any:
    """The instance's fetch mode (6.1: ``_state.fetch_mode``); None before 6.1."""
    return getattr(instance._state, "fetch_mode", None)


#: ``managers_map(model)``: ``{name: manager}`` of the managers declared on the model
#: and its bases, ``model._meta.managers_map``. An attrgetter: every named scope reads it.
managers_map: Callable[[type[models.Model]], dict[str, Any]] = operator.attrgetter(
    "_meta.managers_map"
)


# ------------------------------------------------------------ QuerySets


def is_sliced(queryset: models.QuerySet) -> bool:
    """Whether ``[a:b]`` was applied (``Query.is_sliced``)."""
    return bool(queryset.query.is_sliced)


def is_combined(queryset: models.QuerySet) -> str | None:
    """``"union"``, ``"intersection"`` or ``"difference"`` for a combined QuerySet
    (``Query.combinator``), else None."""
    combinator: str | None = queryset.query.combinator
    return combinator


def joins_related(queryset: models.QuerySet) -> bool:
    """Whether ``select_related()`` applies (``Query.select_related``)."""
    return bool(queryset.query.select_related)


def where_nodes(queryset: models.QuerySet) -> Any:
    """The QuerySet's WHERE tree (``Query.where``)."""
    return queryset.query.where


def iterable_class(queryset: models.QuerySet) -> type:
    """What iterating the QuerySet yields through (``_iterable_class``)."""
    return queryset._iterable_class


def yields_instances(queryset: models.QuerySet) -> bool:
    """Whether the QuerySet returns model instances (not values() dicts or tuples).

    Libraries return instances through ``ModelIterable`` subclasses
    (django-polymorphic, django-model-utils' ``InheritanceIterable``).
    """
    iterable = iterable_class(queryset)
    return isinstance(iterable, type) and issubclass(iterable, ModelIterable)


def explicit_alias(queryset: models.QuerySet) -> str | None:
    """The alias set with ``QuerySet.using()``, if any (``_db``)."""
    alias: str | None = queryset._db  # type: ignore[attr-defined]
    return alias


def compiled_sql(queryset: models.QuerySet, alias: str) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters ``queryset`` runs on ``alias``, ordering left out;
    None when it selects nothing (``EmptyResultSet``).

    Compiled on a clone: a Query subclass may add conditions when it is
    compiled (django-safedelete's ``SafeDeleteQuery.get_compiler()``), and the
    given QuerySet must not change (``Query.clone()``, ``clear_ordering()``,
    ``get_compiler().as_sql()``).
    """
    query = queryset.query.clone()
    query.clear_ordering(force=True)
    try:
        sql, params = query.get_compiler(connection=connections[alias]).as_sql()
    except EmptyResultSet:
        return None
    return sql, tuple(params)


def max_query_params(connection: Any) -> int | None:
    """The most parameters one statement may carry on ``connection``, None if no limit.

    SQLite's is the live connection's (``setlimit()`` can lower it): Django 6.1's
    ``features.max_query_params`` reads it, 5.2's says 999 whatever the build.
    PostgreSQL has one only with ``server_side_binding`` (65,535).
    """
    if connection.vendor == "sqlite":
        connection.ensure_connection()
        getlimit = getattr(connection.connection, "getlimit", None)  # Python 3.11+
        if getlimit is not None:
            return int(getlimit(getattr(sqlite3, "SQLITE_LIMIT_VARIABLE_NUMBER")))  # noqa: B009
    limit: int | None = connection.features.max_query_params
    if limit is None and getattr(connection.features, "uses_server_side_binding", False):
        return 2**16 - 1  # what 6.1 declares; 5.2's PostgreSQL features leave it None
    return limit


# ------------------------------------------------------------ the admin, contenttypes, deletion


def admin_registry(site: Any) -> dict[type[models.Model], Any]:
    """``{model: ModelAdmin}`` of an admin site (``AdminSite._registry``)."""
    registry: dict[type[models.Model], Any] = site._registry
    return registry


def gfk_descriptor_class() -> type | None:
    """Django's ``GenericForeignKeyDescriptor`` (6.0, 6.1), which a GenericForeignKey
    installs as ``<name>``; None on 5.2, where the field is its own descriptor.
    Imported on call: contenttypes' models need the app registry."""
    from django.contrib.contenttypes import fields

    descriptor: type | None = getattr(fields, "GenericForeignKeyDescriptor", None)
    return descriptor


# An on_delete handler receives Django's deletion Collector; these are the calls
# Django's own CASCADE, SET_NULL and RESTRICT make on it.


def collector_cascade(collector: Any, owners: Any, source: Any, source_attr: str) -> None:
    """Delete ``owners`` with the rows being deleted, as CASCADE does."""
    collector.collect(
        owners, source=source, source_attr=source_attr, nullable=True, fail_on_restricted=False
    )


def collector_update(collector: Any, field: Any, value: Any, owners: list[Any]) -> None:
    """Set ``field`` to ``value`` on ``owners`` (by primary key) before the delete."""
    collector.add_field_update(field, value, owners)


def collector_restrict(collector: Any, link: Any, owners: list[Any], owner_model: Any) -> None:
    """Refuse the delete unless ``owners`` go too, as RESTRICT does."""
    collector.add_restricted_objects(link, owners)
    collector.add_dependency(link.remote_field.model, owner_model)
