"""The per-instance cache of scoped answers, and the read-your-writes pin.

Both live in Django's own per-instance cache (``fields_cache``), beside the
object Django caches for ``book.author``, as entries of their own:

- ``("author:scoped", scope key, using)``: the answer for that scope, an
  ``Author`` or None. Django's prefetch machinery can fill these entries too
  (``ScopedPrefetch`` names one as the cache to assign to). The scope key is
  the scope as it was in the context the answer was read in
  (``scopes.in_context()``): a manager that may filter by context (a tenant in
  a contextvar, a thread-local, the request) is keyed by the SQL it compiled
  to, so an answer read under one tenant is not found under another, nor
  after leaving the scope.
- ``("author:scoped", PINNED)``: the key value this instance last wrote with
  ``set_<name>()`` / ``create_<name>()``. Reads of that key go to the database
  writes go to, so that a lagging replica cannot answer for a row just written.

Assigning the key in any way drops every entry of the field
(``fields.KeyAttribute`` calls :func:`drop`); ``copy.copy()`` of an instance
copies ``fields_cache``, and so gets entries of its own.

Change tracking keeps, apart from those (a key change does not drop them):

- ``("author", DB)``: the key the row holds in the database as far as this
  instance knows, once the key was assigned another value since the instance
  was loaded, saved or refreshed. Absent: the key is that value.
- ``("author", PENDING)``: a save wrote the key inside a transaction that has
  not committed yet: a weak reference to its commit callback, and the key the
  row held before. Once the callback is gone uncalled (the transaction or the
  savepoint rolled back), the row holds that key again.

Everything else reads and writes the entries through the functions here.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from django.db import connections, models, router
from django.db.models.fields import NOT_PROVIDED

from . import _compat
from .scopes import ContextKey, QuerySetKey

if TYPE_CHECKING:
    from .fields import BelongsToMixin

MISS: Any = object()


class _Unknown:
    """The row's key is not known: a deferred key was assigned."""

    def __repr__(self) -> str:
        return "<key not loaded>"

    def __reduce__(self) -> str:
        return "UNKNOWN"  # pickles as this module's UNKNOWN: copies of an instance keep it


UNKNOWN: Any = _Unknown()
PINNED = "pinned"
DB = "in database"
PENDING = "saved, not committed"

# How many QuerySet scopes one instance keeps answers for, per field, and how
# many contexts per manager scope (ContextKey); the least recently used are
# dropped (inline QuerySets, or tenants, would otherwise pile up).
MAX_QUERYSET_ENTRIES = 8

Entry = tuple[str, Hashable, "str | None"]


def entry(field: BelongsToMixin, key: Hashable, using: str | None) -> Entry:
    """The ``fields_cache`` key of the answer for scope ``key`` (as
    ``scopes.in_context()`` names it) read with ``using``."""
    return (field.scoped_cache_name, key, using)


def lookup(field: BelongsToMixin, instance: models.Model, key: Hashable, using: str | None) -> Any:
    """The cached answer for scope ``key``, or :data:`MISS`."""
    return lookup_entry(instance, (field.scoped_cache_name, key, using))


def lookup_entry(instance: models.Model, name: Entry) -> Any:
    """The answer cached under ``name`` (see :func:`entry`), or :data:`MISS`."""
    fields_cache = _compat.fields_cache(instance)
    obj = fields_cache.get(name, MISS)
    if obj is not MISS and type(name[1]) in _COUNTED:  # the most recently used goes last
        fields_cache[name] = fields_cache.pop(name)
    return obj


def store(
    field: BelongsToMixin,
    instance: models.Model,
    key: Hashable,
    using: str | None,
    obj: models.Model | None,
) -> None:
    """Remember ``obj`` (or None) as the answer for scope ``key``."""
    store_entry(instance, (field.scoped_cache_name, key, using), obj)


def store_entry(instance: models.Model, name: Entry, obj: models.Model | None) -> None:
    """Remember ``obj`` (or None) under ``name`` (see :func:`entry`)."""
    fields_cache = _compat.fields_cache(instance)
    if type(name[1]) not in _COUNTED:
        fields_cache[name] = obj
        return
    group = _group(name[1])
    fields_cache.pop(name, None)
    fields_cache[name] = obj
    same = [
        k
        for k in fields_cache
        if type(k) is tuple and k[0] == name[0] and len(k) == 3 and _group(k[1]) == group
    ]
    for old in same[:-MAX_QUERYSET_ENTRIES]:
        del fields_cache[old]


_COUNTED = (QuerySetKey, ContextKey)  # the keys whose entries are counted (see _group())


def _group(key: Hashable) -> Hashable:
    """What a key's entries are counted with, None when not counted: QuerySet
    scopes together, a manager scope's contexts per scope."""
    kind = type(key)
    if kind is QuerySetKey:
        return QuerySetKey
    if kind is ContextKey:
        return ("context", key.scope)  # type: ignore[attr-defined]
    return None


def drop(field: BelongsToMixin, instance: models.Model, value: Any = MISS) -> None:
    """Forget every scoped answer, and the pin unless it is of ``value`` (the key
    was assigned ``value``: the same key keeps reading where it was written)."""
    fields_cache = _compat.fields_cache(instance)
    if fields_cache:
        name = field.scoped_cache_name
        pin = (name, PINNED)
        keep = value is not MISS and fields_cache.get(pin, MISS) == value
        for k in [k for k in fields_cache if type(k) is tuple and k[0] == name]:
            if not (keep and k == pin):
                del fields_cache[k]


def pin(field: BelongsToMixin, instance: models.Model) -> None:
    """Send reads of the key the instance holds now to the database writes go to."""
    _compat.fields_cache(instance)[(field.scoped_cache_name, PINNED)] = instance.__dict__[
        field.attname
    ]


def pinned(field: BelongsToMixin, instance: models.Model, value: Any) -> bool:
    """Whether key ``value`` is the one this instance last wrote."""
    written = _compat.fields_cache(instance).get((field.scoped_cache_name, PINNED), MISS)
    return written is not MISS and written == value


# ---------------------------------------------------------- change tracking


def record_change(field: BelongsToMixin, instance: models.Model, old: Any) -> None:
    """The key, ``old`` until now, is being assigned: remember what the row holds."""
    fields_cache = _compat.fields_cache(instance)
    if (field.cache_name, DB) not in fields_cache:
        fields_cache[(field.cache_name, DB)] = (
            _fresh(instance) if instance._state.adding else in_database(field, instance, old)
        )


def _fresh(instance: models.Model) -> Any:
    """What the row holds for an instance neither loaded nor saved: nothing (None),
    or :data:`UNKNOWN` for one built with the primary key of a row that may exist
    (``Model(pk=existing, ...)``), which ``save()`` updates, as Django decides."""
    pk = instance._meta.pk
    if instance.pk is None or pk is None or pk.has_default() or pk.db_default is not NOT_PROVIDED:
        return None
    return UNKNOWN


def known(field: BelongsToMixin, instance: models.Model, key: Any) -> None:
    """The row holds ``key`` (read from it)."""
    _compat.fields_cache(instance)[(field.cache_name, DB)] = key


def unknown(field: BelongsToMixin, instance: models.Model) -> bool:
    """Whether a deferred key was assigned, the row's key not read since."""
    return _compat.fields_cache(instance).get((field.cache_name, DB), MISS) is UNKNOWN


def in_database(field: BelongsToMixin, instance: models.Model, current: Any = MISS) -> Any:
    """The key the row holds as far as this instance knows (None if never saved;
    :data:`UNKNOWN` once a deferred key was assigned, or for ``Model(pk=existing)``).
    ``current``: the key the instance holds, if not its attribute (being assigned)."""
    fields_cache = _compat.fields_cache(instance)
    known = fields_cache.get((field.cache_name, DB), MISS)
    if known is not MISS:
        return known
    pending = fields_cache.get((field.cache_name, PENDING))
    if pending is not None and pending[0]() is None:
        # The transaction of the last save that wrote the key rolled back: the
        # row holds what it held before that save.
        del fields_cache[(field.cache_name, PENDING)]
        fields_cache[(field.cache_name, DB)] = pending[1]
        return pending[1]
    if instance._state.adding:
        return _fresh(instance)
    return getattr(instance, field.attname) if current is MISS else current


def saving(field: BelongsToMixin, instance: models.Model) -> None:
    """A save is writing the key: the row will hold the key the instance holds
    now, once the save's transaction commits. Until then what the row held is
    kept aside, and is the answer again if that transaction rolls back."""
    fields_cache = _compat.fields_cache(instance)
    before = fields_cache.pop((field.cache_name, DB), MISS)
    if before is MISS and instance._state.adding:
        before = _fresh(instance)
    if before is MISS or before == instance.__dict__.get(field.attname):
        return  # the row holds the key already
    # A key this instance writes is read where it is written: a lagging replica
    # would answer None for a row just created elsewhere (read your own writes).
    if instance.__dict__.get(field.attname) is not None:
        pin(field, instance)
    if before is None and instance._state.adding:
        return  # a new row: if its INSERT rolls back, there is no row to hold a key
    alias = instance._state.db or router.db_for_write(type(instance), instance=instance)
    connection = connections[alias]
    if connection.in_atomic_block:
        done = _Committed(field, instance)
        connection.on_commit(done)
        # Only Django's list of commit callbacks holds ``done``: a rollback of the
        # transaction (or savepoint) drops it, and the weak reference dies.
        fields_cache[(field.cache_name, PENDING)] = (weakref.ref(done), before)


class _Committed:
    """Commit callback of a save that wrote a key: the row holds it for good."""

    def __init__(self, field: BelongsToMixin, instance: models.Model) -> None:
        self.field, self.instance = field, instance

    def __call__(self) -> None:
        _compat.fields_cache(self.instance).pop((self.field.cache_name, PENDING), None)


def synced(field: BelongsToMixin, instance: models.Model) -> None:
    """The instance was refreshed: the key is what the row holds."""
    fields_cache = _compat.fields_cache(instance)
    fields_cache.pop((field.cache_name, DB), None)
    fields_cache.pop((field.cache_name, PENDING), None)
