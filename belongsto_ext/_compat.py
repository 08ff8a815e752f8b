"""Every use of Django's private API, in one place.

Each item names the Django versions it was checked on. Everything else in the
package uses public API only.
"""

from __future__ import annotations

import operator
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from django.core import exceptions
from django.db import connections, models
from django.db.models.fields.related_descriptors import (  # subclassed by fields.py
    ForeignKeyDeferredAttribute,
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
)
from django.db.models.query import ModelIterable

# Django 6.1's public fetch mode (None before 6.1, which has no fetch modes).
FETCH_ONE: Any = getattr(models, "FETCH_ONE", None)

if hasattr(exceptions, "FieldFetchBlocked"):  # Django 6.1+
    FieldFetchBlocked = exceptions.FieldFetchBlocked
else:

    class FieldFetchBlocked(exceptions.FieldError):  # type: ignore[no-redef]
        """Fetching a field was blocked (Django 6.1's own class, before 6.1)."""


_REFRESH_FROM_DB = models.Model.refresh_from_db.__code__


def called_by_refresh_from_db() -> bool:
    """Whether the caller of the caller is ``Model.refresh_from_db()``.

    It assigns each field with ``setattr()`` and has no hook: a key
    descriptor's ``__set__()`` asks this to tell a refresh from an assignment
    (5.2, 6.0, 6.1).
    """
    return sys._getframe(2).f_code is _REFRESH_FROM_DB


# ForeignKeyDeferredAttribute (the <name>_id attribute), ForwardManyToOneDescriptor and
# ForwardOneToOneDescriptor (<name>), from django.db.models.fields.related_descriptors:
# subclassed as ForeignKey's descriptor_class / forward_related_accessor_class (5.2, 6.0, 6.1).

__all__ = [
    "FETCH_ONE",
    "FieldFetchBlocked",
    "ForeignKeyDeferredAttribute",
    "ForwardManyToOneDescriptor",
    "ForwardOneToOneDescriptor",
    "admin_registry",
    "called_by_refresh_from_db",
    "compiled_sql",
    "explicit_alias",
    "fetch_mode",
    "fields_cache",
    "is_combined",
    "is_sliced",
    "iterable_class",
    "managers_map",
    "max_query_params",
    "set_fields_cache",
    "yields_instances",
]


#: ``fields_cache(instance)``: the per-instance dict Django keeps related objects
#: in, ``instance._state.fields_cache`` (5.2, 6.0, 6.1). An attrgetter, not a
#: function: it is read for every owner in a batch, where a Python call shows.
fields_cache: Callable[[models.Model], dict[Any, Any]] = operator.attrgetter("_state.fields_cache")


def set_fields_cache(instance: models.Model, fields_cache: dict[Any, Any]) -> None:
    """Put back a copy of :func:`fields_cache` taken earlier."""
    instance._state.fields_cache = fields_cache


#: ``managers_map(model)``: ``{name: manager}`` of the managers declared on the model
#: and its bases, ``model._meta.managers_map`` (5.2, 6.0, 6.1). An attrgetter: every
#: named scope reads it.
managers_map: Callable[[type[models.Model]], dict[str, Any]] = operator.attrgetter(
    "_meta.managers_map"
)


def is_sliced(queryset: models.QuerySet) -> bool:
    """Whether ``[a:b]`` was applied (``Query.is_sliced``: 5.2, 6.0, 6.1)."""
    return bool(queryset.query.is_sliced)


def is_combined(queryset: models.QuerySet) -> str | None:
    """``"union"``, ``"intersection"`` or ``"difference"`` for a combined QuerySet
    (``Query.combinator``: 5.2, 6.0, 6.1), else None."""
    combinator: str | None = queryset.query.combinator
    return combinator


def fetch_mode(instance: models.Model) -> Any:
    """The instance's fetch mode (6.1: ``_state.fetch_mode``); None before 6.1."""
    return getattr(instance._state, "fetch_mode", None)


def iterable_class(queryset: models.QuerySet) -> type:
    """What iterating the QuerySet yields through (``_iterable_class``: 5.2, 6.0, 6.1)."""
    return queryset._iterable_class


def yields_instances(queryset: models.QuerySet) -> bool:
    """Whether the QuerySet returns model instances (not values() dicts or tuples).

    Libraries return instances through ``ModelIterable`` subclasses
    (django-polymorphic, django-model-utils' ``InheritanceIterable``).
    """
    iterable = iterable_class(queryset)
    return isinstance(iterable, type) and issubclass(iterable, ModelIterable)


def explicit_alias(queryset: models.QuerySet) -> str | None:
    """The alias set with ``QuerySet.using()``, if any (``_db``: 5.2, 6.0, 6.1)."""
    alias: str | None = queryset._db  # type: ignore[attr-defined]
    return alias


def admin_registry(site: Any) -> dict[type[models.Model], Any]:
    """``{model: ModelAdmin}`` of an admin site (``AdminSite._registry``: 5.2, 6.0, 6.1)."""
    registry: dict[type[models.Model], Any] = site._registry
    return registry


def max_query_params(connection: Any) -> int | None:
    """The most parameters one statement may carry on ``connection``, None if no limit.

    SQLite's is the live connection's (``setlimit()`` can lower it): Django 6.1's
    ``features.max_query_params`` reads it, 5.2's says 999 whatever the build.
    PostgreSQL has one only with ``server_side_binding`` (65,535). (5.2, 6.0, 6.1)
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


def compiled_sql(queryset: models.QuerySet, alias: str) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters ``queryset`` runs on ``alias``, ordering left out;
    None when it selects nothing (``EmptyResultSet``).

    Compiled on a clone: a Query subclass may add conditions when it is
    compiled (django-safedelete's ``SafeDeleteQuery.get_compiler()``), and the
    given QuerySet must not change. ``Query.clone()``, ``clear_ordering()``
    and ``get_compiler().as_sql()`` checked on 5.2, 6.0, 6.1.
    """
    from django.core.exceptions import EmptyResultSet

    query = queryset.query.clone()
    query.clear_ordering(force=True)
    try:
        sql, params = query.get_compiler(connection=connections[alias]).as_sql()
    except EmptyResultSet:
        return None
    return sql, tuple(params)


# ------------------------------------------------------------ BelongsToAnyField
#
# anyfield.py's hidden TargetLink is a ForeignObject added with
# ``contribute_to_class(..., private_only=True)`` once its models are loaded
# (``lazy_related_operation``, as RelatedField itself schedules it), and skips a
# multi-table child's copy by its ``mti_inherited`` flag (5.2 and 6.1; 6.0 not
# checked here).

from django.db.models.fields import related as _related  # noqa: E402

lazy_related_operation: Callable[..., None] = _related.lazy_related_operation  # type: ignore[attr-defined, unused-ignore]

__all__ += [
    "collector_update",
    "gfk_descriptor_class",
    "lazy_related_operation",
]


def gfk_descriptor_class() -> type | None:
    """Django's ``GenericForeignKeyDescriptor`` (6.1; 6.0 not checked here), which a
    GenericForeignKey installs as ``<name>``; None on 5.2, where the field is its own
    descriptor. Imported on call: contenttypes' models need the app registry."""
    from django.contrib.contenttypes import fields

    descriptor: type | None = getattr(fields, "GenericForeignKeyDescriptor", None)
    return descriptor


# An on_delete handler receives Django's deletion Collector; this is the call
# Django's own SET_NULL makes on it (add_field_update(): 5.2 and 6.1). The
# cascade and restrict calls are in anyfield.py, beside the links they name.


def collector_update(collector: Any, field: Any, value: Any, owners: list[Any]) -> None:
    """Set ``field`` to ``value`` on ``owners`` (by primary key) before the delete."""
    collector.add_field_update(field, value, owners)
