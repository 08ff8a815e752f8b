"""Batch loading: ``prefetch()`` and ``aprefetch()`` fill the scoped answers of
many instances with one query."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asgiref.sync import sync_to_async
from django.db import models

from . import accessors, scopes
from .fields import BelongsToMixin
from .types import Scope

__all__ = ["aprefetch", "prefetch"]


def prefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: Scope[Any] = None,
    using: str | None = None,
) -> None:
    """Load the ``name`` relation in ``scope`` for all ``instances`` in one query.

    Afterwards ``instance.get_<name>(scope=scope)`` answers from the cache.
    Instances whose result is already cached, or whose key is null, are skipped;
    when none is left no query is made.

    Args:
        instances: Instances of one model that has a BelongsTo field ``name``.
        name: The field's name, e.g. ``"author"``; a field of another kind
            raises TypeError.
        scope: Any scope ``get_<name>()`` accepts.
        using: Read from this database alias instead of the router's.

    Raises:
        TypeError: ``name`` is not a BelongsTo field, or an instance is of
            another model.
        InvalidScope: the scope is refused, as by ``get_<name>()``.
    """
    instances = list(instances)
    if not instances:
        return
    field = _field(instances, name)
    key = scopes.cache_key(field.related_model, scope, field)  # type: ignore[arg-type]
    accessors.load(field, instances, key, using)


async def aprefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: Scope[Any] = None,
    using: str | None = None,
) -> None:
    """Async :func:`prefetch`."""
    await _prefetch_in_thread(list(instances), name, scope, using)


def _field(instances: list[models.Model], name: str) -> BelongsToMixin:
    """The BelongsTo field ``name`` shared by every instance, or TypeError."""
    model = type(instances[0])
    field = model._meta.get_field(name)
    if not isinstance(field, BelongsToMixin):
        raise TypeError(
            f"prefetch(): {model.__name__}.{name} is a {type(field).__name__}, not a "
            f"BelongsToField or BelongsToOneField."
        )
    for instance in instances:
        if not isinstance(instance, field.model):
            raise TypeError(
                f"prefetch(): {instance!r} is not a {field.model.__name__}; all instances "
                f"must have the {field.model.__name__}.{name} field."
            )
    return field


_prefetch_in_thread = sync_to_async(prefetch)
