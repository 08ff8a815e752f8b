"""``touch=`` and ``counter_cache=``: the target rows an owner's writes change.

When an owner with such a relation is saved or deleted, one UPDATE sets the
target rows' touched date(-time) columns to now and moves their counters with
``F()`` expressions (old target -1, new target +1), right after the owner's
write, on the same connection and inside the same transaction. A touched target
whose own relation has ``touch=`` touches its target in turn (one UPDATE per
level, through a subquery: no row is read); a self-referential one touches every
ancestor, each level reading its parents' keys first.

It runs from ``post_save`` and ``post_delete`` receivers connected for the
owner model (and for its proxies and multi-table children, which send their
own signals). ``QuerySet.update()``, ``bulk_create()``, ``bulk_update()`` and
deletes the database does by itself send no signal: :func:`rebuild_counters`
recomputes a relation's counters.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db import connections, models, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Case, Count, F, OuterRef, Subquery, Value, When
from django.db.models.functions import Coalesce
from django.db.models.signals import class_prepared, post_delete, post_save, pre_delete
from django.utils import timezone

from . import accessors, cache

if TYPE_CHECKING:
    from .fields import BelongsToMixin

__all__ = ["connect", "rebuild_counters"]

# The fields with touch= or counter_cache=, per model that declares them.
_FIELDS: dict[type[models.Model], list[BelongsToMixin]] = {}


def connect(field: BelongsToMixin, model: type[models.Model]) -> None:
    """Have ``model``'s saves and deletes touch and count for ``field``."""
    if model._meta.abstract:
        return
    first = not _FIELDS
    _FIELDS.setdefault(model, []).append(field)
    _FIELDS_OF.clear()
    _connect(model)
    if first:
        # Proxies and multi-table children are built later and send signals
        # with themselves as sender.
        class_prepared.connect(_prepared, weak=False, dispatch_uid="belongsto_ext.counters")


def _prepared(sender: type[models.Model], **kwargs: Any) -> None:
    if sender not in _FIELDS and any(issubclass(sender, model) for model in _FIELDS):
        _connect(sender)


def _connect(model: type[models.Model]) -> None:
    uid = f"belongsto_ext.counters:{model._meta.label}:{id(model)}"
    post_save.connect(_on_save, sender=model, weak=False, dispatch_uid=uid)
    pre_delete.connect(_before_delete, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(_on_delete, sender=model, weak=False, dispatch_uid=uid)


def _fields_of(model: type[models.Model]) -> list[BelongsToMixin]:
    """The fields ``model``'s writes count and touch for (its own and its bases')."""
    found = _FIELDS_OF.get(model)
    if found is None:
        found = _FIELDS_OF[model] = [
            field
            for owner, fields in _FIELDS.items()
            if issubclass(model, owner)
            for field in fields
        ]
    return found


# _fields_of() per sender, emptied whenever a field is connected.
_FIELDS_OF: dict[type[models.Model], list[BelongsToMixin]] = {}


def _deleted_fields(model: type[models.Model]) -> list[BelongsToMixin]:
    """The fields a delete signal of ``model`` counts and touches for: those whose
    column is in ``model``'s own table. Deleting a multi-table child also deletes
    its parents' rows, each with a signal of its own (none with ``keep_parents``)."""
    concrete = model._meta.concrete_model
    return [field for field in _fields_of(model) if field.model._meta.concrete_model is concrete]


def _key(field: BelongsToMixin, value: Any) -> Any:
    """A key value as the target's column holds it: "5" -> 5, as set_<name>() converts."""
    return field.target_field.to_python(value) if isinstance(value, str) else value


def _on_save(
    sender: type[models.Model],
    instance: models.Model,
    created: bool,
    raw: bool,
    using: str,
    **kw: Any,
) -> None:
    if raw:  # loaddata: the rows come as they are
        return
    for field in _fields_of(sender):
        before = cache.saved(field, instance)
        if field.attname not in instance.__dict__:
            # A deferred key, which this save did not write: touch through the row.
            if not created:
                _through_row(field, instance, using, deleted=False)
            continue
        if created:
            apply(
                field,
                instance,
                using,
                added=None,
                now=_key(field, getattr(instance, field.attname)),
                created=True,
            )
            continue
        if before is cache.MISS:
            # The save left the key out (update_fields): the row keeps the one it had.
            before = now = cache.in_database(field, instance)
        else:
            now = instance.__dict__[field.attname]
        apply(
            field, instance, using, added=_key(field, before), now=_key(field, now), created=False
        )


def _before_delete(
    sender: type[models.Model], instance: models.Model, using: str, **kw: Any
) -> None:
    # A deferred key is unknown once the row is gone: count and touch through the row.
    for field in _deleted_fields(sender):
        if cache.unknown(field, instance):
            accessors.previous_key(field, instance)  # a deferred key assigned: read the row's
        if field.attname not in instance.__dict__:
            _through_row(field, instance, using, deleted=True)


def _on_delete(sender: type[models.Model], instance: models.Model, using: str, **kw: Any) -> None:
    for field in _deleted_fields(sender):
        if field.attname in instance.__dict__:
            key = _key(field, cache.in_database(field, instance))
            apply(field, instance, using, added=key, now=None, created=False, deleted=True)


def apply(
    field: BelongsToMixin,
    instance: models.Model,
    using: str,
    added: Any,
    now: Any,
    created: bool,
    deleted: bool = False,
) -> None:
    """Touch and count for one write of ``instance``: the key moved from ``added``
    (the row's key before, None if there was no row) to ``now`` (None: deleted)."""
    target: type[models.Model] = field.related_model
    keys = [k for k in dict.fromkeys((added, now)) if k is not None]
    if not keys:
        return
    changes: dict[str, Any] = {}
    counter = field.counter_cache
    if counter and (created or deleted or added != now):
        deltas = []
        if added is not None and not created:
            deltas.append(When(**{field.target_field.attname: added}, then=Value(-1)))
        if now is not None and not deleted:
            deltas.append(When(**{field.target_field.attname: now}, then=Value(1)))
        if deltas:
            changes[counter] = F(counter) + Case(*deltas, default=Value(0))
    stamps = _stamps(field)
    changes.update(stamps)
    if not changes:
        return
    rows = target._base_manager.using(using).filter(**{f"{field.target_field.attname}__in": keys})
    cached = field.get_cached_value(instance, default=None)
    if cached is not None and _key(field, getattr(cached, field.target_field.attname)) not in keys:
        cached = None  # not a row this write changed (the save left the key out)
    connection = connections[using]
    with _atomic(connection):
        _update(rows, changes, connection, several=len(keys) > 1)
        if stamps:
            _touch_onward(target, rows, connection, set(), [] if cached is None else [cached])
    # In memory only once every statement succeeded.
    if cached is not None:
        _in_memory(field, cached, added, now, created, deleted, stamps)


def _through_row(field: BelongsToMixin, instance: models.Model, using: str, deleted: bool) -> None:
    """Touch (and, for a delete, count -1) the target of the key ``instance``'s row
    holds, without reading it: the key is deferred."""
    changes = _stamps(field)
    stamps = dict(changes)
    if deleted and field.counter_cache:
        changes[field.counter_cache] = F(field.counter_cache) - 1
    if not changes:
        return
    target: type[models.Model] = field.related_model
    row = type(instance)._base_manager.using(using).filter(pk=instance.pk).values(field.attname)
    rows = target._base_manager.using(using).filter(**{f"{field.target_field.attname}__in": row})
    connection = connections[using]
    with _atomic(connection):
        _update(rows, changes, connection, several=False)  # the one row the owner's key names
        if stamps:
            _touch_onward(target, rows, connection, set(), [])


def _atomic(connection: BaseDatabaseWrapper) -> AbstractContextManager[Any]:
    """A transaction for the statements of one write, unless one is open (that of
    ``set_<name>()``, ``create_<name>()``, the caller's or the deletion's)."""
    if connection.in_atomic_block:
        return nullcontext()
    return transaction.atomic(using=connection.alias, savepoint=False)


def _update(
    rows: models.QuerySet,
    changes: dict[str, Any],
    connection: BaseDatabaseWrapper,
    several: bool = True,
) -> None:
    """``rows.update(**changes)`` on ``connection`` (the database of ``rows``), the
    statement locking the rows in primary key order first (where the database
    locks rows: PostgreSQL). One UPDATE that writes two targets would otherwise
    lock them in whatever order its plan reads them, and two writers moving
    owners between the same targets in opposite directions would deadlock. Runs
    in a transaction. A database that locks no rows (SQLite locks the whole
    database) gets the plain UPDATE, and so does one row (``several=False``): it
    has no order to lock in."""
    if not (several and connection.features.has_select_for_update):
        rows.update(**changes)
        return
    locked = rows.order_by("pk").select_for_update().values("pk")
    rows.model._base_manager.using(rows.db).filter(pk__in=locked).update(**changes)


def _stamps(field: BelongsToMixin) -> dict[str, Any]:
    """``{column: now}`` for the target's touched columns."""
    return {name: now() for name, now in _clocks(field)}


@functools.cache
def _clocks(field: BelongsToMixin) -> list[tuple[str, Callable[[], Any]]]:
    """The target's touched columns, each with what ``auto_now`` stores in it now."""
    target: type[models.Model] = field.related_model
    return [
        (name, timezone.now if isinstance(column, models.DateTimeField) else datetime.date.today)
        for name in touched_fields(field)
        for column in [target._meta.get_field(name)]
    ]


def touched_fields(field: BelongsToMixin) -> list[str]:
    """The target's columns ``touch=`` sets: the named one, or its ``auto_now`` ones."""
    if not field.touch:
        return []
    if isinstance(field.touch, str):
        return [field.touch]
    target: type[models.Model] = field.related_model
    return [
        f.name
        for f in target._meta.concrete_fields
        if isinstance(f, models.DateField) and getattr(f, "auto_now", False)
    ]


def _in_memory(
    field: BelongsToMixin,
    obj: models.Model,
    added: Any,
    now: Any,
    created: bool,
    deleted: bool,
    stamps: dict[str, Any],
) -> None:
    """Give ``obj``, the target instance the owner caches, the values the UPDATE wrote."""
    for name, value in stamps.items():
        setattr(obj, name, value)
    counter = field.counter_cache
    if counter and (created or deleted or added != now):
        key = _key(field, getattr(obj, field.target_field.attname))
        delta = (1 if key == now and not deleted else 0) - (
            1 if key == added and not created else 0
        )
        if delta:
            setattr(obj, counter, getattr(obj, counter) + delta)


def _touch_onward(
    model: type[models.Model],
    rows: models.QuerySet,
    connection: BaseDatabaseWrapper,
    seen: set[Any],
    cached: list[models.Model],
) -> None:
    """The touched rows' own relations with ``touch=`` touch their targets in turn;
    ``cached``, the touched instances in memory, pass the new values on to the
    targets they cache. A self-referential relation touches every ancestor, up
    to the roots."""
    for field in _FIELDS.get(model._meta.concrete_model, []):  # type: ignore[arg-type]
        stamps = _stamps(field)
        if not stamps or field in seen:
            continue
        seen.add(field)
        target: type[models.Model] = field.related_model
        if target._meta.concrete_model is model._meta.concrete_model:
            onward = _touch_ancestors(field, rows, connection, stamps)
            objs = _cached_ancestors(field, cached)
        else:
            onward = target._base_manager.using(connection.alias).filter(
                **{f"{field.target_field.attname}__in": rows.values(field.attname)}
            )
            _update(onward, stamps, connection)
            objs = [o for obj in cached if (o := field.get_cached_value(obj, default=None))]
        _touch_onward(target, onward, connection, seen, objs)
        for obj in objs:
            for name, value in stamps.items():
                setattr(obj, name, value)


def _touch_ancestors(
    field: BelongsToMixin,
    rows: models.QuerySet,
    connection: BaseDatabaseWrapper,
    stamps: dict[str, Any],
) -> models.QuerySet:
    """Touch the parents of ``rows`` through the self-referential ``field``, their
    parents, and so on up to the roots: one UPDATE per level. Each level first
    reads the keys of the one below (one SELECT), so that a cycle of keys ends.
    Returns the rows touched."""
    model: type[models.Model] = field.related_model
    key = f"{field.target_field.attname}__in"
    manager = model._base_manager.using(connection.alias)
    touched: set[Any] = set()
    level = rows
    while keys := set(level.values_list(field.attname, flat=True)) - touched - {None}:
        touched |= keys
        level = manager.filter(**{key: keys})
        _update(level, stamps, connection, several=len(keys) > 1)
    return manager.filter(**{key: touched})


def _cached_ancestors(field: BelongsToMixin, cached: list[models.Model]) -> list[models.Model]:
    """The ancestors the instances in ``cached`` hold in memory through ``field``."""
    found: dict[int, models.Model] = {}
    todo = list(cached)
    while todo:
        parent = field.get_cached_value(todo.pop(), default=None)
        if parent is not None and id(parent) not in found:
            found[id(parent)] = parent
            todo.append(parent)
    return list(found.values())


def rebuild_counters(model: type[models.Model], name: str, using: str | None = None) -> int:
    """Recompute every counter of the ``name`` relation of ``model``: one UPDATE
    setting each target's count of owner rows (zero for targets with none).

    Returns the number of target rows updated. The remedy for what bypasses
    model signals (``QuerySet.update()``, ``bulk_create()``, ``bulk_update()``,
    deletes the database does by itself).

    Raises:
        TypeError: ``name`` is not a BelongsTo field with ``counter_cache``.
    """
    from .fields import BelongsToMixin

    field = model._meta.get_field(name)
    if not isinstance(field, BelongsToMixin) or not field.counter_cache:
        raise TypeError(
            f"rebuild_counters(): {model.__name__}.{name} is not a BelongsTo field "
            f"with counter_cache."
        )
    target: type[models.Model] = field.related_model
    db = using or router.db_for_write(target)
    owners = (
        model._base_manager.using(db)
        .filter(**{field.attname: OuterRef(field.target_field.attname)})
        .order_by()
        .values(field.attname)
        .annotate(count=Count("pk"))
        .values("count")
    )
    return target._base_manager.using(db).update(
        **{field.counter_cache: Coalesce(Subquery(owners), Value(0))}
    )


def counted_relations() -> Iterable[tuple[type[models.Model], BelongsToMixin]]:
    """Every (model, field) with ``counter_cache`` among the installed models, in
    the app registry's order, for ``manage.py rebuild_counters``. A field a
    multi-table parent declares comes once, with the parent."""
    from .fields import BelongsToMixin

    for model in apps.get_models():
        for field in model._meta.local_fields:
            if isinstance(field, BelongsToMixin) and field.counter_cache:
                yield model, field
