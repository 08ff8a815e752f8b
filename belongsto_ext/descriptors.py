"""The ``<name>_id`` attribute and the ``<name>`` descriptors of a
``BelongsToField`` / ``BelongsToOneField``, named after Django's, and the
``refresh_from_db()`` that reads a pinned instance where it was written."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models

from . import _compat, answers, batch, policy, tracking
from ._compat import (
    ForeignKeyDeferredAttribute,
    ForwardManyToOneDescriptor,
    ForwardOneToOneDescriptor,
    called_by_refresh_from_db,
)
from .relation import is_key_relation


class KeyAttribute(ForeignKeyDeferredAttribute):
    """The ``<name>_id`` attribute: assigning it (even the same value) drops the
    field's scoped answers, and its read-your-writes pin unless the value is the
    pinned key; the first change since the row was read is remembered for change
    tracking (``tracking.py``), and a refresh forgets it."""

    def __init__(self, field: Any) -> None:
        super().__init__(field)
        self.attname: str = field.attname
        self.held: str = field.held_attname

    def __set__(self, instance: models.Model, value: Any) -> None:
        # ForeignKeyDeferredAttribute.__set__() (5.2, 6.0, 6.1), plus the above.
        # The first assignment, from Model.__init__() for every row loaded, finds
        # nothing: it only stores the value. Once the change is remembered, an
        # instance with nothing cached costs what Django's own assignment does.
        data = instance.__dict__
        field: Any = self.field
        if self.attname in data:
            old = data[self.attname]
            fields_cache = _compat.fields_cache(instance)
            if fields_cache:
                _assigned(field, instance, fields_cache, old, value)
            elif self.held not in data:
                if old != value and not _refreshing(field):
                    tracking.record_change(field, instance, old)
            elif _refreshing(field):
                tracking.synced(field, instance)  # the value is the row's again
        elif not _compat.adding(instance) and not _refreshing(field):
            # A deferred key assigned: what the row holds is not known here.
            tracking.record_change(field, instance, tracking.UNKNOWN)
        data[self.attname] = value


def _refreshing(field: Any, depth: int = 2) -> bool:
    """Whether ``Model.refresh_from_db()`` is assigning the key (``depth`` frames
    up): asked only where this package's own ``refresh_from_db()`` is not on the
    model to say so afterwards (a model that defines the method itself)."""
    return not field.refresh_hooked and called_by_refresh_from_db(depth + 1)


def _assigned(
    field: Any, instance: models.Model, fields_cache: dict[Any, Any], old: Any, value: Any
) -> None:
    """An assignment to an instance with something cached."""
    changed = old != value
    if changed and field.cache_name in fields_cache:
        del fields_cache[field.cache_name]  # Django's delete_cached_value()
    answers.drop(field, instance, value)
    if _refreshing(field, 3):
        tracking.synced(field, instance)  # the value is the row's again
    elif changed:
        tracking.record_change(field, instance, old)


class _ReadsYourWrites:
    """``instance.<name>`` reads the key this instance just wrote where writes
    go, as ``get_<name>()`` does; ``strict=True`` refuses the query; a
    ``ScopedPrefetch`` loads its scope."""

    field: Any

    def get_object(self, instance: models.Model) -> Any:
        field = self.field
        if batch.read_peers(field, instance):
            return field.get_cached_value(instance)
        alias = answers.pinned_alias(self.field, self.field.related_model, instance)
        if alias is None:
            return super().get_object(instance)  # type: ignore[misc]
        queryset = self.get_queryset(instance=instance).using(alias)  # type: ignore[attr-defined]
        return queryset.get(self.field.get_reverse_related_filter(instance))

    def get_prefetch_querysets(
        self, instances: list[models.Model], querysets: list[Any] | None = None
    ) -> Any:
        if querysets and isinstance(querysets[0], batch.ScopedLoad):
            return batch.prefetch_querysets(self.field, instances, querysets[0])
        return super().get_prefetch_querysets(instances, querysets)  # type: ignore[misc]

    def fetch_many(self, instances: Iterable[models.Model]) -> None:
        """Django 6.1's FETCH_PEERS: pinned instances are read one by one where
        writes go; the others together, as Django reads them."""
        instances = list(instances)
        if self.field.strict is True:
            policy.lazy_load(self.field, instances[0])
        pinned = [i for i in instances if answers.pinned(self.field, i)]
        for instance in pinned:
            if not self.field.is_cached(instance):
                self.fetch_one(instance)  # type: ignore[attr-defined]
        if len(pinned) < len(instances):
            others = [i for i in instances if all(i is not p for p in pinned)]
            super().fetch_many(others)  # type: ignore[misc]


class ForwardDescriptor(_ReadsYourWrites, ForwardManyToOneDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class ForwardOneToOneDescriptorPinned(_ReadsYourWrites, ForwardOneToOneDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class _RefusesDeferredKey:
    """``instance.<name>`` of a ``strict=True`` relation: a deferred key is refused
    before Django's descriptor loads it (a query). Only strict fields use it, so
    that other reads of ``instance.<name>`` keep Django's own ``__get__``."""

    field: Any

    def __get__(self, instance: models.Model | None, cls: Any = None) -> Any:
        # strict=True: a deferred key is refused before Django's descriptor loads
        # it (a query).
        if (
            instance is not None
            and self.field.attname not in instance.__dict__
            and not self.field.is_cached(instance)
        ):
            policy.lazy_load(self.field, instance)
        return super().__get__(instance, cls)  # type: ignore[misc]


class StrictForwardDescriptor(_RefusesDeferredKey, ForwardDescriptor):  # type: ignore[misc, unused-ignore]
    pass


class StrictForwardOneToOneDescriptor(_RefusesDeferredKey, ForwardOneToOneDescriptorPinned):  # type: ignore[misc, unused-ignore]
    pass


def refresh_from_db(
    self: models.Model, using: str | None = None, *args: Any, **kwargs: Any
) -> None:
    """``Model.refresh_from_db()``, reading from the database writes go to while a
    relation of the instance is pinned (it just wrote the key): a lagging replica
    would hand the old row back, and the next ``save()`` would write it.

    Set on each model class with a BelongsTo field that does not define the
    method itself; it calls the next ``refresh_from_db`` in the MRO, then tells
    change tracking the refreshed keys are the rows'.
    """
    if using is None and not args and kwargs.get("from_queryset") is None:
        using = _pinned_write_alias(self)
    mro = type(self).__mro__
    ours = next(
        i for i, klass in enumerate(mro) if klass.__dict__.get("refresh_from_db") is refresh_from_db
    )
    for klass in mro[ours + 1 :]:
        method = klass.__dict__.get("refresh_from_db")
        if method is not None and method is not refresh_from_db:
            method(self, using, *args, **kwargs)
            break
    # The keys refreshed are what the rows hold (change tracking).
    fields = kwargs.get("fields", args[0] if args else None)
    for field in self._meta.concrete_fields:
        if (
            is_key_relation(field)
            and field.attname in self.__dict__
            and (fields is None or field.attname in fields or field.name in fields)
        ):
            tracking.synced(field, self)


def _pinned_write_alias(instance: models.Model) -> str | None:
    """Where writes go, if any BelongsTo relation of ``instance`` is pinned."""
    for field in instance._meta.concrete_fields:
        if is_key_relation(field):
            alias = answers.pinned_alias(field, field.related_model, instance)
            if alias is not None:
                return alias
    return None
