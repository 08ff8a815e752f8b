"""Change tracking, and putting an instance back after a failed write.

What the row holds for a relation's key, as far as the instance knows, lives in
Django's per-instance cache (``fields_cache``) beside the answers:

- ``instance.__dict__["author_id@db"]`` (``field.held_attname``, a name no
  attribute can have): the key the row holds, once the key was assigned another
  value since the instance was loaded, saved or refreshed. Absent: the key is
  that value. In the instance's ``__dict__``, so that copies and pickles keep it,
  and an assignment finds Django's ``fields_cache`` empty (its fast path).
- ``("author", PENDING)``: a save wrote the key inside a transaction that has
  not committed yet: a weak reference to its commit callback, and the key the
  row held before. Once the callback is gone uncalled (the transaction or the
  savepoint rolled back), the row holds that key again.

The key attribute (``descriptors.KeyAttribute``) reports assignments and
refreshes, the field's ``pre_save()`` reports saves.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connections, models, router
from django.db.models.fields import NOT_PROVIDED

from . import _compat, answers
from .answers import MISS
from .relation import KeyRelation as Relation
from .relation import Relation as AnyRelation
from .relation import is_key_relation


class _Unknown:
    """The row's key is not known: a deferred key was assigned."""

    def __repr__(self) -> str:
        return "<key not loaded>"

    def __reduce__(self) -> str:
        return "UNKNOWN"  # pickles as this module's UNKNOWN: copies of an instance keep it


UNKNOWN: Any = _Unknown()
PENDING = "saved, not committed"


def record_change(field: Relation, instance: models.Model, old: Any) -> None:
    """The key, ``old`` until now, is being assigned: remember what the row holds."""
    data = instance.__dict__
    if field.held_attname not in data:
        data[field.held_attname] = (
            _fresh(instance) if _compat.adding(instance) else in_database(field, instance, old)
        )


def _fresh(instance: models.Model) -> Any:
    """What the row holds for an instance neither loaded nor saved: nothing (None),
    or :data:`UNKNOWN` for one built with the primary key of a row that may exist
    (``Model(pk=existing, ...)``), which ``save()`` updates, as Django decides."""
    pk = instance._meta.pk
    if instance.pk is None or pk is None or pk.has_default() or pk.db_default is not NOT_PROVIDED:
        return None
    return UNKNOWN


def known(field: Relation, instance: models.Model, key: Any) -> None:
    """The row holds ``key`` (read from it)."""
    instance.__dict__[field.held_attname] = key


def in_database(field: Relation, instance: models.Model, current: Any = MISS) -> Any:
    """The key the row holds as far as this instance knows (None if never saved;
    :data:`UNKNOWN` once a deferred key was assigned, or for ``Model(pk=existing)``).
    ``current``: the key the instance holds, if not its attribute (being assigned)."""
    held = instance.__dict__.get(field.held_attname, MISS)
    if held is not MISS:
        return held
    fields_cache = _compat.fields_cache(instance)
    pending = fields_cache.get((field.cache_name, PENDING))
    if pending is not None and pending[0]() is None:
        # The transaction of the last save that wrote the key rolled back: the
        # row holds what it held before that save.
        del fields_cache[(field.cache_name, PENDING)]
        instance.__dict__[field.held_attname] = pending[1]
        return pending[1]
    if _compat.adding(instance):
        return _fresh(instance)
    return getattr(instance, field.attname) if current is MISS else current


def saving(field: Relation, instance: models.Model) -> None:
    """A save is writing the key: the row will hold the key the instance holds
    now, once the save's transaction commits. Until then what the row held is
    kept aside, and is the answer again if that transaction rolls back."""
    before = instance.__dict__.pop(field.held_attname, MISS)
    if before is MISS and _compat.adding(instance):
        before = _fresh(instance)
    if before is MISS or before == instance.__dict__.get(field.attname):
        return  # the row holds the key already
    # A key this instance writes is read where it is written: a lagging replica
    # would answer None for a row just created elsewhere (read your own writes).
    if instance.__dict__.get(field.attname) is not None:
        answers.pin(field, instance)
    if before is None and _compat.adding(instance):
        return  # a new row: if its INSERT rolls back, there is no row to hold a key
    alias = _compat.db(instance) or router.db_for_write(type(instance), instance=instance)
    connection = connections[alias]
    if connection.in_atomic_block:
        done = _Committed(field, instance)
        connection.on_commit(done)
        # Only Django's list of commit callbacks holds ``done``: a rollback of the
        # transaction (or savepoint) drops it, and the weak reference dies.
        _compat.fields_cache(instance)[(field.cache_name, PENDING)] = (weakref.ref(done), before)


class _Committed:
    """Commit callback of a save that wrote a key: the row holds it for good."""

    def __init__(self, field: Relation, instance: models.Model) -> None:
        self.field, self.instance = field, instance

    def __call__(self) -> None:
        _compat.fields_cache(self.instance).pop((self.field.cache_name, PENDING), None)


def synced(field: Relation, instance: models.Model) -> None:
    """The instance was refreshed: the key is what the row holds."""
    instance.__dict__.pop(field.held_attname, None)
    _compat.fields_cache(instance).pop((field.cache_name, PENDING), None)


def has_changed(field: Relation, instance: models.Model) -> bool:
    """Whether the key differs from the one the row holds as far as the
    instance knows; a deferred key is unchanged and is not loaded, and one
    assigned since is changed."""
    if field.attname not in instance.__dict__:
        return False
    before, now = in_database(field, instance), instance.__dict__[field.attname]
    if before is UNKNOWN:
        return True
    # ``book.author_id = "5"`` on a row holding 5 moves nothing: compare as saved.
    return before != now and _saved_as(field, before) != _saved_as(field, now)


def previous_key(field: Relation, instance: models.Model) -> Any:
    """The key the row holds as far as the instance knows (None if never saved).
    A deferred key assigned since is read from the row (one query), and kept."""
    key = in_database(field, instance)
    if key is UNKNOWN:
        rows = type(instance)._base_manager.db_manager(_compat.db(instance))
        key = rows.filter(pk=instance.pk).values_list(field.attname, flat=True).first()
        known(field, instance, key)
    return key


def _saved_as(field: Relation, value: Any) -> Any:
    """The key value as the row would hold it ("5" -> 5); a value that does not
    convert is compared as it is."""
    try:
        return field.target_field.to_python(value) if isinstance(value, str) else value
    except ValidationError:
        return value


# ---------------------------------------------------------- undo


# What a write may change in memory, per object: its attributes, database,
# adding flag and relation caches; restore() puts them back if the write fails.
State = tuple[models.Model, dict[str, Any], "str | None", bool, dict[Any, Any]]


def state_of(obj: models.Model) -> State:
    return (
        obj,
        obj.__dict__.copy(),
        _compat.db(obj),
        _compat.adding(obj),
        _compat.fields_cache(obj).copy(),
    )


def snapshot(field: AnyRelation, instance: models.Model, objs: Iterable[Any] = ()) -> list[State]:
    """The states of ``instance`` and, where a write reaches the objects it points
    at (a one-to-one's reverse cache, ``touch=``, ``counter_cache=``), of those
    among ``objs`` (what it will point at), of the one it points at now, and of
    the targets those cache through relations with ``touch=`` in turn (the
    counters read them back after the write)."""
    if not (getattr(field, "one_to_one", False) or field.touch or field.counter_cache):
        return [state_of(instance)]
    found = {id(obj): obj for obj in objs if isinstance(obj, models.Model)}
    old = field.get_cached_value(instance, default=None)
    if old is not None:
        found.setdefault(id(old), old)
    if field.touch:
        starts = [(f, obj) for obj in list(found.values()) for f in touching(type(obj))]
        for _f, obj in cached_chain(starts):
            found.setdefault(id(obj), obj)
    return [state_of(instance), *map(state_of, found.values())]


def restore(states: list[State]) -> None:
    for obj, attrs, db, adding, fields_cache in states:
        obj.__dict__.clear()
        obj.__dict__.update(attrs)
        _compat.set_db(obj, db)
        _compat.set_adding(obj, adding)
        _compat.set_fields_cache(obj, fields_cache)


def touching(model: type[models.Model]) -> list[Relation]:
    """The relations of ``model`` with ``touch=``."""
    return [f for f in model._meta.fields if is_key_relation(f) and f.touch]


def cached_chain(
    starts: Iterable[tuple[Relation, models.Model]],
    accept: Callable[[Relation, models.Model, models.Model], bool] | None = None,
) -> Iterator[tuple[Relation, models.Model]]:
    """``(relation, target)`` for each target the ``starts`` owners cache through
    their relation and, in turn, those the targets cache through relations with
    ``touch=`` (a chain, or a tree's ancestors), each once; a target ``accept``
    refuses is not followed."""
    todo = list(starts)
    seen: set[int] = set()
    while todo:
        field, owner = todo.pop()
        obj = field.get_cached_value(owner, default=None)
        if obj is None or id(obj) in seen or (accept is not None and not accept(field, owner, obj)):
            continue
        seen.add(id(obj))
        yield field, obj
        todo += [(f, obj) for f in touching(type(obj))]
