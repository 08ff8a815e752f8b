"""Every use of Django's private API, in one place.

Each item names the Django versions it was checked on. Everything else in the
package uses public API only.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from django.db import connections, models
from django.db.models.query import ModelIterable

# Django 6.1's public fetch mode (None before 6.1, which has no fetch modes).
FETCH_ONE: Any = getattr(models, "FETCH_ONE", None)

__all__ = [
    "FETCH_ONE",
    "admin_registry",
    "compiled_sql",
    "explicit_alias",
    "fetch_mode",
    "fields_cache",
    "iterable_class",
    "yields_instances",
]


#: ``fields_cache(instance)``: the per-instance dict Django keeps related objects
#: in, ``instance._state.fields_cache`` (5.2, 6.0, 6.1). An attrgetter, not a
#: function: it is read for every owner in a batch, where a Python call shows.
fields_cache: Callable[[models.Model], dict[str, Any]] = operator.attrgetter("_state.fields_cache")


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
