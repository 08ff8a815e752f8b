"""The per-instance scoped answers, the read-your-writes pin, and read routing.

Both live in Django's own per-instance cache (``fields_cache``), beside the
object Django caches for ``book.author``, as entries of their own:

- ``("author:scoped", name, using)``: the answer for a scope, as ``(key,
  obj, context)``: ``obj`` (a target or None) answers only while the owner's
  key is ``key``. Django's prefetch machinery fills these entries too
  (``ScopedPrefetch``). A ``BelongsToField`` names the entry by the scope as it
  is in the context it was read in (``scopes.in_context()``): a manager that may
  filter by context (a tenant in a contextvar, the request) is keyed by the SQL
  it compiled to, so an answer read under one tenant is not found under
  another. A ``BelongsToAnyField`` names it by the ``scope=`` argument (one
  entry for a mapping over several models) and keeps the context beside the
  answer, which answers only where the scope compiles to the same SQL.
- ``("author:scoped", PINNED)``: the key this instance last wrote with
  ``set_<name>()`` / ``create_<name>()`` or a save. Reads of that key go to the
  database writes go to, so that a lagging replica cannot answer for a row just
  written.

Assigning a ``BelongsToField``'s key drops its entries (``descriptors.py``).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from django.db import models, router

from . import _compat, scopes
from .relation import Relation

MISS: Any = object()
PINNED = "pinned"

# How many QuerySet scopes one instance keeps answers for, per field, and how
# many contexts per manager scope (ContextKey); the least recently used are
# dropped (inline QuerySets, or tenants, would otherwise pile up).
MAX_QUERYSET_ENTRIES = 8

Entry = tuple[str, Hashable, "str | None"]
_COUNTED = (scopes.QuerySetKey, scopes.ContextKey)  # the keys whose entries are counted


def name(field: Relation, spec: Any, context: Hashable, using: str | None) -> Entry:
    """The ``fields_cache`` key of the answer for scope ``spec`` (``field.scope_spec()``)
    read with ``using``: named by ``context`` (the scope as :func:`scopes.in_context`
    names it for the target) for a ``BelongsToField``, by the argument for a
    ``BelongsToAnyField``."""
    return (field.scoped_cache_name, context if field.keyed_by_context else spec.name, using)


def lookup(instance: models.Model, entry: Entry, ident: Any) -> Any:
    """The answer cached under ``entry`` for an owner whose key is ``ident``
    (``field.owner_key()``), read in a context that still holds; or :data:`MISS`."""
    fields_cache = _compat.fields_cache(instance)
    held = fields_cache.get(entry, MISS)
    if type(held) is not tuple or held[0] != ident:
        return MISS
    context = held[2]
    if type(context) is scopes.ContextKey and (
        context.queryset is None
        or context != scopes.in_context(context.queryset.model, context.scope)
    ):
        return MISS  # read in another context (another tenant, another request)
    if type(entry[1]) in _COUNTED:  # the most recently used goes last
        fields_cache[entry] = fields_cache.pop(entry)
    return held[1]


# What an entry holds: the answer for owners whose key is the first item, and
# for an entry named by the scope= argument (a BelongsToAnyField's), the context
# it was read in (else None).
Held = tuple[Any, "models.Model | None", Hashable]


def store(instance: models.Model, entry: Entry, held: Held) -> None:
    """Remember ``held`` (see :func:`held`) under ``entry``."""
    fields_cache = _compat.fields_cache(instance)
    if type(entry[1]) not in _COUNTED:
        fields_cache[entry] = held
        return
    group = _group(entry[1])
    fields_cache.pop(entry, None)
    fields_cache[entry] = held
    same = [
        k
        for k in fields_cache
        if type(k) is tuple and k[0] == entry[0] and len(k) == 3 and _group(k[1]) == group
    ]
    for old in same[:-MAX_QUERYSET_ENTRIES]:
        del fields_cache[old]


def _group(key: Hashable) -> Hashable:
    """What a key's entries are counted with, None when not counted: QuerySet
    scopes together, a manager scope's contexts per scope."""
    kind = type(key)
    if kind is scopes.QuerySetKey:
        return scopes.QuerySetKey
    if kind is scopes.ContextKey:
        return ("context", key.scope)  # type: ignore[attr-defined]
    return None


def drop(field: Relation, instance: models.Model, value: Any = MISS) -> None:
    """Forget every scoped answer, and the pin unless it is of ``value`` (the key
    was assigned ``value``: the same key keeps reading where it was written)."""
    fields_cache = _compat.fields_cache(instance)
    if fields_cache:
        scoped = field.scoped_cache_name
        pin_entry = (scoped, PINNED)
        keep = value is not MISS and fields_cache.get(pin_entry, MISS) == value
        for k in [k for k in fields_cache if type(k) is tuple and k[0] == scoped]:
            if not (keep and k == pin_entry):
                del fields_cache[k]


def pin(field: Relation, instance: models.Model) -> None:
    """Send reads of the key the instance holds now to the database writes go to.
    Without a database router every read goes where writes go: nothing to pin."""
    if router.routers:
        fields_cache = _compat.fields_cache(instance)
        fields_cache[(field.scoped_cache_name, PINNED)] = field.pin_value(instance)


def pinned(field: Relation, instance: models.Model) -> bool:
    """Whether the key the instance holds is the one it last wrote."""
    written = _compat.fields_cache(instance).get((field.scoped_cache_name, PINNED), MISS)
    return written is not MISS and written == field.pin_value(instance)


def read_alias(
    field: Relation,
    instance: models.Model,
    model: type[models.Model],
    key: Hashable,
    using: str | None,
) -> str:
    """Where reading scope ``key`` of ``model`` for ``instance`` goes: ``using``;
    else a QuerySet scope's own ``using()``; else, for the key this instance last
    wrote, where writes of the target go; else where the router reads the
    target, with the owner as hint, as ``book.author`` does."""
    if using is not None:
        return using
    if isinstance(key, scopes.QuerySetKey) and _compat.explicit_alias(key.queryset):
        return key.alias
    if pinned(field, instance):
        return router.db_for_write(model, instance=instance)
    return router.db_for_read(model, instance=instance)


def pinned_alias(field: Relation, model: type[models.Model], instance: models.Model) -> str | None:
    """The database ``instance.<name>`` reads from for the key this instance just
    wrote (the one writes go to), or None to route as usual."""
    if not pinned(field, instance):
        return None
    return router.db_for_write(model, instance=instance)


def django_answer(
    field: Relation,
    instance: models.Model,
    model: type[models.Model],
    key: Hashable,
    wanted: Any,
    decided: dict[tuple[type[models.Model], str], bool] | None = None,
) -> Any:
    """The object Django holds for ``instance.<name>`` (select_related,
    prefetch_related, assignment ...) when it answers scope ``key``, else MISS:
    only when it is the row the key points at and that scope is certain to
    select every row, on the database it would read. ``decided``: a batch's
    memo of that last question, per target model and database.

    A None Django holds never answers: the query that loaded it (a join another
    library filters, a base manager that filters, a ``Prefetch`` QuerySet) is not
    known, and a scope may see rows it did not.
    """
    obj = _compat.fields_cache(instance).get(field.cache_name)
    if obj is None:
        return MISS
    # A BelongsToField's key attribute drops Django's object when the key moves;
    # a BelongsToAnyField's two columns are the user's: compare.
    if not field.keyed_by_context and (
        obj._meta.concrete_model is not model._meta.concrete_model
        or getattr(obj, field.row_key(model)[1]) != wanted
    ):
        return MISS
    alias = read_alias(field, instance, model, key, None)
    if decided is None:
        every_row = scopes.selects_every_row(model, key, alias)
    elif (model, alias) in decided:
        every_row = decided[(model, alias)]
    else:
        every_row = decided[(model, alias)] = scopes.selects_every_row(model, key, alias)
    return obj if every_row else MISS
