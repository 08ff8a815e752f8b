"""Batch loading: ``prefetch()``, ``aprefetch()`` and ``ScopedPrefetch`` (for
``prefetch_related()``) fill the scoped answers of many instances with one query
per database and per batch of keys the database takes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from asgiref.sync import sync_to_async
from django.apps import apps
from django.db import models
from django.db.models import Prefetch
from django.db.models.constants import LOOKUP_SEP

from . import accessors, scopes
from .fields import BelongsToMixin
from .types import AnyScope, Scope

__all__ = ["ScopedPrefetch", "aprefetch", "prefetch"]

_LookupT = TypeVar("_LookupT", bound=str)
_QuerySetT = TypeVar("_QuerySetT")
_ToAttrT = TypeVar("_ToAttrT", bound=str)

if TYPE_CHECKING:
    from . import anyfield

    _PrefetchBase = Prefetch[Any, Any, Any]
else:
    _PrefetchBase = Prefetch


def prefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: AnyScope = None,
    using: str | None = None,
) -> None:
    """Load the ``name`` relation in ``scope`` for all ``instances`` in one query
    (for a ``BelongsToAnyField``, one query per target model).

    Afterwards ``instance.get_<name>(scope=scope)`` answers from the cache.
    Instances whose result is already cached, or whose key is null, are skipped;
    when none is left no query is made.

    Args:
        instances: Instances of one model that has a ``BelongsToField``,
            ``BelongsToOneField`` or ``BelongsToAnyField`` named ``name``.
        name: The field's name, e.g. ``"author"``; a field of another kind
            raises TypeError.
        scope: Any scope ``get_<name>()`` accepts (for a ``BelongsToAnyField``,
            a mapping ``{model: scope}`` too).
        using: Read from this database alias instead of the router's.

    Raises:
        TypeError: ``name`` is not one of those fields, or an instance is of
            another model.
        InvalidScope: the scope is refused, as by ``get_<name>()``.
    """
    instances = list(instances)
    if not instances:
        return
    field = _field(instances, name)
    if not isinstance(field, BelongsToMixin):
        from . import anyfield  # a BelongsToAnyField: contenttypes is installed

        anyfield.load(field, instances, anyfield.validate_scope(field, scope), using)
        return
    # A mapping is a BelongsToAnyField's scope: cache_key() refuses it (InvalidScope).
    key = scopes.cache_key(field.related_model, cast("Scope[Any]", scope), field)
    accessors.load(field, instances, key, using)


async def aprefetch(
    instances: Iterable[models.Model],
    name: str,
    scope: AnyScope = None,
    using: str | None = None,
) -> None:
    """Async :func:`prefetch`."""
    await _prefetch_in_thread(list(instances), name, scope, using)


def _field(
    instances: list[models.Model], name: str
) -> BelongsToMixin[Any, Any] | anyfield.BelongsToAnyField:
    """The BelongsTo field ``name`` shared by every instance, or TypeError."""
    model = type(instances[0])
    field = model._meta.get_field(name)
    if not isinstance(field, BelongsToMixin) and not _is_any_field(field):
        raise TypeError(
            f"prefetch(): {model.__name__}.{name} is a {type(field).__name__}, not a "
            f"BelongsToField, BelongsToOneField or BelongsToAnyField."
        )
    for instance in instances:
        if not isinstance(instance, field.model):
            raise TypeError(
                f"prefetch(): {instance!r} is not a {field.model.__name__}; all instances "
                f"must have the {field.model.__name__}.{name} field."
            )
    return cast("BelongsToMixin[Any, Any] | anyfield.BelongsToAnyField", field)


def _is_any_field(field: Any) -> bool:
    """Whether ``field`` is a BelongsToAnyField, without importing it (and so
    contenttypes' models) in a project that does not install contenttypes."""
    if not apps.is_installed("django.contrib.contenttypes"):
        return False
    from .anyfield import BelongsToAnyField

    return isinstance(field, BelongsToAnyField)


# Generic in Prefetch's three parameters, as django-stubs declares Prefetch: its
# mypy plugin specializes them for every Prefetch subclass it sees constructed.
class ScopedPrefetch(_PrefetchBase, Generic[_LookupT, _QuerySetT, _ToAttrT]):
    """A ``prefetch_related()`` lookup that loads a BelongsTo relation in a scope
    (a ``BelongsToField``, ``BelongsToOneField`` or ``BelongsToAnyField``).

    ``Book.objects.prefetch_related(ScopedPrefetch("author", scope="bestselling"))``
    fills the cache ``book.get_author(scope="bestselling")`` answers from, so
    that call costs no query on any of the books. The lookup may go through
    relations (``"book__author"`` on reviews); only its last part must be a
    BelongsTo field. It works wherever a ``Prefetch`` does
    (``prefetch_related_objects()``, ``aprefetch_related_objects()``, async
    iteration, pagination), next to ordinary lookups and to other
    ``ScopedPrefetch`` objects for other scopes or fields.

    Args:
        lookup: The relation, e.g. ``"author"`` or ``"book__author"``.
        scope: Any scope ``get_<name>()`` accepts; refused with ``InvalidScope``
            before the prefetch's query (with ``QuerySet.prefetch_related()``,
            after the main query, as Django runs prefetches).
        using: Read from this database alias instead of the router's.
    """

    def __init__(self, lookup: str, scope: AnyScope = None, using: str | None = None) -> None:
        name = lookup.rsplit(LOOKUP_SEP, 1)[-1]
        # Django tells prefetch lookups apart by where they store: each scope
        # stores apart, so each gets a name of its own.
        which = f"qs{id(scope)}" if isinstance(scope, models.QuerySet) else repr(scope)
        super().__init__(lookup, to_attr=f"{name}[{which}@{using}]".replace(LOOKUP_SEP, "_"))
        self.scope = scope
        self.using = using
        self._load = accessors.ScopedLoad(lookup, scope, using)

    def get_current_querysets(self, level: int) -> list[Any] | None:
        if self.get_current_prefetch_to(level) == self.prefetch_to:
            return [self._load]  # the relation's descriptor loads the scope
        return None

    def get_current_to_attr(self, level: int) -> tuple[str, Any]:
        # Not an attribute: Django stores each row into the cache entry the
        # descriptor names, as it does for a plain prefetch of the relation.
        to_attr, _as_attr = super().get_current_to_attr(level)
        return to_attr, False


_prefetch_in_thread = sync_to_async(prefetch)
