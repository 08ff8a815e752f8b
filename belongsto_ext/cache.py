"""The per-instance cache of scoped answers, and the read-your-writes pin.

Both live in one entry of Django's own per-instance cache (``fields_cache``),
``"<name>:scoped"``, beside the object Django caches for ``book.author``:
``(owner, answers, written)``.

- ``answers``: ``{(scope key, using): (key value it was read for, object or
  None)}``, or None before the first answer.
- ``written``: the key value this instance last wrote with ``set_<name>()`` /
  ``create_<name>()`` (:data:`MISS` if none). Reads of that key go to the
  database writes go to, so that a lagging replica cannot answer for a row
  just written.
- ``owner``: the id of the instance the entry belongs to. ``copy.copy()`` of an
  instance shares the entry with the original; a copy makes its own answers
  dict before it writes one (ids are unique among live objects).

Assigning the key in any way drops the entry (``fields.KeyAttribute`` calls
:func:`drop`). Everything else reads and writes it through the functions here.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from django.db import models

from . import _compat
from .scopes import QuerySetKey

if TYPE_CHECKING:
    from .fields import BelongsToMixin

MISS: Any = object()

# How many QuerySet scopes one instance keeps answers for, per field; the least
# recently used are dropped (inline QuerySets would otherwise pile up).
MAX_QUERYSET_ENTRIES = 8


def lookup(
    field: BelongsToMixin, instance: models.Model, key: Hashable, using: str | None, value: Any
) -> Any:
    """The cached answer for scope ``key`` read for key ``value``, or :data:`MISS`."""
    held = _compat.fields_cache(instance).get(field.scoped_cache_name)
    # Answers shared with the instance this one was copied from are read as
    # they are: each is checked against the key value it was read for.
    entry = None if held is None or held[1] is None else held[1].get((key, using))
    if entry is None or entry[0] != value:
        return MISS
    if type(key) is QuerySetKey:  # the most recently used goes last
        answers = _own_answers(field, instance)
        answers[(key, using)] = answers.pop((key, using))
    return entry[1]


def store(
    field: BelongsToMixin,
    instance: models.Model,
    key: Hashable,
    using: str | None,
    value: Any,
    obj: models.Model | None,
) -> None:
    """Remember ``obj`` (or None) as the answer for scope ``key`` and key ``value``."""
    answers = _own_answers(field, instance)
    if type(key) is not QuerySetKey:
        answers[(key, using)] = (value, obj)
        return
    answers.pop((key, using), None)
    answers[(key, using)] = (value, obj)
    querysets = [k for k in answers if type(k[0]) is QuerySetKey]
    for old in querysets[:-MAX_QUERYSET_ENTRIES]:
        del answers[old]


def _own_answers(field: BelongsToMixin, instance: models.Model) -> dict[Any, Any]:
    """The instance's own answers dict for ``field``, made if need be."""
    fields_cache = _compat.fields_cache(instance)
    held = fields_cache.get(field.scoped_cache_name)
    if held is None:
        written = MISS
    else:
        owner, answers, written = held
        if owner == id(instance) and answers is not None:
            return answers
    answers = {} if held is None or held[1] is None else dict(held[1])
    fields_cache[field.scoped_cache_name] = (id(instance), answers, written)
    return answers


def drop(field: BelongsToMixin, instance: models.Model) -> None:
    """Forget every scoped answer and the pin (the key was assigned)."""
    fields_cache = _compat.fields_cache(instance)
    if fields_cache:
        fields_cache.pop(field.scoped_cache_name, None)


def pin(field: BelongsToMixin, instance: models.Model) -> None:
    """Send reads of the key the instance holds now to the database writes go to."""
    fields_cache = _compat.fields_cache(instance)
    held = fields_cache.get(field.scoped_cache_name)
    answers = None if held is None or held[0] != id(instance) else held[1]
    fields_cache[field.scoped_cache_name] = (
        id(instance),
        answers,
        instance.__dict__[field.attname],
    )


def unpin(field: BelongsToMixin, instance: models.Model) -> None:
    """End :func:`pin`: reads route as usual again."""
    fields_cache = _compat.fields_cache(instance)
    held = fields_cache.get(field.scoped_cache_name)
    if held is not None and held[2] is not MISS:
        answers = held[1] if held[0] == id(instance) else None
        fields_cache[field.scoped_cache_name] = (id(instance), answers, MISS)


def pinned(field: BelongsToMixin, instance: models.Model, value: Any) -> bool:
    """Whether key ``value`` is the one this instance last wrote."""
    held = _compat.fields_cache(instance).get(field.scoped_cache_name)
    return held is not None and held[2] is not MISS and held[2] == value
