"""Peers: the instances one QuerySet evaluation loaded together.

A model whose relation loads its peers (``fetch="peers"``) or refuses a lazy
load among them (``strict="n_plus_one"``) gets a ``from_db()`` that records,
for every row Django builds, the group of rows built by the same evaluation
(Django passes each row of one evaluation the same list of column names). The
group holds its members weakly: peers never keep each other alive, and a copy,
a pickle or an instance built by hand has no peers. ``iterator()`` starts a new
group every :data:`GROUP_SIZE` rows. Django 6.1 keeps peers itself for
``QuerySet.fetch_mode(FETCH_PEERS)``; this does the same on every supported
Django, for the relations that ask for it.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from django.db import models

from . import _compat

__all__ = ["GROUP_SIZE", "of", "track"]

# The most rows one group holds: a chunk of iterator() (Django's default
# chunk_size) starts a new one, so that memory stays flat over a long iteration.
GROUP_SIZE = 2000
# How many evaluations per thread may build rows at once (select_related()
# builds two models' rows in turn, a nested loop another QuerySet's).
_OPEN_GROUPS = 8


class Group:
    """The rows one evaluation built: weak references, in the order built."""

    __slots__ = ("__weakref__", "key", "refs")

    def __init__(self, key: object = None) -> None:
        self.key = key  # the evaluation's list of column names (held: its id stays unique)
        self.refs: list[weakref.ref[models.Model]] = []

    def __reduce__(self) -> tuple[Any, ...]:
        return (Group, ())  # a pickled instance has no peers

    def __copy__(self) -> Group:
        return Group()

    def __deepcopy__(self, memo: dict[int, Any]) -> Group:
        return Group()


_local = threading.local()


def _joined(instance: models.Model, key: object) -> None:
    """``instance`` was built by the evaluation whose column names are ``key``."""
    # Weak references to the groups being built: a group lives as long as one of
    # its members does, never because this thread built it.
    groups: dict[int, weakref.ref[Group]] | None = getattr(_local, "groups", None)
    if groups is None:
        groups = _local.groups = {}
    ref = groups.get(id(key))
    group = None if ref is None else ref()
    if group is None or group.key is not key or len(group.refs) >= GROUP_SIZE:
        if len(groups) >= _OPEN_GROUPS:
            groups.pop(next(iter(groups)))
        group = Group(key)
        groups[id(key)] = weakref.ref(group)
    group.refs.append(weakref.ref(instance))
    _compat.set_peers(instance, group)


def of(instance: models.Model) -> list[models.Model]:
    """The instances loaded with ``instance`` that are still alive, itself
    included; ``[]`` for one not loaded among others (alone, copied, unpickled,
    or built by hand)."""
    group = _compat.peers(instance)
    if group is None or len(group.refs) < 2:
        return []
    members = [obj for ref in group.refs if (obj := ref()) is not None]
    if len(members) < 2 or not any(obj is instance for obj in members):
        return []  # a copy shares its original's group without being in it
    return members


def track(model: type[models.Model]) -> None:
    """Have the rows of ``model`` (and of its subclasses) record their peers."""
    inherited = model.from_db.__func__  # type: ignore[attr-defined]
    if getattr(inherited, "tracks_peers", False):
        return  # the model's, or a base's: recorded already

    def from_db(
        cls: type[models.Model], db: str | None, field_names: Any, values: Any, **kwargs: Any
    ) -> Any:
        # **kwargs: Django 6.1 passes fetch_mode=.
        instance = inherited(cls, db, field_names, values, **kwargs)
        _joined(instance, field_names)
        return instance

    from_db.tracks_peers = True  # type: ignore[attr-defined]
    model.from_db = classmethod(from_db)  # type: ignore[assignment, method-assign]
