"""A primary/replica database router with models pinned to a separate database.

Enable it with ``DATABASE_ROUTERS = ["testproject.routers.PrimaryReplicaRouter"]``
(the multi-database tests do so with ``override_settings``). With the aliases of
``testproject.settings``:

- reads go to ``replica``, writes to ``default``;
- the models in ``PINNED`` are read and written on ``other``, a database of its own;
- relations are allowed within one database (``default`` and its ``replica``
  count as one) and refused across databases.

It has no opinion on migrations: every alias gets every table.
"""

from __future__ import annotations

from typing import Any

from django.db import models

PRIMARY = "default"
REPLICA = "replica"
OTHER = "other"

# Model labels (lower case) that live on OTHER.
PINNED = frozenset({"tests.country", "tests.city", "tests.tag"})

# Which database an alias reads and writes: a replica is its primary.
_SAME_DATABASE = {PRIMARY: PRIMARY, REPLICA: PRIMARY, OTHER: OTHER}


class PrimaryReplicaRouter:
    def db_for_read(self, model: type[models.Model], **hints: Any) -> str:
        return OTHER if model._meta.label_lower in PINNED else REPLICA

    def db_for_write(self, model: type[models.Model], **hints: Any) -> str:
        return OTHER if model._meta.label_lower in PINNED else PRIMARY

    def allow_relation(self, obj1: models.Model, obj2: models.Model, **hints: Any) -> bool:
        database1 = _SAME_DATABASE.get(obj1._state.db or "")
        database2 = _SAME_DATABASE.get(obj2._state.db or "")
        return database1 is not None and database1 == database2
